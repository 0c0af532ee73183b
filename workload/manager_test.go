package workload

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestManagerDispatchesToALiveWorker(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.system("src", 0)
		e.system("dst", 0)
		e.mapping("m", "src", "dst")
		require.NoError(t, s.UpdateSystem(context.Background(), &catalog.System{Name: "dst", Kind: catalog.KindFS, Region: region,
			Settings: catalog.NewJSON(map[string]string{"root": "/tmp/dst", SettingMaxThreads: "3"})}))
		heartbeat(t, s, "srv", 8, catalog.NodeRoleServer) // a server without the worker role takes no runs
		heartbeat(t, s, "w1", 4)
		r := e.submit("m", 0)

		m := start(t, testConfig(t, "mgr1"), s)
		got := e.waitState(r.ID, catalog.StateQueued, 5*time.Second)
		require.True(t, m.IsLeader())
		require.Equal(t, "w1", got.WorkerID)
		require.Empty(t, got.HoldReason)
		require.NotNil(t, got.QueuedAt)
		p := got.Plan.V
		require.NotNil(t, p)
		require.Equal(t, catalog.PlanSchemaVersion, p.SchemaVersion)
		require.Equal(t, r.ID, p.RunID)
		require.Equal(t, "m", p.Mapping)
		require.Equal(t, 1, p.MappingVersion)
		require.Equal(t, map[string]string{"d": "2026-11-20"}, p.Params)
		require.Equal(t, []string{"list", "copy", "stage", "commit", "manifest"}, p.Steps)
		require.Equal(t, catalog.PlanEndpoint{System: "src", Kind: "fs", Path: "in/2026-11-20/*.csv"}, p.Source)
		require.Equal(t, catalog.PlanEndpoint{System: "dst", Kind: "fs", Path: "out/2026-11-20"}, p.Target)
		require.Equal(t, "w1", p.Worker)
		require.Equal(t, 3, p.MaxThreads, "the target's max_threads caps the worker's 4 slots")
		require.WithinDuration(t, time.Now(), p.CreatedAt, time.Minute)

		evs, err := s.ListRunEvents(context.Background(), r.ID, 0)
		require.NoError(t, err)
		require.Equal(t, "queued", evs[len(evs)-1].Kind)
		require.Equal(t, "mgr1", evs[len(evs)-1].Node, "the leader recorded the dispatch")
	})
}

func TestManagerRespectsLimitsAndHoldReasons(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		e := newEnv(t, s)
		e.system("a", 2)
		e.system("b", 0)
		e.system("c", 0)
		e.mapping("ab", "a", "b")
		e.mapping("cc", "c", "c")
		heartbeat(t, s, "w1", 10)
		a1, a2, a3 := e.submit("ab", 0), e.submit("ab", 0), e.submit("ab", 0)
		c1, c2 := e.submit("cc", 0), e.submit("cc", 0)

		cfg := testConfig(t, "mgr1")
		cfg.MaxActiveRuns = 3
		start(t, cfg, s)
		// By age: a1, a2 fill system a; a3 waits for a; c1 fills the region; c2 waits for the region.
		e.waitState(c1.ID, catalog.StateQueued, 5*time.Second)
		for _, id := range []string{a1.ID, a2.ID} {
			require.Equal(t, catalog.StateQueued, e.run(id).State)
		}
		// a3 is first held for system a (the region still had room when the
		// tick reached it); once the region is full too, a later full tick
		// may write the region's reason instead: both are true.
		require.Eventually(t, func() bool {
			a3r := e.run(a3.ID).HoldReason
			return (a3r == "system a at its limit of 2 concurrent runs" || a3r == "region local at its limit of 3 active runs") &&
				e.run(c2.ID).HoldReason == "region local at its limit of 3 active runs"
		}, 5*time.Second, 5*time.Millisecond)
		time.Sleep(200 * time.Millisecond) // several ticks: nothing more is admitted
		counts, err := s.CountActive(ctx, region)
		require.NoError(t, err)
		require.Equal(t, 3, counts.Region)
		require.Equal(t, 2, counts.Systems["a"])
		require.Equal(t, catalog.StatePending, e.run(a3.ID).State)
		require.Equal(t, catalog.StatePending, e.run(c2.ID).State)

		// One run of system a ends: a3, older than c2, takes its place; its hold reason is cleared.
		claimed := claim(t, s, "w1", time.Minute)
		require.Len(t, claimed, 3)
		finish(t, s, claimed[a1.ID])
		got := e.waitState(a3.ID, catalog.StateQueued, 5*time.Second)
		require.Empty(t, got.HoldReason)
		time.Sleep(200 * time.Millisecond)
		got = e.run(c2.ID)
		require.Equal(t, catalog.StatePending, got.State)
		require.Equal(t, "region local at its limit of 3 active runs", got.HoldReason)

		// A run of system c ends: c2 goes.
		finish(t, s, claimed[c1.ID])
		got = e.waitState(c2.ID, catalog.StateQueued, 5*time.Second)
		require.Empty(t, got.HoldReason)
	})
}

func TestManagerPriorityThenAge(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.system("a", 0)
		e.system("b", 0)
		e.mapping("ab", "a", "b")
		heartbeat(t, s, "w1", 10)
		old := e.submit("ab", 0)
		newer := e.submit("ab", 0)
		urgent := e.submit("ab", 5)

		cfg := testConfig(t, "mgr1")
		cfg.MaxActiveRuns = 1
		start(t, cfg, s)
		e.waitState(urgent.ID, catalog.StateQueued, 5*time.Second)
		require.Eventually(t, func() bool { return e.run(newer.ID).HoldReason != "" }, 5*time.Second, 5*time.Millisecond)
		require.Equal(t, catalog.StatePending, e.run(old.ID).State)

		claimed := claim(t, s, "w1", time.Minute)
		finish(t, s, claimed[urgent.ID])
		e.waitState(old.ID, catalog.StateQueued, 5*time.Second)
		require.Equal(t, catalog.StatePending, e.run(newer.ID).State)
	})
}

func TestManagerHoldsWithoutWorkers(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.system("a", 0)
		e.mapping("aa", "a", "a")
		r1 := e.submit("aa", 0)
		r2 := e.submit("aa", 0)
		start(t, testConfig(t, "mgr1"), s)
		for _, id := range []string{r1.ID, r2.ID} {
			require.Eventually(t, func() bool { return e.run(id).HoldReason == "no live worker in region local" }, 5*time.Second, 5*time.Millisecond)
		}

		// A worker with one slot: r1 takes it, and r2's reason changes.
		heartbeat(t, s, "w1", 1)
		got := e.waitState(r1.ID, catalog.StateQueued, 5*time.Second)
		require.Empty(t, got.HoldReason)
		require.Eventually(t, func() bool {
			return e.run(r2.ID).HoldReason == "no live worker with a free slot in region local"
		}, 5*time.Second, 5*time.Millisecond)
		require.Equal(t, catalog.StatePending, e.run(r2.ID).State)
	})
}

func TestManagerAbortsRunsThatCannotBePlanned(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.system("a", 0)
		e.system("b", 0)
		e.mapping("ab", "a", "b")
		heartbeat(t, s, "w1", 10)
		gone := e.submit("ab", 9, func(r *catalog.Run) { r.MappingVersion = 99 })
		escape := e.submit("ab", 9, func(r *catalog.Run) { r.Params = catalog.NewJSON(map[string]string{"d": "../../etc"}) })
		missing := e.submit("ab", 9, func(r *catalog.Run) { r.Params = catalog.NewJSON(map[string]string{}) })
		good := e.submit("ab", 0)

		start(t, testConfig(t, "mgr1"), s)
		e.waitState(good.ID, catalog.StateQueued, 5*time.Second)
		for id, want := range map[string]string{
			gone.ID:    "mapping ab version 99 no longer exists",
			escape.ID:  `source.path: "in/../../etc/*.csv" escapes the system's root`,
			missing.ID: "source.path: parameter {d} has no value",
		} {
			got := e.waitState(id, catalog.StateAborted, 5*time.Second)
			require.Equal(t, want, got.Error)
			require.Empty(t, got.WorkerID)
			evs, err := s.ListRunEvents(context.Background(), id, 0)
			require.NoError(t, err)
			require.Equal(t, "aborted", evs[len(evs)-1].Kind)
		}
	})
}

func TestManagerRequeuesRunsOfADeadWorker(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.system("a", 0)
		e.system("b", 0)
		e.mapping("ab", "a", "b")
		stopW1 := heartbeat(t, s, "w1", 2)
		r := e.submit("ab", 0)
		cfg := testConfig(t, "mgr1")
		cfg.NodeDeadAfter = 300 * time.Millisecond
		start(t, cfg, s)
		require.Equal(t, "w1", e.waitState(r.ID, catalog.StateQueued, 5*time.Second).WorkerID)

		// w1 goes silent before claiming; w2 appears.
		stopW1()
		heartbeat(t, s, "w2", 2)
		require.Eventually(t, func() bool {
			got := e.run(r.ID)
			return got.State == catalog.StateQueued && got.WorkerID == "w2"
		}, 5*time.Second, 5*time.Millisecond)
		got := e.run(r.ID)
		require.Equal(t, "w2", got.Plan.V.Worker)

		nodes, err := s.ListNodes(context.Background(), region)
		require.NoError(t, err)
		for _, n := range nodes {
			if n.ID == "w1" {
				require.Equal(t, catalog.NodeDead, n.State)
			}
		}
		evs, err := s.ListRunEvents(context.Background(), r.ID, 0)
		require.NoError(t, err)
		var kinds []string
		for _, ev := range evs {
			kinds = append(kinds, ev.Kind)
		}
		require.Equal(t, []string{"submitted", "queued", "requeued", "queued"}, kinds)
	})
}

