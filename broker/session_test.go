package broker_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

const testPassword = "correct horse battery staple"

// setPassword gives a fixture user a password.
func (e *env) setPassword(user, pw string) {
	e.t.Helper()
	require.NoError(e.t, e.store.SetPassword(e.ctx, e.users[user].ID, pw))
}

// signIn signs user in and returns the session cookie's value and the CSRF token.
func (e *env) signIn(user, pw string) (string, string) {
	e.t.Helper()
	r := e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-", Body: map[string]string{"username": user, "password": pw}})
	require.Equal(e.t, http.StatusCreated, r.Status, r.String())
	ck := sessionCookie(e.t, r)
	var info broker.SessionInfo
	r.decode(e.t, &info)
	return ck.Value, info.CSRFToken
}

func sessionCookie(t testing.TB, r response) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == catalog.SessionCookie {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", catalog.SessionCookie, r.Header)
	return nil
}

// withCookie is a request authenticated by a session cookie (and CSRF token when not "").
func withCookie(method, path, cookie, csrf string, body any) request {
	h := map[string]string{"Cookie": catalog.SessionCookie + "=" + cookie}
	if csrf != "" {
		h[catalog.SessionCSRFHeader] = csrf
	}
	return request{Method: method, Path: path, Token: "-", Body: body, Header: h}
}

func TestSignInSessionCookieAndCSRF(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.setPassword("sub", testPassword)

		r := e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-", Body: map[string]string{"username": "sub", "password": testPassword}})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		require.Equal(t, "no-store", r.Header.Get("Cache-Control"))
		ck := sessionCookie(t, r)
		require.True(t, ck.HttpOnly)
		require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
		require.Equal(t, "/", ck.Path)
		require.Equal(t, int(catalog.SessionLifetimeDefault.Seconds()), ck.MaxAge)
		require.False(t, ck.Secure, "plain HTTP from an untrusted peer: not Secure")
		var info broker.SessionInfo
		r.decode(t, &info)
		require.Equal(t, "sub", info.User.Name)
		require.Equal(t, catalog.SessionCSRF(ck.Value), info.CSRFToken)
		require.Equal(t, testToday.Add(catalog.SessionLifetimeDefault), info.ExpiresAt.UTC())
		require.NotContains(t, r.String(), "argon2")
		require.NotContains(t, r.String(), testPassword)
		raw, csrf := ck.Value, info.CSRFToken

		// GET /session gives the same answer; without a cookie 401.
		r = e.do(withCookie(http.MethodGet, "/api/v1/session", raw, "", nil))
		require.Equal(t, http.StatusOK, r.Status, r.String())
		var again broker.SessionInfo
		r.decode(t, &again)
		require.Equal(t, csrf, again.CSRFToken)
		requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/session", Token: "-"}), http.StatusUnauthorized, broker.CodeUnauthenticated)
		requireError(t, e.do(withCookie(http.MethodGet, "/api/v1/session", "weirs_forged", "", nil)), http.StatusUnauthorized, broker.CodeUnauthenticated)

		// The cookie authenticates reads without a CSRF token...
		r = e.do(withCookie(http.MethodGet, "/api/v1/whoami", raw, "", nil))
		require.Equal(t, http.StatusOK, r.Status, r.String())
		var who broker.WhoAmI
		r.decode(t, &who)
		require.Equal(t, "sub", who.Name)

		// ...but every write needs it, exact.
		body := tradesRequest("2026-11-02")
		d := requireError(t, e.do(withCookie(http.MethodPost, "/api/v1/runs", raw, "", body)), http.StatusForbidden, broker.CodeCSRF)
		require.Contains(t, d.Message, catalog.SessionCSRFHeader)
		wrong := csrf[:len(csrf)-1] + "0"
		if strings.HasSuffix(csrf, "0") {
			wrong = csrf[:len(csrf)-1] + "1"
		}
		requireError(t, e.do(withCookie(http.MethodPost, "/api/v1/runs", raw, wrong, body)), http.StatusForbidden, broker.CodeCSRF)
		requireError(t, e.do(withCookie(http.MethodPost, "/api/v1/runs", raw, catalog.SessionCSRF("weirs_other"), body)), http.StatusForbidden, broker.CodeCSRF)
		require.Zero(t, e.runCount(), "a refused write changed nothing")
		r = e.do(withCookie(http.MethodPost, "/api/v1/runs", raw, csrf, body))
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		requireError(t, e.do(withCookie(http.MethodPost, "/api/v1/runs", raw, csrf, map[string]any{"mapping": "other"})), http.StatusForbidden, broker.CodeForbidden)

		// Sign-out needs the CSRF token too, then the cookie is worthless.
		requireError(t, e.do(withCookie(http.MethodDelete, "/api/v1/session", raw, "", nil)), http.StatusForbidden, broker.CodeCSRF)
		r = e.do(withCookie(http.MethodDelete, "/api/v1/session", raw, csrf, nil))
		require.Equal(t, http.StatusNoContent, r.Status, r.String())
		cleared := sessionCookie(t, r)
		require.Empty(t, cleared.Value)
		require.Negative(t, cleared.MaxAge)
		requireError(t, e.do(withCookie(http.MethodGet, "/api/v1/whoami", raw, "", nil)), http.StatusUnauthorized, broker.CodeUnauthenticated)
		r = e.do(withCookie(http.MethodDelete, "/api/v1/session", raw, "", nil))
		require.Equal(t, http.StatusNoContent, r.Status, "signing out of an ended session only clears the cookie")

		// A bearer token never needs a CSRF token.
		r = e.submit("sub", tradesRequest("2026-11-03"))
		require.Equal(t, http.StatusCreated, r.Status, r.String())

		// The password never reaches the log.
		require.NotContains(t, e.logs.String(), testPassword)
	})
}

