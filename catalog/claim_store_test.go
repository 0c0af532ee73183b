package catalog_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestClaimRunsTakesOnlyItsQueuedRunsByPriorityThenAge(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		queueOn := func(worker string, prio int) string {
			r := f.pending(func(r *catalog.Run) { r.Priority = prio })
			f.dispatch(r.ID, worker)
			return r.ID
		}
		a := queueOn("w1", 0)
		b := queueOn("w1", 5)
		c := queueOn("w1", 0)
		d := queueOn("w2", 9)
		e := f.pending(func(r *catalog.Run) { r.Priority = 9 }).ID
		queuedAt := f.reload(a).QueuedAt
		require.NotNil(t, queuedAt)

		f.clock.Advance(time.Second)
		now := f.clock.Now()
		got, err := s.ClaimRuns(f.ctx, catalog.ClaimParams{Worker: "w1", Limit: 2, LeaseTTL: 30 * time.Second})
		require.NoError(t, err)
		require.Equal(t, []string{b, a}, []string{got[0].ID, got[1].ID}, "priority first, then age")
		for _, r := range got {
			require.Equal(t, catalog.StateActive, r.State)
			require.Equal(t, 1, r.Attempt)
			require.Equal(t, int64(1), r.FencingToken)
			row := f.reload(r.ID)
			require.Equal(t, catalog.StateActive, row.State)
			require.Equal(t, 1, row.Attempt)
			require.Equal(t, int64(1), row.FencingToken)
			require.Equal(t, "w1", row.WorkerID)
			require.True(t, row.LeaseExpiresAt.Equal(now.Add(30*time.Second)), "lease %v", row.LeaseExpiresAt)
			require.True(t, row.StartedAt.Equal(now))
			as, err := s.ListRunAttempts(f.ctx, r.ID)
			require.NoError(t, err)
			require.Len(t, as, 1)
			require.Equal(t, catalog.RunAttempt{RunID: r.ID, Attempt: 1, WorkerID: "w1", FencingToken: 1, SourceSystem: "src", TargetSystem: "dst",
				QueuedAt: as[0].QueuedAt, StartedAt: as[0].StartedAt, State: catalog.StateActive}, as[0])
			require.True(t, as[0].StartedAt.Equal(now))
			require.Equal(t, []string{"submitted", "queued", "active"}, f.events(r.ID))
		}
		as, err := s.ListRunAttempts(f.ctx, a)
		require.NoError(t, err)
		require.True(t, as[0].QueuedAt.Equal(*queuedAt), "the attempt remembers when it was queued")

		got, err = s.ClaimRuns(f.ctx, catalog.ClaimParams{Worker: "w1", Limit: 10, LeaseTTL: time.Minute})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, c, got[0].ID)
		got, err = s.ClaimRuns(f.ctx, catalog.ClaimParams{Worker: "w1", Limit: 10, LeaseTTL: time.Minute})
		require.NoError(t, err)
		require.Empty(t, got, "nothing left for w1")
		got, err = s.ClaimRuns(f.ctx, catalog.ClaimParams{Worker: "w1", Limit: 0, LeaseTTL: time.Minute})
		require.NoError(t, err)
		require.Empty(t, got)

		require.Equal(t, catalog.StateQueued, f.reload(d).State, "another worker's run stays queued")
		require.Equal(t, catalog.StatePending, f.reload(e).State, "a pending run is not claimable")
	})
}

func TestClaimRunsNewAttemptAfterRetry(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		r := f.active()
		st, err := s.FinishRun(f.ctx, catalog.FinishParams{RunID: r.ID, FencingToken: r.FencingToken, State: catalog.StateFailed, Error: "disk full", Retryable: true})
		require.NoError(t, err)
		require.Equal(t, catalog.StatePending, st)
		f.clock.Advance(catalog.RetryBackoff(1))
		f.dispatch(r.ID, workerFor(r.ID))
		r2 := f.claimOne(r.ID)
		require.Equal(t, 2, r2.Attempt)
		require.Equal(t, int64(2), r2.FencingToken)
		require.Empty(t, f.reload(r.ID).Error, "a new attempt starts without the last one's error")
		as, err := s.ListRunAttempts(f.ctx, r.ID)
		require.NoError(t, err)
		require.Len(t, as, 2)
		require.Equal(t, catalog.StateFailed, as[0].State)
		require.Equal(t, "disk full", as[0].Error)
		require.NotNil(t, as[0].FinishedAt)
		require.Equal(t, catalog.StateActive, as[1].State)
		require.Nil(t, as[1].FinishedAt)
	})
}

