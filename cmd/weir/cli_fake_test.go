package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// fakeToken is the token the fake server accepts.
const fakeToken = "weir_fakecliteststoken0000000000000000"

// fakeWeir is an in-memory server of the REST API contract, for testing the
// CLI's parsing, output and exit codes. Each run advances one step of its
// script every time a request reads it.
type fakeWeir struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	runs      []*fakeRun // in creation order
	byKey     map[string]*fakeRun
	systems   map[string]client.System
	mappings  map[string]client.Mapping
	requests  []string // "METHOD /path?query"
	bodies    []map[string]any
	nextID    int
	clock     time.Time
	newScript func(r *client.Run) []func(*client.Run)
}

type fakeRun struct {
	run      client.Run
	steps    []func(*client.Run)
	events   []catalog.RunEvent
	tasks    []catalog.RunTask
	manifest *catalog.Manifest
}

func newFakeWeir(t *testing.T) *fakeWeir {
	f := &fakeWeir{
		t:        t,
		byKey:    map[string]*fakeRun{},
		systems:  map[string]client.System{},
		mappings: map[string]client.Mapping{},
		clock:    time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC),
	}
	f.addSystem(catalog.System{Name: "demo-src", Kind: "fs", Region: "local", Settings: catalog.NewJSON(map[string]string{"root": "/data/src"})}, "password")
	f.addSystem(catalog.System{Name: "demo-dst", Kind: "fs", Region: "local", Settings: catalog.NewJSON(map[string]string{"root": "/data/dst"}), MaxConcurrentRuns: 2})
	f.mappings["demo-trades"] = client.Mapping{
		Name: "demo-trades", Version: 2, Region: "local", Enabled: true, MaxAttempts: 3, TimeoutSeconds: 3600, CreatedBy: "admin",
		Source: catalog.NewJSON(catalog.Endpoint{System: "demo-src", Path: "trades/{business_date}"}),
		Target: catalog.NewJSON(catalog.Endpoint{System: "demo-dst", Path: "trades/{business_date}"}),
		Params: catalog.NewJSON([]catalog.ParamSpec{{Name: "business_date", Type: "date", Required: true, Window: &catalog.DateWindow{MaxAgeDays: 30}}}),
	}
	f.newScript = succeedScript
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeWeir) addSystem(s catalog.System, secrets ...string) {
	f.systems[s.Name] = client.System{System: s, SecretKeys: secrets}
}

// succeedScript moves a run pending (held) -> queued -> active with progress -> succeeded, with a manifest.
func succeedScript(*client.Run) []func(*client.Run) {
	return []func(*client.Run){
		func(r *client.Run) { r.HoldReason = "system demo-dst is at its limit of 2 concurrent runs" },
		func(r *client.Run) { r.State, r.HoldReason, r.WorkerID = catalog.StateQueued, "", "node-1" },
		func(r *client.Run) {
			r.State, r.Attempt = catalog.StateActive, 1
			r.Progress = catalog.Progress{TasksTotal: 2, FilesTotal: 3, BytesTotal: 3000}
		},
		func(r *client.Run) {
			r.Progress.FilesDone, r.Progress.BytesDone = 1, 1000
			r.RateBytesPerSecond = 1000
			eta := 2.0
			r.ETASeconds = &eta
		},
		func(r *client.Run) {
			r.State = catalog.StateSucceeded
			r.Progress.FilesDone, r.Progress.BytesDone, r.Progress.TasksDone, r.Progress.Rows = 3, 3000, 2, 30
			r.ETASeconds = nil
		},
	}
}

// failScript moves a run to active, then failed.
func failScript(*client.Run) []func(*client.Run) {
	return []func(*client.Run){
		func(r *client.Run) { r.State, r.Attempt = catalog.StateActive, 3 },
		func(r *client.Run) {
			r.State, r.Error = catalog.StateFailed, "open trades/2026-11-20: permission denied"
		},
	}
}

// stuckScript keeps a run active forever.
func stuckScript(*client.Run) []func(*client.Run) {
	return []func(*client.Run){func(r *client.Run) { r.State, r.Attempt = catalog.StateActive, 1 }}
}

