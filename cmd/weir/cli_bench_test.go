package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(i + 1) // 1..100 ms
	}
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value is every percentile", []time.Duration{ms(7)}, 99, ms(7)},
		{"p50 of 1..100", hundred, 50, ms(50)},
		{"p95 of 1..100", hundred, 95, ms(95)},
		{"p99 of 1..100", hundred, 99, ms(99)},
		{"p100 is the max", hundred, 100, ms(100)},
		{"p50 of four rounds up the rank", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 50, ms(2)},
		{"p95 of four is the max", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 95, ms(4)},
		{"p50 of five is the middle", []time.Duration{ms(1), ms(2), ms(3), ms(4), ms(5)}, 50, ms(3)},
		{"p99 of ten is the max", hundred[:10], 99, ms(10)},
		{"p90 of ten is the ninth", hundred[:10], 90, ms(9)},
		{"tiny p is the min", hundred, 0.001, ms(1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, percentile(tc.sorted, tc.p))
		})
	}
}

func TestSummarizeBench(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	run := func(created, started, finished int, state catalog.RunState) client.Run {
		r := client.Run{Run: catalog.Run{State: state, CreatedAt: t0.Add(ms(created))}}
		if started >= 0 {
			s := t0.Add(ms(started))
			r.StartedAt = &s
		}
		f := t0.Add(ms(finished))
		r.FinishedAt = &f
		return r
	}
	runs := []client.Run{
		run(0, 10, 20, catalog.StateSucceeded),     // latency 10
		run(100, 140, 150, catalog.StateSucceeded), // 40
		run(200, 220, 2000, catalog.StateFailed),   // 20, the last end
		run(300, -1, 310, catalog.StateCanceled),   // never started: no latency sample
	}
	res := summarizeBench(runs)
	assert.Equal(t, 4, res.Runs)
	assert.Equal(t, 2*time.Second, res.Elapsed, "first creation to last end")
	assert.InDelta(t, 2.0, res.RunsPerSecond, 1e-9)
	assert.Equal(t, 3, res.Started)
	assert.Equal(t, ms(20), res.LatencyP50)
	assert.Equal(t, ms(40), res.LatencyP95)
	assert.Equal(t, ms(40), res.LatencyP99)
	assert.Equal(t, ms(40), res.LatencyMax)
	assert.Equal(t, map[catalog.RunState]int{catalog.StateSucceeded: 2, catalog.StateFailed: 1, catalog.StateCanceled: 1}, res.States)

	b, err := json.Marshal(res)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out))
	assert.InDelta(t, 2.0, out["elapsed_seconds"], 1e-9)
	assert.InDelta(t, 0.02, out["pending_to_active_seconds"].(map[string]any)["p50"], 1e-9)
	assert.EqualValues(t, 2, out["states"].(map[string]any)["succeeded"])

	var buf bytes.Buffer
	writeBenchReport(&buf, res)
	assert.Contains(t, buf.String(), "2.0 runs/s")
	assert.Contains(t, buf.String(), "p50 20ms  p95 40ms  p99 40ms  max 40ms  (3 runs)")
	assert.Contains(t, buf.String(), "succeeded 2 failed 1 canceled 1")

	assert.Equal(t, BenchResult{States: map[catalog.RunState]int{}}, summarizeBench(nil))
}

// benchScript moves a run queued -> active -> succeeded over three reads.
func benchScript(*client.Run) []func(*client.Run) {
	return []func(*client.Run){
		func(r *client.Run) { r.State = catalog.StateQueued },
		func(r *client.Run) { r.State, r.Attempt = catalog.StateActive, 1 },
		func(r *client.Run) { r.State = catalog.StateSucceeded },
	}
}

func TestRunBenchCreatesTargetsSubmitsAndMeasures(t *testing.T) {
	f := newFakeWeir(t)
	f.newScript = benchScript
	c, err := client.New(f.url(), fakeToken)
	require.NoError(t, err)
	ctx := context.Background()

	res, err := runBench(ctx, c, BenchOptions{Runs: 25, Concurrency: 4, Poll: time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, 25, res.Runs)
	assert.Equal(t, BenchTargetName, res.Mapping)
	assert.Equal(t, 4, res.Concurrency)
	assert.Equal(t, map[catalog.RunState]int{catalog.StateSucceeded: 25}, res.States)
	assert.Equal(t, 25, res.Started)
	assert.Positive(t, res.Elapsed)
	assert.Positive(t, res.RunsPerSecond)
	assert.Positive(t, res.LatencyP50)
	assert.LessOrEqual(t, res.LatencyP50, res.LatencyP95)
	assert.LessOrEqual(t, res.LatencyP95, res.LatencyP99)
	assert.LessOrEqual(t, res.LatencyP99, res.LatencyMax)

	f.mu.Lock()
	sys := f.systems[BenchTargetName]
	m := f.mappings[BenchTargetName]
	submitted := len(f.runs)
	f.mu.Unlock()
	assert.Equal(t, catalog.KindNull, sys.Kind)
	assert.Equal(t, BenchTargetName, m.Source.V.System)
	assert.Equal(t, BenchTargetName, m.Target.V.System)
	assert.True(t, m.Enabled)
	assert.Equal(t, 25, submitted)

	count := func(prefix string) int {
		n := 0
		for _, r := range f.requestLog() {
			if strings.HasPrefix(r, prefix) {
				n++
			}
		}
		return n
	}
	assert.Equal(t, 1, count("POST /api/v1/systems"))
	assert.Equal(t, 1, count("POST /api/v1/mappings"))
	assert.Equal(t, 25, count("POST /api/v1/runs"))

	// A second bench reuses them, and counts only its own runs.
	res, err = runBench(ctx, c, BenchOptions{Runs: 3, Concurrency: 8, Poll: time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, 3, res.Runs)
	assert.Equal(t, 1, count("POST /api/v1/systems"))
	assert.Equal(t, 1, count("POST /api/v1/mappings"))
}

func TestRunBenchRefusesAForeignTarget(t *testing.T) {
	f := newFakeWeir(t)
	f.addSystem(catalog.System{Name: BenchTargetName, Kind: "fs", Region: "local"})
	c, err := client.New(f.url(), fakeToken)
	require.NoError(t, err)
	_, err = runBench(context.Background(), c, BenchOptions{Runs: 1})
	require.ErrorContains(t, err, `system weir-bench-null exists with kind "fs"`)

	_, err = runBench(context.Background(), c, BenchOptions{Runs: 0, Concurrency: -1})
	require.ErrorContains(t, err, "concurrency must be at least 1")

	_, err = runBench(context.Background(), c, BenchOptions{Mapping: "nope"})
	require.ErrorIs(t, err, catalog.ErrNotFound)
	for _, r := range f.requestLog() {
		assert.NotContains(t, r, "POST", "nothing is submitted or created")
	}
}

func TestRunBenchStopsOnASubmitError(t *testing.T) {
	f := newFakeWeir(t)
	f.newScript = benchScript
	c, err := client.New(f.url(), fakeToken)
	require.NoError(t, err)
	// The mapping needs a parameter the bench does not give: every submit fails.
	_, err = runBench(context.Background(), c, BenchOptions{Mapping: "demo-trades", Runs: 50, Concurrency: 4})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "params.business_date: is required")
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Empty(t, f.runs)
	assert.Less(t, len(f.requests), 20, "submitters stop at the first error")
}
