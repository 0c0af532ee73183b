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
		auth := func(raw string) (*catalog.Principal, error) {
			t.Helper()
			p, found, err := s.AuthenticateNode(ctx, raw)
			require.True(t, found, "a node token was not recognised")
			return p, err
		}

		for field, p := range map[string]catalog.IssueNodeTokenParams{"node": {Node: ""}, "ttl": {Node: "w1", TTL: -time.Second}} {
			_, _, err := s.IssueNodeToken(ctx, p)
			requireInvalid(t, err, field)
		}

		secret, tok, err := s.IssueNodeToken(ctx, catalog.IssueNodeTokenParams{Node: "w1", TTL: time.Hour})
		require.NoError(t, err)
		require.Equal(t, "w1", tok.Node)
		require.Equal(t, catalog.HashToken(secret), tok.Hash, "the token is stored as its SHA-256 only")
		p, err := auth(secret)
		require.NoError(t, err)
		require.Equal(t, "node:w1", p.User.Name)
		require.Equal(t, catalog.RoleViewer, p.User.Role, "a node may read, nothing more")
		require.True(t, p.Allowed(catalog.ActionRead, "system:anything", netip.Addr{}))
		require.True(t, p.Allowed(catalog.ActionRead, "mapping:anything", netip.Addr{}))
		require.False(t, p.Allowed(catalog.ActionSubmit, "mapping:anything", netip.Addr{}))
		require.False(t, p.Allowed(catalog.ActionManage, "system:anything", netip.Addr{}))
		require.False(t, p.Allowed(catalog.ActionAdmin, "*", netip.Addr{}))

		// Not an API token: the REST API's authentication does not know it.
		_, err = s.Authenticate(ctx, secret)
		require.ErrorIs(t, err, catalog.ErrUnauthenticated)
		_, found, err := s.AuthenticateNode(ctx, catalog.NewTokenSecret())
		require.NoError(t, err)
		require.False(t, found, "an unknown secret passed for a node token")
		users, err := s.ListUsers(ctx)
		require.NoError(t, err)
		require.Empty(t, users, "a node token created a user")

		secret2, _, err := s.IssueNodeToken(ctx, catalog.IssueNodeTokenParams{Node: "w2"})
		require.NoError(t, err)

		// A restart replaces the node's token: the old one is refused.
		secret1b, tok1b, err := s.IssueNodeToken(ctx, catalog.IssueNodeTokenParams{Node: "w1", TTL: time.Hour})
		require.NoError(t, err)
		_, err = auth(secret)
		require.ErrorIs(t, err, catalog.ErrUnauthenticated, "the token before the restart still works")
		require.ErrorContains(t, err, "revoked")
		_, err = auth(secret1b)
		require.NoError(t, err)
		// A rotation keeps the token it replaces.
		secret1c, _, err := s.IssueNodeToken(ctx, catalog.IssueNodeTokenParams{Node: "w1", TTL: time.Hour, Keep: tok1b.ID})
		require.NoError(t, err)
		_, err = auth(secret1b)
		require.NoError(t, err, "the replaced token was revoked during the rotation")
		_, err = auth(secret2)
		require.NoError(t, err, "w1's tokens revoked w2's")
		live, err := s.LiveNodeTokens(ctx, "w1")
		require.NoError(t, err)
		require.EqualValues(t, 2, live, "during a rotation, the new token and the one it replaces")

		// Expired.
		clock.Advance(time.Hour + time.Second)
		_, err = auth(secret1c)
		require.ErrorIs(t, err, catalog.ErrUnauthenticated, "an expired node token works")
		require.ErrorContains(t, err, "expired")
		_, err = auth(secret2)
		require.NoError(t, err, "w2's token has the default TTL")

		// A graceful stop revokes every token of the node, only its.
		n, err := s.RevokeNodeTokens(ctx, "w2")
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		_, err = auth(secret2)
		require.ErrorIs(t, err, catalog.ErrUnauthenticated, "a revoked node token works")
		live, err = s.LiveNodeTokens(ctx, "w1")
		require.NoError(t, err)
		require.Zero(t, live, "w1's tokens have expired")
		n, err = s.RevokeNodeTokens(ctx, "w1")
		require.NoError(t, err)
		require.EqualValues(t, 2, n, "w1 had the kept token and the expired one unrevoked")
		live, err = s.LiveNodeTokens(ctx, "w1")
		require.NoError(t, err)
		require.Zero(t, live)

		// Tokens long dead are pruned when a node takes a new one.
		clock.Advance(8 * 24 * time.Hour)
		_, _, err = s.IssueNodeToken(ctx, catalog.IssueNodeTokenParams{Node: "w3"})
		require.NoError(t, err)
		_, found, err = s.AuthenticateNode(ctx, secret)
		require.NoError(t, err)
		require.False(t, found, "a token revoked 8 days ago was kept")
	})
}
