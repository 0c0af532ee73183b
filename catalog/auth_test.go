package catalog_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func requireInvalid(t *testing.T, err error, field string, msgAndArgs ...any) {
	t.Helper()
	var ve *catalog.ValidationError
	require.ErrorAs(t, err, &ve, msgAndArgs...)
	require.Equal(t, field, ve.Field, msgAndArgs...)
	require.NotEmpty(t, ve.Message)
}

func TestUsers(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		for _, c := range []struct {
			u     catalog.User
			field string
		}{
			{catalog.User{Name: ""}, "name"},
			{catalog.User{Name: "Alice"}, "name"},
			{catalog.User{Name: "al ice"}, "name"},
			{catalog.User{Name: strings.Repeat("a", 129)}, "name"},
			{catalog.User{Name: "alice", Role: "root"}, "role"},
		} {
			requireInvalid(t, s.CreateUser(ctx, &c.u), c.field, c.u.Name)
		}
		us, err := s.ListUsers(ctx)
		require.NoError(t, err)
		require.Empty(t, us, "refused users were stored")

		u := &catalog.User{Name: "alice"}
		require.NoError(t, s.CreateUser(ctx, u))
		require.Equal(t, catalog.RoleViewer, u.Role, "the default role is the weakest")
		require.ErrorIs(t, s.CreateUser(ctx, &catalog.User{Name: "alice"}), catalog.ErrConflict)
		require.NoError(t, s.CreateUser(ctx, &catalog.User{Name: "bob", Role: catalog.RoleAdmin}))

		got, err := s.GetUserByName(ctx, "alice")
		require.NoError(t, err)
		require.Equal(t, u.ID, got.ID)
		_, err = s.GetUserByName(ctx, "carol")
		require.ErrorIs(t, err, catalog.ErrNotFound)
		_, err = s.GetUser(ctx, 9999)
		require.ErrorIs(t, err, catalog.ErrNotFound)
		us, err = s.ListUsers(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"alice", "bob"}, []string{us[0].Name, us[1].Name})

		_, err = s.UpdateUser(ctx, catalog.UpdateUserParams{ID: u.ID, Role: ptr("root")})
		requireInvalid(t, err, "role")
		_, err = s.UpdateUser(ctx, catalog.UpdateUserParams{ID: 9999, Disabled: ptr(true)})
		require.ErrorIs(t, err, catalog.ErrNotFound)
		up, err := s.UpdateUser(ctx, catalog.UpdateUserParams{ID: u.ID, Role: ptr(catalog.RoleOperator), Disabled: ptr(true)})
		require.NoError(t, err)
		require.Equal(t, catalog.RoleOperator, up.Role)
		require.True(t, up.Disabled)

		// The password hash never leaves in JSON.
		u.PasswordHash = "$2a$10$secretsecret"
		b, err := json.Marshal(u)
		require.NoError(t, err)
		require.NotContains(t, string(b), "secretsecret")
	})
}

func TestTokensAreStoredHashedOnly(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		u := &catalog.User{Name: "alice"}
		require.NoError(t, s.CreateUser(ctx, u))
		secret, tok, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: u.ID, Name: "ci"})
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(secret, catalog.TokenPrefix))
		require.GreaterOrEqual(t, len(secret), len(catalog.TokenPrefix)+50, "256 random bits")
		custom := "my-admin-token-0123" // WEIR_ADMIN_TOKEN style
		secret2, _, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: u.ID, Name: "admin", Secret: custom})
		require.NoError(t, err)
		require.Equal(t, custom, secret2)

		sum := sha256.Sum256([]byte(secret))
		rows, err := s.RawRows("tokens")
		require.NoError(t, err)
		require.Len(t, rows, 2)
		for _, row := range rows {
			raw := fmt.Sprint(row)
			for _, sec := range []string{secret, custom} {
				require.NotContains(t, raw, sec)
				require.NotContains(t, raw, sec[:len(sec)/2], "the stored prefix gives away half the secret")
				b, _ := json.Marshal(row)
				require.NotContains(t, string(b), sec)
			}
		}
		var hashes []any
		for _, row := range rows {
			hashes = append(hashes, row["hash"])
		}
		require.Contains(t, hashes, hex.EncodeToString(sum[:]))
		require.Equal(t, hex.EncodeToString(sum[:]), catalog.HashToken(secret))

		// The token as returned and listed carries no hash in JSON.
		ts, err := s.ListTokens(ctx, u.ID)
		require.NoError(t, err)
		require.Len(t, ts, 2)
		b, err := json.Marshal(append(ts, *tok))
		require.NoError(t, err)
		require.NotContains(t, string(b), catalog.HashToken(secret))
		require.NotContains(t, string(b), secret)

		// Two fresh secrets differ.
		require.NotEqual(t, catalog.NewTokenSecret(), catalog.NewTokenSecret())
	})
}

