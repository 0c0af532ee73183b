package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
)

// form adds the browser's CSRF token to kv pairs.
func (b *browser) form(kv ...string) url.Values {
	v := url.Values{"csrf_token": {b.csrf}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func (b *browser) adminSignedIn() {
	b.st.t.Helper()
	require.Equal(b.st.t, http.StatusSeeOther, b.signIn("root", testPassword).StatusCode)
	resp, _ := b.get("/admin/users")
	require.Equal(b.st.t, http.StatusOK, resp.StatusCode)
}

func TestAdminUsersPage(t *testing.T) {
	st := newStack(t)
	st.user("root", catalog.RoleAdmin)
	b := st.browser()
	b.adminSignedIn()

	resp, body := b.post("/admin/users", b.form("name", "Bad Name", "role", "viewer"))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, `aria-invalid="true"`)
	resp, body = b.post("/admin/users", b.form("name", "dora", "role", "viewer", "password", "tiny"))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "at least 12 characters")
	require.NotContains(t, body, `value="tiny"`, "a refused password is not sent back")
	_, err := st.store.GetUserByName(st.ctx, "dora")
	require.ErrorIs(t, err, catalog.ErrNotFound)

	resp, _ = b.post("/admin/users", b.form("name", "dora", "role", "viewer"))
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Location"), "Set+a+password")
	resp, body = b.post("/admin/users", b.form("name", "dora", "role", "viewer"))
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	require.Contains(t, body, "exists already")
	dora, err := st.store.GetUserByName(st.ctx, "dora")
	require.NoError(t, err)
	id := fmt.Sprint(dora.ID)

	resp, _ = b.post("/admin/users/"+id+"/role", b.form("role", "operator"))
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, body = b.post("/admin/users/"+id+"/role", b.form("role", "root"))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "role: must be one of")
	resp, body = b.post("/admin/users/"+id+"/password", b.form("password", "short"))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "password: must be at least 12")
	resp, _ = b.post("/admin/users/"+id+"/password", b.form("password", "dora-password-123"))
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)

	d := st.browser()
	require.Equal(t, http.StatusSeeOther, d.signIn("dora", "dora-password-123").StatusCode)
	resp, _ = d.get("/")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, _ = b.post("/admin/users/"+id+"/disabled", b.form("disabled", "true"))
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, _ = d.get("/")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "disabling ends the user's session")
	require.Equal(t, "/signin", resp.Header.Get("Location"))
	resp, _ = b.post("/admin/users/"+id+"/disabled", b.form("disabled", "false"))
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	got, err := st.store.GetUser(st.ctx, dora.ID)
	require.NoError(t, err)
	require.Equal(t, catalog.RoleOperator, got.Role)
	require.False(t, got.Disabled)

	// The admin cannot lock itself out; unknown users are 404.
	root, _ := st.store.GetUserByName(st.ctx, "root")
	resp, body = b.post(fmt.Sprintf("/admin/users/%d/disabled", root.ID), b.form("disabled", "true"))
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	require.Contains(t, body, "cannot disable or demote yourself")
	resp, _ = b.post("/admin/users/99999/role", b.form("role", "viewer"))
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = b.post("/admin/users/abc/role", b.form("role", "viewer"))
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestAdminGroupsTokensEntitlementsAndAuditPages(t *testing.T) {
	st := newStack(t)
	st.user("root", catalog.RoleAdmin)
	eve := st.user("eve", catalog.RoleSubmitter)
	b := st.browser()
	b.adminSignedIn()

	// Groups: create, add a member, grant to the group, remove, delete.
	resp, body := b.post("/admin/groups", b.form("name", "Not Valid"))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "field-error")
	resp, _ = b.post("/admin/groups", b.form("name", "desk", "description", "the desk"))
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	gs, err := st.store.ListGroups(st.ctx)
	require.NoError(t, err)
	require.Len(t, gs, 1)
	gid := fmt.Sprint(gs[0].ID)
	resp, body = b.post("/admin/groups/"+gid+"/members", b.form("user_id", "x"))
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, body, "pick a user")
	resp, _ = b.post("/admin/groups/"+gid+"/members", b.form("user_id", fmt.Sprint(eve.ID)))
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, body = b.get("/admin/groups")
	require.Regexp(t, `data-member="eve"`, body)

	resp, body = b.post("/admin/entitlements", b.form("subject", "group:"+gid, "action", "submit", "resource_kind", "mapping", "resource_name", ""))
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, body, "give the mapping&#39;s name")
	resp, body = b.post("/admin/entitlements", b.form("subject", "group:"+gid, "action", "fly", "resource_kind", "*"))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "must be one of")
	resp, body = b.post("/admin/entitlements", b.form("subject", "nobody", "action", "read", "resource_kind", "*"))
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, body, "pick the user or group")
	resp, body = b.post("/admin/entitlements", b.form("subject", "group:"+gid, "action", "submit", "resource_kind", "mapping", "resource_name", "trades", "cidrs", "10.0.0.0/8, bogus"))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "bogus")
	require.Contains(t, body, `value="10.0.0.0/8, bogus"`, "the form keeps what was typed")
	resp, _ = b.post("/admin/entitlements", b.form("subject", "group:"+gid, "action", "submit", "resource_kind", "mapping", "resource_name", "trades", "cidrs", "10.0.0.0/8"))
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	ents, err := st.store.ListEntitlements(st.ctx, eve.ID)
	require.NoError(t, err)
	require.Len(t, ents, 1, "eve gets the group's grant")
	require.Equal(t, []string{"10.0.0.0/8"}, ents[0].CIDRs.V)
	_, body = b.get("/admin/entitlements")
	require.Contains(t, body, "group desk")
	require.Contains(t, body, "10.0.0.0/8")

	resp, _ = b.post(fmt.Sprintf("/admin/groups/%s/members/%d/remove", gid, eve.ID), b.form())
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, _ = b.post(fmt.Sprintf("/admin/groups/%s/members/%d/remove", gid, eve.ID), b.form())
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = b.post("/admin/groups/"+gid+"/delete", b.form())
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	all, err := st.store.ListEntitlements(st.ctx, 0)
	require.NoError(t, err)
	require.Empty(t, all, "deleting the group deleted its grant")

	// Tokens: a bad expiry, then one created, shown once, revoked.
	resp, body = b.post("/admin/tokens", b.form("user_id", fmt.Sprint(eve.ID), "name", "ci", "expires_at", "next week"))
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, body, "give a date")
	resp, body = b.post("/admin/tokens", b.form("user_id", fmt.Sprint(eve.ID), "name", "ci", "expires_at", "2000-01-01"))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "must be in the future")
	resp, body = b.post("/admin/tokens", b.form("user_id", fmt.Sprint(eve.ID), "name", "ci", "expires_at", "2099-01-31"))
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	secret := regexp.MustCompile(`id="token-secret">(weir_[a-z0-9]+)<`).FindStringSubmatch(body)
	require.NotNil(t, secret, body)
	p, err := st.store.Authenticate(st.ctx, secret[1])
	require.NoError(t, err)
	require.Equal(t, "eve", p.User.Name)
	_, body = b.get("/admin/tokens")
	require.NotContains(t, body, secret[1])
	require.Contains(t, body, `data-token="ci"`)
	require.Contains(t, body, "2099-02-01", "the token works through the day given")
	resp, _ = b.post(fmt.Sprintf("/admin/tokens/%d/revoke", p.TokenID), b.form())
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, err = st.store.Authenticate(st.ctx, secret[1])
	require.ErrorIs(t, err, catalog.ErrUnauthenticated)
	resp, _ = b.post("/admin/tokens/99999/revoke", b.form())
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// Audit: filters, bad input, no secret.
	resp, body = b.get("/admin/audit?action=" + url.QueryEscape("token.*"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `data-action="token.create"`)
	require.Contains(t, body, `data-action="token.revoke"`)
	require.NotContains(t, body, `data-action="group.create"`)
	require.NotContains(t, body, secret[1])
	require.NotContains(t, body, testPassword)
	resp, body = b.get("/admin/audit?outcome=maybe&since=yesterday")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "pick one of")
	require.Contains(t, body, "give a time")
	resp, body = b.get("/admin/audit?since=2026-01-01T00:00&until=2025-01-01T00:00")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "until must be after since")
	resp, body = b.get("/admin/audit?actor=root&outcome=rejected")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, strings.Contains(body, `data-outcome="rejected"`), "refused admin writes are audited as rejected")
}

