package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
	"github.com/weirdata/weir/monitor"
)

// waitFor polls cond every 100 ms until it holds, failing t after timeout with what.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// service returns node's service row named name, nil when there is none.
func (c *cluster) service(node, name string) *catalog.Service {
	c.t.Helper()
	svcs, err := c.store.ListServices(context.Background(), node)
	if err != nil {
		c.t.Fatal(err)
	}
	for i := range svcs {
		if svcs[i].Name == name {
			return &svcs[i]
		}
	}
	return nil
}

// nodeRow returns node's row, nil while it has none.
func (c *cluster) nodeRow(id string) *catalog.Node {
	c.t.Helper()
	nodes, err := c.store.ListNodes(context.Background(), "")
	if err != nil {
		c.t.Fatal(err)
	}
	for i := range nodes {
		if nodes[i].ID == id {
			return &nodes[i]
		}
	}
	return nil
}

// TestSupervisedCommandRestartedAfterKill: an external command configured
// with --command is killed with SIGKILL; the worker's monitor starts it
// again, the worker itself keeps running, and the catalog's services table
// shows the restart, the new PID and why it died. The worker's in-process
// services are recorded as running too.
func TestSupervisedCommandRestartedAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	c := newCluster(t)
	c.startWorker("w1", "--command", "sleeper=/bin/sleep,3600", "--sample-interval", "200ms")

	var first *catalog.Service
	waitFor(t, 30*time.Second, "command sleeper running with a PID", func() bool {
		first = c.service("w1", "sleeper")
		return first != nil && first.Status == catalog.ServiceRunning && first.PID > 0
	})
	if first.Kind != catalog.ServiceCommand || first.Restarts != 0 {
		t.Fatalf("sleeper before the kill: %+v", first)
	}
	for _, name := range []string{ServiceWorker, ServiceProfiler, ServiceDispatcher} {
		waitFor(t, 10*time.Second, name+" running", func() bool {
			sv := c.service("w1", name)
			return sv != nil && sv.Status == catalog.ServiceRunning && sv.Kind == catalog.ServiceInProcess
		})
	}
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill sleeper (pid %d): %v", first.PID, err)
	}
	var again *catalog.Service
	waitFor(t, 30*time.Second, "sleeper restarted", func() bool {
		again = c.service("w1", "sleeper")
		return again != nil && again.Restarts >= 1 && again.Status == catalog.ServiceRunning && again.PID > 0 && again.PID != first.PID
	})
	if !strings.Contains(again.LastError, "killed") {
		t.Errorf("last error %q does not say the command was killed", again.LastError)
	}
	if err := syscall.Kill(again.PID, 0); err != nil {
		t.Errorf("the restarted command (pid %d) is not running: %v", again.PID, err)
	}
	if c.workers["w1"].exited() {
		t.Fatal("the worker exited when its command was killed")
	}
	// Other services were not restarted along with it.
	if sv := c.service("w1", ServiceWorker); sv.Restarts != 0 {
		t.Errorf("worker service restarted %d times", sv.Restarts)
	}

	// The profiler of the worker's node samples the host.
	waitFor(t, 10*time.Second, "a host sample of w1", func() bool {
		l, err := c.store.GetLatestSample(context.Background(), "w1")
		return err == nil && len(l.Metrics.V) > 0
	})

	// On SIGTERM every service stops and is recorded stopped.
	c.workers["w1"].stop()
	svcs, err := c.store.ListServices(context.Background(), "w1")
	if err != nil {
		t.Fatal(err)
	}
	for _, sv := range svcs {
		if sv.Status != catalog.ServiceStopped {
			t.Errorf("after SIGTERM service %s is %s", sv.Name, sv.Status)
		}
	}
	if err := syscall.Kill(again.PID, 0); err == nil {
		t.Errorf("the command (pid %d) outlived its node", again.PID)
	}
}