func (f *fakeWeir) url() string { return f.srv.URL }

// requestLog returns the requests the fake has served.
func (f *fakeWeir) requestLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *fakeWeir) lastBody() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bodies) == 0 {
		return nil
	}
	return f.bodies[len(f.bodies)-1]
}

func fakeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fakeErr(w http.ResponseWriter, status int, code, field, format string, args ...any) {
	e := map[string]any{"code": code, "message": fmt.Sprintf(format, args...)}
	if field != "" {
		e["field"] = field
	}
	fakeJSON(w, status, map[string]any{"error": e})
}

// step advances a run one step of its script and sets its timestamps; f.mu is held.
func (f *fakeWeir) step(fr *fakeRun) {
	if len(fr.steps) == 0 {
		return
	}
	before := fr.run.State
	fr.steps[0](&fr.run)
	fr.steps = fr.steps[1:]
	f.clock = f.clock.Add(100 * time.Millisecond)
	now := f.clock
	r := &fr.run
	if r.State != before {
		fr.events = append(fr.events, catalog.RunEvent{ID: int64(len(fr.events) + 1), RunID: r.ID, Attempt: r.Attempt, At: now, Kind: string(r.State), Node: r.WorkerID,
			Message: fmt.Sprintf("run is %s", r.State)})
		switch r.State {
		case catalog.StateQueued:
			r.QueuedAt = &now
		case catalog.StateActive:
			r.StartedAt = &now
			fr.tasks = []catalog.RunTask{{RunID: r.ID, Seq: 1, Thread: 0, State: "active"}, {RunID: r.ID, Seq: 2, Thread: 1, State: "pending"}}
		}
		if r.State.Terminal() {
			r.FinishedAt = &now
			if r.StartedAt != nil {
				r.ElapsedSeconds = now.Sub(*r.StartedAt).Seconds()
			}
			if r.State == catalog.StateSucceeded {
				fr.tasks[0].State, fr.tasks[1].State = "done", "done"
				fr.manifest = &catalog.Manifest{SchemaVersion: 1, RunID: r.ID, Mapping: r.Mapping, MappingVersion: r.MappingVersion, Params: r.Params.V,
					Attempt: r.Attempt, State: r.State, Target: catalog.PlanEndpoint{System: r.TargetSystem, Kind: "fs", Path: "trades/2026-11-20"},
					StartedAt: *r.StartedAt, FinishedAt: now, TotalFiles: 3, TotalBytes: 3000, TotalRows: 30,
					Files: []catalog.ManifestFile{{Path: "a.csv", Size: 1000, SHA256: "aa"}, {Path: "b.csv", Size: 1000, SHA256: "bb"}, {Path: "c.csv", Size: 1000, SHA256: "cc"}}}
			}
		}
	}
	r.UpdatedAt = now
}

func (f *fakeWeir) findRun(id string) *fakeRun {
	for _, fr := range f.runs {
		if fr.run.ID == id {
			return fr
		}
	}
	return nil
}

