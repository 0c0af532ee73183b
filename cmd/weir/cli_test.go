package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

func TestSubmitPrintsRunIDAndSendsTheRequest(t *testing.T) {
	f := newFakeWeir(t)
	res := runCLI(t, context.Background(), f.url(), "submit", "demo-trades", "-p", "business_date=2026-11-20", "--priority", "7")
	require.Equal(t, ExitOK, res.code, res.stderr)
	id := strings.TrimSpace(res.stdout)
	assert.Len(t, id, catalog.RunIDLength, "stdout is the run_id alone, for $(weir submit ...)")
	assert.Equal(t, id+"\n", res.stdout)

	body := f.lastBody()
	assert.Equal(t, "demo-trades", body["mapping"])
	assert.Equal(t, map[string]any{"business_date": "2026-11-20"}, body["params"])
	assert.EqualValues(t, 7, body["priority"])
	key, _ := body["idempotency_key"].(string)
	assert.True(t, strings.HasPrefix(key, "weir-"), "a key is generated: %q", key)
}

func TestSubmitJSONAndIdempotentReplay(t *testing.T) {
	f := newFakeWeir(t)
	ctx := context.Background()
	first := runCLI(t, ctx, f.url(), "-o", "json", "submit", "demo-trades", "-p", "business_date=2026-11-20", "--idempotency-key", "nightly-1120")
	require.Equal(t, ExitOK, first.code, first.stderr)
	var run map[string]any
	require.NoError(t, json.Unmarshal([]byte(first.stdout), &run), first.stdout)
	assert.Equal(t, "pending", run["state"])
	assert.Equal(t, "nightly-1120", run["idempotency_key"])
	assert.Empty(t, first.stderr)

	again := runCLI(t, ctx, f.url(), "submit", "demo-trades", "-p", "business_date=2026-11-20", "--idempotency-key", "nightly-1120")
	require.Equal(t, ExitOK, again.code, again.stderr)
	assert.Equal(t, run["run_id"], strings.TrimSpace(again.stdout), "the same key gives the same run")
	assert.Contains(t, again.stderr, "was submitted before with this idempotency key")
}

func TestSubmitFlagValidation(t *testing.T) {
	f := newFakeWeir(t)
	ctx := context.Background()
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"no equals", []string{"submit", "demo-trades", "-p", "business_date"}, []string{`bad parameter "business_date": want key=value`, "Hint: write each parameter as -p key=value"}},
		{"empty key", []string{"submit", "demo-trades", "-p", "=x"}, []string{`bad parameter "=x"`}},
		{"duplicate", []string{"submit", "demo-trades", "-p", "a=1", "-p", "a=2"}, []string{`parameter "a" is given twice`}},
		{"no mapping", []string{"submit"}, []string{"weir submit takes 1 argument (the mapping's name), got 0", "Hint: weir submit MAPPING"}},
		{"bad poll", []string{"submit", "demo-trades", "--wait", "--poll", "0s"}, []string{"--poll must be positive"}},
		{"bad output", []string{"-o", "yaml", "submit", "demo-trades", "-p", "business_date=2026-11-20"}, []string{`unknown output format "yaml"`, "Hint: use -o text or -o json"}},
		{"bad output on list", []string{"-o", "xml", "runs", "list"}, []string{`unknown output format "xml"`}},
		{"bad state", []string{"runs", "list", "--state", "running"}, []string{`unknown run state "running"`, "pending, queued, active"}},
		{"bad limit", []string{"runs", "list", "--limit", "0"}, []string{"--limit must be between 1 and 1000, got 0"}},
		{"unknown flag", []string{"submit", "demo-trades", "--param-file", "x"}, []string{"unknown flag: --param-file"}},
		{"extra arg", []string{"runs", "list", "x"}, []string{`weir runs list takes no arguments, got "x"`}},
		{"bad events", []string{"runs", "show", "x", "--events", "-1"}, []string{"--events must be 0 or more"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, ctx, f.url(), tc.args...)
			assert.Equal(t, ExitUsage, res.code, "a bad command line exits %d", ExitUsage)
			for _, w := range tc.want {
				assert.Contains(t, res.stderr, w)
			}
			assert.Empty(t, res.stdout)
		})
	}
	assert.Empty(t, f.requestLog(), "bad input sends nothing to the server")
}

