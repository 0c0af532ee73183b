package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weirdata/weir/catalog"
)

// TestWorkerVerifiesThroughTheTargetsAgent: with a server, a worker and a
// `weir agent` holding the target system, each its own process, a delivery
// to that system is verified by the agent, which audits the worker's call
// as node:w1 with the token w1 took at start; w1's token is revoked when it
// stops.
func TestWorkerVerifiesThroughTheTargetsAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	c.startServer("s1")
	src, dst := filepath.Join(t.TempDir(), "landing"), filepath.Join(t.TempDir(), "archive")
	writeFiles(t, src, 3, 2000)
	c.createSystem("s1", "landing", src, 0)
	c.createSystem("s1", "archive", dst, 0)
	c.createMapping("s1", "keep", "landing", ".", "archive", "kept", nil)

	startWeir(t, "agent a1", c.env(), "agent", "--node-id", "a1", "--systems", "archive", "--log-level", "debug")
	waitFor(t, 30*time.Second, "archive linked to a1", func() bool {
		attrs, err := c.store.GetSystemAttributes(ctx, "archive")
		if err != nil {
			t.Fatal(err)
		}
		n := c.nodeRow("a1")
		return attrs[AttrNode] == "a1" && n != nil && n.State == catalog.NodeAlive
	})
	c.startWorker("w1")
	c.waitWorkers(1)
	if live, err := c.store.LiveNodeTokens(ctx, "w1"); err != nil || live != 1 {
		t.Fatalf("w1 holds %d live node tokens (%v), want 1", live, err)
	}

	var r runView
	if code := c.api("s1").call("POST", "/api/v1/runs", map[string]any{"mapping": "keep"}, &r); code != 201 {
		t.Fatalf("submit: status %d", code)
	}
	r = c.api("s1").waitRun(r.ID, 60*time.Second, func(v runView) bool { return terminal(v.State) })
	if r.State != "succeeded" {
		t.Fatalf("run %s: %s %s", r.ID, r.State, r.Error)
	}
	sameTree(t, src, filepath.Join(dst, "kept"), "_weir_manifest.json")

	entries, _, err := c.store.ListAudit(ctx, catalog.AuditFilter{Node: "a1", Action: "dispatcher.verify"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Actor != "node:w1" || entries[0].Target != "run:"+r.ID || entries[0].Outcome != catalog.AuditOK {
		t.Fatalf("a1's audit of the verification: %+v", entries)
	}
	evs, err := c.store.ListRunEvents(ctx, r.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	verified := ""
	for _, ev := range evs {
		if ev.Kind == "verified" {
			verified = ev.Message
		}
	}
	if !strings.Contains(verified, "agent a1 verified the delivery at archive: 3 of 3 files intact") {
		t.Errorf("verified event %q; events %+v", verified, evs)
	}

	c.workers["w1"].stop()
	if live, err := c.store.LiveNodeTokens(ctx, "w1"); err != nil || live != 0 {
		t.Errorf("after w1 stopped, it holds %d live node tokens (%v), want 0", live, err)
	}
}
