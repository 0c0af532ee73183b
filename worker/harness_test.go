package worker_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
	"github.com/weirdata/weir/connector"
	"github.com/weirdata/weir/connector/fs"
	"github.com/weirdata/weir/connector/null"
	"github.com/weirdata/weir/worker"
)

const region = "test-region"

// env is one test's catalog (real SQLite or PostgreSQL), a source and a
// target fs system on temporary directories, and a null system.
type env struct {
	t        testing.TB
	dialect  string
	dsn      string
	store    *catalog.Store
	user     *catalog.User
	gen      *catalog.RunIDGenerator
	src, dst string // the fs systems' roots
}

// eachDialect runs fn in parallel against a fresh env on SQLite and on PostgreSQL.
func eachDialect(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, d := range catalogtest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, d))
		})
	}
}

func newEnv(t testing.TB, dialect string) *env {
	dsn := catalogtest.DSN(t, dialect)
	e := &env{t: t, dialect: dialect, dsn: dsn, gen: catalog.NewRunIDGenerator(region), src: t.TempDir(), dst: t.TempDir()}
	e.store = e.openStore()
	ctx := context.Background()
	require.NoError(t, e.store.Migrate(ctx))
	e.user = &catalog.User{Name: "tester", Role: catalog.RoleAdmin}
	require.NoError(t, e.store.CreateUser(ctx, e.user))
	for _, sys := range []*catalog.System{
		{Name: "src", Kind: "fs", Region: region, Settings: catalog.NewJSON(map[string]string{"root": e.src})},
		{Name: "dst", Kind: "fs", Region: region, Settings: catalog.NewJSON(map[string]string{"root": e.dst})},
		{Name: "void", Kind: "null", Region: region},
	} {
		require.NoError(t, e.store.CreateSystem(ctx, sys))
	}
	return e
}

// openStore opens another Store on the env's catalog, closed at cleanup.
func (e *env) openStore() *catalog.Store {
	s, err := catalog.Open(context.Background(), catalog.StoreConfig{DSN: e.dsn})
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = s.Close() })
	return s
}

// mapping stores a mapping whose paths may use {day}.
func (e *env) mapping(name, srcSys, srcPath, dstSys, dstPath string) {
	m := &catalog.Mapping{Name: name, Enabled: true,
		Source: catalog.NewJSON(catalog.Endpoint{System: srcSys, Path: srcPath}),
		Target: catalog.NewJSON(catalog.Endpoint{System: dstSys, Path: dstPath}),
		Params: catalog.NewJSON([]catalog.ParamSpec{{Name: "day", Type: catalog.ParamString}})}
	require.NoError(e.t, e.store.PutMapping(context.Background(), m))
}

// submit inserts a pending run of the mapping's latest version.
func (e *env) submit(mapping string, params map[string]string) string {
	ctx := context.Background()
	m, err := e.store.GetMapping(ctx, mapping)
	require.NoError(e.t, err)
	r := &catalog.Run{ID: e.gen.Next(), Region: region, Mapping: m.Name, MappingVersion: m.Version, Params: catalog.NewJSON(params),
		SourceSystem: m.SourceSystem, TargetSystem: m.TargetSystem, RequestType: catalog.RequestTransfer,
		MaxAttempts: m.MaxAttempts, TimeoutSeconds: m.TimeoutSeconds, UserID: e.user.ID, SubmittedBy: e.user.Name}
	_, _, err = e.store.InsertRun(ctx, r)
	require.NoError(e.t, err)
	return r.ID
}

// dispatch plays the workload manager: it assigns a pending run to node.
func (e *env) dispatch(id, node string, maxThreads int) {
	ctx := context.Background()
	l, err := e.store.AcquireLease(ctx, catalog.LeaderLeaseName(region), "test-leader", time.Minute)
	require.NoError(e.t, err)
	r, err := e.store.GetRun(ctx, id)
	require.NoError(e.t, err)
	plan := &catalog.Plan{SchemaVersion: catalog.PlanSchemaVersion, RunID: id, Mapping: r.Mapping, MappingVersion: r.MappingVersion,
		Params: r.Params.V, Steps: []string{"copy"}, Worker: node, MaxThreads: maxThreads, CreatedAt: time.Now().UTC()}
	require.NoError(e.t, e.store.DispatchRun(ctx, catalog.DispatchParams{RunID: id, Worker: node, Plan: plan,
		LeaseName: l.Name, LeaseHolder: l.Holder, LeaseToken: l.Token}))
}

