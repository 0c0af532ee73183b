package catalog_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestPasswordsAreValidatedHashedAndVerifiedUniformly(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		u := &catalog.User{Name: "alice", Role: catalog.RoleSubmitter}
		require.NoError(t, s.CreateUser(ctx, u))

		requireInvalid(t, s.SetPassword(ctx, u.ID, "short"), "password")
		requireInvalid(t, s.SetPassword(ctx, u.ID, strings.Repeat("x", 257)), "password")
		requireInvalid(t, s.SetPassword(ctx, u.ID, "\xff\xfe invalid utf8 bytes"), "password")
		require.ErrorIs(t, s.SetPassword(ctx, 9999, "a long enough password"), catalog.ErrNotFound)

		// No password yet: refused like a wrong one.
		_, err := s.VerifyPassword(ctx, "alice", "a long enough password")
		require.ErrorIs(t, err, catalog.ErrUnauthenticated)

		const pw = "correct horse battery staple"
		require.NoError(t, s.SetPassword(ctx, u.ID, pw))
		got, err := s.GetUser(ctx, u.ID)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(got.PasswordHash, "$argon2id$"), got.PasswordHash)
		require.NotContains(t, got.PasswordHash, pw)

		v, err := s.VerifyPassword(ctx, "alice", pw)
		require.NoError(t, err)
		require.Equal(t, u.ID, v.ID)

		var reasons []string
		for _, c := range []struct{ name, pw string }{{"alice", "wrong password!!"}, {"nobody", pw}, {"alice", ""}} {
			_, err := s.VerifyPassword(ctx, c.name, c.pw)
			var ae *catalog.AuthError
			require.ErrorAs(t, err, &ae, c.name)
			reasons = append(reasons, ae.Reason)
		}
		_, err = s.UpdateUser(ctx, catalog.UpdateUserParams{ID: u.ID, Disabled: ptr(true)})
		require.NoError(t, err)
		_, err = s.VerifyPassword(ctx, "alice", pw)
		var ae *catalog.AuthError
		require.ErrorAs(t, err, &ae, "a disabled user cannot sign in")
		reasons = append(reasons, ae.Reason)
		for _, r := range reasons {
			require.Equal(t, catalog.SignInRefused, r, "every refusal gives the same reason")
		}
	})
}

func TestUnknownUserCostsAsMuchAsAWrongPassword(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	ctx := context.Background()
	u := &catalog.User{Name: "alice"}
	require.NoError(t, s.CreateUser(ctx, u))
	require.NoError(t, s.SetPassword(ctx, u.ID, "correct horse battery staple"))
	_, _ = s.VerifyPassword(ctx, "nobody", "warm up the dummy hash")
	timeOf := func(name string) time.Duration {
		best := time.Hour
		for range 3 {
			start := time.Now()
			_, err := s.VerifyPassword(ctx, name, "wrong password here")
			require.Error(t, err)
			best = min(best, time.Since(start))
		}
		return best
	}
	known, unknown := timeOf("alice"), timeOf("nobody")
	require.Greater(t, unknown, known/3, "an unknown user must cost a hash comparison too (known %s, unknown %s)", known, unknown)
	require.Greater(t, known, time.Millisecond, "a password check must be slow (argon2id), took %s", known)
}