func TestAdminPagesRefuseNonAdmins(t *testing.T) {
	st := newStack(t)
	st.user("root", catalog.RoleAdmin)
	st.user("olga", catalog.RoleOperator)
	a := st.browser()
	a.adminSignedIn()
	adminCSRF := a.csrf
	o := st.browser()
	require.Equal(t, http.StatusSeeOther, o.signIn("olga", testPassword).StatusCode)
	_, home := o.get("/")
	require.NotContains(t, home, `href="/admin"`, "the nav hides the admin pages")

	for _, p := range []string{"/admin", "/admin/users", "/admin/groups", "/admin/tokens", "/admin/entitlements", "/admin/audit"} {
		resp, body := o.get(p)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, p)
		require.Contains(t, body, "admin role", p)
	}
	for _, p := range []string{"/admin/users", "/admin/groups", "/admin/tokens", "/admin/entitlements", "/admin/users/1/role", "/admin/entitlements/1/revoke"} {
		for _, tok := range []string{o.csrf, adminCSRF, ""} {
			form := url.Values{"name": {"mallory"}, "role": {"admin"}, "subject": {"user:2"}, "action": {"admin"}, "resource_kind": {"*"}}
			if tok != "" {
				form.Set("csrf_token", tok)
			}
			resp, _ := o.post(p, form)
			require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s with token %q", p, tok)
		}
	}
	// An admin's form without its token is refused too.
	resp, _ := a.post("/admin/users", url.Values{"name": {"mallory"}, "role": {"admin"}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	_, err := st.store.GetUserByName(st.ctx, "mallory")
	require.ErrorIs(t, err, catalog.ErrNotFound)
	olga, _ := st.store.GetUserByName(st.ctx, "olga")
	require.Equal(t, catalog.RoleOperator, olga.Role)
	es, err := st.store.ListEntitlements(st.ctx, 0)
	require.NoError(t, err)
	require.Empty(t, es)
}