// agentCall POSTs a dispatcher command to base and returns the status and body.
func agentCall(t *testing.T, base, token, command string, body any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", base+"/agent/v1/commands/"+command, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("call %s at %s: %v", command, base, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s answered %d %q: %v", command, resp.StatusCode, raw, err)
	}
	return resp.StatusCode, out
}

// TestWorkerDispatcherAgent: a worker's dispatcher agent listens on its own
// port, recorded as the node's address; it answers an authenticated count
// with what is on disk and refuses calls without a valid token and unknown
// commands, and every call is in the audit log.
func TestWorkerDispatcherAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	c := newCluster(t)
	root := filepath.Join(t.TempDir(), "landing")
	writeFiles(t, root, 3, 1000)
	ctx := context.Background()
	if err := c.store.CreateSystem(ctx, &catalog.System{Name: "landing", Kind: catalog.KindFS, Region: RegionDefault,
		Settings: catalog.NewJSON(map[string]string{"root": root})}); err != nil {
		t.Fatal(err)
	}
	if _, err := ensureAdmin(ctx, c.store, c.token); err != nil {
		t.Fatal(err)
	}
	c.startWorker("w1")
	var n *catalog.Node
	waitFor(t, 30*time.Second, "w1 alive with an address", func() bool {
		n = c.nodeRow("w1")
		return n != nil && n.State == catalog.NodeAlive && n.Address != ""
	})
	if !strings.HasPrefix(n.Address, "http://127.0.0.1:") {
		t.Fatalf("w1's address %q is not its agent on a loopback port", n.Address)
	}

	code, out := agentCall(t, n.Address, c.token, "count", map[string]any{"system": "landing", "args": map[string]any{"path": "."}})
	if code != 200 {
		t.Fatalf("authenticated count: %d %v", code, out)
	}
	res, _ := out["result"].(map[string]any)
	if res["files"] != float64(3) || res["bytes"] != float64(3000) || res["node"] != "w1" {
		t.Errorf("count result %v, want 3 files, 3000 bytes, node w1", res)
	}
	for _, tc := range []struct {
		token, command string
		want           int
	}{
		{"", "count", 401},
		{"not-a-token", "count", 401},
		{c.token, "rm", 404},
	} {
		code, out := agentCall(t, n.Address, tc.token, tc.command, map[string]any{"system": "landing", "args": map[string]any{"path": "."}})
		if code != tc.want {
			t.Errorf("%s with token %q: %d %v, want %d", tc.command, tc.token, code, out, tc.want)
		}
	}
	code, out = agentCall(t, n.Address, c.token, "count", map[string]any{"system": "landing", "args": map[string]any{"path": "../.."}})
	if code != 400 {
		t.Errorf("count of ../..: %d %v, want 400", code, out)
	}

	entries, _, err := c.store.ListAudit(ctx, catalog.AuditFilter{Node: "w1", Action: "dispatcher.count"})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, e := range entries {
		outcomes[e.Outcome]++
	}
	if outcomes[catalog.AuditOK] != 1 || outcomes[catalog.AuditUnauthenticated] != 2 || outcomes[catalog.AuditRejected] != 1 {
		t.Errorf("audit outcomes of count on w1: %v", outcomes)
	}
}

// TestAgentLinksAndProbesItsSystems: `weir agent --systems` records the
// node on each system with the attributes its probe discovered (the host's
// cores, the root's free space), serves only its systems, keeps its node
// row alive with its agent's address, and refuses a system that does not
// exist with a precise error.
func TestAgentLinksAndProbesItsSystems(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "archive")
	writeFiles(t, root, 2, 500)
	for _, s := range []catalog.System{
		{Name: "archive", Kind: catalog.KindFS, Region: RegionDefault, Settings: catalog.NewJSON(map[string]string{"root": root})},
		{Name: "elsewhere", Kind: catalog.KindNull, Region: RegionDefault},
	} {
		if err := c.store.CreateSystem(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ensureAdmin(ctx, c.store, c.token); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(weirBin, "agent", "--catalog", c.dsn, "--systems", "archive,nope").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `no system named "nope"`) {
		t.Errorf("agent with an unknown system: %v\n%s", err, out)
	}
	out, err = exec.Command(weirBin, "agent", "--catalog", c.dsn).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--systems") {
		t.Errorf("agent without systems: %v\n%s", err, out)
	}

	p := startWeir(t, "agent a1", c.env(), "agent", "--node-id", "a1", "--systems", "archive", "--sample-interval", "200ms", "--log-level", "debug")
	var attrs map[string]string
	waitFor(t, 30*time.Second, "archive's probed attributes", func() bool {
		attrs, err = c.store.GetSystemAttributes(ctx, "archive")
		if err != nil {
			t.Fatal(err)
		}
		return attrs[AttrProbedAt] != ""
	})
	if attrs[AttrNode] != "a1" || attrs["kind"] != "fs" || attrs[AttrProbeError] != "" {
		t.Errorf("archive's attributes: %v", attrs)
	}
	if cores, _ := strconv.Atoi(attrs["host.cores"]); cores < 1 {
		t.Errorf("host.cores = %q", attrs["host.cores"])
	}
	if free, _ := strconv.ParseUint(attrs["root.free_bytes"], 10, 64); free == 0 {
		t.Errorf("root.free_bytes = %q", attrs["root.free_bytes"])
	}
	if got, _ := c.store.GetSystemAttributes(ctx, "elsewhere"); len(got) != 0 {
		t.Errorf("a system not given to the agent got attributes: %v", got)
	}

	var n *catalog.Node
	waitFor(t, 10*time.Second, "a1 alive", func() bool {
		n = c.nodeRow("a1")
		return n != nil && n.State == catalog.NodeAlive
	})
	if !n.HasRole("agent") || n.HasRole(catalog.NodeRoleWorker) || !strings.HasPrefix(n.Address, "http://127.0.0.1:") {
		t.Errorf("a1's row: roles %v, address %q", n.Roles.V, n.Address)
	}
	// The probe went through the agent and was audited as the node.
	entries, _, err := c.store.ListAudit(ctx, catalog.AuditFilter{Node: "a1", Action: "dispatcher.probe"})
	if err != nil || len(entries) == 0 || entries[0].Actor != "node:a1" || entries[0].Outcome != catalog.AuditOK {
		t.Errorf("audit of the probe: %v %+v", err, entries)
	}
	// It serves its systems only.
	code, body := agentCall(t, n.Address, c.token, "count", map[string]any{"system": "elsewhere", "args": map[string]any{}})
	if code != http.StatusMisdirectedRequest {
		t.Errorf("count of a system the agent does not hold: %d %v", code, body)
	}
	code, body = agentCall(t, n.Address, c.token, "count", map[string]any{"system": "archive", "args": map[string]any{"path": "."}})
	if code != 200 {
		t.Errorf("count of the agent's system: %d %v", code, body)
	}
	waitFor(t, 10*time.Second, "a host sample of a1", func() bool {
		l, err := c.store.GetLatestSample(ctx, "a1")
		return err == nil && len(l.Metrics.V) > 0
	})
	p.stop()
	if n := c.nodeRow("a1"); n.State != catalog.NodeLeft {
		t.Errorf("a1 after SIGTERM: %s, want left", n.State)
	}
}