// TestClaimRunsConcurrently claims from many goroutines and two Stores (two
// connection pools) for one worker: SKIP LOCKED hands each run out once.
func TestClaimRunsConcurrently(t *testing.T) {
	dsn := catalogtest.NewPostgresDSN(t)
	s1 := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn})
	s2 := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn})
	f := newFixture(t, s1)
	const runs = 60
	for range runs {
		r := f.pending()
		f.dispatch(r.ID, "w1")
	}
	var (
		mu      sync.Mutex
		claimed []string
		wg      sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range 8 {
		s := []*catalog.Store{s1, s2}[i%2]
		wg.Go(func() {
			<-start
			for {
				got, err := s.ClaimRuns(f.ctx, catalog.ClaimParams{Worker: "w1", Limit: 3, LeaseTTL: time.Minute})
				if !assertNoError(t, err) {
					return
				}
				mu.Lock()
				for _, r := range got {
					claimed = append(claimed, r.ID)
				}
				done := len(claimed) >= runs
				mu.Unlock()
				if done {
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	require.Len(t, claimed, runs)
	slices.Sort(claimed)
	require.Len(t, slices.Compact(claimed), runs, "a run was claimed twice")
	as, err := s1.ListRunAttempts(f.ctx, "")
	require.NoError(t, err)
	require.Len(t, as, runs)
	for _, a := range as {
		require.Equal(t, 1, a.Attempt)
	}
}

// assertNoError reports err from a goroutine other than the test's own.
func assertNoError(t *testing.T, err error) bool {
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}

func TestRenewLeases(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		a, b, c, d := f.active(), f.active(), f.active(), f.active()
		_, err := s.RequestCancel(f.ctx, b.ID, "alice")
		require.NoError(t, err)
		_, err = s.FinishRun(f.ctx, catalog.FinishParams{RunID: d.ID, FencingToken: d.FencingToken, State: catalog.StateSucceeded})
		require.NoError(t, err)

		f.clock.Advance(50 * time.Second)
		res, err := s.RenewLeases(f.ctx, []catalog.RunLease{
			{RunID: a.ID, FencingToken: a.FencingToken},
			{RunID: b.ID, FencingToken: b.FencingToken},
			{RunID: c.ID, FencingToken: c.FencingToken + 1}, // not ours
			{RunID: d.ID, FencingToken: d.FencingToken},     // finished
			{RunID: "000000000000000000000000", FencingToken: 1},
		}, 2*time.Minute)
		require.NoError(t, err)
		require.ElementsMatch(t, []string{c.ID, d.ID, "000000000000000000000000"}, res.Lost)
		require.Equal(t, []string{b.ID}, res.Cancel)
		until := f.clock.Now().Add(2 * time.Minute)
		require.True(t, f.reload(a.ID).LeaseExpiresAt.Equal(until))
		require.True(t, f.reload(b.ID).LeaseExpiresAt.Equal(until))
		require.False(t, f.reload(c.ID).LeaseExpiresAt.Equal(until), "a lease with the wrong token is not renewed")

		res, err = s.RenewLeases(f.ctx, nil, time.Minute)
		require.NoError(t, err)
		require.Empty(t, res.Lost)
		require.Empty(t, res.Cancel)
	})
}

func TestSaveTasksAndFlushProgressAreFenced(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		r := f.active()
		plan := &catalog.Plan{SchemaVersion: catalog.PlanSchemaVersion, RunID: r.ID, Attempt: 1, Parallelism: 2, Reason: "2 files",
			Partitions: []catalog.PlanPartition{{Seq: 1, Thread: 0, Files: 1, Bytes: 10}, {Seq: 2, Thread: 1, Files: 1, Bytes: 20}}}
		tasks := func(n int) []catalog.RunTask {
			var ts []catalog.RunTask
			for i := 1; i <= n; i++ {
				ts = append(ts, catalog.RunTask{Seq: i, Attempt: 1, Thread: i % 2, Files: catalog.NewJSON([]string{"f" + string(rune('0'+i))}),
					Progress: catalog.Progress{FilesTotal: 1, BytesTotal: int64(10 * i)}})
			}
			return ts
		}
		// A first partitioning, then a second one that replaces it.
		require.NoError(t, s.SaveTasks(f.ctx, catalog.SaveTasksParams{RunID: r.ID, FencingToken: r.FencingToken, Plan: plan, Tasks: tasks(3)}))
		require.NoError(t, s.SaveTasks(f.ctx, catalog.SaveTasksParams{RunID: r.ID, FencingToken: r.FencingToken, Plan: plan, Tasks: tasks(250)}))
		ts, err := s.ListRunTasks(f.ctx, r.ID)
		require.NoError(t, err)
		require.Len(t, ts, 250)
		require.Equal(t, 1, ts[0].Seq)
		require.Equal(t, catalog.TaskPending, ts[0].State)
		require.Equal(t, []string{"f1"}, ts[0].Files.V)
		row := f.reload(r.ID)
		require.Equal(t, 250, row.TasksTotal)
		require.Equal(t, int64(250), row.FilesTotal)
		require.Equal(t, int64(10*250*251/2), row.BytesTotal)
		full, err := s.GetRun(f.ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, plan.Partitions, full.Plan.V.Partitions)
		require.Equal(t, 2, full.Plan.V.Parallelism)

		// Progress in one batched write.
		require.NoError(t, s.FlushProgress(f.ctx, catalog.FlushProgressParams{RunID: r.ID, FencingToken: r.FencingToken,
			Run: catalog.Progress{TasksDone: 2, FilesDone: 2, BytesDone: 30, Rows: 7},
			Tasks: []catalog.TaskUpdate{
				{Seq: 1, State: catalog.TaskDone, Progress: catalog.Progress{FilesDone: 1, BytesDone: 10, Rows: 3}},
				{Seq: 2, State: catalog.TaskDone, Progress: catalog.Progress{FilesDone: 1, BytesDone: 20, Rows: 4}},
				{Seq: 3, State: catalog.TaskActive, Progress: catalog.Progress{BytesDone: 5}},
			}}))
		row = f.reload(r.ID)
		require.Equal(t, catalog.Progress{TasksTotal: 250, TasksDone: 2, FilesTotal: 250, FilesDone: 2, BytesTotal: 10 * 250 * 251 / 2, BytesDone: 30, Rows: 7}, row.Progress)
		ts, err = s.ListRunTasks(f.ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, catalog.TaskDone, ts[0].State)
		require.Equal(t, int64(3), ts[0].Rows)
		require.Equal(t, catalog.TaskActive, ts[2].State)
		require.Equal(t, int64(5), ts[2].BytesDone)
		require.Equal(t, catalog.TaskPending, ts[3].State)

		// A stale token changes nothing.
		before := f.reload(r.ID)
		err = s.SaveTasks(f.ctx, catalog.SaveTasksParams{RunID: r.ID, FencingToken: r.FencingToken + 1, Plan: &catalog.Plan{}, Tasks: tasks(1)})
		require.ErrorIs(t, err, catalog.ErrStaleLease)
		err = s.FlushProgress(f.ctx, catalog.FlushProgressParams{RunID: r.ID, FencingToken: r.FencingToken - 1, Run: catalog.Progress{FilesDone: 99},
			Tasks: []catalog.TaskUpdate{{Seq: 1, State: catalog.TaskFailed}}})
		require.ErrorIs(t, err, catalog.ErrStaleLease)
		f.unchanged(before)
		after, err := s.ListRunTasks(f.ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, ts, after)
	})
}

// TestOldLeaseHolderIsStale: once a run was taken back from a worker (its
// lease expired and was reaped) the worker's token is refused everywhere,
// before and after another worker claims the run again.
func TestOldLeaseHolderIsStale(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		old := f.active()
		f.clock.Advance(2 * time.Minute)
		reaped, err := s.ReapExpiredLeases(f.ctx, testRegion)
		require.NoError(t, err)
		require.Equal(t, []string{old.ID}, reaped)

		tryAll := func() {
			t.Helper()
			before := f.reload(old.ID)
			for _, st := range []catalog.RunState{catalog.StateSucceeded, catalog.StateEmpty, catalog.StateCanceled, catalog.StateFailed} {
				_, err := s.FinishRun(f.ctx, catalog.FinishParams{RunID: old.ID, FencingToken: old.FencingToken, State: st, Retryable: true})
				require.ErrorIs(t, err, catalog.ErrStaleLease, st)
			}
			require.ErrorIs(t, s.SaveTasks(f.ctx, catalog.SaveTasksParams{RunID: old.ID, FencingToken: old.FencingToken, Plan: &catalog.Plan{}}), catalog.ErrStaleLease)
			require.ErrorIs(t, s.FlushProgress(f.ctx, catalog.FlushProgressParams{RunID: old.ID, FencingToken: old.FencingToken}), catalog.ErrStaleLease)
			res, err := s.RenewLeases(f.ctx, []catalog.RunLease{{RunID: old.ID, FencingToken: old.FencingToken}}, time.Minute)
			require.NoError(t, err)
			require.Equal(t, []string{old.ID}, res.Lost)
			f.unchanged(before)
		}
		tryAll() // pending, waiting for its backoff
		f.clock.Advance(time.Minute)
		f.dispatch(old.ID, workerFor(old.ID))
		tryAll() // queued again
		again := f.claimOne(old.ID)
		require.Equal(t, old.FencingToken+1, again.FencingToken)
		tryAll() // active under a new token
	})
}

