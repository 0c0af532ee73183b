package catalog_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
)

// Shared fixtures of the Store conformance suite.

const (
	testRegion = "r1"
	testWorker = "w1"
	testLeader = "srv1"
)

// testClock is a settable clock for Store.SetClock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a Store with a test clock, a user, a run_id generator and the
// region's leader lease held by testLeader.
type fixture struct {
	t     *testing.T
	s     *catalog.Store
	ctx   context.Context
	clock *testClock
	user  *catalog.User
	gen   *catalog.RunIDGenerator
	lease *catalog.Lease
}

func newFixture(t *testing.T, s *catalog.Store) *fixture {
	t.Helper()
	f := &fixture{t: t, s: s, ctx: context.Background(), clock: newTestClock(), gen: catalog.NewRunIDGenerator(testRegion)}
	s.SetClock(f.clock.Now)
	f.user = &catalog.User{Name: "alice", Role: catalog.RoleSubmitter}
	require.NoError(t, s.CreateUser(f.ctx, f.user))
	l, err := s.AcquireLease(f.ctx, catalog.LeaderLeaseName(testRegion), testLeader, 1000*time.Hour)
	require.NoError(t, err)
	require.Equal(t, testLeader, l.Holder)
	f.lease = l
	require.NoError(t, s.UpsertNode(f.ctx, &catalog.Node{ID: testWorker, Region: testRegion, Roles: catalog.NewJSON([]string{catalog.NodeRoleWorker}), Slots: 4}))
	return f
}

// newRun returns an unsaved run of mapping m in testRegion; mod may change it.
func (f *fixture) newRun(mod ...func(*catalog.Run)) *catalog.Run {
	r := &catalog.Run{
		ID: f.gen.Next(), Region: testRegion, Mapping: "m", MappingVersion: 1,
		Params:       catalog.NewJSON(map[string]string{"business_date": "2026-02-27"}),
		SourceSystem: "src", TargetSystem: "dst", RequestType: catalog.RequestTransfer,
		MaxAttempts: 3, TimeoutSeconds: 600, UserID: f.user.ID, SubmittedBy: f.user.Name, ClientIP: "10.1.2.3",
	}
	for _, m := range mod {
		m(r)
	}
	return r
}

// pending inserts a new pending run.
func (f *fixture) pending(mod ...func(*catalog.Run)) *catalog.Run {
	f.t.Helper()
	r, created, err := f.s.InsertRun(f.ctx, f.newRun(mod...))
	require.NoError(f.t, err)
	require.True(f.t, created)
	return r
}

// dispatch queues a pending run on worker.
func (f *fixture) dispatch(id, worker string) {
	f.t.Helper()
	require.NoError(f.t, f.s.DispatchRun(f.ctx, catalog.DispatchParams{
		RunID: id, Worker: worker, Plan: &catalog.Plan{SchemaVersion: catalog.PlanSchemaVersion, RunID: id, Worker: worker},
		LeaseName: f.lease.Name, LeaseHolder: f.lease.Holder, LeaseToken: f.lease.Token,
	}))
}

// workerFor names the worker the fixture assigns run id to: one per run, so
// that the runs of one catalog never get in each other's way.
func workerFor(id string) string { return "w-" + id }

// queued inserts a run and queues it on workerFor(its id).
func (f *fixture) queued(mod ...func(*catalog.Run)) *catalog.Run {
	f.t.Helper()
	r := f.pending(mod...)
	f.dispatch(r.ID, workerFor(r.ID))
	return f.reload(r.ID)
}

// claimOne claims exactly the run id for workerFor(id) and returns it.
func (f *fixture) claimOne(id string) catalog.Run {
	f.t.Helper()
	got, err := f.s.ClaimRuns(f.ctx, catalog.ClaimParams{Worker: workerFor(id), Limit: 1, LeaseTTL: time.Minute})
	require.NoError(f.t, err)
	require.Len(f.t, got, 1)
	require.Equal(f.t, id, got[0].ID)
	return got[0]
}

// active inserts a run, queues it on workerFor(its id) and claims it.
func (f *fixture) active(mod ...func(*catalog.Run)) catalog.Run {
	f.t.Helper()
	r := f.queued(mod...)
	return f.claimOne(r.ID)
}

// inState makes a run that is in state st, by the same calls as production.
func (f *fixture) inState(st catalog.RunState) *catalog.Run {
	f.t.Helper()
	switch st {
	case catalog.StatePending:
		return f.pending()
	case catalog.StateQueued:
		return f.queued()
	case catalog.StateActive:
		r := f.active()
		return &r
	case catalog.StateSucceeded, catalog.StateEmpty, catalog.StateCanceled:
		r := f.active()
		got, err := f.s.FinishRun(f.ctx, catalog.FinishParams{RunID: r.ID, FencingToken: r.FencingToken, Worker: testWorker, State: st})
		require.NoError(f.t, err)
		require.Equal(f.t, st, got)
	case catalog.StateFailed:
		r := f.active()
		got, err := f.s.FinishRun(f.ctx, catalog.FinishParams{RunID: r.ID, FencingToken: r.FencingToken, Worker: testWorker, State: st, Error: "boom"})
		require.NoError(f.t, err)
		require.Equal(f.t, st, got)
	case catalog.StateAborted:
		r := f.active(func(r *catalog.Run) { r.TimeoutSeconds = 5 })
		f.clock.Advance(6 * time.Second)
		ids, err := f.s.AbortTimedOut(f.ctx, testRegion)
		require.NoError(f.t, err)
		require.Equal(f.t, []string{r.ID}, ids)
	default:
		f.t.Fatalf("no fixture for state %q", st)
	}
	rows, _, err := f.s.ListRuns(f.ctx, catalog.RunFilter{Limit: 1})
	require.NoError(f.t, err)
	require.Equal(f.t, st, rows[0].State)
	return &rows[0]
}

// reload reads a run back from the catalog.
func (f *fixture) reload(id string) *catalog.Run {
	f.t.Helper()
	r, err := f.s.GetRun(f.ctx, id)
	require.NoError(f.t, err)
	return r
}

// unchanged asserts that the run's row is still before.
func (f *fixture) unchanged(before *catalog.Run) {
	f.t.Helper()
	require.Equal(f.t, *before, *f.reload(before.ID), "a refused transition changed the run")
}

// events returns the kinds of a run's events in order.
func (f *fixture) events(id string) []string {
	f.t.Helper()
	evs, err := f.s.ListRunEvents(f.ctx, id, 0)
	require.NoError(f.t, err)
	kinds := make([]string, len(evs))
	for i, e := range evs {
		kinds[i] = e.Kind
	}
	return kinds
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }
