package workload

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

const region = "local"

// env is a catalog with a user, ready for systems, mappings and runs.
type env struct {
	t    *testing.T
	s    *catalog.Store
	user *catalog.User
	gen  *catalog.RunIDGenerator
}

func newEnv(t *testing.T, s *catalog.Store) *env {
	t.Helper()
	u := &catalog.User{Name: "alice", Role: catalog.RoleAdmin}
	require.NoError(t, s.CreateUser(context.Background(), u))
	return &env{t: t, s: s, user: u, gen: catalog.NewRunIDGenerator(region)}
}

// system creates an fs system with a concurrency limit (0: none).
func (e *env) system(name string, limit int) {
	e.t.Helper()
	require.NoError(e.t, e.s.CreateSystem(context.Background(), &catalog.System{Name: name, Kind: catalog.KindFS, Region: region,
		Settings: catalog.NewJSON(map[string]string{"root": "/tmp/" + name}), MaxConcurrentRuns: limit}))
}

// mapping creates a mapping from src to dst with a date parameter d.
func (e *env) mapping(name, src, dst string) {
	e.t.Helper()
	require.NoError(e.t, e.s.PutMapping(context.Background(), &catalog.Mapping{Name: name, Enabled: true,
		Source: catalog.NewJSON(catalog.Endpoint{System: src, Path: "in/{d}/*.csv"}),
		Target: catalog.NewJSON(catalog.Endpoint{System: dst, Path: "out/{d}"}),
		Params: catalog.NewJSON([]catalog.ParamSpec{{Name: "d", Type: catalog.ParamDate, Required: true}})}))
}

// submit inserts a pending run of mapping (latest version) with priority.
func (e *env) submit(mapping string, priority int, change ...func(*catalog.Run)) *catalog.Run {
	e.t.Helper()
	ctx := context.Background()
	m, err := e.s.GetMapping(ctx, mapping)
	require.NoError(e.t, err)
	r := &catalog.Run{ID: e.gen.Next(), Region: region, Mapping: m.Name, MappingVersion: m.Version,
		Params: catalog.NewJSON(map[string]string{"d": "2026-11-20"}), SourceSystem: m.SourceSystem, TargetSystem: m.TargetSystem,
		RequestType: catalog.RequestTransfer, Priority: priority, MaxAttempts: m.MaxAttempts, TimeoutSeconds: m.TimeoutSeconds,
		UserID: e.user.ID, SubmittedBy: e.user.Name}
	for _, c := range change {
		c(r)
	}
	_, _, err = e.s.InsertRun(ctx, r)
	require.NoError(e.t, err)
	return r
}

func (e *env) run(id string) *catalog.Run {
	e.t.Helper()
	r, err := e.s.GetRun(context.Background(), id)
	require.NoError(e.t, err)
	return r
}

// waitState waits until run id is in state.
func (e *env) waitState(id string, state catalog.RunState, within time.Duration) *catalog.Run {
	e.t.Helper()
	var r *catalog.Run
	require.Eventually(e.t, func() bool {
		r = e.run(id)
		return r.State == state
	}, within, 5*time.Millisecond, "run %s never became %s", id, state)
	return r
}

// heartbeat keeps a worker node alive until the returned stop is called (or the test ends).
func heartbeat(t *testing.T, s *catalog.Store, id string, slots int, roles ...string) (stop func()) {
	t.Helper()
	if len(roles) == 0 {
		roles = []string{catalog.NodeRoleWorker}
	}
	beat := func() error {
		return s.UpsertNode(context.Background(), &catalog.Node{ID: id, Region: region, Roles: catalog.NewJSON(roles), Slots: slots})
	}
	require.NoError(t, beat())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				_ = beat()
			}
		}
	})
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// testConfig is a Config with short timings for tests.
func testConfig(t *testing.T, node string) Config {
	return Config{
		Region:        region,
		NodeID:        node,
		MaxActiveRuns: 64,
		LeaseTTL:      time.Second,
		PollInterval:  50 * time.Millisecond,
		NodeDeadAfter: 2 * time.Second,
		Logger:        slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})).With(slog.String("node", node)),
	}
}

// started is a Manager running in the background.
type started struct {
	*Manager
	cancel context.CancelFunc
	done   chan error
}

// start runs a Manager until stop (or the test's end).
func start(t *testing.T, cfg Config, s Store) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := &started{Manager: New(cfg, s), cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- m.Run(ctx) }()
	t.Cleanup(func() { m.stop(t) })
	return m
}

// stop cancels the Manager and waits for Run to return nil.
func (m *started) stop(t *testing.T) {
	t.Helper()
	m.cancel()
	select {
	case err, ok := <-m.done:
		if ok {
			require.NoError(t, err)
			close(m.done)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Manager.Run did not return after its context ended")
	}
}

// waitLeader waits until m leads.
func waitLeader(t *testing.T, m *started, within time.Duration) {
	t.Helper()
	require.Eventually(t, m.IsLeader, within, 5*time.Millisecond, "manager %s never became leader", m.cfg.NodeID)
}

// openShared opens n Stores on one fresh, migrated catalog of dialect: on
// PostgreSQL like n processes would (notifications travel through
// LISTEN/NOTIFY); on SQLite the same Store n times, since its wake-ups stay
// inside one Store.
func openShared(t *testing.T, dialect string, n int) []*catalog.Store {
	t.Helper()
	dsn := catalogtest.DSN(t, dialect)
	ctx := context.Background()
	var out []*catalog.Store
	for i := range n {
		if dialect == catalog.DialectSQLite && i > 0 {
			out = append(out, out[0])
			continue
		}
		s, err := catalog.Open(ctx, catalog.StoreConfig{DSN: dsn})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		if i == 0 {
			require.NoError(t, s.Migrate(ctx))
		}
		out = append(out, s)
	}
	return out
}

// eachDialect runs fn as a parallel subtest on every dialect.
func eachDialect(t *testing.T, fn func(t *testing.T, dialect string)) {
	for _, d := range catalogtest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

// claimOne claims the runs queued on worker and returns them by run_id.
func claim(t *testing.T, s *catalog.Store, worker string, lease time.Duration) map[string]catalog.Run {
	t.Helper()
	runs, err := s.ClaimRuns(context.Background(), catalog.ClaimParams{Worker: worker, Limit: 100, LeaseTTL: lease})
	require.NoError(t, err)
	out := map[string]catalog.Run{}
	for _, r := range runs {
		out[r.ID] = r
	}
	return out
}

func finish(t *testing.T, s *catalog.Store, r catalog.Run) {
	t.Helper()
	st, err := s.FinishRun(context.Background(), catalog.FinishParams{RunID: r.ID, FencingToken: r.FencingToken, Worker: r.WorkerID, State: catalog.StateSucceeded})
	require.NoError(t, err)
	require.Equal(t, catalog.StateSucceeded, st)
}