// config is a worker configuration with test timings.
func (e *env) config(node string) worker.Config {
	return worker.Config{NodeID: node, Region: region, Address: "127.0.0.1:0", Version: "test", Slots: 2, Threads: 3,
		LeaseTTL: 2 * time.Second, HeartbeatInterval: 100 * time.Millisecond, ProgressInterval: 50 * time.Millisecond,
		PollInterval: 100 * time.Millisecond, DrainTimeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

// start runs a worker until the returned stop is called (or the test ends);
// stop returns how long Run took to return.
func (e *env) start(cfg worker.Config, store worker.Store, conns *connector.Registry) (stop func() time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	w := worker.New(cfg, store, conns)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop = func() time.Duration {
		if stopped {
			return 0
		}
		stopped = true
		began := time.Now()
		cancel()
		select {
		case err := <-done:
			require.NoError(e.t, err)
		case <-time.After(30 * time.Second):
			e.t.Fatal("worker did not stop")
		}
		return time.Since(began)
	}
	e.t.Cleanup(func() { stop() })
	return stop
}

func (e *env) run(id string) *catalog.Run {
	r, err := e.store.GetRun(context.Background(), id)
	require.NoError(e.t, err)
	return r
}

// waitRun polls the run until cond holds.
func (e *env) waitRun(id string, timeout time.Duration, what string, cond func(*catalog.Run) bool) *catalog.Run {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := e.run(id)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %s: waited %s for %s; state %s, progress %+v, error %q", id, timeout, what, r.State, r.Progress, r.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) waitState(id string, timeout time.Duration, want catalog.RunState) *catalog.Run {
	e.t.Helper()
	return e.waitRun(id, timeout, "state "+string(want), func(r *catalog.Run) bool { return r.State == want || r.State.Terminal() })
}

func (e *env) events(id string) []catalog.RunEvent {
	evs, err := e.store.ListRunEvents(context.Background(), id, 0)
	require.NoError(e.t, err)
	return evs
}

func (e *env) waitEvent(id, kind string, timeout time.Duration) catalog.RunEvent {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, ev := range e.events(id) {
			if ev.Kind == kind {
				return ev
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("run %s: no %q event within %s; events: %+v", id, kind, timeout, e.events(id))
	return catalog.RunEvent{}
}

// write creates files (slash paths under root) of the given sizes with random bytes.
func write(t testing.TB, root string, sizes map[string]int) {
	for p, n := range sizes {
		full := filepath.Join(root, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		data := make([]byte, n)
		_, _ = rand.Read(data)
		require.NoError(t, os.WriteFile(full, data, 0o644))
	}
}

// tree returns every file under dir (slash paths relative to dir) with its content.
func tree(t testing.TB, dir string) map[string][]byte {
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
		if errors.Is(err, iofs.ErrNotExist) && p == dir {
			return iofs.SkipAll
		}
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	require.NoError(t, err)
	return out
}

// slowConn is the fs connector with throttled reads, to hold a run active
// long enough to cancel it, reap it or cut its catalog off. A read of a file
// named failOn fails with EIO after its first chunk.
type slowConn struct {
	*fs.Conn
	delay  time.Duration
	reads  *atomic.Int64
	failOn string
}

func (c *slowConn) OpenFile(ctx context.Context, p string) (io.ReadCloser, error) {
	rc, err := c.Conn.OpenFile(ctx, p)
	if err != nil {
		return nil, err
	}
	return &slowReader{rc: rc, c: c, fail: c.failOn != "" && p == c.failOn}, nil
}

type slowReader struct {
	rc   io.ReadCloser
	c    *slowConn
	fail bool
	n    int
}

func (r *slowReader) Read(p []byte) (int, error) {
	time.Sleep(r.c.delay)
	r.c.reads.Add(1)
	if r.fail && r.n > 0 {
		return 0, &os.PathError{Op: "read", Path: r.c.failOn, Err: syscall.EIO}
	}
	r.n++
	return r.rc.Read(p[:min(len(p), 32<<10)])
}

func (r *slowReader) Close() error { return r.rc.Close() }

// slowRegistry serves fs through slowConn, and null as usual.
func slowRegistry(delay time.Duration, reads *atomic.Int64, failOn string) *connector.Registry {
	r := connector.NewRegistry()
	r.Register(fs.Kind, func(ctx context.Context, sys connector.System) (connector.Conn, error) {
		c, err := fs.Open(ctx, sys)
		if err != nil {
			return nil, err
		}
		return &slowConn{Conn: c.(*fs.Conn), delay: delay, reads: reads, failOn: failOn}, nil
	})
	null.Register(r)
	return r
}

// waitStill waits until the counter stops moving for quiet, and returns when it did.
func waitStill(t *testing.T, c *atomic.Int64, quiet, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last, since := c.Load(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		if n := c.Load(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= quiet {
			return since
		}
	}
	t.Fatalf("reads still going after %s", timeout)
	return time.Time{}
}

// flakyStore is a real Store that can be made unreachable.
type flakyStore struct {
	*catalog.Store
	down atomic.Bool
}

var errDown = errors.New("dial tcp: connection refused (test)")

func (f *flakyStore) ClaimRuns(ctx context.Context, p catalog.ClaimParams) ([]catalog.Run, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.Store.ClaimRuns(ctx, p)
}

func (f *flakyStore) RenewLeases(ctx context.Context, l []catalog.RunLease, ttl time.Duration) (catalog.RenewResult, error) {
	if f.down.Load() {
		return catalog.RenewResult{}, errDown
	}
	return f.Store.RenewLeases(ctx, l, ttl)
}

func (f *flakyStore) SaveTasks(ctx context.Context, p catalog.SaveTasksParams) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.SaveTasks(ctx, p)
}

func (f *flakyStore) FlushProgress(ctx context.Context, p catalog.FlushProgressParams) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.FlushProgress(ctx, p)
}

func (f *flakyStore) FinishRun(ctx context.Context, p catalog.FinishParams) (catalog.RunState, error) {
	if f.down.Load() {
		return "", errDown
	}
	return f.Store.FinishRun(ctx, p)
}

func (f *flakyStore) GetMappingVersion(ctx context.Context, name string, v int) (*catalog.Mapping, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.Store.GetMappingVersion(ctx, name, v)
}

func (f *flakyStore) GetSystem(ctx context.Context, name string) (*catalog.System, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.Store.GetSystem(ctx, name)
}

func (f *flakyStore) AddEvent(ctx context.Context, ev *catalog.RunEvent) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.AddEvent(ctx, ev)
}

func (f *flakyStore) UpsertNode(ctx context.Context, n *catalog.Node) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.UpsertNode(ctx, n)
}

func (f *flakyStore) SetNodeState(ctx context.Context, id, state string) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.SetNodeState(ctx, id, state)
}

func hasKind(evs []catalog.RunEvent, kind string) bool {
	for _, ev := range evs {
		if ev.Kind == kind {
			return true
		}
	}
	return false
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