func TestSubmitServerValidationErrorHasHint(t *testing.T) {
	f := newFakeWeir(t)
	res := runCLI(t, context.Background(), f.url(), "submit", "demo-trades", "-p", "day=2026-11-20")
	assert.Equal(t, ExitError, res.code)
	assert.Contains(t, res.stderr, `Error: params.day: mapping demo-trades declares no parameter "day" (400 invalid)`)
	assert.Contains(t, res.stderr, "Hint: `weir mappings show demo-trades` lists its parameters")

	res = runCLI(t, context.Background(), f.url(), "submit", "nope")
	assert.Equal(t, ExitNotFound, res.code)
	assert.Contains(t, res.stderr, `no mapping named "nope" (404 not_found)`)
	assert.Contains(t, res.stderr, "Hint: `weir mappings list`")
}

func TestSubmitWaitSucceeds(t *testing.T) {
	f := newFakeWeir(t)
	res := runCLI(t, context.Background(), f.url(), "submit", "demo-trades", "-p", "business_date=2026-11-20", "--wait", "--poll", "1ms")
	require.Equal(t, ExitOK, res.code, res.stderr)
	id := f.runs[0].run.ID

	// stderr, not a terminal here: one plain line per change, no carriage returns.
	assert.NotContains(t, res.stderr, "\r")
	assert.Contains(t, res.stderr, "Run "+id+" of demo-trades v2 submitted; waiting for it (Ctrl-C stops waiting, not the run).")
	assert.Contains(t, res.stderr, "run "+id+": pending: held: system demo-dst is at its limit of 2 concurrent runs\n")
	assert.Contains(t, res.stderr, "run "+id+": queued: assigned to node-1\n")
	assert.Contains(t, res.stderr, "run "+id+": active: files 0/3, 0 B/3.0 kB\n")
	assert.Contains(t, res.stderr, "run "+id+": succeeded\n")

	assert.Contains(t, res.stdout, "Run "+id+" succeeded in 200ms (attempt 1/3).")
	assert.Contains(t, res.stdout, "  files     3\n")
	assert.Contains(t, res.stdout, "  bytes     3.0 kB (3000)\n")
	assert.Contains(t, res.stdout, "  rows      30\n")
	assert.Contains(t, res.stdout, "  target    demo-dst:trades/2026-11-20\n")
	assert.Contains(t, res.stdout, "  manifest  weir runs manifest "+id+"\n")
}

