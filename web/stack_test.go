package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
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

// stack is the dashboard in front of a real broker on a real SQLite
// catalog, served over HTTP on loopback, as cmd/weir wires it.
type stack struct {
	t     *testing.T
	ctx   context.Context
	store *catalog.Store
	srv   *httptest.Server
}

const testPassword = "correct-horse-battery"

// newStack starts the stack; trustedProxies go to both the broker and the dashboard.
func newStack(t *testing.T, trustedProxies ...string) *stack {
	t.Helper()
	store := catalogtest.Open(t, "sqlite")
	b := broker.New(broker.Config{Region: "local", NodeID: "test", TrustedProxies: trustedProxies}, store)
	dash, err := web.New(web.Config{API: b.Handler(), Logger: slog.New(slog.DiscardHandler), TrustedProxies: trustedProxies})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/api/", b.Handler())
	mux.Handle("/", dash)
	st := &stack{t: t, ctx: context.Background(), store: store, srv: httptest.NewServer(mux)}
	t.Cleanup(st.srv.Close)
	require.NoError(t, store.UpsertNode(st.ctx, &catalog.Node{ID: "w1", Region: "local", Roles: catalog.NewJSON([]string{"worker"}), Slots: 2}))
	require.NoError(t, store.UpsertLatestSample(st.ctx, &catalog.HostLatest{NodeID: "w1", Region: "local", At: time.Now(),
		Metrics: catalog.NewJSON(map[string]float64{"cpu.busy_pct": 12, "mem.used_pct": 40})}))
	return st
}

// user creates a user with role and the test password.
func (st *stack) user(name, role string) *catalog.User {
	u := &catalog.User{Name: name, Role: role}
	require.NoError(st.t, st.store.CreateUser(st.ctx, u))
	require.NoError(st.t, st.store.SetPassword(st.ctx, u.ID, testPassword))
	return u
}

// browser is a cookie-keeping HTTP client that does not follow redirects.
type browser struct {
	st   *stack
	c    *http.Client
	csrf string
}

func (st *stack) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{st: st, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (b *browser) get(path string) (*http.Response, string) {
	b.st.t.Helper()
	resp, err := b.c.Get(b.st.srv.URL + path)
	require.NoError(b.st.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindStringSubmatch(string(body)); m != nil {
		b.csrf = m[1]
	}
	return resp, string(body)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.st.t.Helper()
	resp, err := b.c.PostForm(b.st.srv.URL+path, form)
	require.NoError(b.st.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) signIn(name, password string) *http.Response {
	b.st.t.Helper()
	b.get("/signin")
	require.NotEmpty(b.st.t, b.csrf)
	resp, _ := b.post("/signin", url.Values{"csrf_token": {b.csrf}, "username": {name}, "password": {password}, "next": {"/alerts"}})
	return resp
}

func TestSignInSignOutAndSessionCookie(t *testing.T) {
	st := newStack(t)
	st.user("olga", catalog.RoleOperator)
	b := st.browser()

	resp := b.signIn("olga", "wrong-password-123")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a wrong password shows the form again")
	_, body := b.post("/signin", url.Values{"csrf_token": {b.csrf}, "username": {"olga"}, "password": {""}})
	require.Contains(t, body, `id="password-error"`, "a missing password is shown next to its field")

	resp = b.signIn("olga", testPassword)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/alerts", resp.Header.Get("Location"), "back to the page asked for")
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == web.SessionCookie {
			session = c
		}
	}
	require.NotNil(t, session, "the API's session cookie reaches the browser")
	require.True(t, session.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, session.SameSite)

	resp, body = b.get("/")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, "olga")
	require.Contains(t, body, `data-node="w1"`)
	require.Contains(t, body, `href="/alerts"`, "an operator sees the alerts entry")

	// Signing out ends the session in the catalog: the old cookie no longer works.
	resp, _ = b.post("/signout", url.Values{"csrf_token": {b.csrf}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	replay := st.browser()
	u, _ := url.Parse(st.srv.URL)
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: web.SessionCookie, Value: session.Value}})
	resp, _ = replay.get("/")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "a signed-out session is refused")
	require.Equal(t, "/signin", resp.Header.Get("Location"))
	// A stale page's sign-out button still leads to the sign-in page.
	resp, _ = replay.post("/signout", url.Values{})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/signin", resp.Header.Get("Location"))
}

