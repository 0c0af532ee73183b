package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
	"github.com/weirdata/weir/client"
)

// TestAccountsAgainstARealBroker drives users, passwords, sign-in, groups,
// entitlements, tokens and the audit log through a real broker on a real
// SQLite catalog.
func TestAccountsAgainstARealBroker(t *testing.T) {
	ctx := context.Background()
	store := catalogtest.Open(t, catalog.DialectSQLite)
	admin := &catalog.User{Name: "admin", Role: catalog.RoleAdmin}
	require.NoError(t, store.CreateUser(ctx, admin))
	secret, _, err := store.CreateToken(ctx, catalog.CreateTokenParams{UserID: admin.ID, Name: "admin"})
	require.NoError(t, err)
	srv := httptest.NewServer(broker.New(broker.Config{Region: "r1"}, store).Handler())
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, secret)
	require.NoError(t, err)

	const pw = "correct horse battery staple"
	u, err := c.CreateUser(ctx, client.UserRequest{Name: "carol", Role: catalog.RoleSubmitter, Password: pw})
	require.NoError(t, err)
	_, err = c.CreateUser(ctx, client.UserRequest{Name: "dave", Password: "short"})
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusBadRequest, ae.Status)
	require.Equal(t, "password", ae.Field)
	got, err := c.UserByName(ctx, "carol")
	require.NoError(t, err)
	require.Equal(t, u.ID, got.ID)

	anon, err := client.New(srv.URL, "")
	require.NoError(t, err)
	sess, err := anon.SignIn(ctx, "carol", pw)
	require.NoError(t, err)
	require.Equal(t, "carol", sess.User.Name)
	require.Len(t, sess.CSRFToken, 64)
	live, err := store.ListSessions(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, live, 1)
	_, err = anon.SignIn(ctx, "carol", "wrong password!")
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusUnauthorized, ae.Status)
	require.True(t, errors.Is(err, catalog.ErrUnauthenticated))
	require.NotContains(t, err.Error(), "wrong password!")

	require.NoError(t, c.SetPassword(ctx, u.ID, "a brand new password", ""))
	live, err = store.ListSessions(ctx, u.ID)
	require.NoError(t, err)
	require.Empty(t, live, "a new password ends the sessions")

	g, err := c.CreateGroup(ctx, "desk", "trading desk")
	require.NoError(t, err)
	require.NoError(t, c.AddGroupMember(ctx, g.ID, u.ID))
	ent, err := c.CreateEntitlement(ctx, client.EntitlementRequest{GroupID: g.ID, Resource: "mapping:trades", Action: catalog.ActionSubmit})
	require.NoError(t, err)
	es, err := c.ListEntitlements(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, es, 1, "carol's entitlements include her group's")
	detail, err := c.GetGroup(ctx, g.ID)
	require.NoError(t, err)
	require.Equal(t, []int64{u.ID}, detail.MemberIDs)
	require.Len(t, detail.Entitlements, 1)
	require.NoError(t, c.DeleteEntitlement(ctx, ent.ID))
	require.NoError(t, c.RemoveGroupMember(ctx, g.ID, u.ID))
	require.NoError(t, c.DeleteGroup(ctx, g.ID))
	_, err = c.GroupByName(ctx, "desk")
	require.ErrorIs(t, err, catalog.ErrNotFound)

	tok, err := c.CreateToken(ctx, u.ID, client.TokenRequest{Name: "ci"})
	require.NoError(t, err)
	require.NotEmpty(t, tok.Secret)
	ts, err := c.ListTokens(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, ts, 1)
	require.NoError(t, c.RevokeToken(ctx, tok.ID))
	off := true
	_, err = c.UpdateUser(ctx, u.ID, client.UserPatch{Disabled: &off})
	require.NoError(t, err)

	page, err := c.ListAudit(ctx, client.AuditOptions{Action: "group.*"})
	require.NoError(t, err)
	require.Len(t, page.Entries, 4, "group create, member add, member remove, delete")
	page, err = c.ListAudit(ctx, client.AuditOptions{Action: "session.sign_in", Outcome: catalog.AuditUnauthenticated})
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	require.Equal(t, "user:carol", page.Entries[0].Target)
	page, err = c.ListAudit(ctx, client.AuditOptions{Limit: 2})
	require.NoError(t, err)
	require.Len(t, page.Entries, 2)
	require.NotZero(t, page.NextCursor)
}

// csrfHeader adds the session's CSRF token to unsafe requests, as the
// dashboard does for the browser.
type csrfHeader struct{ token string }

func (h *csrfHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	if h.token != "" && r.Method != http.MethodGet && r.Method != http.MethodHead {
		r = r.Clone(r.Context())
		r.Header.Set(catalog.SessionCSRFHeader, h.token)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// newSessionClient is a client without a token that keeps the session
// cookie and sends the CSRF token once it is set.
func newSessionClient(t *testing.T, url string) (*client.Client, *csrfHeader) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	h := &csrfHeader{}
	c, err := client.New(url, "", client.WithHTTPClient(&http.Client{Jar: jar, Transport: h}))
	require.NoError(t, err)
	return c, h
}