func TestFinishRunEndStates(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f0 := newFixture(t, s)
		for _, st := range []catalog.RunState{catalog.StateSucceeded, catalog.StateEmpty, catalog.StateCanceled} {
			t.Run(string(st), func(t *testing.T) {
				f := *f0
				f.t = t
				r := f.active()
				f.clock.Advance(3 * time.Second)
				man := &catalog.Manifest{SchemaVersion: catalog.ManifestSchemaVersion, RunID: r.ID, State: st, TotalFiles: 2,
					Files: []catalog.ManifestFile{{Path: "a.csv", Size: 1, SHA256: "ab"}, {Path: "b.csv", Size: 2, SHA256: "cd"}}}
				got, err := s.FinishRun(f.ctx, catalog.FinishParams{RunID: r.ID, FencingToken: r.FencingToken, Worker: "w9", State: st, Manifest: man,
					Progress: &catalog.Progress{TasksDone: 2, FilesDone: 2, BytesDone: 3, Rows: 4}})
				require.NoError(t, err)
				require.Equal(t, st, got)
				row := f.reload(r.ID)
				require.Equal(t, st, row.State)
				require.True(t, row.FinishedAt.Equal(f.clock.Now()))
				require.Nil(t, row.LeaseExpiresAt)
				require.Equal(t, man, row.Manifest.V)
				require.Equal(t, int64(2), row.FilesDone)
				require.Equal(t, int64(4), row.Rows)
				as, err := s.ListRunAttempts(f.ctx, r.ID)
				require.NoError(t, err)
				require.Equal(t, st, as[0].State)
				require.True(t, as[0].FinishedAt.Equal(f.clock.Now()))
				evs, err := s.ListRunEvents(f.ctx, r.ID, 0)
				require.NoError(t, err)
				require.Equal(t, string(st), evs[len(evs)-1].Kind)
				require.Equal(t, "w9", evs[len(evs)-1].Node)
			})
		}
	})
}