func TestSubmitWaitJSON(t *testing.T) {
	f := newFakeWeir(t)
	res := runCLI(t, context.Background(), f.url(), "-o", "json", "submit", "demo-trades", "-p", "business_date=2026-11-20", "--wait", "--poll", "1ms")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Empty(t, res.stderr, "no progress with -o json")
	var out struct {
		client.Run
		Manifest *client.Manifest `json:"manifest"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &out), res.stdout)
	assert.Equal(t, catalog.StateSucceeded, out.State)
	assert.EqualValues(t, 3, out.FilesDone)
	require.NotNil(t, out.Manifest)
	assert.Len(t, out.Manifest.Files, 3)
	assert.EqualValues(t, 3000, out.Manifest.TotalBytes)
}

func TestSubmitWaitFailedExitsRunEnded(t *testing.T) {
	f := newFakeWeir(t)
	f.newScript = failScript
	res := runCLI(t, context.Background(), f.url(), "submit", "demo-trades", "-p", "business_date=2026-11-20", "--wait", "--poll", "1ms")
	assert.Equal(t, ExitRunEnded, res.code)
	id := f.runs[0].run.ID
	assert.Contains(t, res.stdout, "Run "+id+" failed")
	assert.Contains(t, res.stderr, "run "+id+" failed: open trades/2026-11-20: permission denied")
	assert.Contains(t, res.stderr, "weir runs events "+id)
	for _, r := range f.requestLog() {
		assert.NotContains(t, r, "/manifest", "a failed run's manifest is not asked for")
	}

	res = runCLI(t, context.Background(), f.url(), "-o", "json", "submit", "demo-trades", "-p", "business_date=2026-11-20", "--wait", "--poll", "1ms")
	assert.Equal(t, ExitRunEnded, res.code)
	var run map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &run))
	assert.Equal(t, "failed", run["state"])
}

func TestSubmitWaitInterruptedLeavesTheRunAlone(t *testing.T) {
	f := newFakeWeir(t)
	f.newScript = stuckScript
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	// Ctrl-C arrives once the run has been seen active a few times.
	f.newScript = func(r *client.Run) []func(*client.Run) {
		steps := stuckScript(r)
		for range 3 {
			steps = append(steps, func(*client.Run) {})
		}
		return append(steps, func(*client.Run) { cancel() })
	}
	code := NewMain(&out, &errb).Run(ctx, []string{"--server", f.url(), "--token", fakeToken, "submit", "demo-trades",
		"-p", "business_date=2026-11-20", "--wait", "--poll", "1ms"})
	assert.Equal(t, ExitError, code)
	id := f.runs[0].run.ID
	assert.Contains(t, errb.String(), "Stopped waiting; run "+id+" is still active and goes on.")
	assert.Contains(t, errb.String(), "weir runs cancel "+id)
	assert.Contains(t, errb.String(), "weir runs events "+id+" --follow")
	for _, r := range f.requestLog() {
		assert.NotContains(t, r, "/cancel", "stopping the wait does not cancel the run")
	}
}

func TestConnectionRefusedHint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	res := runCLI(t, context.Background(), "http://"+addr, "runs", "list")
	assert.Equal(t, ExitUnreachable, res.code)
	assert.Contains(t, res.stderr, "connection refused")
	assert.Contains(t, res.stderr, "Hint: is the server running at http://"+addr+"? start one with `weir dev`")
	assert.NotContains(t, res.stderr, fakeToken)
}

func TestUnauthorizedHint(t *testing.T) {
	f := newFakeWeir(t)
	var out, errb bytes.Buffer
	code := NewMain(&out, &errb).Run(context.Background(), []string{"--server", f.url(), "--token", "weir_wrongtoken", "runs", "list"})
	assert.Equal(t, ExitAuth, code)
	assert.Contains(t, errb.String(), "unauthenticated: unknown or revoked token (401 unauthenticated)")
	assert.Contains(t, errb.String(), "Hint: check --token / WEIR_TOKEN")
	assert.NotContains(t, errb.String(), "weir_wrongtoken")
}

func TestTokenFromDataDir(t *testing.T) {
	f := newFakeWeir(t)
	t.Setenv("WEIR_TOKEN", "")
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := NewMain(&out, &errb).Run(context.Background(), []string{"--server", f.url(), "--data-dir", dir, "runs", "list"})
	assert.Equal(t, ExitError, code)
	assert.Contains(t, errb.String(), "no API token")
	assert.Empty(t, f.requestLog())

	require.NoError(t, os.WriteFile(filepath.Join(dir, "admin-token"), []byte(fakeToken+"\n"), 0o600))
	out.Reset()
	errb.Reset()
	code = NewMain(&out, &errb).Run(context.Background(), []string{"--server", f.url(), "--data-dir", dir, "runs", "list"})
	assert.Equal(t, ExitOK, code, errb.String())
	assert.Equal(t, "No runs.\n", out.String())
}

func TestBadServerURL(t *testing.T) {
	res := runCLI(t, context.Background(), "127.0.0.1:8080", "runs", "list")
	assert.Equal(t, ExitError, res.code)
	assert.Contains(t, res.stderr, "is not an http:// or https:// URL")
	assert.Contains(t, res.stderr, "Hint: set --server or WEIR_SERVER")
}

// submitN submits n runs of the fake's demo mapping and returns their ids, oldest first.
func submitN(t *testing.T, f *fakeWeir, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		res := runCLI(t, context.Background(), f.url(), "submit", "demo-trades", "-p", "business_date=2026-11-20")
		require.Equal(t, ExitOK, res.code, res.stderr)
		ids = append(ids, strings.TrimSpace(res.stdout))
	}
	return ids
}

func TestRunsList(t *testing.T) {
	f := newFakeWeir(t)
	f.newScript = func(*client.Run) []func(*client.Run) { return nil }
	ids := submitN(t, f, 5)
	f.mu.Lock()
	f.runs[1].run.State = catalog.StateActive
	f.runs[1].run.Attempt = 1
	f.runs[1].run.Progress = catalog.Progress{FilesTotal: 10, FilesDone: 4}
	f.runs[2].run.State = catalog.StateFailed
	f.mu.Unlock()
	ctx := context.Background()

	res := runCLI(t, ctx, f.url(), "runs", "list")
	require.Equal(t, ExitOK, res.code, res.stderr)
	lines := strings.Split(strings.TrimRight(res.stdout, "\n"), "\n")
	require.Len(t, lines, 6)
	assert.Regexp(t, `^RUN_ID\s+STATE\s+MAPPING\s+ATTEMPT\s+PROGRESS\s+SUBMITTED_BY\s+CREATED$`, lines[0])
	assert.Regexp(t, `^`+ids[4]+`\s+pending\s+demo-trades\s+0/3\s+\.\.\.\s+ops\s+2026-11-\d\d \d\d:\d\d:\d\d$`, lines[1], "newest first")
	assert.Regexp(t, `^`+ids[1]+`\s+active\s+demo-trades\s+1/3\s+4/10 files\s+ops`, lines[4])
	assert.Empty(t, res.stderr)

	res = runCLI(t, ctx, f.url(), "-o", "json", "runs", "list", "--state", "active,failed")
	require.Equal(t, ExitOK, res.code, res.stderr)
	var page client.RunPage
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &page))
	require.Len(t, page.Runs, 2)
	assert.Equal(t, ids[2], page.Runs[0].ID)
	assert.Equal(t, ids[1], page.Runs[1].ID)
	assert.Contains(t, f.requestLog()[len(f.requestLog())-1], "state=active%2Cfailed")

	// One page of 2, with a pointer to the next.
	res = runCLI(t, ctx, f.url(), "runs", "list", "--limit", "2")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Len(t, strings.Split(strings.TrimRight(res.stdout, "\n"), "\n"), 3)
	assert.Contains(t, res.stderr, "More runs: add --cursor "+ids[3]+" for the next page, or --all.")

	// --all walks every page.
	res = runCLI(t, ctx, f.url(), "-o", "json", "runs", "list", "--limit", "2", "--all")
	require.Equal(t, ExitOK, res.code, res.stderr)
	page = client.RunPage{}
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &page))
	require.Len(t, page.Runs, 5)
	assert.Equal(t, "", page.NextCursor)
	assert.Equal(t, ids[0], page.Runs[4].ID)

	// Empty JSON lists are [], never null.
	res = runCLI(t, ctx, f.url(), "-o", "json", "runs", "list", "--mapping", "none")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.JSONEq(t, `{"runs":[],"next_cursor":""}`, res.stdout)
}

func TestRunsShow(t *testing.T) {
	f := newFakeWeir(t)
	ids := submitN(t, f, 1)
	ctx := context.Background()
	f.mu.Lock()
	for range 4 { // to active, with progress; then frozen there
		f.step(f.runs[0])
	}
	f.runs[0].steps = nil
	f.mu.Unlock()

	res := runCLI(t, ctx, f.url(), "runs", "show", ids[0], "--events", "2")
	require.Equal(t, ExitOK, res.code, res.stderr)
	out := res.stdout
	assert.Regexp(t, `Run\s+`+ids[0], out)
	assert.Regexp(t, `Mapping\s+demo-trades v2 \(transfer: demo-src -> demo-dst\)`, out)
	assert.Regexp(t, `State\s+active \(attempt 1/3\)`, out)
	assert.Regexp(t, `Params\s+business_date=2026-11-20`, out)
	assert.Regexp(t, `Worker\s+node-1`, out)
	assert.Regexp(t, `Progress\s+tasks 0/2, files 1/3, 1.0 kB/3.0 kB, rows 0`, out)
	assert.Regexp(t, `ETA 2s`, out)
	assert.Contains(t, out, "Tasks: 2 on 2 threads: 1 active, 1 pending")
	assert.Contains(t, out, "Events (last 2 of 3; all: weir runs events "+ids[0]+"):")
	assert.Regexp(t, `\s+queued\s+node-1\s+run is queued`, out)

	res = runCLI(t, ctx, f.url(), "-o", "json", "runs", "show", ids[0])
	require.Equal(t, ExitOK, res.code, res.stderr)
	var detail struct {
		client.Run
		Tasks  []client.Task  `json:"tasks"`
		Events []client.Event `json:"events"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &detail))
	assert.Equal(t, ids[0], detail.ID)
	assert.Len(t, detail.Tasks, 2)
	assert.Len(t, detail.Events, 3)

	res = runCLI(t, ctx, f.url(), "runs", "show", "017635551234500099999999")
	assert.Equal(t, ExitNotFound, res.code)
	assert.Contains(t, res.stderr, "no run 017635551234500099999999 (404 not_found)")
	assert.Contains(t, res.stderr, "Hint: `weir runs list` lists the runs you may read")
}

