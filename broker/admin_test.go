package broker_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestAdminManagesUsersTokensAndEntitlementsEndToEnd(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		admin := func(method, path string, body any) response {
			return e.do(request{Method: method, Path: path, Body: body})
		}
		r := admin(http.MethodPost, "/api/v1/users", map[string]any{"name": "carol", "role": "submitter"})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		var carol catalog.User
		r.decode(t, &carol)
		require.Equal(t, "submitter", carol.Role)
		requireError(t, admin(http.MethodPost, "/api/v1/users", map[string]any{"name": "carol"}), http.StatusConflict, broker.CodeConflict)
		d := requireError(t, admin(http.MethodPost, "/api/v1/users", map[string]any{"name": "dave", "role": "superuser"}), http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "role", d.Field)

		r = admin(http.MethodGet, "/api/v1/users", nil)
		var ul struct{ Users []catalog.User }
		r.decode(t, &ul)
		require.Len(t, ul.Users, 7)
		r = admin(http.MethodGet, fmt.Sprintf("/api/v1/users/%d", carol.ID), nil)
		require.Equal(t, http.StatusOK, r.Status)
		requireError(t, admin(http.MethodGet, "/api/v1/users/99999", nil), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, admin(http.MethodGet, "/api/v1/users/abc", nil), http.StatusBadRequest, broker.CodeBadRequest)

		// A token: its secret shows once, then works.
		exp := e.clock.Now().Add(48 * time.Hour).UTC()
		r = admin(http.MethodPost, fmt.Sprintf("/api/v1/users/%d/tokens", carol.ID), map[string]any{"name": "ci", "expires_at": exp})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		var nt broker.NewToken
		r.decode(t, &nt)
		require.True(t, strings.HasPrefix(nt.Secret, catalog.TokenPrefix))
		require.Equal(t, carol.ID, nt.UserID)
		require.Equal(t, "ci", nt.Name)
		require.True(t, exp.Equal(*nt.ExpiresAt))
		require.Equal(t, "no-store", r.Header.Get("Cache-Control"))
		d = requireError(t, admin(http.MethodPost, fmt.Sprintf("/api/v1/users/%d/tokens", carol.ID), map[string]any{"name": "old", "expires_at": e.clock.Now().Add(-time.Hour)}), http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "expires_at", d.Field)
		requireError(t, admin(http.MethodPost, "/api/v1/users/99999/tokens", map[string]any{"name": "x"}), http.StatusNotFound, broker.CodeNotFound)

		r = e.do(request{Method: http.MethodGet, Path: "/api/v1/whoami", Token: nt.Secret})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		var who broker.WhoAmI
		r.decode(t, &who)
		require.Equal(t, "carol", who.Name)
		require.Equal(t, nt.ID, who.TokenID)
		require.Empty(t, who.Entitlements)

		r = admin(http.MethodGet, fmt.Sprintf("/api/v1/tokens?user_id=%d", carol.ID), nil)
		require.Equal(t, http.StatusOK, r.Status)
		require.NotContains(t, r.String(), nt.Secret, "listing tokens never shows a secret")
		require.NotContains(t, r.String(), catalog.HashToken(nt.Secret), "nor its hash")
		var tl struct{ Tokens []catalog.Token }
		r.decode(t, &tl)
		require.Len(t, tl.Tokens, 1)
		r = admin(http.MethodGet, "/api/v1/tokens", nil)
		r.decode(t, &tl)
		require.Len(t, tl.Tokens, 7, "without user_id, every user's tokens")
		requireError(t, admin(http.MethodGet, "/api/v1/tokens?user_id=x", nil), http.StatusBadRequest, broker.CodeBadRequest)

		// Entitlements make carol able to submit trades, from one network.
		r = admin(http.MethodPost, "/api/v1/entitlements", map[string]any{"user_id": carol.ID, "resource": "mapping:trades", "action": "submit", "cidrs": []string{"192.0.2.0/24"}})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		var ent catalog.Entitlement
		r.decode(t, &ent)
		require.Equal(t, "admin", ent.CreatedBy)
		d = requireError(t, admin(http.MethodPost, "/api/v1/entitlements", map[string]any{"user_id": carol.ID, "resource": "mapping:trades", "action": "submit", "cidrs": []string{"not-a-cidr"}}), http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "cidrs[0]", d.Field)
		d = requireError(t, admin(http.MethodPost, "/api/v1/entitlements", map[string]any{"user_id": carol.ID, "resource": "table:x", "action": "read"}), http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "resource", d.Field)
		requireError(t, admin(http.MethodPost, "/api/v1/entitlements", map[string]any{"user_id": 99999, "resource": "*", "action": "read"}), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, admin(http.MethodPost, "/api/v1/entitlements", map[string]any{"resource": "*", "action": "read"}), http.StatusBadRequest, broker.CodeInvalid)
		r = admin(http.MethodGet, fmt.Sprintf("/api/v1/entitlements?user_id=%d", carol.ID), nil)
		var el struct{ Entitlements []catalog.Entitlement }
		r.decode(t, &el)
		require.Len(t, el.Entitlements, 1, "refused grants stored nothing")

		r = e.do(request{Method: http.MethodPost, Path: "/api/v1/runs", Token: nt.Secret, Body: tradesRequest("2026-11-20")})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		r = e.do(request{Method: http.MethodGet, Path: "/api/v1/whoami", Token: nt.Secret})
		r.decode(t, &who)
		require.Len(t, who.Entitlements, 1)
		require.Equal(t, []string{"192.0.2.0/24"}, who.Entitlements[0].CIDRs.V)

		r = admin(http.MethodDelete, fmt.Sprintf("/api/v1/entitlements/%d", ent.ID), nil)
		require.Equal(t, http.StatusNoContent, r.Status, r.String())
		requireError(t, admin(http.MethodDelete, fmt.Sprintf("/api/v1/entitlements/%d", ent.ID), nil), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/runs", Token: nt.Secret, Body: tradesRequest("2026-11-21")}), http.StatusForbidden, broker.CodeForbidden)

		// Role changes and disabling take effect on the next request.
		r = admin(http.MethodPatch, fmt.Sprintf("/api/v1/users/%d", carol.ID), map[string]any{"role": "viewer"})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		r.decode(t, &carol)
		require.Equal(t, "viewer", carol.Role)
		requireError(t, admin(http.MethodPatch, fmt.Sprintf("/api/v1/users/%d", carol.ID), map[string]any{"colour": "blue"}), http.StatusBadRequest, broker.CodeBadRequest)
		requireError(t, admin(http.MethodPatch, "/api/v1/users/99999", map[string]any{"disabled": true}), http.StatusNotFound, broker.CodeNotFound)
		r = admin(http.MethodPatch, fmt.Sprintf("/api/v1/users/%d", carol.ID), map[string]any{"disabled": true})
		require.Equal(t, http.StatusOK, r.Status)
		d = requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/whoami", Token: nt.Secret}), http.StatusUnauthorized, broker.CodeUnauthenticated)
		require.Contains(t, d.Message, "disabled")
		admin(http.MethodPatch, fmt.Sprintf("/api/v1/users/%d", carol.ID), map[string]any{"disabled": false})
		require.Equal(t, http.StatusOK, e.do(request{Method: http.MethodGet, Path: "/api/v1/whoami", Token: nt.Secret}).Status)

		// Revoking a token locks it out at once.
		r = admin(http.MethodDelete, fmt.Sprintf("/api/v1/tokens/%d", nt.ID), nil)
		require.Equal(t, http.StatusNoContent, r.Status, r.String())
		d = requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/whoami", Token: nt.Secret}), http.StatusUnauthorized, broker.CodeUnauthenticated)
		require.Contains(t, d.Message, "revoked")
		requireError(t, admin(http.MethodDelete, "/api/v1/tokens/99999", nil), http.StatusNotFound, broker.CodeNotFound)

		// An admin cannot lock itself out.
		d = requireError(t, admin(http.MethodPatch, fmt.Sprintf("/api/v1/users/%d", e.users["admin"].ID), map[string]any{"role": "viewer"}), http.StatusConflict, broker.CodeConflict)
		require.Contains(t, d.Message, "yourself")
		requireError(t, admin(http.MethodPatch, fmt.Sprintf("/api/v1/users/%d", e.users["admin"].ID), map[string]any{"disabled": true}), http.StatusConflict, broker.CodeConflict)
	})
}