func TestFinishRunFailedRetriesWithBackoffThenFails(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		r := f.active(func(r *catalog.Run) { r.MaxAttempts = 2 })
		// Attempt 1 of 2 fails, retryably: back to pending after a backoff.
		st, err := s.FinishRun(f.ctx, catalog.FinishParams{RunID: r.ID, FencingToken: r.FencingToken, State: catalog.StateFailed, Error: "source busy", Retryable: true,
			Progress: &catalog.Progress{FilesDone: 5}})
		require.NoError(t, err)
		require.Equal(t, catalog.StatePending, st)
		row := f.reload(r.ID)
		require.Equal(t, catalog.StatePending, row.State)
		require.True(t, row.NotBefore.Equal(f.clock.Now().Add(catalog.RetryBackoff(1))), "not_before %v", row.NotBefore)
		require.Equal(t, "source busy", row.Error)
		require.Empty(t, row.WorkerID)
		require.Nil(t, row.LeaseExpiresAt)
		require.Nil(t, row.FinishedAt)
		require.Equal(t, int64(5), row.FilesDone, "the failed attempt's progress is recorded")
		require.Equal(t, "retry", f.events(r.ID)[len(f.events(r.ID))-1])

		// Not dispatchable before the backoff has passed.
		ds, err := s.ListDispatchable(f.ctx, testRegion, 10)
		require.NoError(t, err)
		require.Empty(t, ds)
		f.clock.Advance(catalog.RetryBackoff(1))
		ds, err = s.ListDispatchable(f.ctx, testRegion, 10)
		require.NoError(t, err)
		require.Len(t, ds, 1)

		// Attempt 2 of 2 fails too: no attempts left, failed for good.
		f.dispatch(r.ID, workerFor(r.ID))
		r2 := f.claimOne(r.ID)
		st, err = s.FinishRun(f.ctx, catalog.FinishParams{RunID: r.ID, FencingToken: r2.FencingToken, State: catalog.StateFailed, Error: "source busy again", Retryable: true})
		require.NoError(t, err)
		require.Equal(t, catalog.StateFailed, st)
		row = f.reload(r.ID)
		require.Equal(t, catalog.StateFailed, row.State)
		require.NotNil(t, row.FinishedAt)
		require.Equal(t, "source busy again", row.Error)
		as, err := s.ListRunAttempts(f.ctx, r.ID)
		require.NoError(t, err)
		require.Len(t, as, 2)
		require.Equal(t, catalog.StateFailed, as[1].State)

		// A non-retryable failure fails at once, attempts left or not.
		r3 := f.active()
		st, err = s.FinishRun(f.ctx, catalog.FinishParams{RunID: r3.ID, FencingToken: r3.FencingToken, State: catalog.StateFailed, Error: "bad mapping"})
		require.NoError(t, err)
		require.Equal(t, catalog.StateFailed, st)
		require.Equal(t, 1, f.reload(r3.ID).Attempt)
	})
}

