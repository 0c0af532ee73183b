package workload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
)

// simWorker is a worker process reduced to its dealings with the catalog:
// it heartbeats, claims the runs queued on it up to its slots, "works" a few
// milliseconds and finishes each run as succeeded.
func simWorker(ctx context.Context, t *testing.T, s *catalog.Store, id string, slots int, wg *sync.WaitGroup) {
	node := &catalog.Node{ID: id, Region: region, Roles: catalog.NewJSON([]string{catalog.NodeRoleWorker}), Slots: slots}
	require.NoError(t, s.UpsertNode(ctx, node))
	queued := s.Subscribe(ctx, catalog.ChannelRunsQueued)
	freed := make(chan struct{}, 1)
	var running atomic.Int32
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(uint64(len(id)), uint64(time.Now().UnixNano())))
		beat := time.NewTicker(100 * time.Millisecond)
		defer beat.Stop()
		for {
			if free := slots - int(running.Load()); free > 0 {
				runs, err := s.ClaimRuns(ctx, catalog.ClaimParams{Worker: id, Limit: free, LeaseTTL: time.Minute})
				if err != nil && ctx.Err() == nil {
					t.Errorf("worker %s: %v", id, err)
				}
				for _, r := range runs {
					running.Add(1)
					work := time.Duration(2+rng.IntN(7)) * time.Millisecond
					wg.Go(func() {
						defer func() { running.Add(-1); wake(freed) }()
						select {
						case <-ctx.Done():
							return
						case <-time.After(work):
						}
						if _, err := s.FinishRun(ctx, catalog.FinishParams{RunID: r.ID, FencingToken: r.FencingToken, Worker: id, State: catalog.StateSucceeded}); err != nil && ctx.Err() == nil {
							t.Errorf("worker %s: %v", id, err)
						}
					})
				}
			}
			select {
			case <-ctx.Done():
				for range queued {
				}
				return
			case <-beat.C:
				_ = s.UpsertNode(ctx, node)
			case <-queued:
			case <-freed:
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
}

// TestLimitsHoldUnderConcurrency runs two managers and three simulated
// workers on one PostgreSQL catalog, submits many runs concurrently, stops
// the leader half way, and checks from the catalog's own history (the
// run_attempts rows) that no limit was ever exceeded and that every run
// succeeded in exactly one attempt.
func TestLimitsHoldUnderConcurrency(t *testing.T) {
	t.Parallel()
	const (
		runs          = 200
		systemLimit   = 2
		regionLimit   = 4
		workerSlots   = 2
		submitters    = 4
		workerCount   = 3
		finishTimeout = 90 * time.Second
	)
	stores := openShared(t, catalog.DialectPostgres, 4)
	e := newEnv(t, stores[3])
	for _, s := range []string{"s1", "s2", "s3"} {
		e.system(s, systemLimit)
	}
	mappings := map[string][2]string{"m12": {"s1", "s2"}, "m23": {"s2", "s3"}, "m31": {"s3", "s1"}, "m11": {"s1", "s1"}, "m22": {"s2", "s2"}}
	names := make([]string, 0, len(mappings))
	for name, sd := range mappings {
		e.mapping(name, sd[0], sd[1])
		names = append(names, name)
	}
	slices.Sort(names)

	ctx, cancel := context.WithCancel(context.Background())
	var workers sync.WaitGroup
	t.Cleanup(func() { cancel(); workers.Wait() })
	for i := range workerCount {
		simWorker(ctx, t, stores[2], fmt.Sprintf("w%d", i+1), workerSlots, &workers)
	}

	managers := make([]*started, 2)
	for i := range managers {
		cfg := testConfig(t, fmt.Sprintf("srv%d", i+1))
		cfg.MaxActiveRuns = regionLimit
		cfg.Logger = cfg.Logger.With() // keep: logs show on failure
		managers[i] = start(t, cfg, stores[i])
	}

	// Submit concurrently, at mixed priorities.
	var ids sync.Map
	var sub sync.WaitGroup
	for g := range submitters {
		sub.Go(func() {
			for i := g; i < runs; i += submitters {
				r := e.submit(names[i%len(names)], i%3)
				ids.Store(r.ID, true)
			}
		})
	}
	sub.Wait()

	// Half way, the leader stops; the other takes over.
	countDone := func() int {
		n, err := e.s.CountRuns(context.Background(), region)
		require.NoError(t, err)
		return int(n[catalog.StateSucceeded])
	}
	require.Eventually(t, func() bool { return countDone() >= runs/2 }, finishTimeout, 10*time.Millisecond)
	var leader, other *started
	for i, m := range managers {
		if m.IsLeader() {
			leader, other = m, managers[1-i]
		}
	}
	require.NotNil(t, leader, "no leader half way")
	leader.stop(t)
	require.Eventually(t, func() bool { return countDone() == runs }, finishTimeout, 10*time.Millisecond)
	require.True(t, other.IsLeader())

	// The catalog's history.
	attempts, err := e.s.ListRunAttempts(context.Background(), "")
	require.NoError(t, err)
	require.Len(t, attempts, runs, "every run ran exactly once")
	seen := map[string]bool{}
	type edge struct {
		at    time.Time
		delta int
		a     catalog.RunAttempt
	}
	var edges []edge
	for _, a := range attempts {
		_, ok := ids.Load(a.RunID)
		require.True(t, ok, "attempt of an unknown run %s", a.RunID)
		require.False(t, seen[a.RunID], "run %s has two attempts", a.RunID)
		seen[a.RunID] = true
		require.Equal(t, 1, a.Attempt)
		require.Equal(t, catalog.StateSucceeded, a.State)
		require.NotEmpty(t, a.WorkerID)
		require.NotNil(t, a.FinishedAt)
		require.False(t, a.FinishedAt.Before(a.StartedAt))
		require.False(t, a.StartedAt.Before(a.QueuedAt))
		edges = append(edges, edge{a.QueuedAt, +1, a}, edge{*a.FinishedAt, -1, a})
	}
	// Sweep the timeline; a slot freed at t can be taken at t.
	slices.SortStableFunc(edges, func(x, y edge) int {
		if c := x.at.Compare(y.at); c != 0 {
			return c
		}
		return x.delta - y.delta
	})
	active, peakRegion := 0, 0
	perSystem, perWorker := map[string]int{}, map[string]int{}
	peakSystem := map[string]int{}
	for _, ed := range edges {
		active += ed.delta
		peakRegion = max(peakRegion, active)
		require.LessOrEqual(t, active, regionLimit, "region over its limit at %s", ed.at)
		for _, s := range runSystems(PendingRun{Source: ed.a.SourceSystem, Target: ed.a.TargetSystem}) {
			perSystem[s] += ed.delta
			peakSystem[s] = max(peakSystem[s], perSystem[s])
			require.LessOrEqual(t, perSystem[s], systemLimit, "system %s over its limit at %s", s, ed.at)
		}
		perWorker[ed.a.WorkerID] += ed.delta
		require.LessOrEqual(t, perWorker[ed.a.WorkerID], workerSlots, "worker %s over its slots at %s", ed.a.WorkerID, ed.at)
	}
	t.Logf("peak concurrency: region %d, systems %v", peakRegion, peakSystem)
	// The limits were reached, not merely respected by running one at a time.
	require.Equal(t, regionLimit, peakRegion)
	for _, s := range []string{"s1", "s2", "s3"} {
		require.Equal(t, systemLimit, peakSystem[s], "system %s", s)
	}
}