func TestSessionCookieIsSecureOverTLSAndBehindATrustedProxy(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	e := newEnv(t, s, func(c *broker.Config) { c.TrustedProxies = []string{"10.0.0.0/8"} })
	e.setPassword("sub", testPassword)
	body := map[string]string{"username": "sub", "password": testPassword}

	r := e.do(request{Method: http.MethodPost, Path: "https://weir.example/api/v1/session", Token: "-", Body: body})
	require.Equal(t, http.StatusCreated, r.Status, r.String())
	require.True(t, sessionCookie(t, r).Secure, "direct TLS")

	r = e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-", Body: body, RemoteAddr: "10.1.2.3:5555",
		Header: map[string]string{"X-Forwarded-Proto": "https"}})
	require.Equal(t, http.StatusCreated, r.Status, r.String())
	require.True(t, sessionCookie(t, r).Secure, "TLS ended at a trusted proxy")

	r = e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-", Body: body,
		Header: map[string]string{"X-Forwarded-Proto": "https"}})
	require.Equal(t, http.StatusCreated, r.Status, r.String())
	require.False(t, sessionCookie(t, r).Secure, "an untrusted peer's X-Forwarded-Proto is not believed")
}

func TestSignInRefusesUniformlyThenSlowsDownAndAlerts(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.setPassword("sub", testPassword)
		e.setPassword("other", testPassword)
		_, err := s.UpdateUser(e.ctx, catalog.UpdateUserParams{ID: e.users["other"].ID, Disabled: ptrTo(true)})
		require.NoError(t, err)
		signIn := func(user, pw, addr string) response {
			return e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-", RemoteAddr: addr,
				Body: map[string]string{"username": user, "password": pw}})
		}

		// Bad input.
		d := requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-", Body: map[string]string{"password": "x"}}), http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "username", d.Field)
		d = requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-", Body: map[string]string{"username": "sub"}}), http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "password", d.Field)
		requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-", Body: "username=sub", ContentType: "application/x-www-form-urlencoded"}), http.StatusUnsupportedMediaType, broker.CodeUnsupportedMedia)
		d = requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-", Body: map[string]string{"username": strings.Repeat("u", 129), "password": "x"}}), http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "username", d.Field)
		requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-", Body: `{"username":`}), http.StatusBadRequest, broker.CodeBadRequest)

		// Unknown user, wrong password, user without password, disabled
		// user: one answer, from different addresses so none is slowed.
		var msgs []string
		for i, c := range [][2]string{{"ghost", testPassword}, {"sub", "wrong password!"}, {"viewer", testPassword}, {"other", testPassword}} {
			d := requireError(t, signIn(c[0], c[1], fmt.Sprintf("198.51.100.%d:1", i+1)), http.StatusUnauthorized, broker.CodeUnauthenticated)
			msgs = append(msgs, d.Message)
		}
		for _, m := range msgs {
			require.Equal(t, msgs[0], m)
		}

		// Four more failures for sub (five in all) from one address: the next try waits, even with the right password.
		for i := range 4 {
			requireError(t, signIn("sub", "wrong password!", "203.0.113.7:1"), http.StatusUnauthorized, broker.CodeUnauthenticated)
			e.clock.Advance(time.Second * time.Duration(i+1))
		}
		r := signIn("sub", testPassword, "203.0.113.99:1")
		requireError(t, r, http.StatusTooManyRequests, broker.CodeTooManyRequests)
		secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
		require.NoError(t, err, r.Header)
		require.Greater(t, secs, 0)
		require.LessOrEqual(t, secs, int(broker.SignInFailureWindowDefault.Seconds()))
		alerts, _, err := s.ListAlerts(e.ctx, catalog.AlertFilter{Key: broker.AlertKeySignInFailures + "user:sub"})
		require.NoError(t, err)
		require.Len(t, alerts, 1, "repeated refused sign-ins raise an alert")
		require.Contains(t, alerts[0].Subject, "sub")

		// The address of the four failures is slowed for every user once it reaches five.
		requireError(t, signIn("ghost2", "whatever password", "203.0.113.7:1"), http.StatusUnauthorized, broker.CodeUnauthenticated)
		requireError(t, signIn("viewer", testPassword, "203.0.113.7:1"), http.StatusTooManyRequests, broker.CodeTooManyRequests)
		alerts, _, err = s.ListAlerts(e.ctx, catalog.AlertFilter{Key: broker.AlertKeySignInFailures + "ip:203.0.113.7"})
		require.NoError(t, err)
		require.Len(t, alerts, 1)

		// Once the window passes, sub signs in again.
		e.clock.Advance(broker.SignInFailureWindowDefault)
		r = signIn("sub", testPassword, "203.0.113.99:1")
		require.Equal(t, http.StatusCreated, r.Status, r.String())
	})
}

