package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// identityFixture creates two users, three tokens (one revoked) and two
// entitlements, and returns the secret of bob's live token.
func identityFixture(t *testing.T, s *catalog.Store) string {
	t.Helper()
	ctx := context.Background()
	admin := &catalog.User{Name: "admin", Role: catalog.RoleAdmin}
	require.NoError(t, s.CreateUser(ctx, admin))
	bob := &catalog.User{Name: "bob", Role: catalog.RoleSubmitter}
	require.NoError(t, s.CreateUser(ctx, bob))
	_, _, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: admin.ID, Name: "root"})
	require.NoError(t, err)
	secret, _, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: bob.ID, Name: "cli"})
	require.NoError(t, err)
	_, old, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: bob.ID, Name: "old"})
	require.NoError(t, err)
	require.NoError(t, s.RevokeToken(ctx, old.ID))
	require.NoError(t, s.CreateEntitlement(ctx, &catalog.Entitlement{UserID: bob.ID, Resource: "mapping:*", Action: catalog.ActionSubmit,
		CIDRs: catalog.NewJSON([]string{"10.0.0.0/8"})}))
	require.NoError(t, s.CreateEntitlement(ctx, &catalog.Entitlement{UserID: bob.ID, Resource: "mapping:trades", Action: catalog.ActionRead}))
	return secret
}

func TestIdentitySnapshotReplicatesUsersTokensAndEntitlements(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, auth *catalog.Store) {
		ctx := context.Background()
		secret := identityFixture(t, auth)
		snap, err := auth.IdentitySnapshot(ctx)
		require.NoError(t, err)
		require.Len(t, snap.Users, 2)
		require.Len(t, snap.Tokens, 3)
		require.Len(t, snap.Entitlements, 2)
		require.Equal(t, snap.ComputeDigest(), snap.Digest)
		require.Len(t, snap.Digest, 64)
		again, err := auth.IdentitySnapshot(ctx)
		require.NoError(t, err)
		require.Equal(t, snap.Digest, again.Digest, "the same content has the same digest")

		// A region that has its own bootstrap admin (another ID, another token) gets the authority's set.
		replica := catalogtest.Open(t, auth.Dialect())
		local := &catalog.User{Name: "local-admin", Role: catalog.RoleAdmin}
		require.NoError(t, replica.CreateUser(ctx, local))
		localSecret, _, err := replica.CreateToken(ctx, catalog.CreateTokenParams{UserID: local.ID, Name: "boot"})
		require.NoError(t, err)
		require.NoError(t, replica.ApplyIdentitySnapshot(ctx, snap))

		users, err := replica.ListUsers(ctx)
		require.NoError(t, err)
		require.Len(t, users, 2)
		require.Equal(t, "admin", users[0].Name)
		require.Equal(t, snap.Users[0].ID, users[0].ID, "IDs are the authority's")
		_, err = replica.Authenticate(ctx, localSecret)
		require.ErrorIs(t, err, catalog.ErrUnauthenticated, "local identities are replaced")

		// The authority's token works here, with the same entitlements.
		p, err := replica.Authenticate(ctx, secret)
		require.NoError(t, err)
		require.Equal(t, "bob", p.User.Name)
		require.Len(t, p.Entitlements, 2)
		require.Equal(t, []string{"10.0.0.0/8"}, p.Entitlements[0].CIDRs.V)

		mirrored, err := replica.IdentitySnapshot(ctx)
		require.NoError(t, err)
		require.Equal(t, snap.Digest, mirrored.Digest, "the replica exports exactly what it applied")

		// Revocation and new rows travel with the next snapshot.
		tokens, err := auth.ListTokens(ctx, p.User.ID)
		require.NoError(t, err)
		for _, tk := range tokens {
			if tk.ID == p.TokenID {
				require.NoError(t, auth.RevokeToken(ctx, tk.ID))
			}
		}
		carol := &catalog.User{Name: "carol", Role: catalog.RoleViewer}
		require.NoError(t, auth.CreateUser(ctx, carol))
		snap2, err := auth.IdentitySnapshot(ctx)
		require.NoError(t, err)
		require.NotEqual(t, snap.Digest, snap2.Digest)
		require.NoError(t, replica.ApplyIdentitySnapshot(ctx, snap2))
		_, err = replica.Authenticate(ctx, secret)
		require.ErrorIs(t, err, catalog.ErrUnauthenticated)
		got, err := replica.GetUserByName(ctx, "carol")
		require.NoError(t, err)
		require.Equal(t, carol.ID, got.ID)

		// A row created here afterwards gets an ID past the replicated ones.
		extra := &catalog.User{Name: "extra", Role: catalog.RoleViewer}
		require.NoError(t, replica.CreateUser(ctx, extra))
		require.Greater(t, extra.ID, carol.ID)
	})
}

