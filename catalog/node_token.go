package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Node credentials. Every Weir process holds an API token of its own with
// which it calls the dispatcher agents of the other nodes of its cluster
// (workers counting and verifying a delivery, the leader probing a system).
// The tokens belong to one built-in service user, NodeUser, a viewer
// entitled to read every system and mapping and nothing else; each is named
// NodeTokenName(node), expires, is revoked when its node stops and replaced
// when it starts again. Like every token, only its SHA-256 is stored.

// NodeUser is the built-in service user whose tokens the nodes hold.
const NodeUser = "weir-node"

// NodeTokenPrefix starts the name of every node token: "node:<node id>".
const NodeTokenPrefix = "node:"

// NodeTokenTTLDefault is how long a node token is valid; nodes replace
// theirs at half of it.
const NodeTokenTTLDefault = 24 * time.Hour

// nodeGrants are what NodeUser may read: count, probe and ls need read on
// the system, verify on the run's mapping.
var nodeGrants = []string{"system:*", "mapping:*"}

// NodeTokenName is the name of the token of node.
func NodeTokenName(node string) string { return NodeTokenPrefix + node }

// NodeOfToken returns the node a token was issued to, and whether it is a
// node token at all.
func NodeOfToken(t *Token) (string, bool) {
	node, ok := strings.CutPrefix(t.Name, NodeTokenPrefix)
	return node, ok && node != ""
}

// IssueNodeTokenParams describes the token a node takes at start.
type IssueNodeTokenParams struct {
	// Node is the node's ID.
	Node string
	// TTL is how long the token is valid; NodeTokenTTLDefault when 0.
	TTL time.Duration
	// Keep, when not 0, is a token of the node not to revoke: the one a
	// node replaces, which calls in flight may still carry.
	Keep int64
}

// IssueNodeToken creates the token of a node, after creating NodeUser and
// its grants when they are missing, and revokes the node's earlier tokens
// (but Keep): a node that restarts replaces its credential. It returns the
// secret, which is never readable again.
func (s *Store) IssueNodeToken(ctx context.Context, p IssueNodeTokenParams) (string, *Token, error) {
	if p.Node == "" || len(NodeTokenName(p.Node)) > 128 {
		return "", nil, Invalid("node", "a node token needs a node ID of 1-%d characters", 128-len(NodeTokenPrefix))
	}
	if p.TTL == 0 {
		p.TTL = NodeTokenTTLDefault
	}
	if p.TTL < 0 {
		return "", nil, Invalid("ttl", "must be positive, got %s", p.TTL)
	}
	u, err := s.nodeUser(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("issue the token of node %s: %w", p.Node, err)
	}
	expires := s.now().Add(p.TTL)
	secret, t, err := s.CreateToken(ctx, CreateTokenParams{UserID: u.ID, Name: NodeTokenName(p.Node), ExpiresAt: &expires})
	if err != nil {
		return "", nil, fmt.Errorf("issue the token of node %s: %w", p.Node, err)
	}
	if _, err := s.revokeNodeTokens(ctx, u.ID, p.Node, t.ID, p.Keep); err != nil {
		return "", nil, fmt.Errorf("issue the token of node %s: %w", p.Node, err)
	}
	return secret, t, nil
}

// RevokeNodeTokens revokes every token of node (a graceful stop) and returns
// how many it revoked.
func (s *Store) RevokeNodeTokens(ctx context.Context, node string) (int64, error) {
	u, err := s.GetUserByName(ctx, NodeUser)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("revoke the tokens of node %s: %w", node, err)
	}
	n, err := s.revokeNodeTokens(ctx, u.ID, node)
	if err != nil {
		return 0, fmt.Errorf("revoke the tokens of node %s: %w", node, err)
	}
	return n, nil
}

func (s *Store) revokeNodeTokens(ctx context.Context, userID int64, node string, keep ...int64) (int64, error) {
	q := s.db.WithContext(ctx).Model(&Token{}).
		Where("user_id = ? AND name = ? AND revoked_at IS NULL", userID, NodeTokenName(node))
	for _, id := range keep {
		if id != 0 {
			q = q.Where("id <> ?", id)
		}
	}
	res := q.Update("revoked_at", s.now())
	return res.RowsAffected, translate(res.Error)
}

// GetToken returns a token by ID (without its secret, which is not stored).
func (s *Store) GetToken(ctx context.Context, id int64) (*Token, error) {
	var t Token
	if err := translate(s.db.WithContext(ctx).First(&t, id).Error); err != nil {
		return nil, fmt.Errorf("get token %d: %w", id, err)
	}
	return &t, nil
}

// nodeUser returns NodeUser, creating it and its read grants when missing.
// Two nodes starting at once may both try: the loser of the insert reads
// the winner's row.
func (s *Store) nodeUser(ctx context.Context) (*User, error) {
	u, err := s.GetUserByName(ctx, NodeUser)
	if errors.Is(err, ErrNotFound) {
		u = &User{Name: NodeUser, Role: RoleViewer}
		if err = s.CreateUser(ctx, u); errors.Is(err, ErrConflict) {
			u, err = s.GetUserByName(ctx, NodeUser)
		}
	}
	if err != nil {
		return nil, err
	}
	ents, err := s.ListEntitlements(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	for _, res := range nodeGrants {
		found := false
		for _, e := range ents {
			found = found || (e.Action == ActionRead && e.Resource == res && len(e.CIDRs.V) == 0)
		}
		if !found {
			if err := s.CreateEntitlement(ctx, &Entitlement{UserID: u.ID, Resource: res, Action: ActionRead, CreatedBy: NodeUser}); err != nil {
				return nil, err
			}
		}
	}
	return u, nil
}