func TestRunsCancel(t *testing.T) {
	f := newFakeWeir(t)
	f.newScript = func(*client.Run) []func(*client.Run) { return nil }
	ids := submitN(t, f, 2)
	ctx := context.Background()

	res := runCLI(t, ctx, f.url(), "runs", "cancel", ids[0])
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Equal(t, "Run "+ids[0]+" canceled.\n", res.stdout)

	res = runCLI(t, ctx, f.url(), "runs", "cancel", ids[0])
	assert.Equal(t, ExitError, res.code)
	assert.Contains(t, res.stderr, "illegal transition (409 illegal_transition)")
	assert.Contains(t, res.stderr, "Hint: the run has ended or is ending already; see it with `weir runs show "+ids[0]+"`")

	f.mu.Lock()
	f.runs[1].run.State = catalog.StateActive
	f.mu.Unlock()
	res = runCLI(t, ctx, f.url(), "-o", "json", "runs", "cancel", ids[1])
	require.Equal(t, ExitOK, res.code, res.stderr)
	var run map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &run))
	assert.Equal(t, true, run["cancel_requested"])
	assert.Equal(t, "active", run["state"])

	res = runCLI(t, ctx, f.url(), "runs", "cancel")
	assert.Equal(t, ExitUsage, res.code)
	assert.Contains(t, res.stderr, "weir runs cancel takes 1 argument (the run_id), got 0")
}

func TestRunsEvents(t *testing.T) {
	f := newFakeWeir(t)
	ids := submitN(t, f, 1)
	ctx := context.Background()

	res := runCLI(t, ctx, f.url(), "runs", "events", ids[0])
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Regexp(t, `^2026-11-\d\d \d\d:\d\d:\d\d\.\d{3}\s+submitted\s+-\s+submitted by ops from 127.0.0.1\n$`, res.stdout)

	// --follow prints every event until the run ends, then stops by itself.
	res = runCLI(t, ctx, f.url(), "runs", "events", ids[0], "--follow", "--poll", "1ms")
	require.Equal(t, ExitOK, res.code, res.stderr)
	kinds := []string{}
	for _, l := range strings.Split(strings.TrimRight(res.stdout, "\n"), "\n") {
		kinds = append(kinds, strings.Fields(l)[2])
	}
	assert.Equal(t, []string{"submitted", "queued", "active", "succeeded"}, kinds)

	res = runCLI(t, ctx, f.url(), "-o", "json", "runs", "events", ids[0], "--follow", "--after", "2", "--poll", "1ms")
	require.Equal(t, ExitOK, res.code, res.stderr)
	lines := strings.Split(strings.TrimRight(res.stdout, "\n"), "\n")
	require.Len(t, lines, 2, "one JSON event per line")
	var ev client.Event
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &ev))
	assert.Equal(t, "succeeded", ev.Kind)

	res = runCLI(t, ctx, f.url(), "-o", "json", "runs", "events", ids[0])
	require.Equal(t, ExitOK, res.code, res.stderr)
	var all struct {
		Events []client.Event `json:"events"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &all))
	assert.Len(t, all.Events, 4)
}

func TestRunsManifest(t *testing.T) {
	f := newFakeWeir(t)
	ids := submitN(t, f, 1)
	ctx := context.Background()

	res := runCLI(t, ctx, f.url(), "runs", "manifest", ids[0])
	assert.Equal(t, ExitNotFound, res.code)
	assert.Contains(t, res.stderr, "has no manifest yet (it is pending) (404 not_found)")
	assert.Contains(t, res.stderr, "Hint: a manifest is written when a run delivers")

	f.mu.Lock()
	for range 5 {
		f.step(f.runs[0])
	}
	f.mu.Unlock()
	res = runCLI(t, ctx, f.url(), "runs", "manifest", ids[0])
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Regexp(t, `Totals\s+3 files, 3.0 kB \(3000 bytes\), 30 rows`, res.stdout)
	assert.Regexp(t, `Target\s+demo-dst:trades/2026-11-20`, res.stdout)
	assert.Regexp(t, `PATH\s+SIZE\s+SHA256\n`, res.stdout)
	assert.Regexp(t, `b.csv\s+1000\s+bb\n`, res.stdout)

	res = runCLI(t, ctx, f.url(), "-o", "json", "runs", "manifest", ids[0])
	require.Equal(t, ExitOK, res.code, res.stderr)
	var m client.Manifest
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &m))
	assert.Len(t, m.Files, 3)
}

func TestSystemsMappingsWhoAmI(t *testing.T) {
	f := newFakeWeir(t)
	ctx := context.Background()

	res := runCLI(t, ctx, f.url(), "systems", "list")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Regexp(t, `NAME\s+KIND\s+REGION\s+MAX_RUNS\s+SETTINGS\n`, res.stdout)
	assert.Regexp(t, `demo-dst\s+fs\s+local\s+2\s+root=/data/dst\n`, res.stdout)
	assert.Regexp(t, `demo-src\s+fs\s+local\s+no limit\s+root=/data/src\n`, res.stdout)

	res = runCLI(t, ctx, f.url(), "systems", "show", "demo-src")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Regexp(t, `Secrets\s+password \(values never shown\)`, res.stdout)

	res = runCLI(t, ctx, f.url(), "-o", "json", "systems", "list")
	require.Equal(t, ExitOK, res.code, res.stderr)
	var systems struct {
		Systems []client.System `json:"systems"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &systems))
	assert.Len(t, systems.Systems, 2)

	res = runCLI(t, ctx, f.url(), "systems", "show", "nope")
	assert.Equal(t, ExitNotFound, res.code)
	assert.Contains(t, res.stderr, "Hint: `weir systems list`")

	res = runCLI(t, ctx, f.url(), "mappings", "list")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Regexp(t, `demo-trades\s+2\s+true\s+demo-src:trades/\{business_date\}\s+demo-dst:trades/\{business_date\}\s+business_date\n`, res.stdout)

	res = runCLI(t, ctx, f.url(), "mappings", "show", "demo-trades")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Regexp(t, `business_date\s+date\s+true\s+-\s+last 30 days`, res.stdout)
	assert.Contains(t, res.stdout, "Submit: weir submit demo-trades -p business_date=YYYY-MM-DD\n")

	res = runCLI(t, ctx, f.url(), "-o", "json", "mappings", "show", "demo-trades")
	require.Equal(t, ExitOK, res.code, res.stderr)
	var m client.Mapping
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &m))
	assert.Equal(t, 2, m.Version)

	res = runCLI(t, ctx, f.url(), "whoami")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Regexp(t, `User\s+ops \(id 2\)`, res.stdout)
	assert.Regexp(t, `mapping:\*\s+submit\s+10.0.0.0/8`, res.stdout)
}

// TestEveryClientCommandTeaches checks that each command documents itself
// with a description and examples in --help.
func TestEveryClientCommandTeaches(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		assert.NotEmpty(t, c.Short, c.CommandPath())
		assert.NotEmpty(t, c.Example, "%s --help shows no example", c.CommandPath())
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	for _, c := range clientCommands(&globals{main: NewMain(nil, nil)}) {
		walk(c)
	}
	res := runCLI(t, context.Background(), "http://127.0.0.1:1", "submit", "--help")
	assert.Equal(t, ExitOK, res.code)
	assert.Contains(t, res.stdout, "weir submit demo-trades -p business_date=2026-11-20 --wait")
	assert.Contains(t, res.stdout, "--idempotency-key")
}
