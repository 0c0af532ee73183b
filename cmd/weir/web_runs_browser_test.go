package main

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// runsBrowser starts a headless Chromium for t, or skips t when there is
// none (fails instead when WEIR_REQUIRE_BROWSER is set).
func runsBrowser(t *testing.T) context.Context {
	t.Helper()
	path := "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		p, lerr := exec.LookPath("chromium")
		if lerr != nil {
			if os.Getenv("WEIR_REQUIRE_BROWSER") != "" {
				t.Fatalf("WEIR_REQUIRE_BROWSER is set but Chromium is not installed at %s", path)
			}
			t.Skipf("Chromium not found at %s; set WEIR_REQUIRE_BROWSER=1 to fail instead", path)
		}
		path = p
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless,
		chromedp.WindowSize(1280, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// runsScreenshot saves the page as NAME.png under $WEIR_ARTIFACTS (or the
// test's temp dir) and logs where.
func runsScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("WEIR_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// TestBrowserSubmitRunWatchProgress: in weir dev, an operator entitled to
// submit demo-trades signs in, submits a run from the mapping's page with
// its business date, and watches the run's page, without reloading it,
// until the worker has moved the demo data: the progress bar at 100%, the
// state succeeded and the delivery manifest listing the files. So that the
// page surely opens before the run ends, the worker is made red (memory
// thresholds below its use) before the submit, which holds the run, and
// calm again once the page is open.
func TestBrowserSubmitRunWatchProgress(t *testing.T) {
	t.Parallel()
	ctx := runsBrowser(t)
	dataDir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	dev := startWeir(t, "weir dev", []string{"WEIR_ADMIN_TOKEN=", "WEIR_TOKEN=", "WEIR_SERVER="},
		"dev", "--data-dir", dataDir, "--listen", addr, "--sample-interval", "300ms")
	waitReady(t, dev, base)
	tok, err := os.ReadFile(filepath.Join(dataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := api{t: t, base: base, token: strings.TrimSpace(string(tok))}
	calmHostsAPI(t, admin)

	const password = "watch the bar fill up"
	var user struct {
		ID int64 `json:"id"`
	}
	if code := admin.call("POST", "/api/v1/users", map[string]any{"name": "olga", "role": "operator", "password": password}, &user); code != 201 {
		t.Fatalf("create user: status %d", code)
	}
	for _, g := range [][2]string{{"mapping:demo-trades", "read"}, {"mapping:demo-trades", "submit"}, {"mapping:demo-trades", "cancel"}} {
		if code := admin.call("POST", "/api/v1/entitlements", map[string]any{"user_id": user.ID, "resource": g[0], "action": g[1]}, nil); code != 201 {
			t.Fatalf("grant %s on %s: status %d", g[1], g[0], code)
		}
	}

	// Hold runs: the worker red on memory.
	var nodes struct {
		Nodes []struct {
			ID     string   `json:"id"`
			Roles  []string `json:"roles"`
			Health struct {
				Color string `json:"color"`
			} `json:"health"`
		} `json:"nodes"`
	}
	worker := ""
	for deadline := time.Now().Add(20 * time.Second); worker == "" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if code := admin.call("GET", "/api/v1/nodes", nil, &nodes); code != 200 {
			t.Fatalf("list nodes: status %d", code)
		}
		for _, n := range nodes.Nodes {
			if slices.Contains(n.Roles, "worker") {
				worker = n.ID
			}
		}
	}
	if worker == "" {
		t.Fatal("no worker node within 20s")
	}
	scope := "/api/v1/thresholds/" + url.PathEscape("node:"+worker)
	if code := admin.call("PUT", scope, map[string]any{"memory": map[string]float64{"warn": 0.5, "crit": 1}}, nil); code != 200 {
		t.Fatalf("lower the worker's memory thresholds: status %d", code)
	}
	waitNodeColor := func(want string) {
		t.Helper()
		var n struct {
			Health struct {
				Color string `json:"color"`
			} `json:"health"`
		}
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if code := admin.call("GET", "/api/v1/nodes/"+url.PathEscape(worker), nil, &n); code == 200 && n.Health.Color == want {
				return
			}
		}
		t.Fatalf("worker %s not %s within 20s (last %q)", worker, want, n.Health.Color)
	}
	waitNodeColor("red")

	step, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	err = chromedp.Do(step,
		chromedp.Navigate(base+"/signin"),
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), "olga"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password),
		chromedp.Submit(chromedp.CSS(`input[name="password"]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="main"]`)),
		chromedp.Navigate(base+"/mappings/demo-trades"),
		chromedp.WaitVisible(chromedp.CSS(`#submit-run`)),
		chromedp.SetValue(chromedp.CSS(`#submit-business_date`), "2026-11-20"),
	)
	if err != nil {
		t.Fatalf("sign in and open the mapping: %v", err)
	}
	runsScreenshot(t, ctx, "mapping-demo-trades")
	if err := chromedp.Do(step, chromedp.Click(chromedp.CSS(`#submit-run-button`)), chromedp.WaitVisible(chromedp.CSS(`#run-progress`))); err != nil {
		t.Fatalf("submit the run: %v", err)
	}
	loc, err := chromedp.Run(step, chromedp.Location())
	if err != nil || !strings.Contains(loc, "/runs/") {
		t.Fatalf("after submit the browser is at %q (%v), want a run's page", loc, err)
	}
	// Mark this page: a reload would lose the mark.
	first, err := chromedp.Run(step, chromedp.Evaluate[string](
		`window.weirNoReload = true; document.querySelector("#run-progress").dataset.state`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run page %s opened with the run %s", loc, first)
	if first != "pending" {
		t.Fatalf("the run is %s when its page opens; want pending, held while the worker is red", first)
	}
	// Release: the worker calm again.
	if code := admin.call("DELETE", scope, nil, nil); code != 200 && code != 204 {
		t.Fatalf("restore the worker's thresholds: status %d", code)
	}

	// Watch: the live part refreshes every 2 s until the manifest shows.
	start := time.Now()
	seen := map[string]bool{}
	for {
		st, err := chromedp.Run(step, chromedp.Evaluate[map[string]any](`({
			noReload: window.weirNoReload === true,
			state: document.querySelector("#run-progress").dataset.state,
			pct: document.querySelector("#run-progress .pct").textContent,
			value: document.querySelector("#run-progress progress").value,
			manifest: !!document.querySelector("#manifest"),
			files: document.querySelectorAll("#manifest-files tbody tr").length
		})`))
		if err != nil {
			t.Fatalf("read the run page: %v", err)
		}
		if st["noReload"] != true {
			t.Fatalf("the page reloaded")
		}
		key := st["state"].(string) + " " + st["pct"].(string)
		if !seen[key] {
			seen[key] = true
			t.Logf("after %s: %s", time.Since(start).Round(100*time.Millisecond), key)
		}
		if st["manifest"] == true && st["state"] == "succeeded" {
			if st["pct"] != "100%" || st["value"] != float64(100) {
				t.Fatalf("manifest shown but the bar says %v (value %v)", st["pct"], st["value"])
			}
			if n, _ := st["files"].(float64); n < 20 {
				t.Fatalf("manifest lists %v files, want the demo day's 20 or more", st["files"])
			}
			break
		}
		if time.Since(start) > 60*time.Second {
			runsScreenshot(t, ctx, "run-timeout")
			t.Fatalf("the run page did not show the run succeeded with its manifest within 60s; last %v", st)
		}
		time.Sleep(250 * time.Millisecond)
	}
	runsScreenshot(t, ctx, "run-succeeded")
}
