package catalog_test

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// t0 is a Monday 10:00 UTC: hour of week 34.
var hostT0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func metrics(kv ...any) catalog.JSON[map[string]float64] {
	m := map[string]float64{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(float64)
	}
	return catalog.NewJSON(m)
}

func TestMetricAggMergeEqualsSequentialAdds(t *testing.T) {
	t.Parallel()
	xs := []float64{3, 7, 7, 19, -2, 0.5, 11, 4, 4, 8.25}
	var seq catalog.MetricAgg
	for _, x := range xs {
		seq = seq.Add(x)
	}
	// Reference: two-pass mean and sample variance.
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(len(xs))
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	require.Equal(t, int64(len(xs)), seq.N)
	require.InDelta(t, mean, seq.Avg, 1e-12)
	require.InDelta(t, ss/float64(len(xs)-1), seq.Variance(), 1e-9)
	require.Equal(t, 19.0, seq.Max)

	for split := 0; split <= len(xs); split++ {
		var a, b catalog.MetricAgg
		for _, x := range xs[:split] {
			a = a.Add(x)
		}
		for _, x := range xs[split:] {
			b = b.Add(x)
		}
		m := a.Merge(b)
		require.Equal(t, seq.N, m.N, "split %d", split)
		require.InDelta(t, seq.Avg, m.Avg, 1e-12, "split %d", split)
		require.InDelta(t, seq.M2, m.M2, 1e-9, "split %d", split)
		require.Equal(t, seq.Max, m.Max, "split %d", split)
	}
	require.Zero(t, catalog.MetricAgg{}.Variance())
	require.Zero(t, catalog.MetricAgg{}.Add(5).Variance(), "one value has no variance")
}

func TestHourOfWeek(t *testing.T) {
	t.Parallel()
	require.Equal(t, 34, catalog.HourOfWeek(hostT0)) // Monday 10:00
	require.Equal(t, 0, catalog.HourOfWeek(time.Date(2026, 3, 1, 0, 30, 0, 0, time.UTC)))
	require.Equal(t, 167, catalog.HourOfWeek(time.Date(2026, 3, 7, 23, 59, 0, 0, time.UTC)))
	// Zones are irrelevant: 11:00 in UTC+1 is 10:00 UTC.
	require.Equal(t, 34, catalog.HourOfWeek(hostT0.In(time.FixedZone("x", 3600))))
}

func TestLatestSampleUpsert(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		_, err := s.GetLatestSample(ctx, "w1")
		require.ErrorIs(t, err, catalog.ErrNotFound)

		l := &catalog.HostLatest{NodeID: "w1", Region: "eu", At: hostT0, Metrics: metrics("cpu.busy_pct", 12.5),
			Deviations: metrics("cpu.busy_pct", 0.4)}
		require.NoError(t, s.UpsertLatestSample(ctx, l))
		require.NoError(t, s.UpsertLatestSample(ctx, &catalog.HostLatest{NodeID: "w2", Region: "us", At: hostT0, Metrics: metrics("cpu.busy_pct", 50.0)}))

		// A newer sample replaces it; an older one (a late writer) does not.
		require.NoError(t, s.UpsertLatestSample(ctx, &catalog.HostLatest{NodeID: "w1", Region: "eu", At: hostT0.Add(5 * time.Second), Metrics: metrics("cpu.busy_pct", 80.0)}))
		require.NoError(t, s.UpsertLatestSample(ctx, &catalog.HostLatest{NodeID: "w1", Region: "eu", At: hostT0.Add(2 * time.Second), Metrics: metrics("cpu.busy_pct", 1.0)}))
		got, err := s.GetLatestSample(ctx, "w1")
		require.NoError(t, err)
		require.True(t, got.At.Equal(hostT0.Add(5*time.Second)))
		require.Equal(t, map[string]float64{"cpu.busy_pct": 80}, got.Metrics.V)
		require.Empty(t, got.Deviations.V, "the deviations of the older sample are gone")

		eu, err := s.ListLatestSamples(ctx, "eu")
		require.NoError(t, err)
		require.Len(t, eu, 1)
		require.Equal(t, "w1", eu[0].NodeID)
		all, err := s.ListLatestSamples(ctx, "")
		require.NoError(t, err)
		require.Len(t, all, 2)

		// Bad input is refused and changes nothing.
		for _, bad := range []*catalog.HostLatest{
			{NodeID: "", Region: "eu", At: hostT0.Add(time.Minute), Metrics: metrics("cpu", 1.0)},
			{NodeID: "w 1", Region: "eu", At: hostT0.Add(time.Minute), Metrics: metrics("cpu", 1.0)},
			{NodeID: "w1", Region: "", At: hostT0.Add(time.Minute), Metrics: metrics("cpu", 1.0)},
			{NodeID: "w1", Region: "eu", Metrics: metrics("cpu", 1.0)},
			{NodeID: "w1", Region: "eu", At: hostT0.Add(time.Minute), Metrics: metrics("cpu", math.NaN())},
			{NodeID: "w1", Region: "eu", At: hostT0.Add(time.Minute), Metrics: metrics("", 1.0)},
			{NodeID: "w1", Region: "eu", At: hostT0.Add(time.Minute), Metrics: metrics("cpu", 1.0), Deviations: metrics("cpu", math.Inf(1))},
		} {
			var ve *catalog.ValidationError
			require.ErrorAs(t, s.UpsertLatestSample(ctx, bad), &ve)
		}
		got, err = s.GetLatestSample(ctx, "w1")
		require.NoError(t, err)
		require.Equal(t, 80.0, got.Metrics.V["cpu.busy_pct"])
	})
}

