package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
	gossip "github.com/weirdata/weir/cluster"
	"github.com/weirdata/weir/dispatcher"
	"github.com/weirdata/weir/worker"
	"github.com/weirdata/weir/workload"
)

const agentRegion = "r1"

// agentWorld is a catalog on PostgreSQL with fs systems on temporary
// directories, dispatcher agents served on loopback addresses other than
// 127.0.0.1 (as on other hosts), and a worker w1 that calls them with its
// node token.
type agentWorld struct {
	t     *testing.T
	store *catalog.Store
	user  *catalog.User
	gen   *catalog.RunIDGenerator
	roots map[string]string
	token *nodeToken
	log   *slog.Logger
}

// sourceRows is how many rows the source file holds.
const sourceRows = 7

func newAgentWorld(t *testing.T) *agentWorld {
	w := &agentWorld{t: t, store: catalogtest.Open(t, "postgres"), gen: catalog.NewRunIDGenerator(agentRegion), roots: map[string]string{},
		log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))}
	ctx := context.Background()
	w.user = &catalog.User{Name: "tester", Role: catalog.RoleAdmin}
	require.NoError(t, w.store.CreateUser(ctx, w.user))
	for _, name := range []string{"src", "linked", "plain", "downed", "lied"} {
		w.roots[name] = t.TempDir()
		require.NoError(t, w.store.CreateSystem(ctx, &catalog.System{Name: name, Kind: catalog.KindFS, Region: agentRegion,
			Settings: catalog.NewJSON(map[string]string{"root": w.roots[name]})}))
	}
	var csv strings.Builder
	csv.WriteString("id,name\n")
	for i := range sourceRows {
		fmt.Fprintf(&csv, "%d,n%d\n", i, i)
	}
	require.NoError(t, os.MkdirAll(filepath.Join(w.roots["src"], "in"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(w.roots["src"], "in", "data.csv"), []byte(csv.String()), 0o644))
	var err error
	w.token, err = newNodeToken(ctx, w.store, "w1", time.Hour, w.log)
	require.NoError(t, err)
	return w
}

// agentStoreView is an agent's catalog whose view of one system's root
// differs: an agent whose host mounts other data under the system's path.
type agentStoreView struct {
	*nodeAuth
	system, root string
}

func (v *agentStoreView) GetSystem(ctx context.Context, name string) (*catalog.System, error) {
	sys, err := v.nodeAuth.GetSystem(ctx, name)
	if err == nil && name == v.system {
		sys.Settings = catalog.NewJSON(map[string]string{"root": v.root})
	}
	return sys, err
}

// serveAgent serves a dispatcher agent for systems on ip and links them to
// it, as `weir agent --systems` does; it returns the agent's URL.
func (w *agentWorld) serveAgent(node, ip string, store dispatcher.Store, systems ...string) string {
	t := w.t
	if store == nil {
		store = newNodeAuth(w.store, node)
	}
	a, err := dispatcher.NewAgent(dispatcher.AgentConfig{NodeID: node, Region: agentRegion, Systems: systems, Logger: w.log}, store, nil)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", ip+":0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	url := "http://" + ln.Addr().String()
	w.link(node, url, systems...)
	return url
}

// link records node as a live agent at url serving systems.
func (w *agentWorld) link(node, url string, systems ...string) {
	ctx := context.Background()
	require.NoError(w.t, w.store.UpsertNode(ctx, &catalog.Node{ID: node, Region: agentRegion, Roles: catalog.NewJSON([]string{gossip.RoleAgent}), Address: url}))
	for _, s := range systems {
		require.NoError(w.t, w.store.SetSystemAttributes(ctx, s, map[string]string{catalog.SystemNodeAttribute: node}))
	}
}