func TestSessionsExpireEndAndCarryTheirCSRFToken(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return now })
		u := &catalog.User{Name: "alice", Role: catalog.RoleSubmitter}
		require.NoError(t, s.CreateUser(ctx, u))
		require.NoError(t, s.CreateEntitlement(ctx, &catalog.Entitlement{UserID: u.ID, Resource: "mapping:a", Action: catalog.ActionSubmit, CIDRs: catalog.NewJSON([]string{})}))

		raw, sess, err := s.CreateSession(ctx, catalog.CreateSessionParams{UserID: u.ID, ClientIP: "192.0.2.1", UserAgent: "test"})
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(raw, catalog.SessionPrefix))
		require.Equal(t, now.Add(catalog.SessionLifetimeDefault), sess.ExpiresAt.UTC())

		// Only the hash is stored.
		sum := sha256.Sum256([]byte(raw))
		rows, err := s.RawRows("sessions")
		require.NoError(t, err)
		require.Len(t, rows, 1)
		require.Equal(t, hex.EncodeToString(sum[:]), rows[0]["hash"])
		for col, v := range rows[0] {
			if str, ok := v.(string); ok {
				require.NotContains(t, str, raw[len(catalog.SessionPrefix):], "column %s holds the secret", col)
			}
		}

		// The CSRF token is the documented HMAC.
		m := hmac.New(sha256.New, []byte(raw))
		m.Write([]byte("weir-csrf"))
		require.Equal(t, hex.EncodeToString(m.Sum(nil)), catalog.SessionCSRF(raw))
		require.NotEqual(t, catalog.SessionCSRF(raw), catalog.SessionCSRF(raw+"x"))

		p, got, err := s.AuthenticateSession(ctx, raw)
		require.NoError(t, err)
		require.Equal(t, u.ID, p.User.ID)
		require.Equal(t, sess.ID, p.SessionID)
		require.Zero(t, p.TokenID)
		require.Len(t, p.Entitlements, 1)
		require.Equal(t, sess.ID, got.ID)

		// Last seen moves at most once a minute.
		now = now.Add(30 * time.Second)
		_, got, err = s.AuthenticateSession(ctx, raw)
		require.NoError(t, err)
		require.Equal(t, sess.LastSeenAt.UTC(), got.LastSeenAt.UTC())
		now = now.Add(2 * time.Minute)
		_, got, err = s.AuthenticateSession(ctx, raw)
		require.NoError(t, err)
		require.Equal(t, now, got.LastSeenAt.UTC())

		for _, bad := range []string{"", "weirs_unknown", raw + "x"} {
			_, _, err := s.AuthenticateSession(ctx, bad)
			require.ErrorIs(t, err, catalog.ErrUnauthenticated, bad)
		}

		// Expiry.
		now = sess.ExpiresAt.UTC()
		_, _, err = s.AuthenticateSession(ctx, raw)
		require.ErrorIs(t, err, catalog.ErrUnauthenticated)
		gone, err := s.DeleteExpiredSessions(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, gone)

		// Sign-out, and the ends of every session of a user.
		now = now.Add(time.Hour)
		r1, _, err := s.CreateSession(ctx, catalog.CreateSessionParams{UserID: u.ID})
		require.NoError(t, err)
		r2, _, err := s.CreateSession(ctx, catalog.CreateSessionParams{UserID: u.ID})
		require.NoError(t, err)
		require.NoError(t, s.DeleteSession(ctx, r1))
		require.NoError(t, s.DeleteSession(ctx, r1), "ending twice is harmless")
		_, _, err = s.AuthenticateSession(ctx, r1)
		require.ErrorIs(t, err, catalog.ErrUnauthenticated)
		_, _, err = s.AuthenticateSession(ctx, r2)
		require.NoError(t, err)

		require.NoError(t, s.SetPassword(ctx, u.ID, "a brand new password"))
		_, _, err = s.AuthenticateSession(ctx, r2)
		require.ErrorIs(t, err, catalog.ErrUnauthenticated, "setting a password ends the sessions")

		r3, _, err := s.CreateSession(ctx, catalog.CreateSessionParams{UserID: u.ID})
		require.NoError(t, err)
		_, err = s.UpdateUser(ctx, catalog.UpdateUserParams{ID: u.ID, Disabled: ptr(true)})
		require.NoError(t, err)
		_, err = s.UpdateUser(ctx, catalog.UpdateUserParams{ID: u.ID, Disabled: ptr(false)})
		require.NoError(t, err)
		_, _, err = s.AuthenticateSession(ctx, r3)
		require.ErrorIs(t, err, catalog.ErrUnauthenticated, "disabling a user ends its sessions")

		_, err = s.UpdateUser(ctx, catalog.UpdateUserParams{ID: u.ID, Disabled: ptr(true)})
		require.NoError(t, err)
		_, _, err = s.CreateSession(ctx, catalog.CreateSessionParams{UserID: u.ID})
		require.ErrorIs(t, err, catalog.ErrUnauthenticated, "no session for a disabled user")
		_, _, err = s.CreateSession(ctx, catalog.CreateSessionParams{UserID: 9999})
		require.ErrorIs(t, err, catalog.ErrNotFound)
	})
}