func TestInsertSamplesBatch(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		var batch []catalog.HostSample
		for i := range 30 {
			for _, n := range []string{"w1", "w2"} {
				batch = append(batch, catalog.HostSample{NodeID: n, At: hostT0.Add(time.Duration(i) * 5 * time.Second),
					Metrics: metrics("cpu.busy_pct", float64(i), "disk.free_bytes:/data", 1e12)})
			}
		}
		require.NoError(t, s.InsertSamples(ctx, batch))
		got, err := s.ListSamples(ctx, "w1", hostT0, hostT0.Add(time.Hour))
		require.NoError(t, err)
		require.Len(t, got, 30)
		require.Equal(t, 29.0, got[29].Metrics.V["cpu.busy_pct"])
		require.Equal(t, 1e12, got[0].Metrics.V["disk.free_bytes:/data"])
		require.True(t, got[1].At.Equal(hostT0.Add(5*time.Second)))

		// The same batch again (a retried flush) adds nothing and is no error.
		require.NoError(t, s.InsertSamples(ctx, batch[:10]))
		c, err := s.CountHostRows(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(60), c.Samples)

		// One bad sample: the whole batch is refused.
		bad := []catalog.HostSample{
			{NodeID: "w3", At: hostT0, Metrics: metrics("cpu", 1.0)},
			{NodeID: "w3", At: hostT0.Add(time.Second), Metrics: metrics("cpu", math.Inf(-1))},
		}
		var ve *catalog.ValidationError
		require.ErrorAs(t, s.InsertSamples(ctx, bad), &ve)
		require.Equal(t, "samples[1].metrics", ve.Field)
		c, err = s.CountHostRows(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(60), c.Samples)
		require.NoError(t, s.InsertSamples(ctx, nil))
	})
}

// sawtooth inserts 5 s samples from start for n samples: cpu is i%12 (so
// every minute averages 5.5, max 11), load is a linear ramp i/10.
func sawtooth(t *testing.T, s *catalog.Store, node string, start time.Time, first, n int) []catalog.HostSample {
	t.Helper()
	var out []catalog.HostSample
	for i := first; i < first+n; i++ {
		out = append(out, catalog.HostSample{NodeID: node, At: start.Add(time.Duration(i) * 5 * time.Second),
			Metrics: metrics("cpu", float64(i%12), "load", float64(i)/10)})
	}
	require.NoError(t, s.InsertSamples(context.Background(), out))
	return out
}

