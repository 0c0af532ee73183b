package profiler

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestHostGaugesFollowTheLatestSample(t *testing.T) {
	cs := catalogtest.Open(t, catalog.DialectSQLite)
	reg := prometheus.NewPedanticRegistry()
	smp, _ := series(func(i int) catalog.Sample {
		return catalog.Sample{CPUPct: float64(25 * (i + 1)), MemUsedPct: 40, MemUsedBytes: 4 << 30, Load1: 1.5, Load5: 1, Load15: 0.5,
			Disks: []catalog.Disk{{Path: "/data", FreeBytes: 1 << 40, UsedPct: 50}, {Path: "/spool", FreeBytes: 1 << 20, UsedPct: 99}}}
	})
	p, err := New(Config{NodeID: "w1", Region: "eu", Metrics: reg}, cs, smp)
	require.NoError(t, err)
	ctx := context.Background()
	p.step(ctx, t0)
	p.step(ctx, t0.Add(IntervalDefault))

	want := `
# HELP weir_host_cpu_usage_ratio Share of the host's CPU time in use (0 to 1), as of the profiler's latest sample.
# TYPE weir_host_cpu_usage_ratio gauge
weir_host_cpu_usage_ratio 0.5
# HELP weir_host_disk_free_bytes Free space of each configured disk path, in bytes.
# TYPE weir_host_disk_free_bytes gauge
weir_host_disk_free_bytes{path="/data"} 1.099511627776e+12
weir_host_disk_free_bytes{path="/spool"} 1.048576e+06
# HELP weir_host_load1 The host's 1-minute load average.
# TYPE weir_host_load1 gauge
weir_host_load1 1.5
# HELP weir_host_memory_used_ratio Share of the host's memory in use (0 to 1).
# TYPE weir_host_memory_used_ratio gauge
weir_host_memory_used_ratio 0.4
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
		"weir_host_cpu_usage_ratio", "weir_host_disk_free_bytes", "weir_host_load1", "weir_host_memory_used_ratio"))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)

	// A restarted profiler on the same registry takes the gauges over.
	p2, err := New(Config{NodeID: "w1", Region: "eu", Metrics: reg}, cs, SamplerFunc(func(context.Context) (catalog.Sample, error) {
		return catalog.Sample{CPUPct: 10}, nil
	}))
	require.NoError(t, err)
	p2.step(ctx, t0.Add(2*IntervalDefault))
	require.Equal(t, 0.1, testutil.ToFloat64(p2.metrics.cpu))
	require.Equal(t, 0.1, testutil.ToFloat64(p.metrics.cpu), "one gauge for the process")
}