func TestManagerReapsExpiredLeases(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.system("a", 0)
		e.system("b", 0)
		e.mapping("ab", "a", "b")
		heartbeat(t, s, "w1", 2)
		r := e.submit("ab", 0, func(r *catalog.Run) { r.MaxAttempts = 2 })
		start(t, testConfig(t, "mgr1"), s)

		// Attempt 1: the worker claims and then stops renewing its lease.
		e.waitState(r.ID, catalog.StateQueued, 5*time.Second)
		require.Len(t, claim(t, s, "w1", 100*time.Millisecond), 1)
		// Reaped with an attempt left: back to pending after a backoff, then dispatched again.
		require.Eventually(t, func() bool {
			got := e.run(r.ID)
			return got.State == catalog.StateQueued && got.Attempt == 1
		}, 10*time.Second, 5*time.Millisecond)
		got := e.run(r.ID)
		require.Contains(t, got.Error, "lease of worker w1 expired during attempt 1")

		// Attempt 2, the last: the same ends in failure.
		require.Len(t, claim(t, s, "w1", 100*time.Millisecond), 1)
		got = e.waitState(r.ID, catalog.StateFailed, 10*time.Second)
		require.Equal(t, 2, got.Attempt)
		require.Contains(t, got.Error, "lease of worker w1 expired during attempt 2")
		attempts, err := s.ListRunAttempts(context.Background(), r.ID)
		require.NoError(t, err)
		require.Len(t, attempts, 2)
		for _, a := range attempts {
			require.Equal(t, catalog.StateFailed, a.State)
			require.NotNil(t, a.FinishedAt)
		}
	})
}

func TestManagerAbortsRunsPastTheirTimeout(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.system("a", 0)
		e.system("b", 0)
		e.mapping("ab", "a", "b")
		heartbeat(t, s, "w1", 2)
		r := e.submit("ab", 0, func(r *catalog.Run) { r.TimeoutSeconds = 1 })
		start(t, testConfig(t, "mgr1"), s)
		e.waitState(r.ID, catalog.StateQueued, 5*time.Second)
		claimedAt := time.Now()
		require.Len(t, claim(t, s, "w1", time.Minute), 1) // the lease outlives the timeout
		got := e.waitState(r.ID, catalog.StateAborted, 5*time.Second)
		require.GreaterOrEqual(t, time.Since(claimedAt), time.Second)
		require.Equal(t, "timed out after 1s", got.Error)
	})
}

// TestManagerWakesOnNotifications uses a poll interval far longer than the
// test: only wake-ups can dispatch. On PostgreSQL the runs are submitted and
// finished through another Store, so the wake-ups travel by LISTEN/NOTIFY.
func TestManagerWakesOnNotifications(t *testing.T) {
	eachDialect(t, func(t *testing.T, dialect string) {
		stores := openShared(t, dialect, 2)
		mgrStore, other := stores[0], stores[1]
		e := newEnv(t, other)
		e.system("a", 0)
		e.system("b", 0)
		e.mapping("ab", "a", "b")
		heartbeat(t, other, "w1", 4)

		cfg := testConfig(t, "mgr1")
		cfg.PollInterval = time.Hour
		cfg.LeaseTTL = 3 * time.Second
		cfg.MaxActiveRuns = 1
		m := start(t, cfg, mgrStore)
		waitLeader(t, m, 5*time.Second)
		time.Sleep(300 * time.Millisecond) // the first tick and the listeners' connection wake-ups pass

		// A new pending run wakes the leader.
		r1 := e.submit("ab", 0)
		e.waitState(r1.ID, catalog.StateQueued, 2*time.Second)
		r2 := e.submit("ab", 0)
		require.Eventually(t, func() bool { return e.run(r2.ID).HoldReason != "" }, 2*time.Second, 5*time.Millisecond)

		// A finished run wakes the leader, which admits the next one.
		claimed := claim(t, other, "w1", time.Minute)
		finish(t, other, claimed[r1.ID])
		e.waitState(r2.ID, catalog.StateQueued, 2*time.Second)
	})
}
