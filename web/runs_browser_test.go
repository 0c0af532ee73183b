package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromiumPath is where the browser tests look for Chromium first.
const chromiumPath = "/usr/bin/chromium"

// newChrome returns a chromedp context on a fresh headless Chromium, or
// skips t when there is none (fails instead when WEIR_REQUIRE_BROWSER is set).
func newChrome(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath
	if _, err := os.Stat(path); err != nil {
		if p, err := exec.LookPath("chromium"); err == nil {
			path = p
		} else {
			if os.Getenv("WEIR_REQUIRE_BROWSER") != "" {
				t.Fatalf("WEIR_REQUIRE_BROWSER is set but Chromium is not installed at %s", chromiumPath)
			}
			t.Skipf("Chromium not found at %s; set WEIR_REQUIRE_BROWSER=1 to fail instead", chromiumPath)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless,
		chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx), "start Chromium")
	return ctx
}

// screenshot saves the page as NAME.png under $WEIR_ARTIFACTS (or the
// test's temp dir) and logs where.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("WEIR_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	p := filepath.Join(dir, name+".png")
	require.NoError(t, os.WriteFile(p, png, 0o644))
	t.Logf("screenshot: %s", p)
}

// signInChrome signs user in through the sign-in page.
func signInChrome(t *testing.T, ctx context.Context, base, user string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/signin"),
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), user),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), stackPassword),
		chromedp.Submit(chromedp.CSS(`input[name="password"]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="main"]`)),
	))
}

// TestBrowserRunsPageWith10000Runs: with 10,000 runs in the catalog, the
// runs page loads in a real browser quickly, shows one page of 50 runs and
// a link to the next, which shows the next 50.
func TestBrowserRunsPageWith10000Runs(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 10,000 runs")
	}
	st := newRunStack(t)
	ids := st.seedRuns(runsBenchCatalog, mustUser(t, st, "sub"))
	ctx := newChrome(t)
	signInChrome(t, ctx, st.srv.URL, "admin")

	start := time.Now()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(st.srv.URL+"/runs"), chromedp.WaitVisible(chromedp.CSS("#next-page"))))
	took := time.Since(start)
	t.Logf("runs page with %d runs in the catalog: loaded in %s", len(ids), took.Round(time.Millisecond))
	// Loose: the benchmark (BenchmarkRunsPage) measures it; this catches a page that lists everything.
	require.Less(t, took, 2*time.Second, "the runs page took %s to load", took)
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#runs tbody tr").length`))
	require.NoError(t, err)
	require.Equal(t, 50, rows)
	screenshot(t, ctx, "runs-10000")
	first, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#runs tbody tr").dataset.run`))
	require.NoError(t, err)
	require.Equal(t, ids[len(ids)-1], first, "newest first")

	next, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#next-page").href`))
	require.NoError(t, err)
	require.Equal(t, st.srv.URL+"/runs?cursor="+ids[len(ids)-50], next)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(sctx, chromedp.Click(chromedp.CSS("#next-page")), chromedp.WaitVisible(chromedp.CSS(`a[rel="first"]`))))
	first, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#runs tbody tr").dataset.run`))
	require.NoError(t, err)
	require.Equal(t, ids[len(ids)-51], first, "the second page starts after the first")
	screenshot(t, ctx, "runs-10000-page2")
}