// startWorker runs worker w1 with the agent directory until the test ends.
func (w *agentWorld) startWorker() {
	cfg := worker.Config{NodeID: "w1", Region: agentRegion, Slots: 2, Threads: 2, LeaseTTL: 10 * time.Second,
		HeartbeatInterval: 200 * time.Millisecond, PollInterval: 100 * time.Millisecond, AgentTimeout: 20 * time.Second,
		Load: func(context.Context) (float64, int, error) { return 0, 2, nil }, Logger: w.log,
		Agents: newAgentDirectory(w.store, w.token.Secret)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- worker.New(cfg, w.store, nil).Run(ctx) }()
	w.t.Cleanup(func() { cancel(); require.NoError(w.t, <-done) })
}

// run stores a CSV row mapping from src to target, runs it on w1 and
// returns the finished run.
func (w *agentWorld) run(target, mode string) *catalog.Run {
	schema := []catalog.SchemaField{{Name: "id", Type: "int"}, {Name: "name", Type: "string"}}
	m := &catalog.Mapping{Name: "to-" + target, Enabled: true, MaxAttempts: 1, WriteMode: mode,
		Source: catalog.NewJSON(catalog.Endpoint{System: "src", Path: "in", Format: "csv", Schema: schema}),
		Target: catalog.NewJSON(catalog.Endpoint{System: target, Path: "out", Format: "csv"})}
	require.NoError(w.t, w.store.PutMapping(context.Background(), m))
	return w.runMapping(m.Name)
}

// runMapping runs the mapping on w1 and returns the finished run.
func (w *agentWorld) runMapping(name string) *catalog.Run {
	t, ctx := w.t, context.Background()
	m, err := w.store.GetMapping(ctx, name)
	require.NoError(t, err)
	r := &catalog.Run{ID: w.gen.Next(), Region: agentRegion, Mapping: m.Name, MappingVersion: m.Version, Params: catalog.NewJSON(map[string]string{}),
		SourceSystem: m.SourceSystem, TargetSystem: m.TargetSystem, RequestType: catalog.RequestTransfer,
		MaxAttempts: 1, UserID: w.user.ID, SubmittedBy: w.user.Name}
	_, _, err = w.store.InsertRun(ctx, r)
	require.NoError(t, err)
	l, err := w.store.AcquireLease(ctx, catalog.LeaderLeaseName(agentRegion), "s1", time.Minute)
	require.NoError(t, err)
	plan := &catalog.Plan{SchemaVersion: catalog.PlanSchemaVersion, RunID: r.ID, Mapping: r.Mapping, MappingVersion: r.MappingVersion,
		Params: map[string]string{}, Steps: []string{"copy"}, Worker: "w1", MaxThreads: 2, CreatedAt: time.Now().UTC()}
	require.NoError(t, w.store.DispatchRun(ctx, catalog.DispatchParams{RunID: r.ID, Worker: "w1", Plan: plan,
		LeaseName: l.Name, LeaseHolder: l.Holder, LeaseToken: l.Token}))
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := w.store.GetRun(ctx, r.ID)
		require.NoError(t, err)
		if got.State.Terminal() {
			return got
		}
		require.True(t, time.Now().Before(deadline), "run %s still %s", r.ID, got.State)
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *agentWorld) events(id string) map[string][]string {
	evs, err := w.store.ListRunEvents(context.Background(), id, 0)
	require.NoError(w.t, err)
	out := map[string][]string{}
	for _, ev := range evs {
		out[ev.Kind] = append(out[ev.Kind], ev.Message)
	}
	return out
}

// audit returns the agent calls node's agent recorded, by action.
func (w *agentWorld) audit(node string) []catalog.AuditEntry {
	es, _, err := w.store.ListAudit(context.Background(), catalog.AuditFilter{Node: node, Action: "dispatcher.*", Limit: 1000})
	require.NoError(w.t, err)
	return es
}