func (f *fakeWeir) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	line := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		line += "?" + r.URL.RawQuery
	}
	f.requests = append(f.requests, line)
	if r.Header.Get("Authorization") != "Bearer "+fakeToken {
		fakeErr(w, 401, "unauthenticated", "", "unauthenticated: unknown or revoked token")
		return
	}
	var body map[string]any
	if r.Body != nil && (r.Method == http.MethodPost || r.Method == http.MethodPut) {
		if err := json.NewDecoder(r.Body).Decode(&body); err == nil {
			f.bodies = append(f.bodies, body)
		}
	}
	path := strings.TrimPrefix(r.URL.Path, "/api/v1")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case r.Method == "POST" && path == "/runs":
		f.submit(w, body)
	case r.Method == "GET" && path == "/runs":
		f.list(w, r)
	case len(parts) >= 2 && parts[0] == "runs":
		fr := f.findRun(parts[1])
		if fr == nil {
			fakeErr(w, 404, "not_found", "", "no run %s", parts[1])
			return
		}
		switch {
		case len(parts) == 2 && r.Method == "GET":
			f.step(fr)
			fakeJSON(w, 200, fr.run)
		case len(parts) == 3 && parts[2] == "cancel" && r.Method == "POST":
			if fr.run.State.Terminal() {
				fakeErr(w, 409, "illegal_transition", "", "run %s: transition [%s] -> canceled: illegal transition", fr.run.ID, fr.run.State)
				return
			}
			if fr.run.State == catalog.StateActive {
				fr.run.CancelRequested = true
			} else {
				fr.run.State, fr.steps = catalog.StateCanceled, nil
			}
			fakeJSON(w, 200, fr.run)
		case len(parts) == 3 && parts[2] == "events":
			after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
			evs := []catalog.RunEvent{}
			for _, e := range fr.events {
				if e.ID > after {
					evs = append(evs, e)
				}
			}
			fakeJSON(w, 200, map[string]any{"events": evs})
		case len(parts) == 3 && parts[2] == "tasks":
			ts := fr.tasks
			if ts == nil {
				ts = []catalog.RunTask{}
			}
			fakeJSON(w, 200, map[string]any{"tasks": ts})
		case len(parts) == 3 && parts[2] == "manifest":
			if fr.manifest == nil {
				fakeErr(w, 404, "not_found", "", "run %s has no manifest yet (it is %s)", fr.run.ID, fr.run.State)
				return
			}
			fakeJSON(w, 200, fr.manifest)
		default:
			fakeErr(w, 404, "not_found", "", "no such route")
		}
	case r.Method == "GET" && path == "/systems":
		names := make([]string, 0, len(f.systems))
		for n := range f.systems {
			names = append(names, n)
		}
		sort.Strings(names)
		out := []client.System{}
		for _, n := range names {
			out = append(out, f.systems[n])
		}
		fakeJSON(w, 200, map[string]any{"systems": out})
	case r.Method == "POST" && path == "/systems":
		name, _ := body["name"].(string)
		if _, ok := f.systems[name]; ok {
			fakeErr(w, 409, "conflict", "", "a system named %q exists already", name)
			return
		}
		kind, _ := body["kind"].(string)
		f.addSystem(catalog.System{Name: name, Kind: kind, Region: "local"})
		fakeJSON(w, 201, f.systems[name])
	case r.Method == "GET" && len(parts) == 2 && parts[0] == "systems":
		s, ok := f.systems[parts[1]]
		if !ok {
			fakeErr(w, 404, "not_found", "", "no system named %q", parts[1])
			return
		}
		fakeJSON(w, 200, s)
	case r.Method == "GET" && path == "/mappings":
		names := make([]string, 0, len(f.mappings))
		for n := range f.mappings {
			names = append(names, n)
		}
		sort.Strings(names)
		out := []client.Mapping{}
		for _, n := range names {
			out = append(out, f.mappings[n])
		}
		fakeJSON(w, 200, map[string]any{"mappings": out})
	case r.Method == "POST" && path == "/mappings":
		b, _ := json.Marshal(body)
		var req client.MappingRequest
		require.NoError(f.t, json.Unmarshal(b, &req))
		if _, ok := f.mappings[req.Name]; ok {
			fakeErr(w, 409, "conflict", "", "a mapping named %q exists already", req.Name)
			return
		}
		m := client.Mapping{Name: req.Name, Version: 1, Region: "local", Enabled: req.Enabled == nil || *req.Enabled,
			Source: catalog.NewJSON(req.Source), Target: catalog.NewJSON(req.Target), Params: catalog.NewJSON(req.Params),
			MaxAttempts: max(req.MaxAttempts, 1), TimeoutSeconds: 3600}
		f.mappings[req.Name] = m
		fakeJSON(w, 201, m)
	case r.Method == "GET" && len(parts) == 2 && parts[0] == "mappings":
		m, ok := f.mappings[parts[1]]
		if !ok {
			fakeErr(w, 404, "not_found", "", "no mapping named %q", parts[1])
			return
		}
		fakeJSON(w, 200, m)
	case r.Method == "GET" && path == "/whoami":
		fakeJSON(w, 200, map[string]any{"id": 2, "name": "ops", "role": "operator", "token_id": 7, "client_ip": "127.0.0.1",
			"entitlements": []any{map[string]any{"resource": "mapping:*", "action": "submit", "cidrs": []string{"10.0.0.0/8"}}}})
	default:
		fakeErr(w, 404, "not_found", "", "no such route")
	}
}

func (f *fakeWeir) submit(w http.ResponseWriter, body map[string]any) {
	name, _ := body["mapping"].(string)
	m, ok := f.mappings[name]
	if !ok {
		fakeErr(w, 404, "not_found", "", "no mapping named %q", name)
		return
	}
	params := map[string]string{}
	if ps, ok := body["params"].(map[string]any); ok {
		for k, v := range ps {
			params[k] = fmt.Sprint(v)
		}
	}
	for k := range params {
		declared := false
		for _, p := range m.Params.V {
			declared = declared || p.Name == k
		}
		if !declared {
			fakeErr(w, 400, "invalid", "params."+k, "params.%s: mapping %s declares no parameter %q", k, name, k)
			return
		}
	}
	for _, p := range m.Params.V {
		if _, ok := params[p.Name]; p.Required && !ok {
			fakeErr(w, 400, "invalid", "params."+p.Name, "params.%s: is required (%s)", p.Name, p.Type)
			return
		}
	}
	key, _ := body["idempotency_key"].(string)
	if prev, ok := f.byKey[key]; ok && key != "" {
		fakeJSON(w, 200, prev.run)
		return
	}
	f.nextID++
	f.clock = f.clock.Add(10 * time.Millisecond)
	run := client.Run{Run: catalog.Run{
		ID: fmt.Sprintf("0176355512345%03d%08d", 1, f.nextID), Region: "local", State: catalog.StatePending,
		Mapping: name, MappingVersion: m.Version, Params: catalog.NewJSON(params), SourceSystem: m.Source.V.System,
		TargetSystem: m.Target.V.System, RequestType: "transfer", MaxAttempts: m.MaxAttempts, SubmittedBy: "ops", ClientIP: "127.0.0.1",
		CreatedAt: f.clock, UpdatedAt: f.clock,
	}}
	if p, ok := body["priority"].(float64); ok {
		run.Priority = int(p)
	}
	if key != "" {
		run.IdempotencyKey = &key
	}
	fr := &fakeRun{run: run, events: []catalog.RunEvent{{ID: 1, RunID: run.ID, At: f.clock, Kind: "submitted", Message: "submitted by ops from 127.0.0.1"}}}
	fr.steps = f.newScript(&fr.run)
	f.runs = append(f.runs, fr)
	if key != "" {
		f.byKey[key] = fr
	}
	fakeJSON(w, 201, fr.run)
}

func (f *fakeWeir) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	states := map[catalog.RunState]bool{}
	if s := q.Get("state"); s != "" {
		for _, st := range strings.Split(s, ",") {
			if !catalog.RunState(st).Valid() {
				fakeErr(w, 400, "bad_request", "state", "unknown run state %q", st)
				return
			}
			states[catalog.RunState(st)] = true
		}
	}
	limit := 50
	if l := q.Get("limit"); l != "" {
		limit, _ = strconv.Atoi(l)
	}
	cursor := q.Get("cursor")
	page := []client.Run{}
	next := ""
	for i := len(f.runs) - 1; i >= 0; i-- { // newest first
		fr := f.runs[i]
		f.step(fr)
		if cursor != "" && fr.run.ID >= cursor {
			continue
		}
		if m := q.Get("mapping"); m != "" && fr.run.Mapping != m {
			continue
		}
		if len(states) > 0 && !states[fr.run.State] {
			continue
		}
		if len(page) == limit {
			next = page[len(page)-1].ID
			break
		}
		page = append(page, fr.run)
	}
	fakeJSON(w, 200, map[string]any{"runs": page, "next_cursor": next})
}

// cliResult is one CLI invocation's outputs.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs the weir CLI with args against server, with the fake's token
// and an empty data dir.
func runCLI(t *testing.T, ctx context.Context, server string, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	all := append([]string{"--server", server, "--token", fakeToken, "--data-dir", t.TempDir()}, args...)
	code := NewMain(&out, &errb).Run(ctx, all)
	return cliResult{stdout: out.String(), stderr: errb.String(), code: code}
}