func ptrTo[T any](v T) *T { return &v }

func TestPasswordsOverTheAPI(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)

		// Created with an initial password, which is never shown.
		r := e.do(request{Method: http.MethodPost, Path: "/api/v1/users", Body: map[string]any{"name": "carol", "role": "submitter", "password": testPassword}})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		require.NotContains(t, r.String(), "password")
		require.NotContains(t, r.String(), "argon2")
		var carol catalog.User
		r.decode(t, &carol)
		d := requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/users", Body: map[string]any{"name": "dave", "password": "short"}}), http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "password", d.Field)
		_, err := s.GetUserByName(e.ctx, "dave")
		require.ErrorIs(t, err, catalog.ErrNotFound, "a refused password creates no user")
		r = e.do(request{Method: http.MethodGet, Path: "/api/v1/users"})
		require.NotContains(t, r.String(), "argon2")

		raw, _ := e.signIn("carol", testPassword)
		pwPath := fmt.Sprintf("/api/v1/users/%d/password", carol.ID)

		// An admin resets it: carol's sessions end.
		d = requireError(t, e.do(request{Method: http.MethodPut, Path: pwPath, Body: map[string]string{"password": "short"}}), http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "password", d.Field)
		requireError(t, e.do(request{Method: http.MethodPut, Path: "/api/v1/users/99999/password", Body: map[string]string{"password": "another good password"}}), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, e.do(request{Method: http.MethodPut, Path: "/api/v1/users/x/password", Body: map[string]string{"password": "another good password"}}), http.StatusBadRequest, broker.CodeBadRequest)
		r = e.do(request{Method: http.MethodPut, Path: pwPath, Body: map[string]string{"password": "another good password"}})
		require.Equal(t, http.StatusNoContent, r.Status, r.String())
		requireError(t, e.do(withCookie(http.MethodGet, "/api/v1/whoami", raw, "", nil)), http.StatusUnauthorized, broker.CodeUnauthenticated)
		requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-", Body: map[string]string{"username": "carol", "password": testPassword}}), http.StatusUnauthorized, broker.CodeUnauthenticated)

		// Carol changes her own, with her current password, by session.
		raw, csrf := e.signIn("carol", "another good password")
		d = requireError(t, e.do(withCookie(http.MethodPut, pwPath, raw, csrf, map[string]string{"password": testPassword})), http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "current_password", d.Field)
		requireError(t, e.do(withCookie(http.MethodPut, pwPath, raw, csrf, map[string]string{"password": testPassword, "current_password": "not my password"})), http.StatusForbidden, broker.CodeForbidden)
		requireError(t, e.do(withCookie(http.MethodPut, pwPath, raw, "", map[string]string{"password": testPassword, "current_password": "another good password"})), http.StatusForbidden, broker.CodeCSRF)
		r = e.do(withCookie(http.MethodPut, pwPath, raw, csrf, map[string]string{"password": testPassword, "current_password": "another good password"}))
		require.Equal(t, http.StatusNoContent, r.Status, r.String())
		e.signIn("carol", testPassword)

		// Nobody but an admin sets another user's password.
		e.setPassword("sub", testPassword)
		requireError(t, e.do(request{Method: http.MethodPut, Path: pwPath, Token: e.tokens["sub"], Body: map[string]string{"password": "hijacked password", "current_password": testPassword}}), http.StatusForbidden, broker.CodeForbidden)
		e.signIn("carol", testPassword)

		// Disabling a user ends its sessions.
		raw, _ = e.signIn("carol", testPassword)
		r = e.do(request{Method: http.MethodPatch, Path: fmt.Sprintf("/api/v1/users/%d", carol.ID), Body: map[string]any{"disabled": true}})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		requireError(t, e.do(withCookie(http.MethodGet, "/api/v1/whoami", raw, "", nil)), http.StatusUnauthorized, broker.CodeUnauthenticated)

		for _, pw := range []string{testPassword, "another good password", "hijacked password"} {
			require.NotContains(t, e.logs.String(), pw)
			entries, _, err := s.ListAudit(e.ctx, catalog.AuditFilter{Limit: 1000})
			require.NoError(t, err)
			for _, a := range entries {
				require.NotContains(t, a.Args+a.Detail+a.Target, pw)
			}
		}
	})
}

