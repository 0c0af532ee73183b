package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser tests drive the dashboard in real headless Chromium. They skip
// when no Chromium is found, unless WEIR_REQUIRE_BROWSER is set (as CI
// does), in which case they fail. Screenshots go to WEIR_ARTIFACTS (default
// a temporary directory of the test), and their paths are logged.

// chromiumPath finds the browser: WEIR_CHROMIUM, /usr/bin/chromium, or
// chromium, chromium-browser or google-chrome on the PATH.
func chromiumPath() string {
	if p := os.Getenv("WEIR_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// newBrowser starts a headless Chromium with a 1280x900 window for t and
// returns its tab's context, bounded by timeout. It is closed at cleanup.
func newBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("WEIR_REQUIRE_BROWSER") != "" {
			t.Fatal("no Chromium found (WEIR_REQUIRE_BROWSER is set): install chromium or set WEIR_CHROMIUM")
		}
		t.Skip("no Chromium found: install chromium or set WEIR_CHROMIUM to run the browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(ctx); err != nil { // start the browser now, outside the timeout
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancel)
	return ctx
}

// screenshot saves a full-page PNG of the tab as a test artifact (quality
// 100 is what makes chromedp write PNG rather than JPEG).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	dir := os.Getenv("WEIR_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("screenshot dir: %v", err)
		return
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("write screenshot: %v", err)
		return
	}
	t.Logf("screenshot %s: %s", name, path)
}

// browserSignIn signs in through the sign-in form and waits for the nav.
func browserSignIn(t *testing.T, ctx context.Context, base, user, password string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/signin"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="main"]`)),
	)
	if err != nil {
		screenshot(t, ctx, "signin-failed")
		t.Fatalf("sign in as %s: %v", user, err)
	}
}

// pollJS waits until the JavaScript expression is truthy, or fails t.
func pollJS(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout))); err != nil {
		screenshot(t, ctx, "timeout")
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
