package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// Node tokens. Every Weir process holds a token of its own with which it
// calls the dispatcher agents of the other nodes of its region (workers
// counting and verifying a delivery, the leader probing a system). The
// agents accept it as the principal "node:<id>", a viewer that may read
// every system and mapping and nothing else; the broker's REST API does not
// accept it at all. A node token expires, is replaced at half its life and
// when its node starts again, and is revoked when its node stops. Like
// every token, only its SHA-256 is stored.
//
// They live in a table of their own, node_tokens, not with the users' API
// tokens: a region's users and tokens are replaced by the authoritative
// region's at each identity sync (ApplyIdentitySnapshot), and each region's
// nodes need their credential to survive that.
func init() {
	registerMigration(&gormigrate.Migration{
		ID: "0009_node_tokens",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&NodeToken{})
		},
	})
}

// NodePrincipalPrefix starts the name of the principal of a node token:
// "node:<node id>", as the audit log shows it.
const NodePrincipalPrefix = "node:"

// NodeTokenTTLDefault is how long a node token is valid; nodes replace
// theirs at half of it.
const NodeTokenTTLDefault = 24 * time.Hour

// nodeTokenRetention is how long expired and revoked node tokens are kept
// (for the audit log's token IDs) before IssueNodeToken prunes them.
const nodeTokenRetention = 7 * 24 * time.Hour

// NodeToken is a node's credential toward the other nodes' agents.
type NodeToken struct {
	ID        int64      `gorm:"primaryKey" json:"id"`
	Node      string     `gorm:"size:128;not null;index" json:"node"`
	Hash      string     `gorm:"size:64;not null;uniqueIndex" json:"-"`
	ExpiresAt time.Time  `gorm:"not null" json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// TableName is node_tokens.
func (NodeToken) TableName() string { return "node_tokens" }

// IssueNodeTokenParams describes the token a node takes.
type IssueNodeTokenParams struct {
	// Node is the node's ID.
	Node string
	// TTL is how long the token is valid; NodeTokenTTLDefault when 0.
	TTL time.Duration
	// Keep, when not 0, is a token of the node not to revoke: the one a
	// running node replaces, which calls in flight may still carry.
	Keep int64
}

// IssueNodeToken creates a token for a node and revokes the node's earlier
// ones (but Keep): a node that starts again replaces its credential. It
// returns the secret, which is never readable again, and prunes tokens
// expired or revoked long ago.
func (s *Store) IssueNodeToken(ctx context.Context, p IssueNodeTokenParams) (string, *NodeToken, error) {
	if p.Node == "" || len(p.Node) > 128 {
		return "", nil, Invalid("node", "a node token needs a node ID of 1-128 characters")
	}
	if p.TTL == 0 {
		p.TTL = NodeTokenTTLDefault
	}
	if p.TTL < 0 {
		return "", nil, Invalid("ttl", "must be positive, got %s", p.TTL)
	}
	secret := NewTokenSecret()
	now := s.now()
	t := &NodeToken{Node: p.Node, Hash: HashToken(secret), ExpiresAt: now.Add(p.TTL).UTC(), CreatedAt: now.UTC()}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(t).Error; err != nil {
			return err
		}
		q := tx.Model(&NodeToken{}).Where("node = ? AND revoked_at IS NULL AND id <> ?", p.Node, t.ID)
		if p.Keep != 0 {
			q = q.Where("id <> ?", p.Keep)
		}
		if err := q.Update("revoked_at", now.UTC()).Error; err != nil {
			return err
		}
		old := now.Add(-nodeTokenRetention).UTC()
		return tx.Where("expires_at < ? OR revoked_at < ?", old, old).Delete(&NodeToken{}).Error
	})
	if err != nil {
		return "", nil, fmt.Errorf("issue the token of node %s: %w", p.Node, translate(err))
	}
	return secret, t, nil
}

// RevokeNodeTokens revokes every token of node (a graceful stop) and returns
// how many it revoked.
func (s *Store) RevokeNodeTokens(ctx context.Context, node string) (int64, error) {
	res := s.db.WithContext(ctx).Model(&NodeToken{}).Where("node = ? AND revoked_at IS NULL", node).Update("revoked_at", s.now().UTC())
	if res.Error != nil {
		return 0, fmt.Errorf("revoke the tokens of node %s: %w", node, res.Error)
	}
	return res.RowsAffected, nil
}

// AuthenticateNode resolves raw as a node token: found is false when raw is
// no node token at all (it may be an API token), and a revoked or expired
// node token is an *AuthError. The principal is "node:<id>", a viewer
// entitled to read every system and mapping.
func (s *Store) AuthenticateNode(ctx context.Context, raw string) (p *Principal, found bool, err error) {
	if raw == "" {
		return nil, false, nil
	}
	var t NodeToken
	err = s.db.WithContext(ctx).Where("hash = ?", HashToken(raw)).First(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("authenticate node: %w", err)
	}
	switch {
	case t.RevokedAt != nil:
		return nil, true, &AuthError{Reason: "node token revoked"}
	case !t.ExpiresAt.After(s.now()):
		return nil, true, &AuthError{Reason: "node token expired"}
	}
	return &Principal{User: User{Name: NodePrincipalPrefix + t.Node, Role: RoleViewer}, Entitlements: []Entitlement{
		{Action: ActionRead, Resource: "system:*"},
		{Action: ActionRead, Resource: "mapping:*"},
	}}, true, nil
}

// LiveNodeTokens returns how many valid tokens (neither revoked nor
// expired) node holds: one while it runs, none once it stopped gracefully.
func (s *Store) LiveNodeTokens(ctx context.Context, node string) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&NodeToken{}).
		Where("node = ? AND revoked_at IS NULL AND expires_at > ?", node, s.now().UTC()).Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count the tokens of node %s: %w", node, err)
	}
	return n, nil
}