func TestApplyIdentitySnapshotRefusesBadRowsAndChangesNothing(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		secret := identityFixture(t, s)
		good, err := s.IdentitySnapshot(ctx)
		require.NoError(t, err)
		cases := []struct {
			name  string
			field string
			mod   func(*catalog.IdentitySnapshot)
		}{
			{"duplicate user id", "users[1]", func(x *catalog.IdentitySnapshot) { x.Users[1].ID = x.Users[0].ID }},
			{"duplicate user name", "users[1].name", func(x *catalog.IdentitySnapshot) { x.Users[1].Name = x.Users[0].Name }},
			{"bad role", "users[0].role", func(x *catalog.IdentitySnapshot) { x.Users[0].Role = "god" }},
			{"token of nobody", "tokens[0].user_id", func(x *catalog.IdentitySnapshot) { x.Tokens[0].UserID = 999 }},
			{"token hash not hex", "tokens[1].hash", func(x *catalog.IdentitySnapshot) { x.Tokens[1].Hash = "weir_secret" }},
			{"duplicate hash", "tokens[1].hash", func(x *catalog.IdentitySnapshot) { x.Tokens[1].Hash = x.Tokens[0].Hash }},
			{"bad action", "entitlements[0].action", func(x *catalog.IdentitySnapshot) { x.Entitlements[0].Action = "own" }},
			{"bad resource", "entitlements[1].resource", func(x *catalog.IdentitySnapshot) { x.Entitlements[1].Resource = "table:x" }},
			{"bad cidr", "entitlements[0].cidrs[0]", func(x *catalog.IdentitySnapshot) { x.Entitlements[0].CIDRs.V = []string{"ten"} }},
		}
		for _, c := range cases {
			bad := *good
			bad.Users = append([]catalog.ReplicaUser(nil), good.Users...)
			bad.Tokens = append([]catalog.ReplicaToken(nil), good.Tokens...)
			bad.Entitlements = append([]catalog.Entitlement(nil), good.Entitlements...)
			bad.Entitlements[0].CIDRs = catalog.NewJSON(append([]string(nil), good.Entitlements[0].CIDRs.V...))
			c.mod(&bad)
			err := s.ApplyIdentitySnapshot(ctx, &bad)
			var ve *catalog.ValidationError
			require.ErrorAs(t, err, &ve, c.name)
			require.Equal(t, c.field, ve.Field, c.name)
		}
		require.Error(t, s.ApplyIdentitySnapshot(ctx, nil))
		after, err := s.IdentitySnapshot(ctx)
		require.NoError(t, err)
		require.Equal(t, good.Digest, after.Digest, "refused snapshots change nothing")
		_, err = s.Authenticate(ctx, secret)
		require.NoError(t, err)
	})
}

func TestAuthenticateTokenHash(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)
		secret := identityFixture(t, s)
		p, err := s.AuthenticateTokenHash(ctx, catalog.HashToken(secret))
		require.NoError(t, err)
		require.Equal(t, "bob", p.User.Name)
		require.Len(t, p.Entitlements, 2)
		tokens, err := s.ListTokens(ctx, p.User.ID)
		require.NoError(t, err)
		for _, tk := range tokens {
			if tk.ID == p.TokenID {
				require.NotNil(t, tk.LastUsedAt, "use is recorded")
			}
		}

		var ae *catalog.AuthError
		_, err = s.AuthenticateTokenHash(ctx, secret)
		require.ErrorAs(t, err, &ae, "a raw token is not a hash")
		_, err = s.AuthenticateTokenHash(ctx, catalog.HashToken("weir_unknown"))
		require.ErrorAs(t, err, &ae)
		require.Equal(t, "unknown token", ae.Reason)

		// Expired, revoked, disabled: refused like Authenticate refuses them.
		in := clock.Now().Add(time.Hour)
		exp, _, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: p.User.ID, Name: "short", ExpiresAt: &in})
		require.NoError(t, err)
		clock.Advance(2 * time.Hour)
		_, err = s.AuthenticateTokenHash(ctx, catalog.HashToken(exp))
		require.ErrorAs(t, err, &ae)
		require.Equal(t, "token expired", ae.Reason)
		disabled := true
		_, err = s.UpdateUser(ctx, catalog.UpdateUserParams{ID: p.User.ID, Disabled: &disabled})
		require.NoError(t, err)
		_, err = s.AuthenticateTokenHash(ctx, catalog.HashToken(secret))
		require.ErrorAs(t, err, &ae)
		require.Equal(t, "user disabled", ae.Reason)
	})
}