// TestWorkerCallsLinkedAgents runs deliveries to a target linked to a live
// agent (counted and verified by it, audited as the worker's node), to one
// with no agent (counted in-process), to one whose agent is down (counted
// in-process after a warning), and to one whose agent counts other rows
// (the run fails); then refuses the worker's token once revoked.
func TestWorkerCallsLinkedAgents(t *testing.T) {
	w := newAgentWorld(t)
	// A database target on the agent's host too.
	liteRoot := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(liteRoot, "lite.db"))
	require.NoError(t, err)
	_, err = db.Exec("CREATE TABLE t (id INTEGER, name TEXT)")
	require.NoError(t, err)
	require.NoError(t, db.Close())
	require.NoError(t, w.store.CreateSystem(context.Background(), &catalog.System{Name: "lite", Kind: "sqlite", Region: agentRegion,
		Settings: catalog.NewJSON(map[string]string{"root": liteRoot, "path": "lite.db"})}))
	agentURL := w.serveAgent("agent-1", "127.0.0.2", nil, "src", "linked", "lite")
	// An agent whose view of "lied" is another directory holding one row
	// per part file the worker may write.
	other := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(other, "out"), 0o755))
	for i := range 4 {
		require.NoError(t, os.WriteFile(filepath.Join(other, "out", fmt.Sprintf("part-%d.csv", i)), []byte("id,name\n1,x\n"), 0o644))
	}
	w.serveAgent("agent-liar", "127.0.0.3", &agentStoreView{nodeAuth: newNodeAuth(w.store, "agent-liar"), system: "lied", root: other}, "lied")
	// A linked agent that is gone: its address refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.4:0")
	require.NoError(t, err)
	downURL := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	w.link("agent-down", downURL, "downed")
	w.startWorker()

	t.Run("linked target counted and verified by its agent", func(t *testing.T) {
		r := w.run("linked", "")
		require.Equal(t, catalog.StateSucceeded, r.State, r.Error)
		c := r.Manifest.V.Counts
		require.EqualValues(t, sourceRows, *c.TargetRows)
		require.Equal(t, "scan by agent agent-1", c.TargetMethod)
		require.NotNil(t, c.SourceCounted, "the source's agent did not count it")
		require.EqualValues(t, sourceRows, *c.SourceCounted)
		require.Equal(t, "scan by agent agent-1", c.SourceMethod)
		ev := w.events(r.ID)
		require.Len(t, ev["verified"], 1, "%v", ev)
		require.Contains(t, ev["verified"][0], "agent agent-1 verified the delivery at linked: 1 of 1 files intact")
		require.Empty(t, ev["agent-unreachable"])

		var actions []string
		for _, e := range w.audit("agent-1") {
			require.Equal(t, "node:w1", e.Actor, "the agent audited the worker as %s", e.Actor)
			require.Equal(t, catalog.AuditOK, e.Outcome, e.Detail)
			actions = append(actions, e.Action+" "+e.Target)
		}
		require.Contains(t, actions, "dispatcher.count system:linked")
		require.Contains(t, actions, "dispatcher.count system:src")
		require.Contains(t, actions, "dispatcher.verify run:"+r.ID)
	})

	t.Run("table counted by its agent", func(t *testing.T) {
		schema := []catalog.SchemaField{{Name: "id", Type: "int"}, {Name: "name", Type: "string"}}
		m := &catalog.Mapping{Name: "to-lite", Enabled: true, MaxAttempts: 1,
			Source: catalog.NewJSON(catalog.Endpoint{System: "src", Path: "in", Format: "csv", Schema: schema}),
			Target: catalog.NewJSON(catalog.Endpoint{System: "lite", Table: "t"})}
		require.NoError(t, w.store.PutMapping(context.Background(), m))
		for i := range 2 {
			r := w.runMapping(m.Name)
			require.Equal(t, catalog.StateSucceeded, r.State, r.Error)
			c := r.Manifest.V.Counts
			require.EqualValues(t, sourceRows*i, *c.TargetBefore)
			require.EqualValues(t, sourceRows*(i+1), *c.TargetRows)
			require.Equal(t, "sql by agent agent-1", c.TargetMethod)
			require.Contains(t, c.Check, fmt.Sprintf("went from %d to %d rows", sourceRows*i, sourceRows*(i+1)))
			require.Empty(t, w.events(r.ID)["verified"], "a table was verified as files")
		}
	})

	t.Run("target without agent counted in-process", func(t *testing.T) {
		before := len(w.audit("agent-1"))
		r := w.run("plain", "")
		require.Equal(t, catalog.StateSucceeded, r.State, r.Error)
		c := r.Manifest.V.Counts
		require.EqualValues(t, sourceRows, *c.TargetRows)
		require.NotContains(t, c.TargetMethod, "agent")
		ev := w.events(r.ID)
		require.Empty(t, ev["verified"])
		require.Empty(t, ev["agent-unreachable"])
		// Only the source was counted by its agent.
		after := w.audit("agent-1")
		require.Len(t, after, before+1)
		require.Equal(t, "system:src", after[0].Target)
	})

	t.Run("agent down: counted in-process with a warning", func(t *testing.T) {
		r := w.run("downed", "")
		require.Equal(t, catalog.StateSucceeded, r.State, r.Error)
		c := r.Manifest.V.Counts
		require.EqualValues(t, sourceRows, *c.TargetRows)
		require.NotContains(t, c.TargetMethod, "agent")
		ev := w.events(r.ID)
		require.NotEmpty(t, ev["agent-unreachable"], "%v", ev)
		require.Contains(t, ev["agent-unreachable"][0], "the dispatcher agent of system downed did not count")
		require.Contains(t, ev["agent-unreachable"][0], "connection refused")
	})

	t.Run("a wrong count at the agent fails the run", func(t *testing.T) {
		r := w.run("lied", catalog.WriteTruncateInsert)
		require.Equal(t, catalog.StateFailed, r.State)
		require.Contains(t, r.Error, "count mismatch")
		require.Contains(t, r.Error, "hold 1 rows, 7 were written")
		es := w.audit("agent-liar")
		require.NotEmpty(t, es)
		require.Equal(t, "node:w1", es[0].Actor)
	})

	t.Run("a revoked or expired node token is refused", func(t *testing.T) {
		ctx := context.Background()
		old := w.token.Secret()
		n, err := w.store.RevokeNodeTokens(ctx, "w1")
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		_, err = dispatcher.NewClient(agentURL, old).Count(ctx, "src", dispatcher.CountArgs{Path: "in"})
		require.ErrorIs(t, err, catalog.ErrUnauthenticated)
		es := w.audit("agent-1")
		require.Equal(t, catalog.AuditUnauthenticated, es[0].Outcome)
		require.Contains(t, es[0].Detail, "revoked")

		expiring, err := newNodeToken(ctx, w.store, "w9", 500*time.Millisecond, w.log)
		require.NoError(t, err)
		_, err = dispatcher.NewClient(agentURL, expiring.Secret()).Count(ctx, "src", dispatcher.CountArgs{Path: "in"})
		require.NoError(t, err)
		time.Sleep(600 * time.Millisecond)
		_, err = dispatcher.NewClient(agentURL, expiring.Secret()).Count(ctx, "src", dispatcher.CountArgs{Path: "in"})
		require.ErrorIs(t, err, catalog.ErrUnauthenticated)
		require.Contains(t, w.audit("agent-1")[0].Detail, "expired")
	})
}

