package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
	"github.com/weirdata/weir/web"
)

// devPassword is the admin password the dashboard tests give weir dev.
const devPassword = "dashboard-test-password"

// startDevDashboard starts weir dev with a short sampling period and a
// known admin password, with calm default thresholds, and returns its base
// URL and an admin API caller.
func startDevDashboard(t *testing.T, sampleInterval time.Duration) (*proc, string, api, string) {
	t.Helper()
	dataDir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	dev := startWeir(t, "weir dev", []string{"WEIR_ADMIN_TOKEN=", "WEIR_TOKEN=", "WEIR_SERVER=", "WEIR_ADMIN_PASSWORD=" + devPassword},
		"dev", "--data-dir", dataDir, "--listen", addr, "--sample-interval", sampleInterval.String())
	waitReady(t, dev, base)
	tok, err := os.ReadFile(filepath.Join(dataDir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	a := api{t: t, base: base, token: strings.TrimSpace(string(tok))}
	calmHostsAPI(t, a)
	return dev, base, a, dataDir
}

// TestDashboardOverviewTurnsRedAndExplains signs in to weir dev's dashboard
// in Chromium: every node is green; lowering the worker's memory thresholds
// below its use (through the API) turns its tile red without a reload; the
// red tile leads to the diagnostics, which name the metric and threshold.
func TestDashboardOverviewTurnsRedAndExplains(t *testing.T) {
	dev, base, a, dataDir := startDevDashboard(t, 300*time.Millisecond)

	// weir dev says where the dashboard is and how to sign in, never echoing
	// a password it was given.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(dev.out.String(), "Dashboard: "+base+"/") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	out := dev.out.String()
	if !strings.Contains(out, "Dashboard: "+base+"/") || !strings.Contains(out, "Sign in as admin") {
		t.Errorf("weir dev did not print the dashboard and its sign-in:\n%s", out)
	}
	if strings.Contains(out, devPassword) {
		t.Errorf("weir dev printed the password it was given in WEIR_ADMIN_PASSWORD")
	}
	if _, err := os.Stat(filepath.Join(dataDir, AdminPasswordFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin password file: %v; want none when WEIR_ADMIN_PASSWORD is given", err)
	}

	ctx := newBrowser(t, 2*time.Minute)
	browserSignIn(t, ctx, base, AdminUserName, devPassword)
	pollJS(t, ctx, "a node tile", `document.querySelectorAll('.tile[data-node]').length > 0`, 20*time.Second)
	pollJS(t, ctx, "every node green", `[...document.querySelectorAll('.tile[data-node]')].every(e => e.dataset.health === 'green')`, 20*time.Second)
	node, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('.tile[data-node]').dataset.node`))
	if err != nil {
		t.Fatal(err)
	}
	word, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.tile[data-node] .health`)))
	if err != nil || !strings.Contains(word, "healthy") || !strings.Contains(word, "●") {
		t.Errorf("a green tile says %q (%v); want the icon and the word too", word, err)
	}
	screenshot(t, ctx, "overview-green")

	// Mark the page: a reload would lose the mark.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.weirMark = 42`)); err != nil {
		t.Fatal(err)
	}
	var sample struct {
		Sample struct {
			MemUsedPct float64 `json:"mem_used_pct"`
		} `json:"sample"`
	}
	if code := a.call("GET", "/api/v1/nodes/"+url.PathEscape(node), nil, &sample); code != 200 || sample.Sample.MemUsedPct <= 1 {
		t.Fatalf("node %s: status %d, memory %.1f%%", node, code, sample.Sample.MemUsedPct)
	}
	levels := map[string]client.ThresholdLevels{catalog.ThresholdMemory: {Warn: 0.5, Crit: 1}}
	if code := a.call("PUT", "/api/v1/thresholds/"+url.PathEscape("node:"+node), levels, nil); code != 200 {
		t.Fatalf("lower the memory thresholds of %s: status %d", node, code)
	}
	lowered := time.Now()
	pollJS(t, ctx, "the tile to turn red", fmt.Sprintf(`document.querySelector('.tile[data-node=%q]').dataset.health === 'red'`, node), 15*time.Second)
	took := time.Since(lowered)
	t.Logf("tile red %v after the thresholds were lowered (sampling every 300ms, page refresh every %v)", took.Round(time.Millisecond), web.RefreshIntervalDefault)
	// The health is judged on the latest sample at each refresh: one refresh
	// period and one sampling period, with slack for a busy machine.
	if limit := web.RefreshIntervalDefault + 300*time.Millisecond + 5*time.Second; took > limit {
		t.Errorf("the tile turned red after %v, want within %v", took, limit)
	}
	if mark, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.weirMark || 0`)); err != nil || mark != 42 {
		t.Errorf("the page reloaded (mark %d, %v); want a live update", mark, err)
	}
	word, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(fmt.Sprintf(`.tile[data-node=%q] .health`, node))))
	if !strings.Contains(word, "critical") || !strings.Contains(word, "✖") {
		t.Errorf("the red tile says %q; want ✖ and critical", word)
	}
	screenshot(t, ctx, "overview-red")

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`.tile[data-node=%q]`, node))),
		chromedp.WaitVisible(chromedp.CSS(`.finding[data-metric="memory"]`)),
	)
	if err != nil {
		screenshot(t, ctx, "diagnostics-missing")
		t.Fatalf("open the diagnostics of %s: %v", node, err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.Contains(loc, "/diagnostics?node=") {
		t.Errorf("the red tile led to %s; want its diagnostics", loc)
	}
	metric, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.finding[data-metric="memory"] .metric`)))
	threshold, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.finding[data-metric="memory"] .threshold`)))
	value, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.finding[data-metric="memory"] .value`)))
	advice, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.finding[data-metric="memory"] .advice`)))
	if !strings.Contains(metric, "memory") || !strings.Contains(threshold, "1%") || !strings.Contains(threshold, "critical") ||
		!strings.Contains(value, "%") || advice == "" {
		t.Errorf("diagnostics: metric %q, threshold %q, value %q, advice %q; want memory, 1%% critical, a value and advice", metric, threshold, value, advice)
	}
	screenshot(t, ctx, "diagnostics")

	// The node page draws its charts with the baseline band's legend and the threshold.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/nodes/"+url.PathEscape(node)+"?window=15m"),
		chromedp.WaitVisible(chromedp.CSS(`#chart-memory`)),
	)
	if err != nil {
		t.Fatalf("node page: %v", err)
	}
	for _, id := range []string{"chart-cpu", "chart-memory", "chart-disk", "chart-network"} {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll('#%s polyline').length`, id)))
		if err != nil || n == 0 {
			t.Errorf("chart %s has no line (%v)", id, err)
		}
	}
	thr, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#chart-memory line.thr').length`))
	if thr != 1 {
		t.Errorf("the memory chart shows %d threshold lines, want 1", thr)
	}
	screenshot(t, ctx, "node")

	// On a phone the overview fits the screen: no sideways scrolling.
	err = chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(".tile[data-node]")))
	if err != nil {
		t.Fatalf("overview on a phone: %v", err)
	}
	if wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)); err != nil || wide {
		t.Errorf("the overview is wider than a 390 px phone screen (%v)", err)
	}
	screenshot(t, ctx, "overview-phone")
}