func TestCreateTokenRefusesBadInput(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)
		u := &catalog.User{Name: "alice"}
		require.NoError(t, s.CreateUser(ctx, u))
		for _, c := range []struct {
			p     catalog.CreateTokenParams
			field string
		}{
			{catalog.CreateTokenParams{UserID: u.ID}, "name"},
			{catalog.CreateTokenParams{UserID: u.ID, Name: "  "}, "name"},
			{catalog.CreateTokenParams{UserID: u.ID, Name: strings.Repeat("n", 129)}, "name"},
			{catalog.CreateTokenParams{UserID: u.ID, Name: "t", ExpiresAt: ptr(clock.Now())}, "expires_at"},
			{catalog.CreateTokenParams{UserID: u.ID, Name: "t", ExpiresAt: ptr(clock.Now().Add(-time.Hour))}, "expires_at"},
			{catalog.CreateTokenParams{UserID: u.ID, Name: "t", Secret: "short"}, "token"},
		} {
			_, _, err := s.CreateToken(ctx, c.p)
			requireInvalid(t, err, c.field, c.p.Name)
		}
		_, _, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: 9999, Name: "t"})
		require.ErrorIs(t, err, catalog.ErrNotFound)
		ts, err := s.ListTokens(ctx, 0)
		require.NoError(t, err)
		require.Empty(t, ts)
	})
}

func TestAuthenticate(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)
		u := &catalog.User{Name: "alice", Role: catalog.RoleSubmitter}
		require.NoError(t, s.CreateUser(ctx, u))
		ent := &catalog.Entitlement{UserID: u.ID, Resource: "mapping:m", Action: catalog.ActionSubmit, CIDRs: catalog.NewJSON([]string{"10.0.0.0/8"})}
		require.NoError(t, s.CreateEntitlement(ctx, ent))
		good, tok, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: u.ID, Name: "good"})
		require.NoError(t, err)
		expiring, _, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: u.ID, Name: "short", ExpiresAt: ptr(clock.Now().Add(time.Hour))})
		require.NoError(t, err)
		revoked, rtok, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: u.ID, Name: "revoked"})
		require.NoError(t, err)
		require.NoError(t, s.RevokeToken(ctx, rtok.ID))
		require.NoError(t, s.RevokeToken(ctx, rtok.ID), "revoking twice is harmless")
		require.ErrorIs(t, s.RevokeToken(ctx, 9999), catalog.ErrNotFound)

		p, err := s.Authenticate(ctx, good)
		require.NoError(t, err)
		require.Equal(t, u.ID, p.User.ID)
		require.Equal(t, tok.ID, p.TokenID)
		require.Len(t, p.Entitlements, 1)
		require.Equal(t, []string{"10.0.0.0/8"}, p.Entitlements[0].CIDRs.V)
		_, err = s.Authenticate(ctx, expiring)
		require.NoError(t, err)

		refused := func(raw, reason string) {
			t.Helper()
			_, err := s.Authenticate(ctx, raw)
			require.ErrorIs(t, err, catalog.ErrUnauthenticated)
			var ae *catalog.AuthError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, reason, ae.Reason)
			if raw != "" {
				require.NotContains(t, err.Error(), raw[min(len(raw), 5):], "the error repeats the token")
			}
		}
		refused("", "no token given")
		refused("weir_nosuchtokenatallxxxxxxxxxxxxxxx", "unknown token")
		refused(good+"x", "unknown token")
		refused(revoked, "token revoked")
		clock.Advance(time.Hour)
		refused(expiring, "token expired")
		_, err = s.Authenticate(ctx, good)
		require.NoError(t, err)
		_, err = s.UpdateUser(ctx, catalog.UpdateUserParams{ID: u.ID, Disabled: ptr(true)})
		require.NoError(t, err)
		refused(good, "user disabled")
		_, err = s.UpdateUser(ctx, catalog.UpdateUserParams{ID: u.ID, Disabled: ptr(false)})
		require.NoError(t, err)
		_, err = s.Authenticate(ctx, good)
		require.NoError(t, err)
	})
}