// TestLeaderProbesStaleSystemsThroughTheirAgent has the region's leader
// probe the systems whose agent has not recorded a probe, through that
// agent, and record a failed probe for a system whose agent is down.
func TestLeaderProbesStaleSystemsThroughTheirAgent(t *testing.T) {
	w := newAgentWorld(t)
	ctx := context.Background()
	w.serveAgent("agent-1", "127.0.0.2", nil, "src", "linked")
	w.link("agent-down", "http://127.0.0.4:1", "downed")
	dir := newAgentDirectory(w.store, w.token.Secret)
	dir.backoff = 10 * time.Millisecond
	p := workload.NewAgentProber(workload.AgentProberConfig{Region: agentRegion, NodeID: "s1", StaleAfter: time.Hour, Logger: w.log}, w.store, dir)

	done, err := p.Pass(ctx)
	require.NoError(t, err)
	require.Empty(t, done, "a node that does not lead probed")

	_, err = w.store.AcquireLease(ctx, catalog.LeaderLeaseName(agentRegion), "s1", time.Minute)
	require.NoError(t, err)
	done, err = p.Pass(ctx)
	require.NoError(t, err)
	slices.Sort(done)
	require.Equal(t, []string{"downed", "linked", "src"}, done, "plain has no agent: the servers' own prober does it")

	attrs, err := w.store.GetSystemAttributes(ctx, "linked")
	require.NoError(t, err)
	require.Equal(t, "agent-1", attrs[catalog.SystemNodeAttribute], "the link was lost")
	require.Equal(t, "s1", attrs[catalog.SystemProbedBy])
	require.Equal(t, catalog.KindFS, attrs["kind"])
	require.NotEmpty(t, attrs["root.total_bytes"])
	require.NotEmpty(t, attrs[catalog.SystemProbedAt])
	down, err := w.store.GetSystemAttributes(ctx, "downed")
	require.NoError(t, err)
	require.Equal(t, "agent-down", down[catalog.SystemNodeAttribute])
	require.Contains(t, down[catalog.SystemProbeError], "connection refused")

	es := w.audit("agent-1")
	require.Len(t, es, 2)
	for _, e := range es {
		require.Equal(t, "dispatcher.probe", e.Action)
		require.Equal(t, "node:w1", e.Actor)
	}
	// Fresh now: nothing to do until StaleAfter.
	done, err = p.Pass(ctx)
	require.NoError(t, err)
	require.Empty(t, done)
}