func TestMappingDirectory(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		brokerStoreSystems(t, s) // bsrc is in region eu
		require.NoError(t, s.CreateMapping(ctx, brokerStoreMapping("trades")))
		require.NoError(t, s.CreateMapping(ctx, brokerStoreMapping("quotes")))
		require.NoError(t, s.DisableMapping(ctx, "quotes", "admin"))
		owned, err := s.OwnedMappings(ctx, "eu")
		require.NoError(t, err)
		require.Len(t, owned, 2)
		require.Equal(t, "quotes", owned[0].Name)
		require.Equal(t, 2, owned[0].Version, "the latest version")
		require.False(t, owned[0].Enabled)
		require.Equal(t, "trades", owned[1].Name)
		require.True(t, owned[1].Enabled)
		none, err := s.OwnedMappings(ctx, "us")
		require.NoError(t, err)
		require.Empty(t, none)

		// Another catalog keeps the directory of region eu.
		peer := catalogtest.Open(t, s.Dialect())
		require.NoError(t, peer.ReplaceDirectory(ctx, "eu", owned))
		require.NoError(t, peer.ReplaceDirectory(ctx, "ap", []catalog.FederationMapping{{Region: "ap", Name: "trades", Version: 1, Enabled: true}}))
		got, err := peer.LookupMappingRegions(ctx, "trades")
		require.NoError(t, err)
		require.Len(t, got, 2, "two regions own a mapping of that name")
		require.Equal(t, "ap", got[0].Region)
		require.Equal(t, "eu", got[1].Region)
		got, err = peer.LookupMappingRegions(ctx, "nope")
		require.NoError(t, err)
		require.Empty(t, got)

		// A replacement drops what the region no longer owns.
		require.NoError(t, peer.ReplaceDirectory(ctx, "eu", owned[:1]))
		got, err = peer.LookupMappingRegions(ctx, "trades")
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, "ap", got[0].Region)
		all, err := peer.ListDirectory(ctx)
		require.NoError(t, err)
		require.Len(t, all, 2)

		// Bad entries change nothing.
		var ve *catalog.ValidationError
		err = peer.ReplaceDirectory(ctx, "eu", []catalog.FederationMapping{{Region: "ap", Name: "x"}})
		require.ErrorAs(t, err, &ve)
		require.Equal(t, "mappings[0].region", ve.Field)
		err = peer.ReplaceDirectory(ctx, "eu", []catalog.FederationMapping{{Region: "eu", Name: "x"}, {Region: "eu", Name: "x"}})
		require.ErrorAs(t, err, &ve)
		require.Equal(t, "mappings[1].name", ve.Field)
		all2, err := peer.ListDirectory(ctx)
		require.NoError(t, err)
		require.Len(t, all2, 2)

		regions, err := peer.KnownRegions(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"ap", "eu"}, regions)
	})
}

