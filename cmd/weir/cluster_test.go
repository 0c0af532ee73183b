package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// cluster is a set of weir processes on one PostgreSQL catalog.
type cluster struct {
	t       *testing.T
	dsn     string
	token   string
	servers map[string]*proc
	bases   map[string]string
	workers map[string]*proc
	store   *catalog.Store
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, dsn: catalogtest.NewPostgresDSN(t), token: catalog.NewTokenSecret(),
		servers: map[string]*proc{}, bases: map[string]string{}, workers: map[string]*proc{}}
	out, err := exec.Command(weirBin, "migrate", "--catalog", c.dsn).CombinedOutput()
	if err != nil {
		t.Fatalf("weir migrate: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), catalog.LatestMigration()) {
		t.Errorf("weir migrate output does not name the latest migration:\n%s", out)
	}
	c.store, err = catalog.Open(context.Background(), catalog.StoreConfig{DSN: c.dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.store.Close() })
	calmHosts(t, c.store)
	return c
}

func (c *cluster) env() []string {
	return []string{"WEIR_CATALOG=" + c.dsn, "WEIR_ADMIN_TOKEN=" + c.token, "WEIR_REGION=", "WEIR_NODE_ID="}
}

func (c *cluster) startServer(id string, args ...string) {
	addr := freeAddr(c.t)
	p := startWeir(c.t, "server "+id, c.env(), append([]string{"server", "--node-id", id, "--listen", addr, "--log-level", "debug"}, args...)...)
	c.servers[id], c.bases[id] = p, "http://"+addr
	waitReady(c.t, p, c.bases[id])
}

func (c *cluster) startWorker(id string, args ...string) {
	c.workers[id] = startWeir(c.t, "worker "+id, c.env(), append([]string{"worker", "--node-id", id, "--log-level", "debug"}, args...)...)
}

func (c *cluster) api(server string) api { return api{t: c.t, base: c.bases[server], token: c.token} }

// waitWorkers waits until n workers are alive in the catalog.
func (c *cluster) waitWorkers(n int) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		nodes, err := c.store.ListNodes(context.Background(), "")
		if err != nil {
			c.t.Fatal(err)
		}
		alive := 0
		for _, nd := range nodes {
			if nd.State == catalog.NodeAlive && nd.HasRole(catalog.NodeRoleWorker) {
				alive++
			}
		}
		if alive >= n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("fewer than %d workers alive after 30s", n)
}