func TestRollupMinutesHoursBaselines(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		res, err := s.Rollup(ctx, catalog.RollupParams{NodeID: "w1", Through: hostT0})
		require.NoError(t, err)
		require.Equal(t, catalog.RollupResult{}, res, "no samples: nothing to do")

		// 10:00:00 to 11:04:55, 780 samples; 12 per minute.
		samples := sawtooth(t, s, "w1", hostT0, 0, 780)
		sawtooth(t, s, "other", hostT0, 0, 24) // another node's samples are not rolled with w1's

		// Through 10:30:20: minutes 10:00..10:29 are complete, 10:30 is not.
		res, err = s.Rollup(ctx, catalog.RollupParams{NodeID: "w1", Through: hostT0.Add(30*time.Minute + 20*time.Second)})
		require.NoError(t, err)
		require.Equal(t, 30, res.Minutes)
		require.Equal(t, 0, res.Hours, "10:00-11:00 has not ended")
		require.Equal(t, []int{34}, res.BaselineHours)
		require.True(t, res.RolledThrough.Equal(hostT0.Add(30*time.Minute)))

		mins, err := s.ListRollups(ctx, "w1", catalog.RollupMinute, hostT0, hostT0.Add(2*time.Hour))
		require.NoError(t, err)
		require.Len(t, mins, 30)
		for i, m := range mins {
			require.True(t, m.Bucket.Equal(hostT0.Add(time.Duration(i)*time.Minute)))
			require.Equal(t, int64(12), m.Samples)
			cpu := m.Metrics.V["cpu"]
			require.Equal(t, int64(12), cpu.N)
			require.InDelta(t, 5.5, cpu.Avg, 1e-9)
			require.Equal(t, 11.0, cpu.Max)
			load := m.Metrics.V["load"]
			require.InDelta(t, float64(12*i)/10+0.55, load.Avg, 1e-9, "minute %d: avg of i/10 for i in [12m, 12m+12)", i)
			require.InDelta(t, float64(12*i+11)/10, load.Max, 1e-9)
		}

		// Again with the same promise: nothing new.
		res, err = s.Rollup(ctx, catalog.RollupParams{NodeID: "w1", Through: hostT0.Add(30*time.Minute + 50*time.Second)})
		require.NoError(t, err)
		require.Equal(t, 0, res.Minutes)
		require.Empty(t, res.BaselineHours)

		// Through 11:05: the rest, and the hour 10:00 ends.
		res, err = s.Rollup(ctx, catalog.RollupParams{NodeID: "w1", Through: hostT0.Add(65 * time.Minute)})
		require.NoError(t, err)
		require.Equal(t, 35, res.Minutes)
		require.Equal(t, 1, res.Hours)
		require.Equal(t, []int{34, 35}, res.BaselineHours, "minutes of 10:xx and 11:xx")
		hours, err := s.ListRollups(ctx, "w1", catalog.RollupHour, hostT0, hostT0.Add(3*time.Hour))
		require.NoError(t, err)
		require.Len(t, hours, 1)
		h := hours[0]
		require.True(t, h.Bucket.Equal(hostT0))
		require.Equal(t, int64(720), h.Samples)
		require.InDelta(t, 5.5, h.Metrics.V["cpu"].Avg, 1e-9)
		require.Equal(t, 11.0, h.Metrics.V["cpu"].Max)
		require.InDelta(t, 719.0/2/10, h.Metrics.V["load"].Avg, 1e-9)
		require.InDelta(t, 71.9, h.Metrics.V["load"].Max, 1e-9)

		// The baseline of Monday 10:00 holds exactly the 720 raw samples of 10:xx.
		var want catalog.MetricAgg
		for _, smp := range samples[:720] {
			want = want.Add(smp.Metrics.V["load"])
		}
		b, err := s.GetBaseline(ctx, "w1", catalog.HourOfWeek(hostT0))
		require.NoError(t, err)
		require.Equal(t, int64(720), b.Metrics.V["load"].N)
		require.InDelta(t, want.Avg, b.Metrics.V["load"].Avg, 1e-9)
		require.InDelta(t, want.Variance(), b.Metrics.V["load"].Variance(), 1e-6)
		require.InDelta(t, 5.5, b.Metrics.V["cpu"].Avg, 1e-9)
		require.InDelta(t, 720*(143.0/12)/719, b.Metrics.V["cpu"].Variance(), 1e-9, "0..11 sixty times each: population variance 143/12")
		b11, err := s.GetBaseline(ctx, "w1", catalog.HourOfWeek(hostT0)+1)
		require.NoError(t, err)
		require.Equal(t, int64(60), b11.Metrics.V["cpu"].N)
		_, err = s.GetBaseline(ctx, "other", catalog.HourOfWeek(hostT0))
		require.ErrorIs(t, err, catalog.ErrNotFound)
		_, err = s.GetBaseline(ctx, "w1", 168)
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve)
		cells, err := s.ListBaselines(ctx, "w1")
		require.NoError(t, err)
		require.Len(t, cells, 2)
		require.Equal(t, 34, cells[0].HourOfWeek)
		require.Equal(t, b.Metrics.V, cells[0].Metrics.V)
		cells, err = s.ListBaselines(ctx, "w1", 35, 99)
		require.NoError(t, err)
		require.Len(t, cells, 1)
		require.Equal(t, 35, cells[0].HourOfWeek)
		_, err = s.ListBaselines(ctx, "w1", -1)
		require.ErrorAs(t, err, &ve)

		// A week later the same hour of week grows the same cell, incrementally.
		week := 7 * 24 * time.Hour
		sawtooth(t, s, "w1", hostT0.Add(week), 0, 720)
		res, err = s.Rollup(ctx, catalog.RollupParams{NodeID: "w1", Through: hostT0.Add(week + time.Hour)})
		require.NoError(t, err)
		require.Equal(t, 60, res.Minutes)
		b, err = s.GetBaseline(ctx, "w1", catalog.HourOfWeek(hostT0))
		require.NoError(t, err)
		require.Equal(t, int64(1440), b.Metrics.V["load"].N)
		require.InDelta(t, want.Avg, b.Metrics.V["load"].Avg, 1e-9, "the same series twice keeps its mean")
		require.InDelta(t, want.M2*2/1439, b.Metrics.V["load"].Variance(), 1e-6)

		// Bad input.
		_, err = s.Rollup(ctx, catalog.RollupParams{NodeID: "", Through: hostT0})
		require.ErrorAs(t, err, &ve)
		_, err = s.Rollup(ctx, catalog.RollupParams{NodeID: "w1"})
		require.ErrorAs(t, err, &ve)
		_, err = s.ListRollups(ctx, "w1", "day", hostT0, hostT0)
		require.ErrorAs(t, err, &ve)
	})
}