func TestOpenRedirectRefused(t *testing.T) {
	st := newStack(t)
	st.user("olga", catalog.RoleOperator)
	for _, next := range []string{"https://evil.example/", "//evil.example/x", `/\evil.example`} {
		b := st.browser()
		b.get("/signin")
		resp, _ := b.post("/signin", url.Values{"csrf_token": {b.csrf}, "username": {"olga"}, "password": {testPassword}, "next": {next}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Equal(t, "/", resp.Header.Get("Location"), "next=%s", next)
	}
}

func TestPagesRenderAndRefuseBadInput(t *testing.T) {
	st := newStack(t)
	st.user("olga", catalog.RoleOperator)
	st.user("vic", catalog.RoleViewer)
	a, _, err := st.store.RaiseAlert(st.ctx, catalog.RaiseAlertParams{Key: "node-red:w1", Severity: catalog.AlertCritical,
		Subject: "node w1 is red", Message: "cpu 97% > 95% critical", Region: "local"})
	require.NoError(t, err)
	b := st.browser()
	require.Equal(t, http.StatusSeeOther, b.signIn("olga", testPassword).StatusCode)

	for _, c := range []struct {
		path   string
		status int
		want   string
	}{
		{"/", 200, `data-live="/overview/live"`},
		{"/overview/live", 200, `data-node="w1"`},
		{"/nodes/w1", 200, `id="chart-cpu"`},
		{"/nodes/w1?window=6h", 200, `id="chart-network"`},
		{"/nodes/w1/live?window=15m", 200, `id="chart-memory"`},
		{"/nodes/w1?window=3y", 400, "is not one of"},
		{"/nodes/nope", 404, "no node"},
		{"/alerts", 200, "cpu 97% &gt; 95% critical"},
		{"/alerts?severity=bad", 400, "is not a severity"},
		{"/alerts?cursor=-4", 400, "cursor must be a positive number"},
		{"/diagnostics?node=w1", 200, "node w1"},
		{"/diagnostics?region=local", 200, "region local"},
		{"/diagnostics", 400, "say what to diagnose"},
		{"/no/such/page", 404, "There is no such page"},
	} {
		resp, body := b.get(c.path)
		require.Equal(t, c.status, resp.StatusCode, "GET %s: %s", c.path, body)
		require.Contains(t, body, c.want, "GET %s", c.path)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'", c.path)
	}

	// Acknowledge through the form; the page says so.
	resp, _ := b.post(fmt.Sprintf("/alerts/%d/ack", a.ID), url.Values{"csrf_token": {b.csrf}, "back": {"/alerts?open=1"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/alerts?"), resp.Header.Get("Location"))
	_, body := b.get(resp.Header.Get("Location"))
	require.Contains(t, body, fmt.Sprintf("Alert %d acknowledged.", a.ID))
	require.Contains(t, body, "acknowledged by olga")
	resp, _ = b.post("/alerts/1/ack", url.Values{"csrf_token": {b.csrf}, "pad": {strings.Repeat("x", 2<<20)}})
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "a form over 1 MiB")
	resp, _ = b.post("/alerts/0/ack", url.Values{"csrf_token": {b.csrf}})
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = b.post("/alerts/999999/ack", url.Values{"csrf_token": {b.csrf}})
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "the API's 404 comes through")

	// A viewer: no alerts entry, the page and the form refused.
	v := st.browser()
	require.Equal(t, http.StatusSeeOther, v.signIn("vic", testPassword).StatusCode)
	_, body = v.get("/")
	require.NotContains(t, body, `href="/alerts"`)
	require.Contains(t, body, "Alerts are shown to operators")
	resp, _ = v.get("/alerts")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = v.post(fmt.Sprintf("/alerts/%d/ack", a.ID), url.Values{"csrf_token": {v.csrf}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	// The live script's request gets a 401, not a redirect, once signed out.
	req, _ := http.NewRequest(http.MethodGet, st.srv.URL+"/overview/live", nil)
	req.Header.Set("X-Weir-Live", "1")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// TestEntitlementNetworksSeeTheBrowserAddress: the in-process API call
// carries the browser's address, so an entitlement limited to a network
// holds for pages as for the API.
func TestEntitlementNetworksSeeTheBrowserAddress(t *testing.T) {
	st := newStack(t)
	for name, cidrs := range map[string][]string{"netview": {"10.0.0.0/8"}, "allview": nil} {
		u := st.user(name, catalog.RoleViewer)
		require.NoError(t, st.store.CreateEntitlement(st.ctx, &catalog.Entitlement{UserID: u.ID, Resource: "*", Action: catalog.ActionRead,
			CIDRs: catalog.NewJSON(cidrs)}))
	}
	b := st.browser()
	require.Equal(t, http.StatusSeeOther, b.signIn("allview", testPassword).StatusCode)
	resp, body := b.get("/alerts")
	require.Equal(t, http.StatusOK, resp.StatusCode, "read on * lets a viewer read alerts: %s", body)

	b = st.browser()
	require.Equal(t, http.StatusSeeOther, b.signIn("netview", testPassword).StatusCode)
	resp, body = b.get("/alerts")
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "the browser at 127.0.0.1 is outside 10.0.0.0/8")
	require.Contains(t, body, "you may not read alerts", "the API's own message")
}

// TestDiagnosticsExplainARedNodeAndItsHeldRuns: a node over its CPU
// threshold, whose host carries a run's source system, shows the metric,
// the threshold and the held run in its diagnostics.
func TestDiagnosticsExplainARedNodeAndItsHeldRuns(t *testing.T) {
	st := newStack(t)
	admin := st.user("ada", catalog.RoleAdmin)
	for _, sys := range []*catalog.System{
		{Name: "src", Kind: catalog.KindFS, Region: "local", Settings: catalog.NewJSON(map[string]string{"root": t.TempDir(), catalog.SystemHostSetting: "w1"})},
		{Name: "dst", Kind: catalog.KindFS, Region: "local", Settings: catalog.NewJSON(map[string]string{"root": t.TempDir()})},
	} {
		require.NoError(t, st.store.CreateSystem(st.ctx, sys))
	}
	require.NoError(t, st.store.PutMapping(st.ctx, &catalog.Mapping{Name: "copy", Enabled: true,
		Source: catalog.NewJSON(catalog.Endpoint{System: "src", Path: "in"}), Target: catalog.NewJSON(catalog.Endpoint{System: "dst", Path: "out"})}))
	token, _, err := st.store.CreateToken(st.ctx, catalog.CreateTokenParams{UserID: admin.ID, Name: "t"})
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodPost, st.srv.URL+"/api/v1/runs", strings.NewReader(`{"mapping":"copy"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var run struct {
		ID string `json:"run_id"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&run))
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.NoError(t, st.store.SetHoldReason(st.ctx, run.ID, "source host w1 is critical: cpu 12% > 10%"))
	require.NoError(t, st.store.SetThreshold(st.ctx, &catalog.HealthThreshold{Scope: "node:w1", Metric: catalog.ThresholdCPU, Warn: 5, Crit: 10}))

	b := st.browser()
	require.Equal(t, http.StatusSeeOther, b.signIn("ada", testPassword).StatusCode)
	_, body := b.get("/overview/live")
	require.Contains(t, body, `data-health="red"`)
	require.Contains(t, body, `href="/diagnostics?node=w1"`, "the red tile leads to its diagnostics")
	require.Contains(t, body, "in the queue: 1 pending (1 held)")

	resp, body = b.get("/diagnostics?node=w1")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, `data-metric="cpu"`)
	require.Regexp(t, `class="threshold">10%`, body)
	require.Regexp(t, `class="value">12%`, body)
	require.Contains(t, body, "Systems on this host: src.")
	require.Contains(t, body, run.ID, "the held run")
	require.Contains(t, body, "source host w1 is critical")

	_, body = b.get("/diagnostics?region=local")
	require.Contains(t, body, run.ID, "the region's held runs")
	require.Contains(t, body, `href="/diagnostics?node=w1"`, "the region's red nodes")
}

// TestRepeatedWrongPasswordsAreSlowed: the API's sign-in slowdown reaches
// the form as a message, not an error page.
func TestRepeatedWrongPasswordsAreSlowed(t *testing.T) {
	st := newStack(t)
	st.user("olga", catalog.RoleOperator)
	b := st.browser()
	var last *http.Response
	var body string
	for i := 0; i < 8; i++ {
		b.get("/signin")
		last, body = b.post("/signin", url.Values{"csrf_token": {b.csrf}, "username": {"olga"}, "password": {"wrong-password-123"}})
		if last.StatusCode == http.StatusTooManyRequests {
			break
		}
		require.Equal(t, http.StatusUnauthorized, last.StatusCode)
	}
	require.Equal(t, http.StatusTooManyRequests, last.StatusCode, "repeated wrong passwords are slowed")
	require.Contains(t, body, `id="username"`, "the form is shown again")
	require.Contains(t, body, `class="error"`)
}
