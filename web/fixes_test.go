package web_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
	"github.com/weirdata/weir/web"
)

var olderEntries = regexp.MustCompile(`<a href="([^"]+)">Older entries`)

// The audit page's "Older entries" link keeps its filter and cursor.
func TestAuditPagesFollowTheirCursor(t *testing.T) {
	st := newStack(t)
	st.user("ada", catalog.RoleAdmin)
	base := time.Now().Add(-time.Hour)
	for i := range 130 {
		require.NoError(t, st.store.InsertAudit(st.ctx, &catalog.AuditEntry{At: base.Add(time.Duration(i) * time.Second), Node: "n",
			Action: "user.update", Target: fmt.Sprintf("user:u%03d", i), Outcome: catalog.AuditOK, Status: 200}))
	}
	b := st.browser()
	require.Equal(t, http.StatusSeeOther, b.signIn("ada", testPassword).StatusCode)

	resp, first := b.get("/admin/audit?action=user.update")
	require.Equal(t, http.StatusOK, resp.StatusCode, first)
	m := olderEntries.FindStringSubmatch(first)
	require.NotNil(t, m, "the first page links to older entries")
	next := html.UnescapeString(m[1])
	require.Regexp(t, `^/admin/audit\?(.*&)?cursor=\d+`, next)
	require.Contains(t, next, "action=user.update")

	resp, second := b.get(next)
	require.Equal(t, http.StatusOK, resp.StatusCode, second)
	require.Contains(t, first, "user:u129")
	require.NotContains(t, second, "user:u129", "the second page starts after the first")
	require.Contains(t, second, "user:u000")
	require.NotContains(t, second, "Older entries", "130 entries make two pages")
}

// A viewer's overview polls do not ask the API for alerts it refuses (and
// audits) every two seconds; an operator's do.
func TestViewerOverviewPollsSkipAlerts(t *testing.T) {
	st := newStack(t)
	st.user("vic", catalog.RoleViewer)
	st.user("olga", catalog.RoleOperator)
	_, _, err := st.store.RaiseAlert(st.ctx, catalog.RaiseAlertParams{Key: "test:1", Severity: catalog.AlertWarning, Subject: "disk nearly full", Region: "local"})
	require.NoError(t, err)
	denied := func() int {
		es, _, err := st.store.ListAudit(st.ctx, catalog.AuditFilter{Outcome: catalog.AuditForbidden, Limit: 100})
		require.NoError(t, err)
		return len(es)
	}
	live := func(b *browser, path string) string {
		req, _ := http.NewRequest(http.MethodGet, st.srv.URL+path, nil)
		req.Header.Set("X-Weir-Live", "1")
		resp, err := b.c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		sb, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(sb)
	}

	v := st.browser()
	require.Equal(t, http.StatusSeeOther, v.signIn("vic", testPassword).StatusCode)
	_, body := v.get("/")
	require.Contains(t, body, `data-live="/overview/live?alerts=hidden"`)
	require.Equal(t, 1, denied(), "the page asks once")
	for range 3 {
		require.Contains(t, live(v, "/overview/live?alerts=hidden"), "Alerts are shown to operators")
	}
	require.Equal(t, 1, denied(), "the polls do not ask again")

	o := st.browser()
	require.Equal(t, http.StatusSeeOther, o.signIn("olga", testPassword).StatusCode)
	_, body = o.get("/")
	require.Contains(t, body, `data-live="/overview/live"`)
	require.Contains(t, live(o, "/overview/live?alerts=hidden"), "disk nearly full", "an operator's polls always ask")
}

// ?flash= shows only notices the dashboard wrote itself.
func TestForgedFlashIsNotShown(t *testing.T) {
	st := newStack(t)
	st.user("olga", catalog.RoleOperator)
	b := st.browser()
	require.Equal(t, http.StatusSeeOther, b.signIn("olga", testPassword).StatusCode)
	for _, q := range []string{"flash=" + url.QueryEscape("Your session expired: call +1 555 0100"),
		"flash=" + url.QueryEscape("Your session expired: call +1 555 0100") + "&flash_sig=00"} {
		resp, body := b.get("/alerts?" + q)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.NotContains(t, body, "555 0100", q)
	}
}

// Behind a trusted TLS proxy (X-Forwarded-Proto: https) the session cookie
// is Secure and pages send HSTS; from an untrusted peer the header is ignored.
func TestTrustedTLSProxyMakesCookiesSecure(t *testing.T) {
	for _, c := range []struct {
		proxies []string
		secure  bool
	}{{[]string{"127.0.0.1/32"}, true}, {nil, false}} {
		st := newStack(t, c.proxies...)
		st.user("olga", catalog.RoleOperator)
		b := st.browser()
		get, _ := http.NewRequest(http.MethodGet, st.srv.URL+"/signin", nil)
		get.Header.Set("X-Forwarded-Proto", "https")
		resp, err := b.c.Do(get)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, c.secure, resp.Header.Get("Strict-Transport-Security") != "", "HSTS with proxies %v", c.proxies)
		_, _ = b.get("/signin")
		form := url.Values{"csrf_token": {b.csrf}, "username": {"olga"}, "password": {testPassword}}
		post, _ := http.NewRequest(http.MethodPost, st.srv.URL+"/signin", strings.NewReader(form.Encode()))
		post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		post.Header.Set("X-Forwarded-Proto", "https")
		resp, err = b.c.Do(post)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		var session *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == web.SessionCookie {
				session = ck
			}
		}
		require.NotNil(t, session)
		require.Equal(t, c.secure, session.Secure, "proxies %v", c.proxies)
	}
}

// gatedStore holds every password verification until release is closed.
type gatedStore struct {
	*catalog.Store
	entered chan struct{}
	release chan struct{}
}

func (g *gatedStore) VerifyPassword(ctx context.Context, name, password string) (*catalog.User, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.Store.VerifyPassword(ctx, name, password)
}

// When the API verifies as many passwords as it allows at once, the
// sign-in form says to try again (503), not an error page.
func TestSignInFormWhenTheAPIIsBusy(t *testing.T) {
	store := catalogtest.Open(t, "sqlite")
	g := &gatedStore{Store: store, entered: make(chan struct{}, 4), release: make(chan struct{})}
	b := broker.New(broker.Config{Region: "local", NodeID: "test", Sessions: broker.SessionConfig{MaxConcurrentSignIns: 1}}, g)
	dash, err := web.New(web.Config{API: b.Handler(), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	st := &stack{t: t, ctx: context.Background(), store: store, srv: httptest.NewServer(dash)}
	t.Cleanup(st.srv.Close)
	st.user("olga", catalog.RoleOperator)

	first := st.browser()
	first.get("/signin")
	done := make(chan *http.Response, 1)
	go func() {
		resp, _ := first.post("/signin", url.Values{"csrf_token": {first.csrf}, "username": {"olga"}, "password": {testPassword}})
		done <- resp
	}()
	<-g.entered
	second := st.browser()
	second.get("/signin")
	resp, body := second.post("/signin", url.Values{"csrf_token": {second.csrf}, "username": {"olga"}, "password": {testPassword}})
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Contains(t, body, "Too many sign-ins at once")
	require.Contains(t, body, `id="username"`, "the form is shown again")
	close(g.release)
	require.Equal(t, http.StatusSeeOther, (<-done).StatusCode)
}