// TestServerDeliversAlertsToWebhooks: a server started with --alert-webhook
// and --alert-min-severity POSTs alerts at or above that severity to the
// webhook, signed with WEIR_ALERT_WEBHOOK_SECRET, and not those below it.
func TestServerDeliversAlertsToWebhooks(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	const secret = "webhook-secret-for-the-test"
	type delivery struct {
		body     []byte
		verified bool
	}
	got := make(chan delivery, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{body: b, verified: monitor.VerifySignature(secret, b, r.Header.Get(monitor.SignatureHeader))}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)

	c := newCluster(t)
	addr := freeAddr(t)
	p := startWeir(t, "server s1", append(c.env(), "WEIR_ALERT_WEBHOOK_SECRET="+secret), "server", "--node-id", "s1",
		"--listen", addr, "--alert-webhook", hook.URL+"/hooks/weir?token=abc", "--alert-min-severity", "warning")
	waitReady(t, p, "http://"+addr)
	waitFor(t, 10*time.Second, "notifier running", func() bool {
		sv := c.service("s1", ServiceNotifier)
		return sv != nil && sv.Status == catalog.ServiceRunning
	})
	ctx := context.Background()
	for _, a := range []catalog.RaiseAlertParams{
		{Key: "test:info", Severity: catalog.AlertInfo, Subject: "below the minimum"},
		{Key: "test:crit", Severity: catalog.AlertCritical, Subject: "disk full on db-1"},
	} {
		if _, _, err := c.store.RaiseAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	// Other alerts (of this machine's real load, say) may come too: only
	// the test's keys are judged.
	var crit *monitor.WebhookPayload
	deadline := time.After(30 * time.Second)
	grace := (<-chan time.Time)(nil)
	for done := false; !done; {
		select {
		case d := <-got:
			var payload monitor.WebhookPayload
			if err := json.Unmarshal(d.body, &payload); err != nil {
				t.Fatal(err)
			}
			if !d.verified {
				t.Errorf("delivery not signed with the secret: %s", d.body)
			}
			switch payload.Alert.Key {
			case "test:info":
				t.Errorf("an info alert was delivered with --alert-min-severity warning: %s", d.body)
			case "test:crit":
				if crit != nil {
					t.Errorf("the critical alert was delivered twice")
				}
				crit = &payload
				grace = time.After(time.Second) // time for a wrong delivery to show
			}
		case <-grace:
			done = true
		case <-deadline:
			t.Fatal("the critical alert was not delivered within 30s")
		}
	}
	if crit.Alert.Subject != "disk full on db-1" || crit.DeliveryID == "" {
		t.Errorf("delivered %+v", crit)
	}
	if strings.Contains(p.out.String(), "token=abc") || strings.Contains(p.out.String(), secret) {
		t.Error("the server's log shows the webhook's token or secret")
	}
}

// weirCLI runs a client command of the weir binary against server with token.
func weirCLI(t *testing.T, server, token string, args ...string) (string, int) {
	t.Helper()
	// The connection flags go before a "--" that ends the flags.
	at := slices.Index(args, "--")
	if at < 0 {
		at = len(args)
	}
	full := append(append(slices.Clone(args[:at]), "--server", server, "--token", token), args[at:]...)
	cmd := exec.Command(weirBin, full...)
	cmd.Env = append(os.Environ(), "WEIR_SERVER=", "WEIR_TOKEN=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("weir %s: %v", strings.Join(args, " "), err)
	}
	if code != 0 {
		return out.String() + errb.String(), code
	}
	return out.String(), code
}

// weirJSON runs a client command with -o json and decodes its output into out.
func weirJSON(t *testing.T, server, token string, out any, args ...string) {
	t.Helper()
	got, code := weirCLI(t, server, token, append(args, "-o", "json")...)
	if code != 0 {
		t.Fatalf("weir %s: exit %d\n%s", strings.Join(args, " "), code, got)
	}
	if err := json.Unmarshal([]byte(got), out); err != nil {
		t.Fatalf("weir %s -o json: %v\n%s", strings.Join(args, " "), err, got)
	}
}

// TestGovernanceEndToEnd: the nodes of a cluster report their health and
// services through `weir health` and `weir nodes`; with a worker's memory
// threshold lowered below its real use, a run is held with the reason shown
// and one alert raised (not one per tick); raising the threshold again
// dispatches the run without a restart, and its alert is resolved.
func TestGovernanceEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	c := newCluster(t)
	// Systems registered before the server starts are probed at its start
	// (those created later, within a registration poll).
	root := t.TempDir()
	for _, name := range []string{"gov-src", "gov-dst"} {
		dir := filepath.Join(root, strings.TrimPrefix(name, "gov-"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := c.store.CreateSystem(context.Background(), &catalog.System{Name: name, Kind: catalog.KindFS, Region: RegionDefault,
			Settings: catalog.NewJSON(map[string]string{"root": dir})}); err != nil {
			t.Fatal(err)
		}
	}
	c.startServer("s1", "--sample-interval", "200ms")
	c.startWorker("w1", "--sample-interval", "200ms", "--slots", "2", "--threads", "2")
	c.waitWorkers(1)
	base := c.bases["s1"]
	cli := func(args ...string) string {
		t.Helper()
		out, code := weirCLI(t, base, c.token, args...)
		if code != 0 {
			t.Fatalf("weir %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}

	// This machine's real load is not under test: the default levels are
	// set out of its reach, so that only w1's own thresholds below decide.
	cli("thresholds", "set", "default", "cpu", "--warn", "100", "--crit", "100")
	cli("thresholds", "set", "default", "memory", "--warn", "100", "--crit", "100")
	out := cli("thresholds", "set", "default", "disk_free", "--warn", "0.02", "--crit", "0.01")
	if !strings.Contains(out, "disk_free") || !strings.Contains(out, "default") {
		t.Errorf("thresholds set output:\n%s", out)
	}

	type nodeJSON struct {
		ID     string        `json:"id"`
		State  string        `json:"state"`
		Health client.Health `json:"health"`
	}
	var rep struct {
		Health client.Health `json:"health"`
		Nodes  []nodeJSON    `json:"nodes"`
	}
	waitFor(t, 30*time.Second, "s1 and w1 green in weir health", func() bool {
		weirJSON(t, base, c.token, &rep, "health")
		green := 0
		for _, n := range rep.Nodes {
			if (n.ID == "s1" || n.ID == "w1") && n.Health.Color == client.Green {
				green++
			}
		}
		return green == 2
	})
	out = cli("nodes", "list")
	for _, want := range []string{"w1", "s1", "GREEN", "worker", "server"} {
		if !strings.Contains(out, want) {
			t.Errorf("weir nodes list does not show %q:\n%s", want, out)
		}
	}
	var w1 client.NodeDetail
	weirJSON(t, base, c.token, &w1, "nodes", "show", "w1")
	if w1.Sample == nil || len(w1.Sample.Disks) == 0 || !strings.HasPrefix(w1.Address, "http://") {
		t.Errorf("weir nodes show w1: sample %+v, address %q", w1.Sample, w1.Address)
	}
	services := map[string]string{}
	for _, s := range w1.Services {
		services[s.Name] = s.Status
	}
	for _, name := range []string{ServiceWorker, ServiceProfiler, ServiceDispatcher} {
		if services[name] != catalog.ServiceRunning {
			t.Errorf("weir nodes show w1: service %s is %q (services %v)", name, services[name], services)
		}
	}
	if out := cli("nodes", "show", "w1"); !strings.Contains(out, "Services:") || !strings.Contains(out, "dispatcher") {
		t.Errorf("weir nodes show w1:\n%s", out)
	}

	writeFiles(t, filepath.Join(root, "src", "data"), 3, 1000)
	c.createMapping("s1", "gov-copy", "gov-src", "data", "gov-dst", "out", nil)

	// w1's memory is surely above 0.1% used: it is red, and gets no run.
	out = cli("thresholds", "set", "node:w1", "memory", "--crit", "0.1")
	if !strings.Contains(out, "node:w1") {
		t.Errorf("thresholds set node:w1 output:\n%s", out)
	}
	a := c.api("s1")
	var r runView
	if code := a.call("POST", "/api/v1/runs", map[string]any{"mapping": "gov-copy"}, &r); code != 201 {
		t.Fatalf("submit: status %d", code)
	}
	held := a.waitRun(r.ID, 30*time.Second, func(r runView) bool { return r.HoldReason != "" || r.State != "pending" })
	if held.State != "pending" || !strings.Contains(held.HoldReason, "worker w1") || !strings.Contains(held.HoldReason, "memory") {
		t.Fatalf("run with w1 red: state %s, hold reason %q", held.State, held.HoldReason)
	}
	if out := cli("runs", "show", r.ID); !strings.Contains(out, held.HoldReason) {
		t.Errorf("weir runs show does not show the hold reason %q:\n%s", held.HoldReason, out)
	}
	waitFor(t, 10*time.Second, "w1 red in weir health", func() bool {
		weirJSON(t, base, c.token, &rep, "health")
		for _, n := range rep.Nodes {
			if n.ID == "w1" && n.Health.Color == client.Red && len(n.Health.Reasons) > 0 && strings.Contains(n.Health.Reasons[0].Text, "memory") {
				return true
			}
		}
		return false
	})
	if rep.Health.Color != client.Red {
		t.Errorf("overall health %s with w1 red", rep.Health.Color)
	}

	// One alert per cause of holds (here: no healthy worker), not per run.
	heldKey := "hold:workers of region " + RegionDefault
	var page client.AlertPage
	waitFor(t, 10*time.Second, "the alert of the hold cause", func() bool {
		weirJSON(t, base, c.token, &page, "alerts", "list", "--key", heldKey)
		return len(page.Alerts) > 0
	})
	// The manager ticks every second: a few ticks later it is still one alert, raised once.
	time.Sleep(3 * time.Second)
	weirJSON(t, base, c.token, &page, "alerts", "list", "--key", heldKey)
	if len(page.Alerts) != 1 || page.Alerts[0].Count != 1 || page.Alerts[0].ResolvedAt != nil {
		t.Fatalf("alerts of the held run after several ticks: %+v", page.Alerts)
	}
	if st := a.waitRun(r.ID, time.Second, func(runView) bool { return true }); st.State != "pending" {
		t.Fatalf("run dispatched while w1 is red: %s", st.State)
	}
	alertID := page.Alerts[0].ID
	if out := cli("alerts", "ack", strconv.FormatInt(alertID, 10)); !strings.Contains(out, "acknowledged") {
		t.Errorf("weir alerts ack:\n%s", out)
	}
	if out := cli("alerts", "list", "--open"); !strings.Contains(out, "acked by admin") || !strings.Contains(out, "workers of region "+RegionDefault+" holds runs") {
		t.Errorf("weir alerts list --open:\n%s", out)
	}
	if msg := page.Alerts[0].Message; !strings.HasPrefix(msg, "1 run held ("+r.ID+"): ") || !strings.Contains(msg, held.HoldReason) {
		t.Errorf("the hold cause's alert does not count and name the held run: %q", msg)
	}

	// Raising the threshold again dispatches the run, with no restart.
	cli("thresholds", "delete", "node:w1", "memory")
	done := a.waitRun(r.ID, 30*time.Second, func(r runView) bool { return terminal(r.State) })
	if done.State != "succeeded" || done.Worker != "w1" {
		t.Fatalf("run after the threshold was raised: %s on %q (%s)", done.State, done.Worker, done.Error)
	}
	weirJSON(t, base, c.token, &page, "alerts", "list", "--key", heldKey)
	if len(page.Alerts) != 1 || page.Alerts[0].ResolvedAt == nil {
		t.Errorf("the held run's alert once dispatched: %+v", page.Alerts)
	}

	// A worker whose disk path is set near full in its thresholds receives no run.
	cli("thresholds", "set", "node:w1", "disk_free", "--warn", "100", "--crit", "99.99")
	var r2 runView
	if code := a.call("POST", "/api/v1/runs", map[string]any{"mapping": "gov-copy"}, &r2); code != 201 {
		t.Fatalf("submit: status %d", code)
	}
	held = a.waitRun(r2.ID, 30*time.Second, func(r runView) bool { return r.HoldReason != "" || r.State != "pending" })
	if held.State != "pending" || !strings.Contains(held.HoldReason, "worker w1: free disk on ") {
		t.Fatalf("run with w1's disk near full: state %s, hold reason %q", held.State, held.HoldReason)
	}
	cli("thresholds", "delete", "node:w1")
	if done := a.waitRun(r2.ID, 30*time.Second, func(r runView) bool { return terminal(r.State) }); done.State != "succeeded" {
		t.Fatalf("second run after the thresholds were deleted: %s (%s)", done.State, done.Error)
	}

	if c.workers["w1"].exited() || c.servers["s1"].exited() {
		t.Fatal("a node exited")
	}
	for _, n := range []string{"s1", "w1"} {
		for _, sv := range mustServices(t, c, n) {
			if sv.Restarts != 0 {
				t.Errorf("service %s/%s restarted %d times: %s", n, sv.Name, sv.Restarts, sv.LastError)
			}
		}
	}
	// The server probed the systems no agent is linked to.
	attrs, err := c.store.GetSystemAttributes(context.Background(), "gov-src")
	if err != nil || attrs[AttrProbedBy] != "s1" || attrs["kind"] != "fs" || attrs["root.free_bytes"] == "" || attrs[AttrProbedAt] == "" || attrs[AttrNode] != "" {
		t.Errorf("gov-src's attributes: %v (%v)", attrs, err)
	}
	if out, code := weirCLI(t, base, c.token, "thresholds", "get", "cluster:x"); code == 0 || !strings.Contains(out, "bad scope") {
		t.Errorf("thresholds get of a bad scope: exit %d\n%s", code, out)
	}
}

func mustServices(t *testing.T, c *cluster, node string) []catalog.Service {
	t.Helper()
	svcs, err := c.store.ListServices(context.Background(), node)
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) == 0 {
		t.Fatalf("node %s has no services", node)
	}
	return svcs
}

// calmHostLevels are default thresholds the test machine's own load never
// reaches. The end-to-end tests of the quick start, limits and failover run
// many processes with -race on two cores, whose CPU then sits near 100%:
// health admission (tested in TestGovernanceEndToEnd with per-node
// thresholds) would hold their runs for as long as the machine is busy.
var calmHostLevels = map[string]client.ThresholdLevels{
	catalog.ThresholdCPU:      {Warn: 100, Crit: 100},
	catalog.ThresholdMemory:   {Warn: 100, Crit: 100},
	catalog.ThresholdDiskFree: {Warn: 0.02, Crit: 0.01},
}

// calmHosts sets calmHostLevels as the catalog's default thresholds.
func calmHosts(t *testing.T, store *catalog.Store) {
	t.Helper()
	var ths []catalog.HealthThreshold
	for m, l := range calmHostLevels {
		ths = append(ths, catalog.HealthThreshold{Scope: catalog.ThresholdScopeDefault, Metric: m, Warn: l.Warn, Crit: l.Crit, UpdatedBy: "test"})
	}
	if err := store.SetThresholds(context.Background(), ths); err != nil {
		t.Fatalf("set calm default thresholds: %v", err)
	}
}

// calmHostsAPI sets calmHostLevels as the default thresholds through a server's API.
func calmHostsAPI(t *testing.T, a api) {
	t.Helper()
	if code := a.call("PUT", "/api/v1/thresholds/default", calmHostLevels, nil); code != 200 {
		t.Fatalf("set calm default thresholds: status %d", code)
	}
}

// TestCatalogCommandRunsOnItsNode: an admin registers an external command
// for w1 with `weir nodes commands add`; w1, started with --catalog-commands,
// starts it (a real process), the services table shows it; a non-admin is
// refused; a command outside w1's directory (a shell) is not run, its row
// says why; the server, started without the flag, runs none; once the
// command is deleted the monitor stops it and its row goes.
func TestCatalogCommandRunsOnItsNode(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	dir := t.TempDir()
	b, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sleep"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	sleep := filepath.Join(dir, "sleep")
	c := newCluster(t)
	c.startServer("s1")
	c.startWorker("w1", "--catalog-commands", dir)
	c.waitWorkers(1)
	base := c.bases["s1"]

	u := &catalog.User{Name: "ops", Role: catalog.RoleOperator}
	if err := c.store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	opsToken, _, err := c.store.CreateToken(context.Background(), catalog.CreateTokenParams{UserID: u.ID, Name: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	add := []string{"nodes", "commands", "add", "--node", "w1", "--name", "napper", "--", sleep, "3600"}
	if out, code := weirCLI(t, base, opsToken, add...); code == 0 || !strings.Contains(out, "403") && !strings.Contains(strings.ToLower(out), "forbidden") {
		t.Fatalf("a non-admin registered a command: exit %d\n%s", code, out)
	}
	if out, code := weirCLI(t, base, c.token, "nodes", "commands", "add", "--node", "w1", "--name", "bad", "--", "sleep", "1"); code == 0 || !strings.Contains(out, "argv[0]") {
		t.Fatalf("a relative executable was accepted: exit %d\n%s", code, out)
	}
	out, code := weirCLI(t, base, c.token, add...)
	if code != 0 || !strings.Contains(out, "registered for node w1") {
		t.Fatalf("weir nodes commands add: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"--node", "w1", "--name", "shell", "--", "/bin/sh", "-c", "sleep 3600"},
		{"--node", "*", "--name", "everywhere", "--", sleep, "3600"},
	} {
		if out, code := weirCLI(t, base, c.token, append([]string{"nodes", "commands", "add"}, args...)...); code != 0 {
			t.Fatalf("weir nodes commands add %v: exit %d\n%s", args, code, out)
		}
	}
	var sv *catalog.Service
	waitFor(t, 40*time.Second, "napper and everywhere started by w1's monitor, shell refused", func() bool {
		sv = c.service("w1", "napper")
		e, sh := c.service("w1", "everywhere"), c.service("w1", "shell")
		return sv != nil && sv.Status == catalog.ServiceRunning && sv.PID > 0 && sv.Kind == catalog.ServiceCommand &&
			e != nil && e.Status == catalog.ServiceRunning && sh != nil && sh.Status == catalog.ServiceFailed
	})
	if sh := c.service("w1", "shell"); sh.PID != 0 || !strings.Contains(sh.LastError, "outside this node's catalog commands directory") {
		t.Fatalf("the shell command: %+v", sh)
	}
	if e := c.service("s1", "everywhere"); e != nil {
		t.Fatalf("the server, started without --catalog-commands, runs a catalog command: %+v", e)
	}
	if out := c.servers["s1"].out.String(); strings.Contains(out, "running the catalog's commands") {
		t.Fatal("the server reads the catalog's commands without --catalog-commands")
	}
	if err := syscall.Kill(sv.PID, 0); err != nil {
		t.Fatalf("napper (pid %d) is not running: %v", sv.PID, err)
	}
	var list struct {
		Commands []client.NodeCommand `json:"commands"`
	}
	weirJSON(t, base, c.token, &list, "nodes", "commands", "list", "--node", "w1")
	if len(list.Commands) != 3 || list.Commands[0].Name != "napper" {
		t.Fatalf("weir nodes commands list: %+v", list.Commands)
	}
	if out, code := weirCLI(t, base, c.token, "nodes", "commands", "delete", strconv.FormatInt(list.Commands[0].ID, 10)); code != 0 {
		t.Fatalf("weir nodes commands delete: exit %d\n%s", code, out)
	}
	waitFor(t, 40*time.Second, "napper stopped and gone from the services", func() bool {
		return c.service("w1", "napper") == nil && syscall.Kill(sv.PID, 0) != nil
	})
	if c.workers["w1"].exited() {
		t.Fatal("the worker exited")
	}
}