// TestNodeTokenRotation: a running node replaces its token at half its
// life, the replaced one staying valid for calls in flight; its tokens stay
// valid once Run returned, until revoke.
func TestNodeTokenRotation(t *testing.T) {
	w := newAgentWorld(t)
	ctx := context.Background()
	tok, err := newNodeToken(ctx, w.store, "w2", 4*time.Second, w.log)
	require.NoError(t, err)
	first := tok.Secret()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- tok.Run(rctx) }()
	require.Eventually(t, func() bool { return tok.Secret() != first }, 10*time.Second, 20*time.Millisecond, "the token was not replaced")
	for _, s := range []string{first, tok.Secret()} {
		_, found, err := w.store.AuthenticateNode(ctx, s)
		require.True(t, found)
		require.NoError(t, err, "a token of the running node was refused")
	}
	cancel()
	require.NoError(t, <-done)
	_, _, err = w.store.AuthenticateNode(ctx, tok.Secret())
	require.NoError(t, err, "the token is revoked by the stack, once its services stopped")
	tok.revoke(ctx)
	live, err := w.store.LiveNodeTokens(ctx, "w2")
	require.NoError(t, err)
	require.Zero(t, live, "the stopped node's tokens are still valid")
	_, _, err = w.store.AuthenticateNode(ctx, tok.Secret())
	require.ErrorIs(t, err, catalog.ErrUnauthenticated)
}

// flakyTokenStore fails the next fail issues of a node token.
type flakyTokenStore struct {
	nodeTokenStore
	fail   atomic.Int32
	issued atomic.Int32
}

func (f *flakyTokenStore) IssueNodeToken(ctx context.Context, p catalog.IssueNodeTokenParams) (string, *catalog.NodeToken, error) {
	if f.fail.Add(-1) >= 0 {
		return "", nil, errors.New("catalog unreachable")
	}
	f.issued.Add(1)
	return f.nodeTokenStore.IssueNodeToken(ctx, p)
}

