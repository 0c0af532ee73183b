package worker_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
)

func TestMetricsOfADeliveredRun(t *testing.T) {
	e := newEnv(t, catalog.DialectSQLite)
	write(t, e.src, map[string]int{"in/d/a.csv": 1000, "in/d/b.csv": 2345, "in/d/sub/c.csv": 7})
	e.mapping("copy", "src", "in/{day}", "dst", "out/{day}")
	id := e.submit("copy", map[string]string{"day": "d"})
	dispatchWithKinds(e, id, "w1", "fs", "fs")

	reg := prometheus.NewPedanticRegistry()
	cfg := e.config("w1")
	cfg.Metrics = reg
	e.start(cfg, e.store, connector.Default())
	r := e.waitState(id, 30*time.Second, catalog.StateSucceeded)
	require.Equal(t, catalog.StateSucceeded, r.State, r.Error)

	want := `
# HELP weir_bytes_moved_total Bytes read from sources and written to targets by the runs this worker delivered, by connector kind and direction.
# TYPE weir_bytes_moved_total counter
weir_bytes_moved_total{connector="fs",direction="read"} 3352
weir_bytes_moved_total{connector="fs",direction="written"} 3352
# HELP weir_worker_attempts_finished_total Run attempts this worker ended and recorded, by the state they ended in.
# TYPE weir_worker_attempts_finished_total counter
weir_worker_attempts_finished_total{state="succeeded"} 1
# HELP weir_worker_lease_losses_total Run attempts this worker abandoned because it lost their lease.
# TYPE weir_worker_lease_losses_total counter
weir_worker_lease_losses_total 0
`
	require.Eventually(t, func() bool {
		return testutil.GatherAndCompare(reg, strings.NewReader(want),
			"weir_bytes_moved_total", "weir_worker_attempts_finished_total", "weir_worker_lease_losses_total") == nil
	}, 5*time.Second, 20*time.Millisecond, "the finish is counted once the catalog recorded it")
	require.Equal(t, 1, testutil.CollectAndCount(reg, "weir_run_duration_seconds"))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

func TestMetricsCountALostLease(t *testing.T) {
	e := newEnv(t, catalog.DialectSQLite)
	id := slowRun(e)
	reg := prometheus.NewRegistry()
	cfg := e.config("w1")
	cfg.Metrics = reg
	var reads atomic.Int64
	e.start(cfg, e.store, slowRegistry(50*time.Millisecond, &reads, ""))
	e.waitRun(id, 20*time.Second, "copying", copying)

	reaper := e.openStore()
	reaper.SetClock(func() time.Time { return time.Now().UTC().Add(time.Hour) })
	_, err := reaper.ReapExpiredLeases(context.Background(), region)
	require.NoError(t, err)
	e.waitEvent(id, "abandoned", 5*time.Second)
	require.Eventually(t, func() bool {
		return testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP weir_worker_lease_losses_total Run attempts this worker abandoned because it lost their lease.
# TYPE weir_worker_lease_losses_total counter
weir_worker_lease_losses_total 1
`), "weir_worker_lease_losses_total") == nil
	}, 5*time.Second, 20*time.Millisecond)
	require.Zero(t, testutil.CollectAndCount(reg, "weir_bytes_moved_total"), "an abandoned attempt moved nothing that counts")
}

// dispatchWithKinds dispatches like env.dispatch, with the endpoint kinds the
// workload manager writes into plans.
func dispatchWithKinds(e *env, id, node, srcKind, dstKind string) {
	ctx := context.Background()
	l, err := e.store.AcquireLease(ctx, catalog.LeaderLeaseName(region), "test-leader", time.Minute)
	require.NoError(e.t, err)
	r, err := e.store.GetRun(ctx, id)
	require.NoError(e.t, err)
	plan := &catalog.Plan{SchemaVersion: catalog.PlanSchemaVersion, RunID: id, Mapping: r.Mapping, MappingVersion: r.MappingVersion,
		Params: r.Params.V, Steps: []string{"copy"}, Worker: node, CreatedAt: time.Now().UTC(),
		Source: catalog.PlanEndpoint{System: r.SourceSystem, Kind: srcKind}, Target: catalog.PlanEndpoint{System: r.TargetSystem, Kind: dstKind}}
	require.NoError(e.t, e.store.DispatchRun(ctx, catalog.DispatchParams{RunID: id, Worker: node, Plan: plan,
		LeaseName: l.Name, LeaseHolder: l.Holder, LeaseToken: l.Token}))
}
