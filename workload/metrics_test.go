package workload

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestHoldKinds(t *testing.T) {
	tests := []struct {
		name string
		in   GovernInput
		want HoldKind
	}{
		{"red source host", GovernInput{MaxActiveRuns: 9, Workers: []WorkerLoad{{ID: "w", Slots: 1}},
			SystemHosts: map[string]SystemHost{"s": {Host: "h", Red: "cpu 99%"}}}, HoldHostCritical},
		{"region full", GovernInput{MaxActiveRuns: 1, Active: 1, Workers: []WorkerLoad{{ID: "w", Slots: 1}}}, HoldRegionLimit},
		{"system full", GovernInput{MaxActiveRuns: 9, Workers: []WorkerLoad{{ID: "w", Slots: 1}},
			SystemLimits: map[string]int{"t": 1}, SystemActive: map[string]int{"t": 1}}, HoldSystemLimit},
		{"no worker", GovernInput{MaxActiveRuns: 9}, HoldNoWorker},
		{"workers full", GovernInput{MaxActiveRuns: 9, Workers: []WorkerLoad{{ID: "w", Slots: 1, Active: 1}}}, HoldWorkerFull},
		{"only red workers free", GovernInput{MaxActiveRuns: 9, Workers: []WorkerLoad{{ID: "w", Slots: 1, Red: "memory 99%"}}}, HoldWorkerCritical},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Region = "local"
			tc.in.Pending = []PendingRun{{ID: "r", Source: "s", Target: "t"}}
			got := Govern(tc.in)
			require.Len(t, got, 1)
			require.False(t, got[0].Admitted())
			require.Equal(t, tc.want, got[0].Kind, got[0].Hold)
		})
	}
}

func TestManagerMetricsOnTheLeaderOnly(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.system("src", 0)
		e.system("dst", 1)
		e.mapping("m", "src", "dst")
		heartbeat(t, s, "w1", 4)
		first := e.submit("m", 0)
		second := e.submit("m", 0) // held: dst takes one run at a time

		reg := prometheus.NewPedanticRegistry()
		cfg := testConfig(t, "mgr1")
		cfg.Metrics, cfg.RunCountsCache = reg, time.Millisecond
		m := start(t, cfg, s)
		e.waitState(first.ID, catalog.StateQueued, 5*time.Second)
		require.Eventually(t, func() bool { return e.run(second.ID).HoldReason != "" }, 5*time.Second, 5*time.Millisecond)
		require.True(t, m.IsLeader())

		want := `
# HELP weir_queue_depth Runs of the region waiting: pending (not yet dispatched) and queued (dispatched, not yet claimed).
# TYPE weir_queue_depth gauge
weir_queue_depth{state="pending"} 1
weir_queue_depth{state="queued"} 1
# HELP weir_runs Runs of the region by mapping and state, counted by the leader from the catalog.
# TYPE weir_runs gauge
weir_runs{mapping="m",state="pending"} 1
weir_runs{mapping="m",state="queued"} 1
# HELP weir_runs_held Pending runs the leader holds back, by kind of hold reason, as of its last decision.
# TYPE weir_runs_held gauge
weir_runs_held{reason="host_critical"} 0
weir_runs_held{reason="no_worker"} 0
weir_runs_held{reason="region_limit"} 0
weir_runs_held{reason="system_limit"} 1
weir_runs_held{reason="worker_critical"} 0
weir_runs_held{reason="worker_full"} 0
# HELP weir_workload_leader 1 while this server is its region's workload leader, else 0.
# TYPE weir_workload_leader gauge
weir_workload_leader 1
`
		require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
			"weir_queue_depth", "weir_runs", "weir_runs_held", "weir_workload_leader"))
		require.Equal(t, 1, testutil.CollectAndCount(reg, "weir_run_dispatch_latency_seconds"))
		problems, err := testutil.GatherAndLint(reg)
		require.NoError(t, err)
		require.Empty(t, problems)

		// A follower on the same registry (a restarted manager) reports no run gauges.
		m.stop(t)
		follower := New(cfg, s)
		require.False(t, follower.IsLeader())
		require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP weir_workload_leader 1 while this server is its region's workload leader, else 0.
# TYPE weir_workload_leader gauge
weir_workload_leader 0
`), "weir_queue_depth", "weir_runs", "weir_runs_held", "weir_workload_leader"))
		// The dispatch histogram kept its count across the restart.
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "weir_run_dispatch_latency_seconds" {
				require.Equal(t, uint64(1), mf.GetMetric()[0].GetHistogram().GetSampleCount())
			}
		}
	})
}