func TestGroupsGrantTheirEntitlementsToTheirMembers(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		alice := &catalog.User{Name: "alice", Role: catalog.RoleSubmitter}
		bob := &catalog.User{Name: "bob", Role: catalog.RoleSubmitter}
		require.NoError(t, s.CreateUser(ctx, alice))
		require.NoError(t, s.CreateUser(ctx, bob))

		requireInvalid(t, s.CreateGroup(ctx, &catalog.Group{Name: "Bad Name"}), "name")
		requireInvalid(t, s.CreateGroup(ctx, &catalog.Group{Name: "ok", Description: strings.Repeat("d", 1001)}), "description")
		g := &catalog.Group{Name: "desk", Description: "the trading desk"}
		require.NoError(t, s.CreateGroup(ctx, g))
		require.ErrorIs(t, s.CreateGroup(ctx, &catalog.Group{Name: "desk"}), catalog.ErrConflict)

		require.NoError(t, s.AddGroupMember(ctx, g.ID, alice.ID))
		require.NoError(t, s.AddGroupMember(ctx, g.ID, alice.ID), "adding twice is harmless")
		require.ErrorIs(t, s.AddGroupMember(ctx, g.ID, 9999), catalog.ErrNotFound)
		require.ErrorIs(t, s.AddGroupMember(ctx, 9999, alice.ID), catalog.ErrNotFound)

		gid := g.ID
		ge := &catalog.Entitlement{GroupID: &gid, Resource: "mapping:trades", Action: catalog.ActionSubmit, CIDRs: catalog.NewJSON([]string{})}
		require.NoError(t, s.CreateEntitlement(ctx, ge))
		requireInvalid(t, s.CreateEntitlement(ctx, &catalog.Entitlement{UserID: bob.ID, GroupID: &gid, Resource: "*", Action: catalog.ActionRead}), "group_id")
		missing := int64(9999)
		require.ErrorIs(t, s.CreateEntitlement(ctx, &catalog.Entitlement{GroupID: &missing, Resource: "*", Action: catalog.ActionRead}), catalog.ErrNotFound)

		ents, err := s.ListEntitlements(ctx, alice.ID)
		require.NoError(t, err)
		require.Len(t, ents, 1)
		require.Equal(t, ge.ID, ents[0].ID)
		ents, err = s.ListEntitlements(ctx, bob.ID)
		require.NoError(t, err)
		require.Empty(t, ents, "bob is not in the group")

		tok, _, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: alice.ID, Name: "t"})
		require.NoError(t, err)
		p, err := s.Authenticate(ctx, tok)
		require.NoError(t, err)
		require.True(t, p.Allowed(catalog.ActionSubmit, "mapping:trades", netip.MustParseAddr("192.0.2.1")))

		got, err := s.GetGroup(ctx, g.ID)
		require.NoError(t, err)
		require.Equal(t, []int64{alice.ID}, got.MemberIDs)
		gs, err := s.ListGroups(ctx)
		require.NoError(t, err)
		require.Len(t, gs, 1)
		require.Equal(t, []int64{alice.ID}, gs[0].MemberIDs)
		ug, err := s.ListUserGroups(ctx, alice.ID)
		require.NoError(t, err)
		require.Len(t, ug, 1)

		require.NoError(t, s.RemoveGroupMember(ctx, g.ID, alice.ID))
		require.ErrorIs(t, s.RemoveGroupMember(ctx, g.ID, alice.ID), catalog.ErrNotFound)
		p, err = s.Authenticate(ctx, tok)
		require.NoError(t, err)
		require.False(t, p.Allowed(catalog.ActionSubmit, "mapping:trades", netip.MustParseAddr("192.0.2.1")), "leaving the group takes its grants away")

		require.NoError(t, s.AddGroupMember(ctx, g.ID, bob.ID))
		require.NoError(t, s.DeleteGroup(ctx, g.ID))
		require.ErrorIs(t, s.DeleteGroup(ctx, g.ID), catalog.ErrNotFound)
		all, err := s.ListEntitlements(ctx, 0)
		require.NoError(t, err)
		require.Empty(t, all, "deleting a group deletes its entitlements")
		ents, err = s.ListEntitlements(ctx, bob.ID)
		require.NoError(t, err)
		require.Empty(t, ents)
	})
}

func TestIdentitySnapshotCarriesGroupsAndMemberships(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, src *catalog.Store) {
		ctx := context.Background()
		alice := &catalog.User{Name: "alice", Role: catalog.RoleSubmitter}
		require.NoError(t, src.CreateUser(ctx, alice))
		g := &catalog.Group{Name: "desk"}
		require.NoError(t, src.CreateGroup(ctx, g))
		require.NoError(t, src.AddGroupMember(ctx, g.ID, alice.ID))
		gid := g.ID
		require.NoError(t, src.CreateEntitlement(ctx, &catalog.Entitlement{GroupID: &gid, Resource: "mapping:trades", Action: catalog.ActionSubmit, CIDRs: catalog.NewJSON([]string{})}))
		tok, _, err := src.CreateToken(ctx, catalog.CreateTokenParams{UserID: alice.ID, Name: "t"})
		require.NoError(t, err)

		snap, err := src.IdentitySnapshot(ctx)
		require.NoError(t, err)
		require.Len(t, snap.Groups, 1)
		require.NoError(t, snap.Validate())

		dst := catalogtest.Open(t, catalog.DialectSQLite)
		require.NoError(t, dst.ApplyIdentitySnapshot(ctx, snap))
		p, err := dst.Authenticate(ctx, tok)
		require.NoError(t, err)
		require.True(t, p.Allowed(catalog.ActionSubmit, "mapping:trades", netip.MustParseAddr("192.0.2.1")), "the group's grant replicated")
		again, err := dst.IdentitySnapshot(ctx)
		require.NoError(t, err)
		require.Equal(t, snap.Digest, again.Digest)

		bad := *snap
		bad.Groups = []catalog.Group{{ID: g.ID, Name: "desk", MemberIDs: []int64{9999}}}
		require.Error(t, bad.Validate())
	})
}