func TestRecordSyncKeepsTheLastSuccess(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)
		_, err := s.GetSync(ctx, "eu", catalog.SyncIdentity)
		require.ErrorIs(t, err, catalog.ErrNotFound)

		require.NoError(t, s.RecordSync(ctx, catalog.RecordSyncParams{Region: "eu", Stream: catalog.SyncIdentity, Node: "s1", Digest: "d1", Rows: 5, Changed: true}))
		first := clock.Now()
		clock.Advance(10 * time.Second)
		require.NoError(t, s.RecordSync(ctx, catalog.RecordSyncParams{Region: "eu", Stream: catalog.SyncIdentity, Node: "s2", Err: "connection refused"}))
		got, err := s.GetSync(ctx, "eu", catalog.SyncIdentity)
		require.NoError(t, err)
		require.Equal(t, "d1", got.Digest, "a failure keeps the applied digest")
		require.Equal(t, 5, got.Rows)
		require.Equal(t, "connection refused", got.LastError)
		require.Equal(t, "s2", got.Node)
		require.True(t, got.LastSuccessAt.Equal(first))
		require.True(t, got.LastAttemptAt.Equal(clock.Now()))
		lag, ok := got.Lag(clock.Now())
		require.True(t, ok)
		require.Equal(t, 10*time.Second, lag)

		clock.Advance(time.Second)
		require.NoError(t, s.RecordSync(ctx, catalog.RecordSyncParams{Region: "eu", Stream: catalog.SyncIdentity, Node: "s1", Digest: "d1", Rows: 5}))
		got, err = s.GetSync(ctx, "eu", catalog.SyncIdentity)
		require.NoError(t, err)
		require.Empty(t, got.LastError)
		require.True(t, got.LastSuccessAt.Equal(clock.Now()))
		require.True(t, got.LastChangeAt.Equal(first), "unchanged data keeps the last change")

		require.NoError(t, s.RecordSync(ctx, catalog.RecordSyncParams{Region: "ap", Stream: catalog.SyncDirectory, Err: "timeout"}))
		all, err := s.ListSyncs(ctx)
		require.NoError(t, err)
		require.Len(t, all, 2)
		require.Equal(t, "ap", all[0].Region)
		_, ok = all[0].Lag(clock.Now())
		require.False(t, ok, "never succeeded: no lag to show")

		var ve *catalog.ValidationError
		require.ErrorAs(t, s.RecordSync(ctx, catalog.RecordSyncParams{Region: "eu", Stream: "users"}), &ve)
		require.Equal(t, "stream", ve.Field)
	})
}

func TestRecordNodeAliveAndGone(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)
		// A node gossip sees before its first heartbeat is inserted.
		require.NoError(t, s.RecordNodeAlive(ctx, &catalog.Node{ID: "w1", Region: "eu", Roles: catalog.NewJSON([]string{"worker"}), Slots: 2, Address: "10.0.0.1:7071"}))
		// Its heartbeat then writes its own address; gossip does not overwrite it.
		require.NoError(t, s.UpsertNode(ctx, &catalog.Node{ID: "w1", Region: "eu", Roles: catalog.NewJSON([]string{"worker"}), Slots: 4, Address: "http://10.0.0.1:7071"}))
		clock.Advance(time.Second)
		require.NoError(t, s.RecordNodeAlive(ctx, &catalog.Node{ID: "w1", Region: "eu", Address: "10.0.0.1:7071"}))
		nodes, err := s.ListNodes(ctx, "eu")
		require.NoError(t, err)
		require.Len(t, nodes, 1)
		require.Equal(t, "http://10.0.0.1:7071", nodes[0].Address)
		require.Equal(t, 4, nodes[0].Slots)
		require.True(t, nodes[0].LastSeen.Equal(clock.Now()))

		// Gossip found it dead before its last heartbeat: the catalog wins.
		changed, err := s.RecordNodeGone(ctx, "w1", catalog.NodeDead, clock.Now().Add(-time.Millisecond))
		require.NoError(t, err)
		require.False(t, changed)
		clock.Advance(3 * time.Second)
		changed, err = s.RecordNodeGone(ctx, "w1", catalog.NodeDead, clock.Now())
		require.NoError(t, err)
		require.True(t, changed)
		nodes, err = s.ListNodes(ctx, "eu")
		require.NoError(t, err)
		require.Equal(t, catalog.NodeDead, nodes[0].State)
		// A late leave notice turns dead into left; dead never overrides left.
		changed, err = s.RecordNodeGone(ctx, "w1", catalog.NodeLeft, clock.Now())
		require.NoError(t, err)
		require.True(t, changed)
		changed, err = s.RecordNodeGone(ctx, "w1", catalog.NodeDead, clock.Now())
		require.NoError(t, err)
		require.False(t, changed)
		nodes, err = s.ListNodes(ctx, "eu")
		require.NoError(t, err)
		require.Equal(t, catalog.NodeLeft, nodes[0].State)

		changed, err = s.RecordNodeGone(ctx, "ghost", catalog.NodeDead, clock.Now())
		require.NoError(t, err)
		require.False(t, changed)
		_, err = s.RecordNodeGone(ctx, "w1", catalog.NodeAlive, clock.Now())
		require.Error(t, err)
		require.Error(t, s.RecordNodeAlive(ctx, &catalog.Node{ID: "x"}))
	})
}