func TestAuthenticateRecordsLastUseThrottled(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)
		u := &catalog.User{Name: "alice"}
		require.NoError(t, s.CreateUser(ctx, u))
		raw, tok, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: u.ID, Name: "t"})
		require.NoError(t, err)
		require.Nil(t, tok.LastUsedAt)
		lastUsed := func() *time.Time {
			ts, err := s.ListTokens(ctx, u.ID)
			require.NoError(t, err)
			return ts[0].LastUsedAt
		}
		first := clock.Now()
		_, err = s.Authenticate(ctx, raw)
		require.NoError(t, err)
		require.True(t, lastUsed().Equal(first))
		clock.Advance(30 * time.Second)
		_, err = s.Authenticate(ctx, raw)
		require.NoError(t, err)
		require.True(t, lastUsed().Equal(first), "written at most once a minute")
		clock.Advance(31 * time.Second)
		_, err = s.Authenticate(ctx, raw)
		require.NoError(t, err)
		require.True(t, lastUsed().Equal(clock.Now()))
	})
}

func TestEntitlements(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		u := &catalog.User{Name: "alice", Role: catalog.RoleOperator}
		require.NoError(t, s.CreateUser(ctx, u))
		for _, c := range []struct {
			e     catalog.Entitlement
			field string
		}{
			{catalog.Entitlement{Resource: "*", Action: "write"}, "action"},
			{catalog.Entitlement{Resource: "*", Action: ""}, "action"},
			{catalog.Entitlement{Resource: "", Action: "read"}, "resource"},
			{catalog.Entitlement{Resource: "mapping", Action: "read"}, "resource"},
			{catalog.Entitlement{Resource: "table:x", Action: "read"}, "resource"},
			{catalog.Entitlement{Resource: "mapping:", Action: "read"}, "resource"},
			{catalog.Entitlement{Resource: "mapping:Bad Name", Action: "read"}, "resource"},
			{catalog.Entitlement{Resource: "mapping:a*", Action: "read"}, "resource"},
			{catalog.Entitlement{Resource: "*", Action: "read", CIDRs: catalog.NewJSON([]string{"10.0.0.0/8", "10.0.0.300/8"})}, "cidrs[1]"},
			{catalog.Entitlement{Resource: "*", Action: "read", CIDRs: catalog.NewJSON([]string{"10.0.0.1"})}, "cidrs[0]"},
			{catalog.Entitlement{Resource: "*", Action: "read", CIDRs: catalog.NewJSON([]string{""})}, "cidrs[0]"},
		} {
			c.e.UserID = u.ID
			requireInvalid(t, s.CreateEntitlement(ctx, &c.e), c.field, c.e)
		}
		require.ErrorIs(t, s.CreateEntitlement(ctx, &catalog.Entitlement{UserID: 9999, Resource: "*", Action: "read"}), catalog.ErrNotFound)
		es, err := s.ListEntitlements(ctx, 0)
		require.NoError(t, err)
		require.Empty(t, es, "refused grants were stored")

		e1 := &catalog.Entitlement{UserID: u.ID, Resource: "mapping:*", Action: catalog.ActionRead, CreatedBy: "root"}
		e2 := &catalog.Entitlement{UserID: u.ID, Resource: "system:fs1", Action: catalog.ActionManage, CIDRs: catalog.NewJSON([]string{"192.168.1.0/24", "2001:db8::/32"})}
		require.NoError(t, s.CreateEntitlement(ctx, e1))
		require.NoError(t, s.CreateEntitlement(ctx, e2))
		es, err = s.ListEntitlements(ctx, u.ID)
		require.NoError(t, err)
		require.Len(t, es, 2)
		require.Equal(t, e2.CIDRs.V, es[1].CIDRs.V)
		require.Nil(t, es[0].CIDRs.V)
		// User functions are resources too (managed under /api/v1/functions).
		ef := &catalog.Entitlement{UserID: u.ID, Resource: "function:full_name", Action: catalog.ActionManage}
		require.NoError(t, s.CreateEntitlement(ctx, ef))
		require.NoError(t, s.DeleteEntitlement(ctx, ef.ID))
		e3 := &catalog.Entitlement{UserID: u.ID, Resource: "*", Action: catalog.ActionRead, CIDRs: catalog.NewJSON([]string{"10.1.2.3/8", "::ffff:192.168.0.0/112"})}
		require.NoError(t, s.CreateEntitlement(ctx, e3))
		es, err = s.ListEntitlements(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, []string{"10.0.0.0/8", "192.168.0.0/16"}, es[2].CIDRs.V, "networks are stored in canonical form")
		require.NoError(t, s.DeleteEntitlement(ctx, e3.ID))
		require.NoError(t, s.DeleteEntitlement(ctx, e1.ID))
		require.ErrorIs(t, s.DeleteEntitlement(ctx, e1.ID), catalog.ErrNotFound)
		es, err = s.ListEntitlements(ctx, u.ID)
		require.NoError(t, err)
		require.Len(t, es, 1)
	})
}

