package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/weirdata/weir/catalog"
)

// scrape GETs url with token ("" sends none) and returns the status and body.
func scrape(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// families parses a scrape in the text format.
func families(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse the scrape: %v\n%s", err, body)
	}
	return mfs
}

// value is the value of the series of name whose labels include want; ok
// false when there is none.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// runIDInLabelRE matches a run_id (24 digits) anywhere in a label value.
var runIDInLabelRE = regexp.MustCompile(`\d{24}`)

// checkScrapeHygiene fails t when a metric of the scrape has a run_id label
// or fails Prometheus' lint.
func checkScrapeHygiene(t *testing.T, body []byte, mfs map[string]*dto.MetricFamily) {
	t.Helper()
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "run_id" || runIDInLabelRE.MatchString(l.GetValue()) {
					t.Errorf("%s has a per-run label %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "weir_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

// TestMetricsAfterARun scrapes `weir dev`'s /metrics before and after a
// run of the demo mapping: it refuses callers without a valid token, and the
// figures move as the run did.
func TestMetricsAfterARun(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	token := catalog.NewTokenSecret()
	dev := startWeir(t, "weir dev", []string{"WEIR_ADMIN_TOKEN=" + token, "WEIR_TOKEN=", "WEIR_SERVER="},
		"dev", "--data-dir", dataDir, "--listen", addr, "--sample-interval", "200ms")
	waitReady(t, dev, base)
	a := api{t: t, base: base, token: token}
	calmHostsAPI(t, a)

	for _, tok := range []string{"", "not-a-token"} {
		code, body := scrape(t, base+MetricsPath, tok)
		if code != http.StatusUnauthorized || !strings.Contains(string(body), `"unauthenticated"`) {
			t.Errorf("/metrics with token %q: %d %s, want 401 unauthenticated", tok, code, body)
		}
		if strings.Contains(string(body), "weir_") {
			t.Errorf("/metrics leaked metrics to a caller without a token")
		}
	}

	runsOf := func(mfs map[string]*dto.MetricFamily, state string) float64 {
		v, _ := value(mfs, "weir_runs", map[string]string{"mapping": DemoMappingName, "state": state})
		return v
	}
	code, body := scrape(t, base+MetricsPath, token)
	if code != http.StatusOK {
		t.Fatalf("/metrics with the admin token: %d %s", code, body)
	}
	before := families(t, body)
	succeededBefore := runsOf(before, "succeeded")

	var sub struct {
		RunID string `json:"run_id"`
	}
	if code := a.call("POST", "/api/v1/runs", map[string]any{"mapping": DemoMappingName, "params": map[string]string{"business_date": "2026-11-20"}}, &sub); code != http.StatusCreated {
		t.Fatalf("submit: %d", code)
	}
	r := a.waitRun(sub.RunID, 60*time.Second, func(r runView) bool { return terminal(r.State) })
	if r.State != "succeeded" {
		t.Fatalf("run %s ended %s", r.ID, r.State)
	}
	a.call("GET", "/api/v1/runs/"+sub.RunID, nil, nil)

	var after map[string]*dto.MetricFamily
	waitFor(t, 30*time.Second, "the leader's run count catches up", func() bool {
		code, body = scrape(t, base+MetricsPath, token)
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d %s", code, body)
		}
		after = families(t, body)
		return runsOf(after, "succeeded") == succeededBefore+1
	})
	checkScrapeHygiene(t, body, after)

	var srcBytes int64
	_ = filepath.WalkDir(filepath.Join(dataDir, "demo-src", "trades", "2026-11-20"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				srcBytes += fi.Size()
			}
		}
		return nil
	})
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   func(float64) bool
		says   string
	}{
		{"weir_bytes_moved_total", map[string]string{"connector": "fs", "direction": "written"}, func(v float64) bool { return v == float64(srcBytes) }, "the demo's bytes"},
		{"weir_bytes_moved_total", map[string]string{"connector": "fs", "direction": "read"}, func(v float64) bool { return v == float64(srcBytes) }, "the demo's bytes"},
		{"weir_worker_attempts_finished_total", map[string]string{"state": "succeeded"}, func(v float64) bool { return v == 1 }, "1"},
		{"weir_run_duration_seconds", map[string]string{"state": "succeeded"}, func(v float64) bool { return v == 1 }, "1 observation"},
		{"weir_run_dispatch_latency_seconds", nil, func(v float64) bool { return v >= 1 }, "at least 1 observation"},
		{"weir_http_requests_total", map[string]string{"method": "POST", "route": "/api/v1/runs", "code": "201"}, func(v float64) bool { return v == 1 }, "1"},
		{"weir_http_requests_total", map[string]string{"method": "GET", "route": "/api/v1/runs/:run_id", "code": "200"}, func(v float64) bool { return v >= 1 }, ">= 1"},
		{"weir_workload_leader", nil, func(v float64) bool { return v == 1 }, "1 (dev is its region's leader)"},
		{"weir_queue_depth", map[string]string{"state": "pending"}, func(v float64) bool { return v == 0 }, "0"},
		{"weir_runs_held", map[string]string{"reason": "host_critical"}, func(v float64) bool { return v == 0 }, "0"},
		{"weir_catalog_query_duration_seconds", map[string]string{"operation": "query"}, func(v float64) bool { return v > 0 }, "> 0 queries"},
		{"weir_host_disk_free_bytes", map[string]string{"path": dataDir}, func(v float64) bool { return v > 0 }, "> 0 (the data dir is a disk path)"},
		{"weir_host_memory_used_bytes", nil, func(v float64) bool { return v > 0 }, "> 0"},
		{"go_goroutines", nil, func(v float64) bool { return v > 0 }, "> 0"},
		{"process_resident_memory_bytes", nil, func(v float64) bool { return v > 0 }, "> 0"},
	} {
		v, ok := value(after, tc.name, tc.labels)
		if !ok || !tc.want(v) {
			t.Errorf("%s%v = %v (present %v), want %s", tc.name, tc.labels, v, ok, tc.says)
		}
	}
	// The README lists every metric.
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range after {
		if strings.HasPrefix(name, "weir_") && !strings.Contains(string(readme), name) {
			t.Errorf("README's Metrics section does not list %s", name)
		}
	}
	if v, ok := value(before, "weir_bytes_moved_total", map[string]string{"direction": "written"}); ok && v != 0 {
		t.Errorf("bytes written before the run: %v", v)
	}
}