// TestRollupTwoProcessesCountOnce runs rollups of one node from two Stores
// (two processes) at once: every sample reaches the baseline exactly once.
func TestRollupTwoProcessesCountOnce(t *testing.T) {
	for _, d := range catalogtest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			dsn := catalogtest.DSN(t, d)
			s1 := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn})
			s2 := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn})
			ctx := context.Background()
			sawtooth(t, s1, "w1", hostT0, 0, 720) // one hour
			var wg sync.WaitGroup
			for i := range 8 {
				st := []*catalog.Store{s1, s2}[i%2]
				wg.Go(func() {
					// Each goroutine promises a different point in the hour.
					_, err := st.Rollup(ctx, catalog.RollupParams{NodeID: "w1", Through: hostT0.Add(time.Duration(30+i*4) * time.Minute)})
					require.NoError(t, err)
				})
			}
			wg.Wait()
			_, err := s2.Rollup(ctx, catalog.RollupParams{NodeID: "w1", Through: hostT0.Add(time.Hour)})
			require.NoError(t, err)
			b, err := s1.GetBaseline(ctx, "w1", catalog.HourOfWeek(hostT0))
			require.NoError(t, err)
			require.Equal(t, int64(720), b.Metrics.V["cpu"].N)
			c, err := s1.CountHostRows(ctx)
			require.NoError(t, err)
			require.Equal(t, int64(60), c.MinuteRollups)
			require.Equal(t, int64(1), c.HourRollups)
			require.Equal(t, int64(1), c.RollupStates)
		})
	}
}

func TestPruneRetention(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		// Three hours of samples for two nodes, rolled up.
		for _, n := range []string{"w1", "w2"} {
			sawtooth(t, s, n, hostT0, 0, 3*720)
			_, err := s.Rollup(ctx, catalog.RollupParams{NodeID: n, Through: hostT0.Add(3 * time.Hour)})
			require.NoError(t, err)
		}
		c, err := s.CountHostRows(ctx)
		require.NoError(t, err)
		require.Equal(t, catalog.HostTableCounts{Samples: 2 * 3 * 720, MinuteRollups: 2 * 180, HourRollups: 2 * 3, Baselines: 2 * 3, RollupStates: 2}, c)

		now := hostT0.Add(3 * time.Hour)
		var ve *catalog.ValidationError
		_, err = s.Prune(ctx, catalog.PruneParams{Now: now, Raw: time.Hour, Minute: 0, Hour: time.Hour})
		require.ErrorAs(t, err, &ve)
		require.Equal(t, "minute_retention", ve.Field)

		// Only w1's rows: keep 30 min raw, 2 h of minutes, 2 h of hours.
		res, err := s.Prune(ctx, catalog.PruneParams{NodeID: "w1", Now: now, Raw: 30 * time.Minute, Minute: 2 * time.Hour, Hour: 2 * time.Hour})
		require.NoError(t, err)
		require.Equal(t, catalog.PruneResult{Raw: 5 * 360, Minutes: 60, Hours: 1}, res)
		left, err := s.ListSamples(ctx, "w1", hostT0, now)
		require.NoError(t, err)
		require.Len(t, left, 360)
		require.True(t, left[0].At.Equal(now.Add(-30*time.Minute)), "the sample exactly at the cut is kept")

		// Again: nothing more. Then every node, with the Store's clock.
		res, err = s.Prune(ctx, catalog.PruneParams{NodeID: "w1", Now: now, Raw: 30 * time.Minute, Minute: 2 * time.Hour, Hour: 2 * time.Hour})
		require.NoError(t, err)
		require.Equal(t, catalog.PruneResult{}, res)
		s.SetClock(func() time.Time { return now })
		res, err = s.Prune(ctx, catalog.PruneParams{Raw: 30 * time.Minute, Minute: 2 * time.Hour, Hour: 2 * time.Hour})
		require.NoError(t, err)
		require.Equal(t, catalog.PruneResult{Raw: 5 * 360, Minutes: 60, Hours: 1}, res, "w2's rows")
		c, err = s.CountHostRows(ctx)
		require.NoError(t, err)
		require.Equal(t, catalog.HostTableCounts{Samples: 2 * 360, MinuteRollups: 2 * 120, HourRollups: 2 * 2, Baselines: 2 * 3, RollupStates: 2}, c)
	})
}

