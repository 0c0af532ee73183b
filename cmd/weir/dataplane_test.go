package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// dataplaneRows is the size of the source the kill tests load: large
// enough that a load lasts a second or more, so that kills land before,
// during and after commits.
const dataplaneRows = 80_000

// writeSourceCSV writes n rows of id,name,amount with quotes, delimiters
// and unicode inside fields.
func writeSourceCSV(t *testing.T, path string, n int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "id,name,amount")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, "%d,\"n°%d, \"\"q\"\" é\",%d.%02d\n", i, i%1000, i, i%100)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestKill9DuringLoads kills the worker with SIGKILL again and again while
// it loads the same CSV file, in batches, into a PostgreSQL table and into
// directories of CSV files, at least ten kills landing on a load of each
// kind; each time the worker is restarted. Every run ends succeeded, and
// the target holds exactly the source rows of each batch, none twice.
func TestKill9DuringLoads(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process fault test")
	}
	t.Parallel()
	c := newCluster(t)
	// This machine's real load is not under test: runs are not held for it.
	for _, metric := range []string{"cpu", "memory"} {
		if err := c.store.SetThreshold(context.Background(), &catalog.HealthThreshold{Scope: "default", Metric: metric, Warn: 100, Crit: 100}); err != nil {
			t.Fatal(err)
		}
	}
	c.startServer("s1", "--leader-lease", "2s", "--node-dead-after", "4s")
	worker := func() { c.startWorker("w1", "--run-lease", "6s", "--threads", "2", "--slots", "4") }
	worker()
	c.waitWorkers(1)

	root := t.TempDir()
	writeSourceCSV(t, filepath.Join(root, "in", "src.csv"), dataplaneRows)
	pgDSN := catalogtest.NewPostgresDSN(t)
	ctx := context.Background()
	pg, err := pgx.Connect(ctx, pgDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	if _, err := pg.Exec(ctx, `CREATE TABLE loads (batch text NOT NULL, id bigint NOT NULL, name text, amount numeric(18,2), cents bigint)`); err != nil {
		t.Fatal(err)
	}

	a := c.api("s1")
	for _, sys := range []map[string]any{
		{"name": "files", "kind": "fs", "settings": map[string]string{"root": root}},
		{"name": "pg", "kind": "postgres", "settings": map[string]string{"dsn": pgDSN}},
	} {
		if code := a.call("POST", "/api/v1/systems", sys, nil); code != 201 {
			t.Fatalf("create system %s: status %d", sys["name"], code)
		}
	}
	fields := []map[string]string{{"name": "batch", "type": "string", "expr": "params.batch"}, {"name": "id"}, {"name": "name"},
		{"name": "amount"}, {"name": "cents", "type": "int", "expr": "to_int(amount * 100)"}}
	source := map[string]any{"system": "files", "path": "in/src.csv", "format": "csv", "schema": []map[string]any{
		{"name": "id", "type": "int"}, {"name": "name", "type": "string"}, {"name": "amount", "type": "decimal", "precision": 18, "scale": 2}}}
	params := []map[string]any{{"name": "batch", "type": "string", "required": true}}
	for _, m := range []map[string]any{
		{"name": "to-pg", "source": source, "target": map[string]any{"system": "pg", "table": "loads"}, "fields": fields,
			"params": params, "max_attempts": 12},
		{"name": "to-files", "source": source, "target": map[string]any{"system": "files", "path": "out/{batch}", "format": "csv"},
			"fields": fields, "params": params, "max_attempts": 12},
	} {
		var body map[string]any
		if code := a.call("POST", "/api/v1/mappings", m, &body); code != 201 {
			t.Fatalf("create mapping %s: status %d: %v", m["name"], code, body)
		}
	}
	// Each round submits a batch to each mapping, waits until the worker
	// loads them, and kills it at a random moment of the load (or of a
	// retry of an earlier batch), until ten kills landed on a load of each
	// kind; the worker is restarted at once.
	runs := map[string]string{} // run id -> mapping
	submit := func(batch int) map[string]bool {
		fresh := map[string]bool{}
		for _, m := range []string{"to-pg", "to-files"} {
			var r runView
			if code := a.call("POST", "/api/v1/runs", map[string]any{"mapping": m, "params": map[string]string{"batch": strconv.Itoa(batch)}}, &r); code != 201 {
				t.Fatalf("submit %s: status %d", m, code)
			}
			runs[r.ID] = m
			fresh[r.ID] = true
		}
		return fresh
	}
	hits := map[string]int{}
	began, restarted := time.Now(), time.Now()
	batches := 0
	for ; hits["to-pg"] < 10 || hits["to-files"] < 10; batches++ {
		if batches >= 30 || time.Since(began) > 150*time.Second {
			t.Fatalf("after %d kills, %d landed on a PostgreSQL load and %d on a file load", batches, hits["to-pg"], hits["to-files"])
		}
		fresh := submit(batches)
		waitActive(t, c, fresh, restarted, 60*time.Second)
		time.Sleep(time.Duration(100+rand.IntN(1000)) * time.Millisecond)
		active := activeNow(t, c, runs, restarted)
		c.workers["w1"].kill9()
		for m := range active {
			hits[m]++
		}
		restarted = time.Now()
		worker()
	}
	t.Logf("%d kills, %d on PostgreSQL loads, %d on file loads, in %s", batches, hits["to-pg"], hits["to-files"], time.Since(began).Round(time.Second))

	// Every run ends succeeded.
	attempts, already := 0, 0
	for id, m := range runs {
		r := a.waitRun(id, 120*time.Second, func(r runView) bool { return terminal(r.State) })
		if r.State != "succeeded" {
			t.Fatalf("run %s of %s ended %s: %s", id, m, r.State, r.Error)
		}
		attempts += r.Attempt
		full, err := c.store.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if man := full.Manifest.V; man != nil && man.AlreadyCommitted {
			already++
		}
	}
	t.Logf("%d runs took %d attempts in all; %d found their data committed by a killed attempt", len(runs), attempts, already)

	// PostgreSQL: each batch holds each source row exactly once.
	rows, err := pg.Query(ctx, `SELECT batch, count(*), count(DISTINCT id), min(id), max(id), sum(cents) FROM loads GROUP BY batch ORDER BY batch`)
	if err != nil {
		t.Fatal(err)
	}
	wantCents := int64(0)
	for i := int64(1); i <= dataplaneRows; i++ {
		wantCents += i*100 + i%100
	}
	seen := 0
	for rows.Next() {
		var batch string
		var n, distinct, lo, hi, cents int64
		if err := rows.Scan(&batch, &n, &distinct, &lo, &hi, &cents); err != nil {
			t.Fatal(err)
		}
		seen++
		if n != dataplaneRows || distinct != dataplaneRows || lo != 1 || hi != dataplaneRows || cents != wantCents {
			t.Errorf("batch %s in PostgreSQL: %d rows, %d distinct ids in [%d, %d], cents %d; want each of the %d source rows once (cents %d)",
				batch, n, distinct, lo, hi, cents, dataplaneRows, wantCents)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != batches {
		t.Errorf("%d batches in PostgreSQL, want %d", seen, batches)
	}

	// Files: each batch directory holds each source row exactly once, and
	// no staging is left behind.
	for b := range batches {
		dir := filepath.Join(root, "out", strconv.Itoa(b))
		ids := map[int64]int{}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() == "_weir_manifest.json" {
				continue
			}
			countCSV(t, filepath.Join(dir, e.Name()), ids)
		}
		dups := 0
		for _, k := range ids {
			if k > 1 {
				dups++
			}
		}
		if len(ids) != dataplaneRows || dups > 0 {
			t.Errorf("batch %d in files: %d distinct ids, %d more than once; want %d once each (files %v)", b, len(ids), dups, dataplaneRows, names(entries))
		}
	}
	if entries, err := os.ReadDir(filepath.Join(root, ".weir-staging")); err == nil && len(entries) > 0 {
		t.Errorf("staging leftovers at the target: %v", names(entries))
	}
}

// waitActive waits until a run of runs is active in an attempt begun since.
func waitActive(t *testing.T, c *cluster, runs map[string]bool, since time.Time, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		all := map[string]string{}
		for id := range runs {
			all[id] = id
		}
		if a := activeNow(t, c, all, since); len(a) > 0 {
			return
		}
		if time.Now().After(deadline) {
			list, _, _ := c.store.ListRuns(context.Background(), catalog.RunFilter{Limit: 100})
			var states []string
			for _, r := range list {
				states = append(states, fmt.Sprintf("%s %s attempt %d %q %q", r.ID, r.State, r.Attempt, r.HoldReason, r.Error))
			}
			t.Fatalf("no run active within %s:\n%s", timeout, strings.Join(states, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// activeNow returns the mappings of the runs active now in an attempt begun
// since (by the worker process started then: a killed process's runs stay
// active until their lease expires).
func activeNow(t *testing.T, c *cluster, runs map[string]string, since time.Time) map[string]bool {
	t.Helper()
	ctx := context.Background()
	list, _, err := c.store.ListRuns(ctx, catalog.RunFilter{States: []catalog.RunState{catalog.StateActive}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, r := range list {
		m, ok := runs[r.ID]
		if !ok {
			continue
		}
		attempts, err := c.store.ListRunAttempts(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(attempts); n > 0 && attempts[n-1].FinishedAt == nil && attempts[n-1].StartedAt.After(since) {
			out[m] = true
		}
	}
	return out
}

// countCSV adds the ids of a delivered CSV file to ids.
func countCSV(t *testing.T, path string, ids map[int64]int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
	header, err := r.Read()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if strings.Join(header, ",") != "batch,id,name,amount,cents" {
		t.Fatalf("%s: header %v", path, header)
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		id, err := strconv.ParseInt(rec[1], 10, 64)
		if err != nil {
			t.Fatalf("%s: id %q", path, rec[1])
		}
		ids[id]++
	}
}

func names(entries []os.DirEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