func TestGroupsRoutesAndGroupEntitlements(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		admin := func(method, path string, body any) response {
			return e.do(request{Method: method, Path: path, Body: body})
		}
		r := admin(http.MethodPost, "/api/v1/groups", map[string]string{"name": "desk", "description": "trading desk"})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		var g catalog.Group
		r.decode(t, &g)
		requireError(t, admin(http.MethodPost, "/api/v1/groups", map[string]string{"name": "desk"}), http.StatusConflict, broker.CodeConflict)
		d := requireError(t, admin(http.MethodPost, "/api/v1/groups", map[string]string{"name": "Not Valid"}), http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "name", d.Field)

		nobody := e.users["nobody"]
		member := fmt.Sprintf("/api/v1/groups/%d/members/%d", g.ID, nobody.ID)
		require.Equal(t, http.StatusNoContent, admin(http.MethodPut, member, nil).Status)
		require.Equal(t, http.StatusNoContent, admin(http.MethodPut, member, nil).Status, "idempotent")
		requireError(t, admin(http.MethodPut, fmt.Sprintf("/api/v1/groups/%d/members/99999", g.ID), nil), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, admin(http.MethodPut, fmt.Sprintf("/api/v1/groups/99999/members/%d", nobody.ID), nil), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, admin(http.MethodPut, fmt.Sprintf("/api/v1/groups/%d/members/abc", g.ID), nil), http.StatusBadRequest, broker.CodeBadRequest)

		// A grant to the group lets its member submit, from the next request.
		requireError(t, e.submit("nobody", tradesRequest("2026-11-02")), http.StatusForbidden, broker.CodeForbidden)
		d = requireError(t, admin(http.MethodPost, "/api/v1/entitlements", map[string]any{"user_id": nobody.ID, "group_id": g.ID, "resource": "mapping:trades", "action": "submit"}), http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "group_id", d.Field)
		requireError(t, admin(http.MethodPost, "/api/v1/entitlements", map[string]any{"group_id": 99999, "resource": "mapping:trades", "action": "submit"}), http.StatusNotFound, broker.CodeNotFound)
		r = admin(http.MethodPost, "/api/v1/entitlements", map[string]any{"group_id": g.ID, "resource": "mapping:trades", "action": "submit"})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		var ent catalog.Entitlement
		r.decode(t, &ent)
		require.NotNil(t, ent.GroupID)
		require.Equal(t, http.StatusCreated, e.submit("nobody", tradesRequest("2026-11-02")).Status)

		r = admin(http.MethodGet, fmt.Sprintf("/api/v1/groups/%d", g.ID), nil)
		require.Equal(t, http.StatusOK, r.Status)
		var detail broker.GroupDetail
		r.decode(t, &detail)
		require.Equal(t, []int64{nobody.ID}, detail.MemberIDs)
		require.Len(t, detail.Entitlements, 1)
		r = admin(http.MethodGet, "/api/v1/groups", nil)
		var list struct{ Groups []catalog.Group }
		r.decode(t, &list)
		require.Len(t, list.Groups, 1)
		requireError(t, admin(http.MethodGet, "/api/v1/groups/99999", nil), http.StatusNotFound, broker.CodeNotFound)

		// Leaving the group takes effect on the next request.
		require.Equal(t, http.StatusNoContent, admin(http.MethodDelete, member, nil).Status)
		requireError(t, admin(http.MethodDelete, member, nil), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, e.submit("nobody", tradesRequest("2026-11-03")), http.StatusForbidden, broker.CodeForbidden)

		// Non-admins are refused every group route and change nothing.
		for _, c := range []struct{ method, path string }{
			{http.MethodGet, "/api/v1/groups"}, {http.MethodPost, "/api/v1/groups"},
			{http.MethodGet, fmt.Sprintf("/api/v1/groups/%d", g.ID)}, {http.MethodDelete, fmt.Sprintf("/api/v1/groups/%d", g.ID)},
			{http.MethodPut, member}, {http.MethodDelete, member}, {http.MethodGet, "/api/v1/audit"},
		} {
			var body any
			if c.method == http.MethodPost {
				body = map[string]string{"name": "mine"}
			}
			requireError(t, e.do(request{Method: c.method, Path: c.path, Token: e.tokens["viewer"], Body: body}), http.StatusForbidden, broker.CodeForbidden)
			requireError(t, e.do(request{Method: c.method, Path: c.path, Token: "-", Body: body}), http.StatusUnauthorized, broker.CodeUnauthenticated)
		}
		gs, err := s.ListGroups(e.ctx)
		require.NoError(t, err)
		require.Len(t, gs, 1)

		require.Equal(t, http.StatusNoContent, admin(http.MethodDelete, fmt.Sprintf("/api/v1/groups/%d", g.ID), nil).Status)
		requireError(t, admin(http.MethodDelete, fmt.Sprintf("/api/v1/groups/%d", g.ID), nil), http.StatusNotFound, broker.CodeNotFound)
	})
}