func TestAdminRoutesRefuseNonAdminsWithoutCreatingAnything(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		// Even an operator granted every action on every resource is no admin: roles cap grants.
		e.addUser("op", catalog.RoleOperator, grant{"*", catalog.ActionAdmin, nil}, grant{"*", catalog.ActionManage, nil})
		routes := []struct{ method, path string }{
			{http.MethodGet, "/api/v1/users"},
			{http.MethodPost, "/api/v1/users"},
			{http.MethodGet, "/api/v1/users/1"},
			{http.MethodPatch, "/api/v1/users/1"},
			{http.MethodPost, "/api/v1/users/1/tokens"},
			{http.MethodGet, "/api/v1/tokens"},
			{http.MethodDelete, "/api/v1/tokens/1"},
			{http.MethodGet, "/api/v1/entitlements"},
			{http.MethodPost, "/api/v1/entitlements"},
			{http.MethodDelete, "/api/v1/entitlements/1"},
		}
		usersBefore, err := s.ListUsers(e.ctx)
		require.NoError(t, err)
		tokensBefore, err := s.ListTokens(e.ctx, 0)
		require.NoError(t, err)
		for _, user := range []string{"op", "viewer", "sub"} {
			for _, rt := range routes {
				var body any
				if rt.method == http.MethodPost || rt.method == http.MethodPatch {
					body = map[string]any{"name": "mallory", "role": "admin", "user_id": e.users[user].ID, "resource": "*", "action": "admin"}
				}
				r := e.do(request{Method: rt.method, Path: rt.path, Token: e.tokens[user], Body: body})
				d := requireError(t, r, http.StatusForbidden, broker.CodeForbidden)
				require.Contains(t, d.Message, "admin", "%s %s as %s", rt.method, rt.path, user)
				r = e.do(request{Method: rt.method, Path: rt.path, Token: "-", Body: body})
				requireError(t, r, http.StatusUnauthorized, broker.CodeUnauthenticated)
			}
		}
		usersAfter, err := s.ListUsers(e.ctx)
		require.NoError(t, err)
		require.Equal(t, len(usersBefore), len(usersAfter))
		tokensAfter, err := s.ListTokens(e.ctx, 0)
		require.NoError(t, err)
		require.Equal(t, len(tokensBefore), len(tokensAfter))
		for _, tok := range tokensAfter {
			require.Nil(t, tok.RevokedAt)
		}
		ents, err := s.ListEntitlements(e.ctx, 0)
		require.NoError(t, err)
		require.Len(t, ents, 9, "the fixtures' grants, no more, no fewer")
	})
}

func TestWhoAmIShowsTheCallerAndItsEntitlements(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		r := e.do(request{Method: http.MethodGet, Path: "/api/v1/whoami", Token: e.tokens["netsub"], RemoteAddr: "10.0.0.9:1"})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		var who broker.WhoAmI
		r.decode(t, &who)
		require.Equal(t, "netsub", who.Name)
		require.Equal(t, catalog.RoleSubmitter, who.Role)
		require.Equal(t, "10.0.0.9", who.ClientIP)
		require.Len(t, who.Entitlements, 2)
		require.Equal(t, "mapping:trades", who.Entitlements[0].Resource)
		require.Equal(t, []string{"10.0.0.0/8"}, who.Entitlements[0].CIDRs.V)
		requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/whoami", Token: "-"}), http.StatusUnauthorized, broker.CodeUnauthenticated)
	})
}
