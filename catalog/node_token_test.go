package catalog_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestNodeTokens(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)

		for field, p := range map[string]catalog.IssueNodeTokenParams{"node": {Node: ""}, "ttl": {Node: "w1", TTL: -time.Second}} {
			_, _, err := s.IssueNodeToken(ctx, p)
			requireInvalid(t, err, field)
		}

		secret, tok, err := s.IssueNodeToken(ctx, catalog.IssueNodeTokenParams{Node: "w1", TTL: time.Hour})
		require.NoError(t, err)
		require.Equal(t, "node:w1", tok.Name)
		require.NotEqual(t, secret, tok.Hash, "the secret is stored hashed")
		require.Equal(t, catalog.HashToken(secret), tok.Hash)
		p, err := s.Authenticate(ctx, secret)
		require.NoError(t, err)
		require.Equal(t, catalog.NodeUser, p.User.Name)
		require.Equal(t, catalog.RoleViewer, p.User.Role, "a node may read, nothing more")
		require.True(t, p.Allowed(catalog.ActionRead, "system:anything", netip.Addr{}))
		require.True(t, p.Allowed(catalog.ActionRead, "mapping:anything", netip.Addr{}))
		require.False(t, p.Allowed(catalog.ActionSubmit, "mapping:anything", netip.Addr{}))
		require.False(t, p.Allowed(catalog.ActionManage, "system:anything", netip.Addr{}))
		got, err := s.GetToken(ctx, p.TokenID)
		require.NoError(t, err)
		node, ok := catalog.NodeOfToken(got)
		require.True(t, ok)
		require.Equal(t, "w1", node)

		// A second node shares the user and its grants, not its token.
		secret2, _, err := s.IssueNodeToken(ctx, catalog.IssueNodeTokenParams{Node: "w2"})
		require.NoError(t, err)
		ents, err := s.ListEntitlements(ctx, p.User.ID)
		require.NoError(t, err)
		require.Len(t, ents, 2, "grants are created once")

		// A restart replaces the node's token: the old one is refused.
		secret1b, tok1b, err := s.IssueNodeToken(ctx, catalog.IssueNodeTokenParams{Node: "w1", TTL: time.Hour})
		require.NoError(t, err)
		_, err = s.Authenticate(ctx, secret)
		require.ErrorIs(t, err, catalog.ErrUnauthenticated, "the token before the restart still works")
		_, err = s.Authenticate(ctx, secret1b)
		require.NoError(t, err)
		// A rotation keeps the token it replaces until told.
		secret1c, _, err := s.IssueNodeToken(ctx, catalog.IssueNodeTokenParams{Node: "w1", TTL: time.Hour, Keep: tok1b.ID})
		require.NoError(t, err)
		_, err = s.Authenticate(ctx, secret1b)
		require.NoError(t, err, "the replaced token was revoked during the rotation")

		// Expired.
		clock.Advance(time.Hour + time.Second)
		_, err = s.Authenticate(ctx, secret1c)
		require.ErrorIs(t, err, catalog.ErrUnauthenticated, "an expired node token works")
		_, err = s.Authenticate(ctx, secret2)
		require.NoError(t, err, "w2's token has the default TTL")

		// A graceful stop revokes every token of the node, only its.
		n, err := s.RevokeNodeTokens(ctx, "w2")
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		_, err = s.Authenticate(ctx, secret2)
		require.ErrorIs(t, err, catalog.ErrUnauthenticated, "a revoked node token works")
		n, err = s.RevokeNodeTokens(ctx, "w1")
		require.NoError(t, err)
		require.EqualValues(t, 2, n, "w1 had the replaced token and the expired one unrevoked")

		_, ok = catalog.NodeOfToken(&catalog.Token{Name: "ci"})
		require.False(t, ok)
	})
}