func TestRevokingAnEntitlementTakesEffectOnTheNextRequest(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.setPassword("nobody", testPassword)
		raw, csrf := e.signIn("nobody", testPassword)
		r := e.do(request{Method: http.MethodPost, Path: "/api/v1/entitlements", Body: map[string]any{"user_id": e.users["nobody"].ID, "resource": "mapping:trades", "action": "submit"}})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		var ent catalog.Entitlement
		r.decode(t, &ent)
		require.Equal(t, http.StatusCreated, e.do(withCookie(http.MethodPost, "/api/v1/runs", raw, csrf, tradesRequest("2026-11-02"))).Status)
		require.Equal(t, http.StatusCreated, e.submit("nobody", tradesRequest("2026-11-03")).Status)

		require.Equal(t, http.StatusNoContent, e.do(request{Method: http.MethodDelete, Path: fmt.Sprintf("/api/v1/entitlements/%d", ent.ID)}).Status)
		requireError(t, e.do(withCookie(http.MethodPost, "/api/v1/runs", raw, csrf, tradesRequest("2026-11-04"))), http.StatusForbidden, broker.CodeForbidden)
		requireError(t, e.submit("nobody", tradesRequest("2026-11-05")), http.StatusForbidden, broker.CodeForbidden)
	})
}