// TestDashboardSecurity checks the security of the dashboard against weir
// dev: security headers on every answer, pages redirect to sign-in without
// a session, forms without their CSRF token are refused, and a viewer sees
// no alerts entry and cannot acknowledge one, even with a forged form.
func TestDashboardSecurity(t *testing.T) {
	_, base, a, _ := startDevDashboard(t, time.Second)
	noRedirect := func(jar http.CookieJar) *http.Client {
		return &http.Client{Jar: jar, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	get := func(c *http.Client, path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	anon := noRedirect(nil)
	for _, p := range []string{"/", "/alerts", "/nodes/x", "/diagnostics?node=x", "/signin", "/static/weir.css", "/no/such/page"} {
		resp, _ := get(anon, p)
		h := resp.Header
		if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("GET %s: security headers missing: %v", p, h)
		}
	}
	resp, _ := get(anon, "/alerts?open=1")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin?next="+url.QueryEscape("/alerts?open=1") {
		t.Errorf("unauthenticated GET /alerts: %d to %q; want 303 to the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The API keeps its own answers: JSON 401, not a redirect.
	resp, _ = get(anon, "/api/v1/health")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/health without credentials: %d, want 401", resp.StatusCode)
	}

	// A viewer with a password.
	var u struct {
		ID int64 `json:"id"`
	}
	if code := a.call("POST", "/api/v1/users", map[string]any{"name": "vera", "role": "viewer"}, &u); code != 201 {
		t.Fatalf("create viewer: %d", code)
	}
	if code := a.call("PUT", fmt.Sprintf("/api/v1/users/%d/password", u.ID), map[string]string{"password": "vera-password-123"}, nil); code != 204 {
		t.Fatalf("set viewer password: %d", code)
	}
	csrfRe := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	post := func(c *http.Client, path string, form url.Values) *http.Response {
		t.Helper()
		resp, err := c.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	signIn := func(user, pw string) (*http.Client, string) {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		c := noRedirect(jar)
		_, body := get(c, "/signin")
		m := csrfRe.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no csrf_token in the sign-in form")
		}
		if resp := post(c, "/signin", url.Values{"username": {user}, "password": {pw}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("sign-in without csrf_token: %d, want 403", resp.StatusCode)
		}
		if resp := post(c, "/signin", url.Values{"csrf_token": {m[1]}, "username": {user}, "password": {pw}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign in as %s: %d", user, resp.StatusCode)
		}
		_, body = get(c, "/")
		m = csrfRe.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no csrf_token on the overview of %s", user)
		}
		return c, m[1]
	}
	admin, adminCSRF := signIn(AdminUserName, devPassword)
	// An alert to acknowledge: a wrong password raises none at once, so make one by a node threshold.
	if code := a.call("PUT", "/api/v1/thresholds/default", map[string]client.ThresholdLevels{catalog.ThresholdMemory: {Warn: 0.5, Crit: 1}}, nil); code != 200 {
		t.Fatalf("lower thresholds: %d", code)
	}
	var page client.AlertPage
	deadline := time.Now().Add(30 * time.Second)
	for len(page.Alerts) == 0 && time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		a.call("GET", "/api/v1/alerts?open=true", nil, &page)
	}
	if len(page.Alerts) == 0 {
		t.Fatal("no alert was raised for the red node")
	}
	id := page.Alerts[0].ID
	ack := fmt.Sprintf("/alerts/%d/ack", id)

	if resp := post(admin, ack, url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("ack without csrf_token: %d, want 403", resp.StatusCode)
	}
	if resp := post(admin, ack, url.Values{"csrf_token": {"forged"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("ack with a wrong csrf_token: %d, want 403", resp.StatusCode)
	}

	viewer, viewerCSRF := signIn("vera", "vera-password-123")
	_, body := get(viewer, "/")
	if strings.Contains(body, `href="/alerts"`) {
		t.Errorf("the viewer's nav offers the alerts page")
	}
	if resp := post(viewer, ack, url.Values{"csrf_token": {viewerCSRF}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer's ack with its own valid token: %d, want 403", resp.StatusCode)
	}
	if resp := post(viewer, ack, url.Values{"csrf_token": {adminCSRF}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer's ack with the admin's token: %d, want 403", resp.StatusCode)
	}
	a.call("GET", "/api/v1/alerts?open=true", nil, &page)
	for _, al := range page.Alerts {
		if al.ID == id && al.AckedBy != "" {
			t.Fatalf("alert %d was acknowledged by %s before the admin did", id, al.AckedBy)
		}
	}
	if resp := post(admin, ack, url.Values{"csrf_token": {adminCSRF}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the admin's ack: %d, want 303", resp.StatusCode)
	}
	a.call("GET", "/api/v1/alerts?open=true", nil, &page)
	for _, al := range page.Alerts {
		if al.ID == id && al.AckedBy != AdminUserName {
			t.Errorf("alert %d acknowledged by %q, want %s", id, al.AckedBy, AdminUserName)
		}
	}

	// In the browser: the redirect to sign-in, then the alerts page of the admin.
	ctx := newBrowser(t, time.Minute)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/alerts"), chromedp.WaitVisible(chromedp.CSS("#username"))); err != nil {
		t.Fatal(err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.HasSuffix(loc, "/signin?next=%2Falerts") {
		t.Errorf("unauthenticated browser at %s, want the sign-in page", loc)
	}
	screenshot(t, ctx, "signin")
	err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#username"), AdminUserName),
		chromedp.SendKeys(chromedp.CSS("#password"), devPassword),
		chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`table#alerts`)),
	)
	if err != nil {
		screenshot(t, ctx, "alerts-missing")
		t.Fatalf("sign in to the alerts page: %v", err)
	}
	txt, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(fmt.Sprintf(`tr[data-alert="%d"]`, id))))
	if !strings.Contains(txt, "acknowledged by admin") {
		t.Errorf("alert row says %q, want acknowledged by admin", txt)
	}
	screenshot(t, ctx, "alerts")
}