func TestRoleAllows(t *testing.T) {
	t.Parallel()
	want := map[string][]string{
		catalog.RoleViewer:    {catalog.ActionRead},
		catalog.RoleSubmitter: {catalog.ActionRead, catalog.ActionSubmit},
		catalog.RoleOperator:  {catalog.ActionRead, catalog.ActionSubmit, catalog.ActionCancel, catalog.ActionManage},
		catalog.RoleAdmin:     catalog.ValidActions,
		"":                    {},
		"root":                {},
	}
	for role, allowed := range want {
		for _, action := range append(catalog.ValidActions, "bogus") {
			exp := false
			for _, a := range allowed {
				exp = exp || a == action
			}
			if role == catalog.RoleAdmin {
				exp = true
			}
			require.Equal(t, exp, catalog.RoleAllows(role, action), "%s may %s", role, action)
		}
	}
}

func TestResourceMatches(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		pattern, resource string
		want              bool
	}{
		{"*", "mapping:a", true},
		{"*", "system:b", true},
		{"mapping:*", "mapping:a", true},
		{"mapping:*", "system:a", false},
		{"mapping:*", "mappingx:a", false},
		{"mapping:a", "mapping:a", true},
		{"mapping:a", "mapping:ab", false},
		{"mapping:ab", "mapping:a", false},
		{"system:a", "mapping:a", false},
		{"system:*", "system:", true},
	} {
		require.Equal(t, c.want, catalog.ResourceMatches(c.pattern, c.resource), "%s covers %s", c.pattern, c.resource)
	}
}