func TestAuditLogRecordsAdminChangesAndDeniedRequests(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		r := e.do(request{Method: http.MethodPost, Path: "/api/v1/users", Body: map[string]any{"name": "carol", "role": "submitter", "password": testPassword}})
		require.Equal(t, http.StatusCreated, r.Status)
		var carol catalog.User
		r.decode(t, &carol)
		require.Equal(t, http.StatusNoContent, e.do(request{Method: http.MethodPut, Path: fmt.Sprintf("/api/v1/users/%d/password", carol.ID), Body: map[string]string{"password": "another good password"}}).Status)
		r = e.do(request{Method: http.MethodPost, Path: fmt.Sprintf("/api/v1/users/%d/tokens", carol.ID), Body: map[string]string{"name": "ci"}})
		require.Equal(t, http.StatusCreated, r.Status)
		var tok broker.NewToken
		r.decode(t, &tok)
		require.Equal(t, http.StatusNoContent, e.do(request{Method: http.MethodDelete, Path: fmt.Sprintf("/api/v1/tokens/%d", tok.ID)}).Status)
		require.Equal(t, http.StatusCreated, e.do(request{Method: http.MethodPost, Path: "/api/v1/entitlements", Body: map[string]any{"user_id": carol.ID, "resource": "mapping:trades", "action": "read"}}).Status)
		r = e.do(request{Method: http.MethodPut, Path: "/api/v1/thresholds/default", Body: map[string]any{"cpu": map[string]any{"warn": 80, "crit": 90}}})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/systems", Token: e.tokens["viewer"], Body: map[string]any{"name": "x", "kind": "fs"}}), http.StatusForbidden, broker.CodeForbidden)
		requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/runs", Token: "weir_forged_token_value", RemoteAddr: "198.51.100.9:1"}), http.StatusUnauthorized, broker.CodeUnauthenticated)

		list := func(q string) broker.AuditList {
			t.Helper()
			r := e.do(request{Method: http.MethodGet, Path: "/api/v1/audit" + q})
			require.Equal(t, http.StatusOK, r.Status, r.String())
			var l broker.AuditList
			r.decode(t, &l)
			return l
		}
		all := list("?limit=1000")
		actions := map[string]catalog.AuditEntry{}
		for _, a := range all.Entries {
			actions[a.Action] = a
			require.NotContains(t, a.Args+a.Detail+a.Target, testPassword)
			require.NotContains(t, a.Args+a.Detail+a.Target, "another good password")
			require.NotContains(t, a.Args+a.Detail+a.Target, tok.Secret)
		}
		for _, want := range []string{"user.create", "user.password", "token.create", "token.revoke", "entitlement.grant", "thresholds.update", "system.create", "api.denied"} {
			require.Contains(t, actions, want, "audit actions: %v", actions)
		}
		require.Equal(t, "admin", actions["user.create"].Actor)
		require.Equal(t, "user:carol", actions["user.create"].Target)
		require.Contains(t, actions["user.create"].Args, `"password_set":true`)
		require.Equal(t, catalog.AuditForbidden, actions["system.create"].Outcome)
		require.Equal(t, "viewer", actions["system.create"].Actor)
		denied := actions["api.denied"]
		require.Equal(t, catalog.AuditUnauthenticated, denied.Outcome)
		require.Equal(t, "198.51.100.9", denied.ClientIP)
		require.Equal(t, "GET /api/v1/runs", denied.Detail)
		require.Empty(t, denied.Actor)

		// Filters and paging.
		l := list("?actor=viewer")
		require.NotEmpty(t, l.Entries)
		for _, a := range l.Entries {
			require.Equal(t, "viewer", a.Actor)
		}
		l = list("?action=token.*")
		require.Len(t, l.Entries, 2)
		l = list("?outcome=unauthenticated")
		require.Len(t, l.Entries, 1)
		l = list("?limit=2")
		require.Len(t, l.Entries, 2)
		require.NotZero(t, l.NextCursor)
		next := list(fmt.Sprintf("?limit=2&cursor=%d", l.NextCursor))
		require.Less(t, next.Entries[0].ID, l.Entries[1].ID)
		since := testToday.Add(time.Hour).Format(time.RFC3339)
		require.Empty(t, list("?since="+since).Entries)
		require.NotEmpty(t, list("?until="+since).Entries)

		for _, q := range []struct{ query, field string }{
			{"?outcome=maybe", "outcome"}, {"?since=yesterday", "since"}, {"?until=2026-13-01", "until"},
			{"?limit=0", "limit"}, {"?limit=abc", "limit"}, {"?cursor=-1", "cursor"},
			{"?since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z", "until"},
		} {
			r := e.do(request{Method: http.MethodGet, Path: "/api/v1/audit" + q.query})
			require.Equal(t, http.StatusBadRequest, r.Status, q.query)
			require.True(t, strings.Contains(r.String(), q.field), "%s: %s", q.query, r)
		}
	})
}