// writeFiles writes n files of size bytes (distinct content) under dir.
func writeFiles(t *testing.T, dir string, n int, size int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = byte(i*31 + i>>8)
	}
	for i := 0; i < n; i++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("part-%03d.bin", i)))
		if err != nil {
			t.Fatal(err)
		}
		header := []byte(fmt.Sprintf("file %d of %s\n", i, dir))
		if _, err := f.Write(header); err != nil {
			t.Fatal(err)
		}
		for left := size - len(header); left > 0; left -= len(block) {
			if _, err := f.Write(block[:min(left, len(block))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func (c *cluster) createSystem(server, name, root string, limit int) {
	c.t.Helper()
	if root != "" {
		if err := os.MkdirAll(root, 0o755); err != nil {
			c.t.Fatal(err)
		}
	}
	body := map[string]any{"name": name, "kind": "fs", "region": RegionDefault, "max_concurrent_runs": limit,
		"settings": map[string]string{"root": root}}
	if code := c.api(server).call("POST", "/api/v1/systems", body, nil); code != 201 {
		c.t.Fatalf("create system %s: status %d", name, code)
	}
}

func (c *cluster) createMapping(server, name, src, srcPath, dst, dstPath string, params []map[string]any) {
	c.t.Helper()
	body := map[string]any{"name": name, "source": map[string]string{"system": src, "path": srcPath},
		"target": map[string]string{"system": dst, "path": dstPath}, "params": params, "enabled": true}
	if code := c.api(server).call("POST", "/api/v1/mappings", body, nil); code != 201 {
		c.t.Fatalf("create mapping %s: status %d", name, code)
	}
}

// maxOverlap returns the most intervals open at once; an interval ending at
// the instant another starts does not overlap it.
func maxOverlap(iv [][2]time.Time) int {
	type ev struct {
		at    time.Time
		delta int
	}
	var evs []ev
	for _, i := range iv {
		evs = append(evs, ev{i[0], +1}, ev{i[1], -1})
	}
	sort.Slice(evs, func(a, b int) bool {
		if !evs[a].at.Equal(evs[b].at) {
			return evs[a].at.Before(evs[b].at)
		}
		return evs[a].delta < evs[b].delta
	})
	cur, best := 0, 0
	for _, e := range evs {
		cur += e.delta
		best = max(best, cur)
	}
	return best
}

func TestMaxOverlap(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	cases := []struct {
		iv   [][2]time.Time
		want int
	}{
		{nil, 0},
		{[][2]time.Time{{at(0), at(2)}, {at(2), at(4)}}, 1},
		{[][2]time.Time{{at(0), at(3)}, {at(2), at(4)}, {at(1), at(5)}}, 3},
		{[][2]time.Time{{at(0), at(1)}, {at(5), at(6)}, {at(5), at(7)}}, 2},
	}
	for _, c := range cases {
		if got := maxOverlap(c.iv); got != c.want {
			t.Errorf("maxOverlap(%v) = %d, want %d", c.iv, got, c.want)
		}
	}
}

// TestClusterLimits: two servers and three worker processes on PostgreSQL run
// 200 runs submitted concurrently with a limit of 2 per source system and 4
// for the region. All succeed, and the catalog's history shows that no limit
// was ever exceeded and that each attempt was claimed by exactly one worker.
func TestClusterLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	t.Parallel()
	c := newCluster(t)
	c.startServer("s1", "--max-active-runs", "4", "--leader-lease", "3s")
	c.startServer("s2", "--max-active-runs", "4", "--leader-lease", "3s")
	for _, w := range []string{"w1", "w2", "w3"} {
		c.startWorker(w, "--slots", "2", "--threads", "2")
	}
	c.waitWorkers(3)

	root := t.TempDir()
	sources := []string{"src-a", "src-b", "src-c"}
	for _, s := range sources {
		c.createSystem("s1", s, filepath.Join(root, s), 2)
		writeFiles(t, filepath.Join(root, s, "data"), 3, 64<<10)
	}
	c.createSystem("s1", "dst", filepath.Join(root, "dst"), 0)
	params := []map[string]any{{"name": "n", "type": "int", "required": true}}
	for _, s := range sources {
		c.createMapping("s2", "copy-"+s, s, "data", "dst", s+"/{n}", params)
	}

	const total = 200
	ids := make([]string, total)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := 0; i < total; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			server := []string{"s1", "s2"}[i%2]
			var r runView
			body := map[string]any{"mapping": "copy-" + sources[i%3], "params": map[string]any{"n": fmt.Sprint(i)}}
			if code := c.api(server).call("POST", "/api/v1/runs", body, &r); code != 201 {
				t.Errorf("submit %d: status %d", i, code)
			}
			ids[i] = r.ID
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	deadline := time.Now().Add(5 * time.Minute)
	for _, id := range ids {
		r := c.api("s1").waitRun(id, time.Until(deadline), func(r runView) bool { return terminal(r.State) })
		if r.State != "succeeded" {
			t.Errorf("run %s ended %s: %s", id, r.State, r.Error)
		}
	}

	attempts, err := c.store.ListRunAttempts(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	perRun := map[string]int{}
	bySystem := map[string][][2]time.Time{}
	var region [][2]time.Time
	for _, a := range attempts {
		perRun[a.RunID]++
		if a.FinishedAt == nil {
			t.Errorf("attempt %d of run %s never finished", a.Attempt, a.RunID)
			continue
		}
		iv := [2]time.Time{a.QueuedAt, *a.FinishedAt}
		region = append(region, iv)
		bySystem[a.SourceSystem] = append(bySystem[a.SourceSystem], iv)
		if a.WorkerID == "" {
			t.Errorf("attempt %d of run %s has no worker", a.Attempt, a.RunID)
		}
	}
	for _, id := range ids {
		if perRun[id] != 1 {
			t.Errorf("run %s has %d attempts, want exactly 1", id, perRun[id])
		}
	}
	for sys, iv := range bySystem {
		if m := maxOverlap(iv); m > 2 {
			t.Errorf("system %s had %d runs at once; its limit is 2", sys, m)
		} else {
			t.Logf("system %s: at most %d runs at once", sys, m)
		}
	}
	if m := maxOverlap(region); m > 4 {
		t.Errorf("the region had %d runs at once; its limit is 4", m)
	} else if m < 3 {
		t.Errorf("the region never ran more than %d runs at once: the test did not exercise the limit", m)
	}
	for _, s := range sources {
		for i := 0; i < total; i++ {
			if sources[i%3] != s {
				continue
			}
			sameTree(t, filepath.Join(root, s, "data"), filepath.Join(root, "dst", s, fmt.Sprint(i)), "_weir_manifest.json")
		}
	}
}

// TestKillWorkerMidCopy: kill -9 of the worker copying a run; the run
// succeeds on the other worker within the lease time plus a few seconds, with
// identical files and no duplicates or staging leftovers.
func TestKillWorkerMidCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process fault test")
	}
	t.Parallel()
	c := newCluster(t)
	c.startServer("s1", "--leader-lease", "2s", "--node-dead-after", "4s")
	c.startWorker("w1", "--run-lease", "3s", "--threads", "2")
	c.startWorker("w2", "--run-lease", "3s", "--threads", "2")
	c.waitWorkers(2)

	root := t.TempDir()
	c.createSystem("s1", "big-src", filepath.Join(root, "src"), 0)
	c.createSystem("s1", "big-dst", filepath.Join(root, "dst"), 0)
	writeFiles(t, filepath.Join(root, "src", "data"), 48, 12<<20)
	c.createMapping("s1", "big-copy", "big-src", "data", "big-dst", "out", nil)

	a := c.api("s1")
	var r runView
	if code := a.call("POST", "/api/v1/runs", map[string]any{"mapping": "big-copy"}, &r); code != 201 {
		t.Fatalf("submit: status %d", code)
	}
	active := a.waitRun(r.ID, 30*time.Second, func(r runView) bool { return r.State == "active" || terminal(r.State) })
	if active.State != "active" {
		t.Fatalf("run ended %s before it could be killed; make the data bigger", active.State)
	}
	time.Sleep(300 * time.Millisecond)
	victim := c.workers[active.Worker]
	if victim == nil {
		t.Fatalf("run is active on unknown worker %q", active.Worker)
	}
	killedAt := time.Now()
	victim.kill9()

	done := a.waitRun(r.ID, 60*time.Second, func(r runView) bool { return terminal(r.State) })
	took := time.Since(killedAt)
	if done.State != "succeeded" {
		t.Fatalf("run ended %s: %s", done.State, done.Error)
	}
	if done.Attempt != 2 || done.Worker == active.Worker {
		t.Errorf("run succeeded in attempt %d on %s; want attempt 2 on the other worker (killed %s)", done.Attempt, done.Worker, active.Worker)
	}
	// The lease (3s), the leader's tick, the retry backoff and the copy itself.
	if took > 3*time.Second+15*time.Second {
		t.Errorf("run took %s after the kill to succeed", took)
	}
	t.Logf("succeeded %s after kill -9 of %s", took.Round(100*time.Millisecond), active.Worker)
	sameTree(t, filepath.Join(root, "src", "data"), filepath.Join(root, "dst", "out"), "_weir_manifest.json")
	if _, err := os.Stat(filepath.Join(root, "dst", ".weir-staging")); err == nil {
		entries, _ := os.ReadDir(filepath.Join(root, "dst", ".weir-staging"))
		if len(entries) > 0 {
			t.Errorf("staging leftovers at the target: %d entries", len(entries))
		}
	}
}

// TestLeaderFailover: kill -9 of the leader server; the other server takes the
// lease and dispatches within the lease time.
func TestLeaderFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process fault test")
	}
	t.Parallel()
	c := newCluster(t)
	c.startServer("s1", "--leader-lease", "3s")
	c.startServer("s2", "--leader-lease", "3s")
	c.startWorker("w1")
	c.waitWorkers(1)
	root := t.TempDir()
	c.createSystem("s1", "fo-src", filepath.Join(root, "src"), 0)
	c.createSystem("s1", "fo-dst", filepath.Join(root, "dst"), 0)
	writeFiles(t, filepath.Join(root, "src", "d"), 2, 1024)
	c.createMapping("s1", "fo", "fo-src", "d", "fo-dst", "{n}", []map[string]any{{"name": "n", "type": "int", "required": true}})

	var leader string
	deadline := time.Now().Add(15 * time.Second)
	for leader == "" && time.Now().Before(deadline) {
		if l, err := c.store.GetLease(context.Background(), catalog.LeaderLeaseName(RegionDefault)); err == nil && l.ExpiresAt.After(time.Now()) {
			leader = l.Holder
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c.servers[leader] == nil {
		t.Fatalf("no known leader after 15s (lease holder %q)", leader)
	}
	other := map[string]string{"s1": "s2", "s2": "s1"}[leader]
	a := c.api(other)
	var r runView
	if code := a.call("POST", "/api/v1/runs", map[string]any{"mapping": "fo", "params": map[string]any{"n": "1"}}, &r); code != 201 {
		t.Fatalf("submit: %d", code)
	}
	a.waitRun(r.ID, 10*time.Second, func(r runView) bool { return r.State == "succeeded" })

	killedAt := time.Now()
	c.servers[leader].kill9()
	if code := a.call("POST", "/api/v1/runs", map[string]any{"mapping": "fo", "params": map[string]any{"n": "2"}}, &r); code != 201 {
		t.Fatalf("submit after kill: %d", code)
	}
	got := a.waitRun(r.ID, 15*time.Second, func(r runView) bool { return r.State != "pending" })
	took := time.Since(killedAt)
	if took > 3*time.Second+2*time.Second {
		t.Errorf("the other server dispatched %s after the leader died; lease is 3s", took)
	}
	t.Logf("run %s after leader kill -9: %s in %s", r.ID, got.State, took.Round(100*time.Millisecond))
	a.waitRun(r.ID, 10*time.Second, func(r runView) bool { return r.State == "succeeded" })
	l, err := c.store.GetLease(context.Background(), catalog.LeaderLeaseName(RegionDefault))
	if err != nil || l.Holder != other {
		t.Errorf("lease holder after failover: %+v (%v), want %s", l, err, other)
	}
}