func TestPrincipalAllowed(t *testing.T) {
	t.Parallel()
	ent := func(resource, action string, cidrs ...string) catalog.Entitlement {
		e := catalog.Entitlement{Resource: resource, Action: action}
		if cidrs != nil {
			e.CIDRs = catalog.NewJSON(cidrs)
		}
		return e
	}
	ip := netip.MustParseAddr
	for _, c := range []struct {
		name     string
		role     string
		ents     []catalog.Entitlement
		action   string
		resource string
		from     netip.Addr
		want     bool
	}{
		{"granted", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "submit")}, "submit", "mapping:m", ip("1.2.3.4"), true},
		{"other mapping", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "submit")}, "submit", "mapping:n", ip("1.2.3.4"), false},
		{"other action", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "read")}, "submit", "mapping:m", ip("1.2.3.4"), false},
		{"wildcard kind", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:*", "submit")}, "submit", "mapping:n", ip("1.2.3.4"), true},
		{"wildcard all", catalog.RoleViewer, []catalog.Entitlement{ent("*", "read")}, "read", "system:s", ip("1.2.3.4"), true},
		{"role caps the grant", catalog.RoleViewer, []catalog.Entitlement{ent("*", "submit")}, "submit", "mapping:m", ip("1.2.3.4"), false},
		{"operator may not admin", catalog.RoleOperator, []catalog.Entitlement{ent("*", "admin")}, "admin", "*", ip("1.2.3.4"), false},
		{"no grants", catalog.RoleOperator, nil, "read", "mapping:m", ip("1.2.3.4"), false},
		{"admin needs no grant", catalog.RoleAdmin, nil, "admin", "*", netip.Addr{}, true},
		{"inside cidr", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "submit", "10.0.0.0/8")}, "submit", "mapping:m", ip("10.9.8.7"), true},
		{"outside cidr", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "submit", "10.0.0.0/8")}, "submit", "mapping:m", ip("11.0.0.1"), false},
		{"second cidr", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "submit", "10.0.0.0/8", "192.168.0.0/16")}, "submit", "mapping:m", ip("192.168.3.4"), true},
		{"ipv4-mapped client", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "submit", "10.0.0.0/8")}, "submit", "mapping:m", ip("::ffff:10.1.2.3"), true},
		{"ipv4-mapped client outside", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "submit", "10.0.0.0/8")}, "submit", "mapping:m", ip("::ffff:11.1.2.3"), false},
		{"ipv4-mapped cidr", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "submit", "::ffff:10.0.0.0/104")}, "submit", "mapping:m", ip("10.1.2.3"), true},
		{"ipv4-mapped cidr outside", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "submit", "::ffff:10.0.0.0/104")}, "submit", "mapping:m", ip("11.1.2.3"), false},
		{"ipv6 cidr", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "submit", "2001:db8::/32")}, "submit", "mapping:m", ip("2001:db8::1"), true},
		{"ipv6 outside", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "submit", "2001:db8::/32")}, "submit", "mapping:m", ip("2001:db9::1"), false},
		{"ipv4 client, ipv6 cidr", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "submit", "::/0")}, "submit", "mapping:m", ip("10.0.0.1"), false},
		{"unknown client with cidr", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "submit", "0.0.0.0/0")}, "submit", "mapping:m", netip.Addr{}, false},
		{"unknown client, no cidr", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "submit")}, "submit", "mapping:m", netip.Addr{}, true},
		{"loopback v6 in v4 cidr", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "submit", "127.0.0.0/8")}, "submit", "mapping:m", ip("::1"), false},
		{"one grant with, one without cidr", catalog.RoleSubmitter, []catalog.Entitlement{ent("mapping:m", "submit", "10.0.0.0/8"), ent("mapping:*", "submit")}, "submit", "mapping:m", ip("8.8.8.8"), true},
	} {
		p := &catalog.Principal{User: catalog.User{Name: "u", Role: c.role}, Entitlements: c.ents}
		require.Equal(t, c.want, p.Allowed(c.action, c.resource, c.from), c.name)
	}
}