func TestHealthThresholds(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		set := func(scope, metric string, warn, crit float64) {
			t.Helper()
			require.NoError(t, s.SetThreshold(ctx, &catalog.HealthThreshold{Scope: scope, Metric: metric, Warn: warn, Crit: crit, UpdatedBy: "alice"}))
		}
		set("default", catalog.ThresholdCPU, 70, 90)
		set("default", catalog.ThresholdDiskFree, 20, 10)
		set(catalog.NodeScope("W-1.example"), catalog.ThresholdCPU, 50, 60)
		set(catalog.SystemScope("pg-main"), catalog.ThresholdCPU, 40, 45)
		set(catalog.SystemScope("pg-main"), catalog.ThresholdMemory, 80, 0)
		set(catalog.NodeScope("W-1.example"), catalog.ThresholdHeartbeat, 5, 12)
		// Replacing keeps one row.
		set(catalog.NodeScope("W-1.example"), catalog.ThresholdCPU, 55, 65)

		all, err := s.ListThresholds(ctx, "")
		require.NoError(t, err)
		require.Len(t, all, 6)
		require.Equal(t, "default", all[0].Scope)
		node, err := s.ListThresholds(ctx, "node:W-1.example")
		require.NoError(t, err)
		require.Len(t, node, 2)
		require.Equal(t, catalog.ThresholdCPU, node[0].Metric)
		require.Equal(t, 55.0, node[0].Warn)
		require.Equal(t, "alice", node[0].UpdatedBy)

		// Resolution: the first scope named wins, then default; unset metrics are absent.
		eff, err := s.ResolveThresholds(ctx, catalog.NodeScope("W-1.example"), catalog.SystemScope("pg-main"))
		require.NoError(t, err)
		require.Equal(t, 65.0, eff[catalog.ThresholdCPU].Crit, "node over system")
		require.Equal(t, 80.0, eff[catalog.ThresholdMemory].Warn, "system over nothing")
		require.Equal(t, 10.0, eff[catalog.ThresholdDiskFree].Crit, "default")
		require.Equal(t, 12.0, eff[catalog.ThresholdHeartbeat].Crit)
		_, ok := eff[catalog.ThresholdDeviation]
		require.False(t, ok)
		eff, err = s.ResolveThresholds(ctx, catalog.SystemScope("pg-main"), catalog.NodeScope("W-1.example"))
		require.NoError(t, err)
		require.Equal(t, 45.0, eff[catalog.ThresholdCPU].Crit, "system first when named first")
		eff, err = s.ResolveThresholds(ctx, catalog.NodeScope("w9"))
		require.NoError(t, err)
		require.Equal(t, 90.0, eff[catalog.ThresholdCPU].Crit, "a node without overrides gets the defaults")
		require.Len(t, eff, 2)
		require.Equal(t, eff, catalog.ResolveThresholdRows(all, catalog.NodeScope("w9")))

		// Bad input: refused, nothing changed.
		var ve *catalog.ValidationError
		for _, bad := range []catalog.HealthThreshold{
			{Scope: "everything", Metric: catalog.ThresholdCPU, Warn: 1, Crit: 2},
			{Scope: "node:", Metric: catalog.ThresholdCPU, Warn: 1, Crit: 2},
			{Scope: "system:Bad Name", Metric: catalog.ThresholdCPU, Warn: 1, Crit: 2},
			{Scope: "default", Metric: "temperature", Warn: 1, Crit: 2},
			{Scope: "default", Metric: catalog.ThresholdCPU, Warn: 90, Crit: 80},
			{Scope: "default", Metric: catalog.ThresholdDiskFree, Warn: 5, Crit: 10},
			{Scope: "default", Metric: catalog.ThresholdMemory, Warn: 50, Crit: 101},
			{Scope: "default", Metric: catalog.ThresholdDeviation, Warn: -1, Crit: 2},
			{Scope: "default", Metric: catalog.ThresholdDeviation, Warn: math.NaN(), Crit: 2},
			{Scope: "default", Metric: catalog.ThresholdHeartbeat, Warn: 0, Crit: 0},
		} {
			require.ErrorAs(t, s.SetThreshold(ctx, &bad), &ve, "%+v", bad)
		}
		_, err = s.ResolveThresholds(ctx, "nonsense")
		require.ErrorAs(t, err, &ve)
		after, err := s.ListThresholds(ctx, "")
		require.NoError(t, err)
		require.Len(t, after, 6)

		require.NoError(t, s.DeleteThreshold(ctx, catalog.NodeScope("W-1.example"), catalog.ThresholdCPU))
		require.ErrorIs(t, s.DeleteThreshold(ctx, catalog.NodeScope("W-1.example"), catalog.ThresholdCPU), catalog.ErrNotFound)
		eff, err = s.ResolveThresholds(ctx, catalog.NodeScope("W-1.example"), catalog.SystemScope("pg-main"))
		require.NoError(t, err)
		require.Equal(t, 45.0, eff[catalog.ThresholdCPU].Crit, "with the node's override gone, the system's applies")
	})
}