// TestNodeTokenRotationRetriesSoon: a replacement that failed is tried
// again after a short pause, not half a life later (when the token would
// have expired).
func TestNodeTokenRotationRetriesSoon(t *testing.T) {
	w := newAgentWorld(t)
	ctx := context.Background()
	store := &flakyTokenStore{nodeTokenStore: w.store}
	const ttl = 6 * time.Second
	tok, err := newNodeToken(ctx, store, "w3", ttl, w.log)
	require.NoError(t, err)
	tok.retry = 100 * time.Millisecond
	first := tok.Secret()
	store.fail.Store(2) // the first replacement and its first retry fail
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- tok.Run(rctx) }()
	require.Eventually(t, func() bool { return tok.Secret() != first }, ttl*3/4, 10*time.Millisecond,
		"the token was not replaced soon after a failed replacement")
	require.Less(t, time.Since(start), ttl*3/4)
	require.EqualValues(t, 2, store.issued.Load(), "issued at start, then once again")
	_, _, err = w.store.AuthenticateNode(ctx, tok.Secret())
	require.NoError(t, err)
	cancel()
	require.NoError(t, <-done)

	// The retry never waits past the current token's expiry.
	tok.expires.Store(time.Now().Add(10 * time.Second).UnixNano())
	tok.retry = time.Minute
	require.InDelta(t, 5*time.Second, tok.retryAfter(time.Now()), float64(100*time.Millisecond))
	tok.expires.Store(time.Now().Add(-time.Second).UnixNano())
	require.Equal(t, time.Minute, tok.retryAfter(time.Now()), "an expired token: the usual pause")
}

// TestNodeTokenValidWhileServicesDrain: the node's token is revoked only
// once the stack's services stopped, so that a worker draining its runs
// still authenticates to other agents.
func TestNodeTokenValidWhileServicesDrain(t *testing.T) {
	dsn := catalogtest.NewSQLiteDSN(t)
	check := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn})
	ctx := context.Background()
	store, err := catalog.Open(ctx, catalog.StoreConfig{DSN: dsn})
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	s, err := newStack(log, store, "w9", agentRegion, 0, "")
	require.NoError(t, err)
	tok, err := s.addNodeToken()
	require.NoError(t, err)
	authed := make(chan error, 1)
	require.NoError(t, s.add("drainer", func() (func(context.Context) error, error) {
		return func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(300 * time.Millisecond) // drains its runs, calling agents
			_, _, err := check.AuthenticateNode(context.Background(), tok.Secret())
			authed <- err
			return nil
		}, nil
	}))
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- s.serve(sctx) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	require.NoError(t, <-served)
	require.NoError(t, <-authed, "the token was revoked while a service still drained")
	live, err := check.LiveNodeTokens(ctx, "w9")
	require.NoError(t, err)
	require.Zero(t, live, "the stopped node's token is still valid")
}

func TestAgentCallRetryable(t *testing.T) {
	for _, c := range []struct {
		err          error
		tokenChanged bool
		want         bool
	}{
		{errors.New("dial tcp 127.0.0.4:1: connect: connection refused"), false, true},
		{&dispatcher.APIError{Status: 503, ErrorDetail: dispatcher.ErrorDetail{Code: dispatcher.CodeBusy}}, false, true},
		{&dispatcher.APIError{Status: 502, ErrorDetail: dispatcher.ErrorDetail{Code: dispatcher.CodeSystemError}}, false, false},
		{&dispatcher.APIError{Status: 504, ErrorDetail: dispatcher.ErrorDetail{Code: dispatcher.CodeTimeout}}, false, false},
		{&dispatcher.APIError{Status: 401}, false, false},
		{&dispatcher.APIError{Status: 401}, true, true},
		{&dispatcher.APIError{Status: 403}, true, false},
		{&dispatcher.APIError{Status: 421}, false, false},
	} {
		require.Equal(t, c.want, retryable(c.err, c.tokenChanged), "%v (token changed: %v)", c.err, c.tokenChanged)
	}
}