func TestRetryBackoff(t *testing.T) {
	t.Parallel()
	cases := map[int]time.Duration{-1: time.Second, 0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second,
		9: 256 * time.Second, 10: 5 * time.Minute, 17: 5 * time.Minute, 100: 5 * time.Minute, 1 << 30: 5 * time.Minute}
	for attempt, want := range cases {
		require.Equal(t, want, catalog.RetryBackoff(attempt), "attempt %d", attempt)
	}
}

func TestRequestCancel(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		for _, st := range []catalog.RunState{catalog.StatePending, catalog.StateQueued} {
			r := f.inState(st)
			got, err := s.RequestCancel(f.ctx, r.ID, "bob")
			require.NoError(t, err)
			require.Equal(t, catalog.StateCanceled, got.State, "a %s run is canceled at once", st)
			require.True(t, got.CancelRequested)
			require.NotNil(t, got.FinishedAt)
			require.Contains(t, got.Error, "bob")
			require.Equal(t, "cancel_requested", f.events(r.ID)[len(f.events(r.ID))-1])
		}

		// Active: the worker is asked, the state stays until it stops.
		r := f.active()
		got, err := s.RequestCancel(f.ctx, r.ID, "bob")
		require.NoError(t, err)
		require.Equal(t, catalog.StateActive, got.State)
		require.True(t, got.CancelRequested)
		st, err := s.FinishRun(f.ctx, catalog.FinishParams{RunID: r.ID, FencingToken: r.FencingToken, State: catalog.StateCanceled})
		require.NoError(t, err)
		require.Equal(t, catalog.StateCanceled, st)

		for _, st := range []catalog.RunState{catalog.StateSucceeded, catalog.StateEmpty, catalog.StateFailed, catalog.StateCanceled, catalog.StateAborted} {
			r := f.inState(st)
			before := f.reload(r.ID)
			_, err := s.RequestCancel(f.ctx, r.ID, "bob")
			require.ErrorIs(t, err, catalog.ErrIllegalTransition, st)
			f.unchanged(before)
		}
		_, err = s.RequestCancel(f.ctx, "000000000000000000000000", "bob")
		require.ErrorIs(t, err, catalog.ErrNotFound)
	})
}

func TestClaimAndRenewRefuseBadInput(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		r := f.queued()
		w := workerFor(r.ID)
		for _, c := range []struct {
			p     catalog.ClaimParams
			field string
		}{
			{catalog.ClaimParams{Worker: "", Limit: 1, LeaseTTL: time.Minute}, "worker"},
			{catalog.ClaimParams{Worker: w, Limit: 1, LeaseTTL: 0}, "lease_ttl"},
			{catalog.ClaimParams{Worker: w, Limit: 1, LeaseTTL: -time.Second}, "lease_ttl"},
		} {
			_, err := s.ClaimRuns(f.ctx, c.p)
			requireInvalid(t, err, c.field)
		}
		require.Equal(t, catalog.StateQueued, f.reload(r.ID).State, "a refused claim takes nothing")
		a := f.claimOne(r.ID)
		before := f.reload(r.ID)
		_, err := s.RenewLeases(f.ctx, []catalog.RunLease{{RunID: a.ID, FencingToken: a.FencingToken}}, 0)
		requireInvalid(t, err, "ttl")
		f.unchanged(before)
	})
}