// TestWorkerServesMetricsOnItsAgentListener: a worker's /metrics is on its
// dispatcher agent's address, next to its commands, behind a token.
func TestWorkerServesMetricsOnItsAgentListener(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	c := newCluster(t)
	if _, err := ensureAdmin(context.Background(), c.store, c.token); err != nil {
		t.Fatal(err)
	}
	c.startWorker("w1", "--sample-interval", "200ms")
	var n *catalog.Node
	waitFor(t, 30*time.Second, "w1 alive with an address", func() bool {
		n = c.nodeRow("w1")
		return n != nil && n.State == catalog.NodeAlive && n.Address != ""
	})
	if code, body := scrape(t, n.Address+MetricsPath, ""); code != http.StatusUnauthorized {
		t.Errorf("worker /metrics without a token: %d %s", code, body)
	}
	var mfs map[string]*dto.MetricFamily
	var body []byte
	waitFor(t, 10*time.Second, "the profiler's first sample", func() bool {
		var code int
		code, body = scrape(t, n.Address+MetricsPath, c.token)
		if code != http.StatusOK {
			t.Fatalf("worker /metrics: %d %s", code, body)
		}
		mfs = families(t, body)
		_, ok := value(mfs, "weir_host_cpu_usage_ratio", nil)
		return ok
	})
	checkScrapeHygiene(t, body, mfs)
	for _, name := range []string{"weir_worker_lease_losses_total", "weir_catalog_query_duration_seconds", "go_goroutines"} {
		if _, ok := value(mfs, name, nil); !ok {
			t.Errorf("worker /metrics has no %s", name)
		}
	}
	if _, ok := mfs["weir_http_requests_total"]; ok {
		t.Errorf("a worker serves no REST API, yet reports its requests")
	}
	// The agent's commands still answer on the same listener.
	if code, out := agentCall(t, n.Address, c.token, "no-such-command", map[string]any{}); code != http.StatusNotFound {
		t.Errorf("agent command on the metrics listener: %d %v", code, out)
	}
}