func TestPruneForgetsSilentNodes(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		now := hostT0.Add(10 * 24 * time.Hour)
		// "old" stopped ten days ago (a node renamed or gone); "live" samples now.
		for node, at := range map[string]time.Time{"old": hostT0, "live": now.Add(-2 * time.Hour)} {
			sawtooth(t, s, node, at, 0, 720)
			_, err := s.Rollup(ctx, catalog.RollupParams{NodeID: node, Through: at.Add(time.Hour)})
			require.NoError(t, err)
			require.NoError(t, s.UpsertLatestSample(ctx, &catalog.HostLatest{NodeID: node, Region: "eu", At: at.Add(time.Hour), Metrics: metrics("cpu", 1.0)}))
		}
		long := 30 * 24 * time.Hour // retentions that delete nothing
		var ve *catalog.ValidationError
		_, err := s.Prune(ctx, catalog.PruneParams{Now: now, Raw: long, Minute: long, Hour: long, ForgetAfter: -time.Second})
		require.ErrorAs(t, err, &ve)
		require.Equal(t, "forget_after", ve.Field)

		res, err := s.Prune(ctx, catalog.PruneParams{Now: now, Raw: long, Minute: long, Hour: long})
		require.NoError(t, err)
		require.Equal(t, catalog.PruneResult{}, res, "without ForgetAfter no node is forgotten")
		// Scoped to a node, only that node can be forgotten.
		res, err = s.Prune(ctx, catalog.PruneParams{NodeID: "live", Now: now, Raw: long, Minute: long, Hour: long, ForgetAfter: 7 * 24 * time.Hour})
		require.NoError(t, err)
		require.Empty(t, res.Forgotten)

		res, err = s.Prune(ctx, catalog.PruneParams{Now: now, Raw: long, Minute: long, Hour: long, ForgetAfter: 7 * 24 * time.Hour})
		require.NoError(t, err)
		require.Equal(t, []string{"old"}, res.Forgotten)
		c, err := s.CountHostRows(ctx)
		require.NoError(t, err)
		require.Equal(t, catalog.HostTableCounts{Latest: 1, Samples: 720, MinuteRollups: 60, HourRollups: 1, Baselines: 1, RollupStates: 1}, c, "only live's rows are left")
		_, err = s.GetLatestSample(ctx, "old")
		require.ErrorIs(t, err, catalog.ErrNotFound)
		cells, err := s.ListBaselines(ctx, "old")
		require.NoError(t, err)
		require.Empty(t, cells)
		_, err = s.GetLatestSample(ctx, "live")
		require.NoError(t, err)
	})
}
