package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/weirdata/weir/catalog"
)

// submitJS submits a run of mapping from the page, as the signed-in
// browser: the session cookie goes by itself, the CSRF token is read from
// GET /api/v1/session. It gives the answer's status.
func submitJS(mapping string) string {
	return fmt.Sprintf(`(async () => {
  const s = await (await fetch('/api/v1/session')).json();
  const r = await fetch('/api/v1/runs', {method: 'POST',
    headers: {'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf_token},
    body: JSON.stringify({mapping: %q, params: {business_date: %q}})});
  return r.status;
})()`, mapping, DemoDates[len(DemoDates)-1])
}

// submitFromBrowser runs submitJS in ctx and returns the status.
func submitFromBrowser(t *testing.T, ctx context.Context, mapping string) int {
	t.Helper()
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](submitJS(mapping), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("submit %s from the browser: %v", mapping, err)
	}
	return status
}

// TestAdminPagesGrantAndRevoke drives the admin pages of weir dev in
// Chromium: the admin creates a user with a password and grants it submit
// on one mapping; the user signs in and may submit on that mapping only;
// revoking the grant takes effect on the user's next request. A token is
// shown once. Then, over HTTP, a viewer cannot reach the admin pages nor
// post their forms (with its own CSRF token, the admin's, or none), and
// the audit page lists the changes and the refusals.
func TestAdminPagesGrantAndRevoke(t *testing.T) {
	_, base, a, _ := startDevDashboard(t, time.Second)
	other := map[string]any{"name": "other-trades", "source": map[string]string{"system": DemoSourceName, "path": "trades/{business_date}"},
		"target": map[string]string{"system": DemoTargetName, "path": "other/{business_date}"}, "enabled": true,
		"params": []map[string]any{{"name": "business_date", "type": "date", "required": true}}}
	if code := a.call("POST", "/api/v1/mappings", other, nil); code != 201 {
		t.Fatalf("create mapping other-trades: %d", code)
	}

	ctx := newBrowser(t, 3*time.Minute)
	browserSignIn(t, ctx, base, AdminUserName, devPassword)
	const carolPassword = "carol-has-a-long-password"
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/admin"),
		chromedp.WaitVisible(chromedp.CSS(`form#new-user`)),
		chromedp.SendKeys(chromedp.CSS(`#new-user #name`), "carol"),
		chromedp.SetValue(chromedp.CSS(`#new-user #role`), catalog.RoleSubmitter),
		chromedp.SendKeys(chromedp.CSS(`#new-user #password`), "short"),
		chromedp.Click(chromedp.CSS(`#new-user button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#new-user .field-error`)),
	)
	if err != nil {
		screenshot(t, ctx, "new-user-failed")
		t.Fatalf("create user with a short password: %v", err)
	}
	msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#new-user .field-error`)))
	if !strings.Contains(msg, "at least 12 characters") {
		t.Errorf("short password error: %q", msg)
	}
	screenshot(t, ctx, "users-password-refused")
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#new-user #role`), catalog.RoleSubmitter),
		chromedp.SendKeys(chromedp.CSS(`#new-user #password`), carolPassword),
		chromedp.Click(chromedp.CSS(`#new-user button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-user="carol"]`)),
	)
	if err != nil {
		screenshot(t, ctx, "new-user-failed")
		t.Fatalf("create user carol: %v", err)
	}
	row, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr[data-user="carol"]`)))
	if !strings.Contains(row, "submitter") || !strings.Contains(row, "enabled") {
		t.Errorf("carol's row: %q", row)
	}
	screenshot(t, ctx, "users")

	var carol catalog.User
	var users struct{ Users []catalog.User }
	a.call("GET", "/api/v1/users", nil, &users)
	for _, u := range users.Users {
		if u.Name == "carol" {
			carol = u
		}
	}
	if carol.ID == 0 {
		t.Fatal("carol is not in the API's users")
	}

	// Grant submit on demo-trades through the form.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/admin/entitlements"),
		chromedp.WaitVisible(chromedp.CSS(`form#grant`)),
		chromedp.SetValue(chromedp.CSS(`#grant #subject`), fmt.Sprintf("user:%d", carol.ID)),
		chromedp.SetValue(chromedp.CSS(`#grant #action`), catalog.ActionSubmit),
		chromedp.SetValue(chromedp.CSS(`#grant #resource_kind`), "mapping"),
		chromedp.SendKeys(chromedp.CSS(`#grant #resource_name`), DemoMappingName),
		chromedp.SendKeys(chromedp.CSS(`#grant #cidrs`), "not-a-network"),
		chromedp.Click(chromedp.CSS(`#grant button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#grant .field-error`)),
	)
	if err != nil {
		screenshot(t, ctx, "grant-failed")
		t.Fatalf("grant with a bad CIDR: %v", err)
	}
	msg, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#grant .field-error`)))
	if !strings.Contains(msg, "not-a-network") {
		t.Errorf("bad CIDR error: %q", msg)
	}
	err = chromedp.Do(ctx,
		chromedp.Clear(chromedp.CSS(`#grant #cidrs`)),
		chromedp.Click(chromedp.CSS(`#grant button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.flash`)),
	)
	if err != nil {
		screenshot(t, ctx, "grant-failed")
		t.Fatalf("grant submit on %s: %v", DemoMappingName, err)
	}
	flash, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`p.flash`)))
	m := regexp.MustCompile(`entitlement (\d+)`).FindStringSubmatch(flash)
	if m == nil || !strings.Contains(flash, "submit on mapping:"+DemoMappingName) {
		t.Fatalf("grant notice: %q", flash)
	}
	entID := m[1]
	screenshot(t, ctx, "entitlements")

	// A token for carol: its secret shows once.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/admin/tokens"),
		chromedp.WaitVisible(chromedp.CSS(`#new-token-form`)),
		chromedp.SetValue(chromedp.CSS(`#new-token-form #user_id`), fmt.Sprint(carol.ID)),
		chromedp.SendKeys(chromedp.CSS(`#new-token-form #token-name`), "carol-ci"),
		chromedp.Click(chromedp.CSS(`#new-token-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#token-secret`)),
	)
	if err != nil {
		screenshot(t, ctx, "token-failed")
		t.Fatalf("create a token: %v", err)
	}
	secret, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#token-secret`)))
	if !strings.HasPrefix(secret, catalog.TokenPrefix) {
		t.Errorf("token secret shown: %q", secret)
	}
	screenshot(t, ctx, "token-created")
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/admin/tokens"), chromedp.WaitVisible(chromedp.CSS(`#new-token-form`))); err != nil {
		t.Fatal(err)
	}
	html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if strings.Contains(html, secret) || !strings.Contains(html, `data-token="carol-ci"`) {
		t.Errorf("the tokens page shows the secret again, or lacks the token")
	}
	var who struct{ Name string }
	if code := (api{t: t, base: base, token: secret}).call("GET", "/api/v1/whoami", nil, &who); code != 200 || who.Name != "carol" {
		t.Errorf("carol's new token: %d %q", code, who.Name)
	}

	// Carol signs in in a browser context of her own.
	cctx, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancel()
	browserSignIn(t, cctx, base, "carol", carolPassword)
	nav, _ := chromedp.Run(cctx, chromedp.Text(chromedp.CSS(`nav[aria-label="main"]`)))
	if strings.Contains(nav, "Admin") {
		t.Errorf("a submitter's nav offers Admin: %q", nav)
	}
	if st := submitFromBrowser(t, cctx, DemoMappingName); st != http.StatusCreated {
		t.Errorf("carol submits %s: %d, want 201", DemoMappingName, st)
	}
	if st := submitFromBrowser(t, cctx, "other-trades"); st != http.StatusForbidden {
		t.Errorf("carol submits other-trades: %d, want 403", st)
	}
	if err := chromedp.Do(cctx, chromedp.Navigate(base+"/admin/users"), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
		t.Fatal(err)
	}
	body, _ := chromedp.Run(cctx, chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(body, "admin role") || strings.Contains(body, "New user") {
		t.Errorf("carol at /admin/users sees %q; want a refusal", body)
	}
	screenshot(t, cctx, "carol-refused-admin")

	// The admin revokes the grant: carol's next request is refused.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/admin/entitlements"),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-entitlement="%s"]`, entID))),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-entitlement="%s"] button[type="submit"]`, entID))),
		chromedp.WaitVisible(chromedp.CSS(`p.flash`)),
	)
	if err != nil {
		screenshot(t, ctx, "revoke-failed")
		t.Fatalf("revoke: %v", err)
	}
	screenshot(t, ctx, "revoked")
	if st := submitFromBrowser(t, cctx, DemoMappingName); st != http.StatusForbidden {
		t.Errorf("carol submits %s after the revocation: %d, want 403", DemoMappingName, st)
	}

	// The audit page lists the changes, and carol's refusals.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/admin/audit?actor=carol&outcome=forbidden"),
		chromedp.WaitVisible(chromedp.CSS(`table#audit`)),
	)
	if err != nil {
		screenshot(t, ctx, "audit-failed")
		t.Fatalf("audit page: %v", err)
	}
	rows, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#audit tbody tr[data-outcome="forbidden"]').length`))
	if rows < 2 {
		t.Errorf("the audit page lists %d forbidden requests of carol, want at least 2 (other-trades, the revoked mapping)", rows)
	}
	screenshot(t, ctx, "audit")
	err = chromedp.Do(ctx, chromedp.Navigate(base+"/admin/audit?action=entitlement.*"), chromedp.WaitVisible(chromedp.CSS(`table#audit`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, act := range []string{"entitlement.grant", "entitlement.revoke"} {
		if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll('#audit tr[data-action=%q]').length`, act))); n == 0 {
			t.Errorf("the audit page lacks %s", act)
		}
	}
	html, _ = chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if strings.Contains(html, carolPassword) || strings.Contains(html, secret) {
		t.Errorf("the audit page shows a password or a token")
	}

	// Over HTTP: a viewer cannot reach the admin pages nor post their forms.
	if code := a.call("POST", "/api/v1/users", map[string]any{"name": "vic", "role": "viewer", "password": "vic-password-12345"}, nil); code != 201 {
		t.Fatalf("create viewer vic: %d", code)
	}
	viewer, viewerCSRF := httpSignIn(t, base, "vic", "vic-password-12345")
	_, adminCSRF := httpSignIn(t, base, AdminUserName, devPassword)
	resp, _ := httpGet(t, viewer, base+"/admin/users")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer's GET /admin/users: %d, want 403", resp.StatusCode)
	}
	_, home := httpGet(t, viewer, base+"/")
	if strings.Contains(home, `href="/admin"`) {
		t.Errorf("a viewer's nav offers the admin pages")
	}
	forms := []struct {
		path string
		form url.Values
	}{
		{"/admin/users", url.Values{"name": {"mallory"}, "role": {"admin"}, "password": {"mallory-password-1"}}},
		{"/admin/entitlements", url.Values{"subject": {fmt.Sprintf("user:%d", carol.ID)}, "action": {"admin"}, "resource_kind": {"*"}}},
		{fmt.Sprintf("/admin/users/%d/role", carol.ID), url.Values{"role": {"admin"}}},
		{fmt.Sprintf("/admin/users/%d/password", carol.ID), url.Values{"password": {"taken-over-password"}}},
		{"/admin/tokens", url.Values{"user_id": {fmt.Sprint(carol.ID)}, "name": {"stolen"}}},
	}
	for _, f := range forms {
		for _, tok := range []string{viewerCSRF, adminCSRF, ""} {
			form := url.Values{}
			for k, v := range f.form {
				form[k] = v
			}
			if tok != "" {
				form.Set("csrf_token", tok)
			}
			if resp := httpPost(t, viewer, base+f.path, form); resp.StatusCode != http.StatusForbidden {
				t.Errorf("a viewer's POST %s (token %q...): %d, want 403", f.path, tok[:min(4, len(tok))], resp.StatusCode)
			}
		}
	}
	// Forged straight at the API with the viewer's cookie and CSRF token.
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/users", strings.NewReader(`{"name":"mallory","role":"admin"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(catalog.SessionCSRFHeader, viewerCSRFAPI(t, viewer, base))
	if resp, err := viewer.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer's API POST /users: %v %v, want 403", resp, err)
	}
	a.call("GET", "/api/v1/users", nil, &users)
	for _, u := range users.Users {
		if u.Name == "mallory" || (u.Name == "carol" && u.Role != catalog.RoleSubmitter) {
			t.Errorf("a forged request changed the users: %+v", u)
		}
	}
	var toks struct{ Tokens []catalog.Token }
	a.call("GET", fmt.Sprintf("/api/v1/tokens?user_id=%d", carol.ID), nil, &toks)
	if len(toks.Tokens) != 1 {
		t.Errorf("carol has %d tokens, want only the admin's one", len(toks.Tokens))
	}
	httpSignIn(t, base, "carol", carolPassword) // her password is unchanged
}

// httpSignIn signs in through the sign-in form with a cookie jar and
// returns the client (not following redirects) and the session's CSRF token.
func httpSignIn(t *testing.T, base, user, pw string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrfRe := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	_, body := httpGet(t, c, base+"/signin")
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no csrf_token in the sign-in form")
	}
	if resp := httpPost(t, c, base+"/signin", url.Values{"csrf_token": {m[1]}, "username": {user}, "password": {pw}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in as %s: %d", user, resp.StatusCode)
	}
	_, body = httpGet(t, c, base+"/")
	if m = csrfRe.FindStringSubmatch(body); m == nil {
		t.Fatalf("no csrf_token on the overview of %s", user)
	}
	return c, m[1]
}

// viewerCSRFAPI reads the CSRF token of c's session from the API.
func viewerCSRFAPI(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	_, body := httpGet(t, c, base+"/api/v1/session")
	m := regexp.MustCompile(`"csrf_token":"([0-9a-f]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("GET /api/v1/session: %s", body)
	}
	return m[1]
}

func httpGet(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func httpPost(t *testing.T, c *http.Client, u string, form url.Values) *http.Response {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}