// authFunc is an authenticator made of a function.
type authFunc func(ctx context.Context, raw string) (*catalog.Principal, error)

func (f authFunc) Authenticate(ctx context.Context, raw string) (*catalog.Principal, error) {
	return f(ctx, raw)
}

func TestMetricsHandlerRefusals(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_test_total", Help: "A test counter."}))
	catalogDown := errors.New("connection refused")
	auth := authFunc(func(_ context.Context, raw string) (*catalog.Principal, error) {
		switch raw {
		case "good":
			return &catalog.Principal{User: catalog.User{Name: "monitoring", Role: catalog.RoleViewer},
				Entitlements: []catalog.Entitlement{{Action: catalog.ActionRead, Resource: "*"}}}, nil
		case "admin":
			return &catalog.Principal{User: catalog.User{Name: "ada", Role: catalog.RoleAdmin}}, nil
		case "narrow":
			// A viewer who may read one mapping only: the metrics name them all.
			return &catalog.Principal{User: catalog.User{Name: "vic", Role: catalog.RoleViewer},
				Entitlements: []catalog.Entitlement{{Action: catalog.ActionRead, Resource: "mapping:demo-trades"}}}, nil
		case "elsewhere":
			// Read on everything, but only from another network.
			return &catalog.Principal{User: catalog.User{Name: "eve", Role: catalog.RoleViewer},
				Entitlements: []catalog.Entitlement{{Action: catalog.ActionRead, Resource: "*", CIDRs: catalog.NewJSON([]string{"10.9.0.0/16"})}}}, nil
		case "down":
			return nil, catalogDown
		}
		return nil, &catalog.AuthError{Reason: "unknown token"}
	})
	h := metricsHandler(reg, auth, slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		method, header string
		status         int
		code           string
	}{
		{"GET", "Bearer good", 200, ""},
		{"HEAD", "Bearer good", 200, ""},
		{"GET", "Bearer admin", 200, ""},
		{"GET", "Bearer narrow", 403, "forbidden"},
		{"GET", "Bearer elsewhere", 403, "forbidden"},
		{"GET", "", 401, "unauthenticated"},
		{"GET", "Basic Z29vZA==", 401, "unauthenticated"},
		{"GET", "Bearer ", 401, "unauthenticated"},
		{"GET", "Bearer wrong", 401, "unauthenticated"},
		{"GET", "Bearer down", 503, "unavailable"},
		{"POST", "Bearer good", 405, "method_not_allowed"},
	} {
		req := httptest.NewRequest(tc.method, MetricsPath, nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s with %q: %d, want %d", tc.method, tc.header, rec.Code, tc.status)
			continue
		}
		body := rec.Body.String()
		if tc.code != "" {
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Errorf("%s with %q: body %s, want error code %s", tc.method, tc.header, body, tc.code)
			}
			if strings.Contains(body, "weir_test_total") || strings.Contains(body, "connection refused") {
				t.Errorf("%s with %q leaked %s", tc.method, tc.header, body)
			}
		} else if tc.method == "GET" && !strings.Contains(body, "weir_test_total 0") {
			t.Errorf("GET with a good token: %s", body)
		}
	}
}
