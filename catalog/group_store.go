package catalog

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Groups gather users so that entitlements can be granted to all of them at
// once: a principal's entitlements are its own and its groups'.

// Group is a named set of users.
type Group struct {
	ID          int64     `gorm:"primaryKey" json:"id"`
	Name        string    `gorm:"size:128;not null;uniqueIndex" json:"name"`
	Description string    `gorm:"size:1000;not null;default:''" json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// MemberIDs are the IDs of the group's users (filled by GetGroup and ListGroups).
	MemberIDs []int64 `gorm:"-" json:"member_ids"`
}

// GroupMember says that a user belongs to a group.
type GroupMember struct {
	GroupID   int64     `gorm:"primaryKey;autoIncrement:false" json:"group_id"`
	UserID    int64     `gorm:"primaryKey;autoIncrement:false;index" json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
}

// groupDescriptionMax bounds a group's description.
const groupDescriptionMax = 1000

// CreateGroup inserts a group; an existing name is ErrConflict.
func (s *Store) CreateGroup(ctx context.Context, g *Group) error {
	if err := ValidateName("name", g.Name); err != nil {
		return err
	}
	if len([]rune(g.Description)) > groupDescriptionMax {
		return Invalid("description", "must be at most %d characters", groupDescriptionMax)
	}
	g.ID, g.MemberIDs = 0, []int64{}
	if err := translate(s.db.WithContext(ctx).Create(g).Error); err != nil {
		return fmt.Errorf("create group %s: %w", g.Name, err)
	}
	return nil
}

// GetGroup returns a group with its members.
func (s *Store) GetGroup(ctx context.Context, id int64) (*Group, error) {
	var g Group
	if err := translate(s.db.WithContext(ctx).First(&g, id).Error); err != nil {
		return nil, fmt.Errorf("get group %d: %w", id, err)
	}
	g.MemberIDs = []int64{}
	if err := s.db.WithContext(ctx).Model(&GroupMember{}).Where("group_id = ?", id).Order("user_id").Pluck("user_id", &g.MemberIDs).Error; err != nil {
		return nil, fmt.Errorf("get members of group %d: %w", id, err)
	}
	return &g, nil
}

// ListGroups returns every group by name, with its members.
func (s *Store) ListGroups(ctx context.Context) ([]Group, error) {
	var gs []Group
	if err := s.db.WithContext(ctx).Order("name").Find(&gs).Error; err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	var ms []GroupMember
	if err := s.db.WithContext(ctx).Order("group_id, user_id").Find(&ms).Error; err != nil {
		return nil, fmt.Errorf("list group members: %w", err)
	}
	byGroup := map[int64][]int64{}
	for _, m := range ms {
		byGroup[m.GroupID] = append(byGroup[m.GroupID], m.UserID)
	}
	for i := range gs {
		gs[i].MemberIDs = byGroup[gs[i].ID]
		if gs[i].MemberIDs == nil {
			gs[i].MemberIDs = []int64{}
		}
	}
	return gs, nil
}

// ListUserGroups returns the groups a user belongs to, by name (without members).
func (s *Store) ListUserGroups(ctx context.Context, userID int64) ([]Group, error) {
	var gs []Group
	err := s.db.WithContext(ctx).Where("id IN (?)", s.db.Model(&GroupMember{}).Select("group_id").Where("user_id = ?", userID)).
		Order("name").Find(&gs).Error
	if err != nil {
		return nil, fmt.Errorf("list groups of user %d: %w", userID, err)
	}
	return gs, nil
}

// DeleteGroup removes a group, its memberships and its entitlements, in one transaction.
func (s *Store) DeleteGroup(ctx context.Context, id int64) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res := tx.Delete(&Group{}, id)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		if err := tx.Where("group_id = ?", id).Delete(&GroupMember{}).Error; err != nil {
			return err
		}
		return tx.Where("group_id = ?", id).Delete(&Entitlement{}).Error
	})
	if err != nil {
		return fmt.Errorf("delete group %d: %w", id, err)
	}
	return nil
}

// AddGroupMember puts a user in a group; adding a member twice is harmless.
// An unknown group or user is ErrNotFound.
func (s *Store) AddGroupMember(ctx context.Context, groupID, userID int64) error {
	if _, err := s.GetGroup(ctx, groupID); err != nil {
		return fmt.Errorf("add member: %w", err)
	}
	if _, err := s.GetUser(ctx, userID); err != nil {
		return fmt.Errorf("add member: %w", err)
	}
	m := GroupMember{GroupID: groupID, UserID: userID, CreatedAt: s.now()}
	if err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&m).Error; err != nil {
		return fmt.Errorf("add user %d to group %d: %w", userID, groupID, translate(err))
	}
	return nil
}

// RemoveGroupMember takes a user out of a group; ErrNotFound when the user
// is not a member of it.
func (s *Store) RemoveGroupMember(ctx context.Context, groupID, userID int64) error {
	res := s.db.WithContext(ctx).Where("group_id = ? AND user_id = ?", groupID, userID).Delete(&GroupMember{})
	if res.Error != nil {
		return fmt.Errorf("remove user %d from group %d: %w", userID, groupID, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("remove user %d from group %d: %w", userID, groupID, ErrNotFound)
	}
	return nil
}
