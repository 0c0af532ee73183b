package catalog

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// LeaderLeaseName is the name of a region's leader lease row.
func LeaderLeaseName(region string) string { return "leader/" + region }

// AcquireLease takes or renews the named lease for holder until now+ttl. It
// succeeds when the lease is free, expired, or already held by holder, and
// returns the lease as it now stands (Holder tells who has it).
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (*Lease, error) {
	switch {
	case name == "" || len(name) > 128:
		return nil, Invalid("name", "a lease needs a name of 1-128 characters")
	case holder == "" || len(holder) > 128:
		return nil, Invalid("holder", "a lease holder needs a name of 1-128 characters")
	case ttl <= 0:
		return nil, Invalid("ttl", "must be positive, got %s", ttl)
	}
	var out Lease
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		now := s.now()
		until := now.Add(ttl)
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).
			Create(&Lease{Name: name, Holder: holder, Token: 1, ExpiresAt: until}).Error; err != nil {
			return err
		}
		// Renew our own lease; take over an expired one with a new token.
		if err := tx.Model(&Lease{}).Where("name = ? AND holder = ?", name, holder).
			Update("expires_at", until).Error; err != nil {
			return err
		}
		if err := tx.Model(&Lease{}).Where("name = ? AND holder <> ? AND expires_at <= ?", name, holder, now).
			Updates(map[string]any{"holder": holder, "token": gorm.Expr("token + 1"), "expires_at": until}).Error; err != nil {
			return err
		}
		return tx.Where("name = ?", name).First(&out).Error
	})
	if err != nil {
		return nil, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return &out, nil
}

// ReleaseLease gives the lease up if holder has it, so that another can take it at once.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	return s.db.WithContext(ctx).Model(&Lease{}).Where("name = ? AND holder = ?", name, holder).
		Update("expires_at", s.now().Add(-time.Second)).Error
}

// GetLease returns the named lease.
func (s *Store) GetLease(ctx context.Context, name string) (*Lease, error) {
	var l Lease
	if err := translate(s.db.WithContext(ctx).Where("name = ?", name).First(&l).Error); err != nil {
		return nil, fmt.Errorf("get lease %s: %w", name, err)
	}
	return &l, nil
}

// UpsertNode records a node's presence (its heartbeat): state alive, last seen now.
func (s *Store) UpsertNode(ctx context.Context, n *Node) error {
	now := s.now()
	n.LastSeen = now
	if n.State == "" {
		n.State = NodeAlive
	}
	if n.StartedAt.IsZero() {
		n.StartedAt = now
	}
	n.StartedAt = n.StartedAt.UTC()
	return s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"region", "roles", "address", "slots", "state", "version", "started_at", "last_seen"}),
	}).Create(n).Error
}

// SetNodeState marks a node (for example left, on a graceful stop).
func (s *Store) SetNodeState(ctx context.Context, id, state string) error {
	return s.db.WithContext(ctx).Model(&Node{}).Where("id = ?", id).Update("state", state).Error
}

// ListNodes returns the nodes of a region ("" for all).
func (s *Store) ListNodes(ctx context.Context, region string) ([]Node, error) {
	q := s.db.WithContext(ctx).Order("id")
	if region != "" {
		q = q.Where("region = ?", region)
	}
	var ns []Node
	return ns, q.Find(&ns).Error
}

// MarkDeadNodes marks alive nodes of a region not seen since deadline as dead
// and returns their IDs.
func (s *Store) MarkDeadNodes(ctx context.Context, region string, deadline time.Time) ([]string, error) {
	var ids []string
	deadline = deadline.UTC() // SQLite compares times as text: one zone for all
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := tx.Model(&Node{}).Where("region = ? AND state = ? AND last_seen < ?", region, NodeAlive, deadline).Pluck("id", &ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		return tx.Model(&Node{}).Where("id IN ? AND state = ?", ids, NodeAlive).Update("state", NodeDead).Error
	})
	return ids, err
}
