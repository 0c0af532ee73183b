package profiler

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// t0 is Monday 2026-03-02 10:00 UTC.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// countingStore counts the profiler's catalog calls (each one transaction)
// and can make writes fail.
type countingStore struct {
	Store
	mu          sync.Mutex
	upserts     int
	insertSizes []int
	rollups     int
	prunes      int
	baselines   int
	failInserts int // the next this many InsertSamples fail
}

func (c *countingStore) UpsertLatestSample(ctx context.Context, l *catalog.HostLatest) error {
	c.mu.Lock()
	c.upserts++
	c.mu.Unlock()
	return c.Store.UpsertLatestSample(ctx, l)
}

func (c *countingStore) InsertSamples(ctx context.Context, s []catalog.HostSample) error {
	c.mu.Lock()
	if c.failInserts > 0 {
		c.failInserts--
		c.mu.Unlock()
		return errors.New("catalog unreachable")
	}
	c.insertSizes = append(c.insertSizes, len(s))
	c.mu.Unlock()
	return c.Store.InsertSamples(ctx, s)
}

func (c *countingStore) Rollup(ctx context.Context, p catalog.RollupParams) (catalog.RollupResult, error) {
	c.mu.Lock()
	c.rollups++
	c.mu.Unlock()
	return c.Store.Rollup(ctx, p)
}

func (c *countingStore) Prune(ctx context.Context, p catalog.PruneParams) (catalog.PruneResult, error) {
	c.mu.Lock()
	c.prunes++
	c.mu.Unlock()
	return c.Store.Prune(ctx, p)
}

func (c *countingStore) ListBaselines(ctx context.Context, node string, hours ...int) ([]catalog.HostBaseline, error) {
	c.mu.Lock()
	c.baselines++
	c.mu.Unlock()
	return c.Store.ListBaselines(ctx, node, hours...)
}

// series is a synthetic sampler: the i-th call returns f(i).
func series(f func(i int) catalog.Sample) (SamplerFunc, *int) {
	var mu sync.Mutex
	n := 0
	return func(context.Context) (catalog.Sample, error) {
		mu.Lock()
		defer mu.Unlock()
		s := f(n)
		n++
		return s, nil
	}, &n
}

func flat(i int) catalog.Sample {
	return catalog.Sample{CPUPct: float64(i % 100), MemUsedPct: 40, Disks: []catalog.Disk{{Path: "/data", FreeBytes: 1 << 40, UsedPct: 50}}}
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	t.Parallel()
	st := &countingStore{}
	smp, _ := series(flat)
	p, err := New(Config{NodeID: "w1", Region: "eu"}, st, smp)
	require.NoError(t, err)
	c := p.Config()
	require.Equal(t, IntervalDefault, c.Interval)
	require.Equal(t, FlushEveryDefault, c.FlushEvery)
	require.Equal(t, []string{"/"}, c.DiskPaths)
	require.Equal(t, RawRetentionDefault, c.RawRetention)
	require.Equal(t, MinuteRetentionDefault, c.MinuteRetention)
	require.Equal(t, HourRetentionDefault, c.HourRetention)
	require.Zero(t, p.Latest().At)

	for _, bad := range []struct {
		field string
		cfg   Config
	}{
		{"node_id", Config{Region: "eu"}},
		{"region", Config{NodeID: "w1"}},
		{"region", Config{NodeID: "w1", Region: "EU West"}},
		{"interval", Config{NodeID: "w1", Region: "eu", Interval: time.Millisecond}},
		{"flush_every", Config{NodeID: "w1", Region: "eu", FlushEvery: -1}},
		{"raw_retention", Config{NodeID: "w1", Region: "eu", RawRetention: 2 * time.Minute}},
		{"minute_retention", Config{NodeID: "w1", Region: "eu", MinuteRetention: time.Hour}},
		{"hour_retention", Config{NodeID: "w1", Region: "eu", HourRetention: time.Minute}},
		{"min_baseline_samples", Config{NodeID: "w1", Region: "eu", MinBaselineSamples: 1}},
		{"forget_after", Config{NodeID: "w1", Region: "eu", ForgetAfter: time.Minute}},
		{"max_buffered", Config{NodeID: "w1", Region: "eu", FlushEvery: 10, MaxBuffered: 5}},
	} {
		_, err := New(bad.cfg, st, smp)
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve, "%+v", bad.cfg)
		require.Equal(t, bad.field, ve.Field)
	}
	_, err = New(Config{NodeID: "w1", Region: "eu"}, nil, smp)
	require.Error(t, err)
}

// TestBatching counts the writes: one latest upsert per sample, one batch
// insert per FlushEvery samples, and a failed batch kept for the next flush.
func TestBatching(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, cs *catalog.Store) {
		ctx := context.Background()
		st := &countingStore{Store: cs}
		smp, calls := series(flat)
		p, err := New(Config{NodeID: "w1", Region: "eu", FlushEvery: 4, MaxBuffered: 6}, st, smp)
		require.NoError(t, err)

		for i := range 10 {
			p.step(ctx, t0.Add(time.Duration(i)*5*time.Second))
		}
		require.Equal(t, 10, *calls)
		require.Equal(t, 10, st.upserts, "the latest row is kept fresh every sample")
		require.Equal(t, 1, st.baselines, "baselines are read once, not per sample")
		require.Equal(t, []int{4, 4}, st.insertSizes, "two batches of four; two samples wait")
		c, err := cs.CountHostRows(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(8), c.Samples)
		require.Equal(t, int64(1), c.Latest)
		l, err := cs.GetLatestSample(ctx, "w1")
		require.NoError(t, err)
		require.True(t, l.At.Equal(t0.Add(45*time.Second)))
		require.Equal(t, 9.0, l.Metrics.V[catalog.MetricCPU])
		require.Equal(t, 50.0, l.Metrics.V[catalog.DiskUsedPctMetric("/data")])
		require.True(t, p.Latest().At.Equal(l.At))
		require.Equal(t, "w1", p.Latest().NodeID)

		// The catalog fails: every full buffer is retried, and at most
		// MaxBuffered samples are kept (the oldest dropped).
		st.failInserts = 1000
		for i := 10; i < 18; i++ {
			p.step(ctx, t0.Add(time.Duration(i)*5*time.Second))
		}
		require.Equal(t, []int{4, 4}, st.insertSizes)
		require.Len(t, p.buf, 6)
		require.True(t, p.buf[0].At.Equal(t0.Add(12*5*time.Second)), "samples 8 to 11 were dropped: %s", p.buf[0].At)
		// It recovers: everything buffered is written in the next flush.
		st.failInserts = 0
		p.flush(ctx, t0.Add(18*5*time.Second))
		require.Equal(t, []int{4, 4, 6}, st.insertSizes)
		c, err = cs.CountHostRows(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(14), c.Samples)
		require.Empty(t, p.buf)
		require.Equal(t, 18, st.upserts, "the latest row stayed fresh while batches failed")
		require.LessOrEqual(t, st.rollups, len(st.insertSizes), "at most one rollup per flush")
	})
}

// TestRunSamplesAndFlushesOnStop runs the real loop with a short interval.
func TestRunSamplesAndFlushesOnStop(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, cs *catalog.Store) {
		smp, calls := series(flat)
		var mu sync.Mutex
		count := func() int { mu.Lock(); defer mu.Unlock(); return *calls }
		locked := SamplerFunc(func(ctx context.Context) (catalog.Sample, error) { mu.Lock(); defer mu.Unlock(); return smp(ctx) })
		p, err := New(Config{NodeID: "w1", Region: "eu", Interval: 20 * time.Millisecond, FlushEvery: 100}, cs, locked)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		require.Eventually(t, func() bool { return count() >= 5 }, 10*time.Second, 10*time.Millisecond)
		l, err := cs.GetLatestSample(context.Background(), "w1")
		require.NoError(t, err, "the latest row is written before any batch")
		require.False(t, l.At.IsZero())
		cancel()
		require.NoError(t, <-done)
		c, err := cs.CountHostRows(context.Background())
		require.NoError(t, err)
		require.Equal(t, int64(count()), c.Samples, "the last partial batch is written on stop")
		require.Error(t, p.Run(context.Background()), "Run is called once")
	})
}

// TestDownsamplingThroughProfiler drives 70 minutes of 5 s samples of a
// known series through the profiler and checks its minute and hour rollups.
func TestDownsamplingThroughProfiler(t *testing.T) {
	eachFast(t, func(t *testing.T, cs *catalog.Store) {
		ctx := context.Background()
		// cpu climbs 0..11 within each minute, plus the minute number: minute m
		// averages m+5.5 and peaks at m+11. Memory is the sample's index.
		smp, _ := series(func(i int) catalog.Sample {
			return catalog.Sample{CPUPct: float64(i%12 + i/12), MemUsedPct: float64(i) / 100}
		})
		p, err := New(Config{NodeID: "w1", Region: "eu", FlushEvery: 6}, cs, smp)
		require.NoError(t, err)
		for i := range 70 * 12 {
			p.step(ctx, t0.Add(time.Duration(i)*5*time.Second))
		}
		mins, err := cs.ListRollups(ctx, "w1", catalog.RollupMinute, t0, t0.Add(2*time.Hour))
		require.NoError(t, err)
		require.Len(t, mins, 69, "the 70th minute is not over when its last batch is written")
		for m, r := range mins {
			require.True(t, r.Bucket.Equal(t0.Add(time.Duration(m)*time.Minute)))
			require.Equal(t, int64(12), r.Samples)
			require.InDelta(t, float64(m)+5.5, r.Metrics.V[catalog.MetricCPU].Avg, 1e-9)
			require.Equal(t, float64(m)+11, r.Metrics.V[catalog.MetricCPU].Max)
			require.InDelta(t, (float64(12*m)+5.5)/100, r.Metrics.V[catalog.MetricMemUsedPct].Avg, 1e-9)
		}
		hours, err := cs.ListRollups(ctx, "w1", catalog.RollupHour, t0, t0.Add(2*time.Hour))
		require.NoError(t, err)
		require.Len(t, hours, 1)
		require.Equal(t, int64(720), hours[0].Samples)
		require.InDelta(t, 29.5+5.5, hours[0].Metrics.V[catalog.MetricCPU].Avg, 1e-9, "mean of m+5.5 over m in 0..59")
		require.Equal(t, 59.0+11, hours[0].Metrics.V[catalog.MetricCPU].Max)
		require.NotContains(t, hours[0].Metrics.V, catalog.DiskUsedPctMetric("/"), "a metric absent from every sample has no aggregate")
	})
}

// TestBaselineAndDeviation builds a baseline of a series with known mean and
// standard deviation, then scores an outlier.
func TestBaselineAndDeviation(t *testing.T) {
	eachFast(t, func(t *testing.T, cs *catalog.Store) {
		ctx := context.Background()
		outlier := -1.0
		// cpu alternates 45, 55: mean 50, standard deviation 5.
		smp, _ := series(func(i int) catalog.Sample {
			cpu := 45.0 + 10*float64(i%2)
			if outlier >= 0 {
				cpu = outlier
			}
			return catalog.Sample{CPUPct: cpu, MemUsedPct: 30, Disks: []catalog.Disk{{Path: "/data", UsedPct: 50}}}
		})
		p, err := New(Config{NodeID: "w1", Region: "eu", FlushEvery: 6, MinBaselineSamples: 120}, cs, smp)
		require.NoError(t, err)
		at := t0
		run := func(n int) {
			for range n {
				p.step(ctx, at)
				at = at.Add(5 * time.Second)
			}
		}
		// Ten minutes: the baseline has 9 or 10 minutes (at most 120 samples)
		// when the last samples are taken: not enough to score.
		run(120)
		require.Nil(t, p.Latest().Deviations, "no score below the minimum sample count")
		run(60)
		b, err := cs.GetBaseline(ctx, "w1", catalog.HourOfWeek(t0))
		require.NoError(t, err)
		agg := b.Metrics.V[catalog.MetricCPU]
		require.GreaterOrEqual(t, agg.N, int64(120))
		require.InDelta(t, 50, agg.Avg, 1e-9)
		require.InDelta(t, 5, agg.Stddev(), 0.05)
		dev := p.Latest().Deviations
		require.Contains(t, dev, catalog.MetricCPU)
		require.InDelta(t, 1, math.Abs(dev[catalog.MetricCPU]), 0.02, "an ordinary sample is one deviation away")

		// An outlier: 90 is 8 deviations above.
		outlier = 90
		run(1)
		s := p.Latest()
		want := (90 - agg.Avg) / agg.Stddev()
		require.InDelta(t, want, s.Deviations[catalog.MetricCPU], 1e-9)
		require.InDelta(t, 8, s.Deviations[catalog.MetricCPU], 0.05)
		h := catalog.Evaluate(s, 0, catalog.ThresholdsDefault, s.At)
		require.Equal(t, catalog.Red, h.Color)
		require.Equal(t, "cpu 8σ above its baseline (> 5σ critical)", h.Reasons[0].Text)
		require.Equal(t, "cpu 90% > 85% warning", h.Reasons[1].Text)

		// Stored with the latest sample; read back and judged the same by NodeHealths.
		l, err := cs.GetLatestSample(ctx, "w1")
		require.NoError(t, err)
		require.InDelta(t, want, l.Deviations.V[catalog.MetricCPU], 1e-9)
		require.InDelta(t, 0, l.Deviations.V[catalog.MetricMemUsedPct], 1e-9, "a flat memory is no deviation")
		nh, err := NodeHealths(ctx, cs, "eu", catalog.ThresholdsDefault, s.At.Add(2*time.Second))
		require.NoError(t, err)
		require.Len(t, nh, 1)
		require.Equal(t, h, nh[0].Health)
		nh, err = NodeHealths(ctx, cs, "us", catalog.ThresholdsDefault, s.At)
		require.NoError(t, err)
		require.Empty(t, nh)

		// A node-scoped threshold changes the verdict; silence turns it red.
		require.NoError(t, cs.SetThreshold(ctx, &catalog.HealthThreshold{Scope: catalog.NodeScope("w1"), Metric: catalog.ThresholdDeviation, Warn: 10, Crit: 20}))
		require.NoError(t, cs.SetThreshold(ctx, &catalog.HealthThreshold{Scope: catalog.NodeScope("w1"), Metric: catalog.ThresholdCPU, Warn: 95, Crit: 99}))
		nh, err = NodeHealths(ctx, cs, "", catalog.ThresholdsDefault, s.At.Add(31*time.Second))
		require.NoError(t, err)
		require.Equal(t, catalog.Red, nh[0].Health.Color)
		require.Len(t, nh[0].Health.Reasons, 1)
		require.Equal(t, "no heartbeat for 31s (critical after 30s)", nh[0].Health.Reasons[0].Text)
	})
}

// TestHostSamplerPlausible samples this machine.
func TestHostSamplerPlausible(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h, err := NewHostSampler([]string{"/", dir, dir + "/"})
	require.NoError(t, err)
	require.Equal(t, []string{"/", dir}, h.DiskPaths())
	time.Sleep(50 * time.Millisecond) // some time for rates
	s, err := h.Sample(context.Background())
	require.NoError(t, err)
	for name, v := range map[string]float64{"cpu": s.CPUPct, "memory": s.MemUsedPct} {
		require.GreaterOrEqual(t, v, 0.0, name)
		require.LessOrEqual(t, v, 100.0, name)
	}
	require.Greater(t, s.MemUsedPct, 0.0)
	require.Greater(t, s.MemUsedBytes, uint64(0))
	require.Len(t, s.Disks, 2)
	require.Equal(t, "/", s.Disks[0].Path)
	require.Greater(t, s.Disks[0].UsedPct, 0.0, "the root file system holds something")
	for _, d := range s.Disks {
		require.Greater(t, d.FreeBytes, uint64(0), d.Path)
		require.GreaterOrEqual(t, d.UsedPct, 0.0, d.Path)
		require.Less(t, d.UsedPct, 100.0, d.Path)
	}
	for _, v := range []float64{s.DiskReadBps, s.DiskWriteBps, s.NetRxBps, s.NetTxBps, s.Load1, s.Load5, s.Load15, s.Proc.CPUPct} {
		require.GreaterOrEqual(t, v, 0.0)
		require.False(t, math.IsNaN(v) || math.IsInf(v, 0))
	}
	require.Greater(t, s.Proc.RSSBytes, uint64(1<<20))
	require.Greater(t, s.Proc.OpenFiles, 0)
	require.Greater(t, s.Proc.Goroutines, 0)
	m := s.Metrics()
	require.Len(t, m, 14+2*2)
	back := catalog.SampleFromLatest(catalog.HostLatest{Metrics: catalog.NewJSON(m)})
	require.Equal(t, s.CPUPct, back.CPUPct)
	require.ElementsMatch(t, s.Disks, back.Disks)

	_, err = NewHostSampler([]string{"relative/path"})
	require.Error(t, err)
	_, err = NewHostSampler([]string{dir + "/missing"})
	require.Error(t, err)
}

func BenchmarkSampleAndEvaluate(b *testing.B) {
	h, err := NewHostSampler([]string{"/"})
	require.NoError(b, err)
	base := map[string]catalog.MetricAgg{}
	for _, name := range catalog.DeviationMetrics {
		base[name] = catalog.MetricAgg{N: 1000, Avg: 10, Max: 50, M2: 1000 * 4}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s, err := h.Sample(ctx)
		if err != nil {
			b.Fatal(err)
		}
		s.At = time.Now()
		s.Deviations = catalog.Deviations(s.Metrics(), base, 100)
		_ = catalog.Evaluate(s, time.Second, catalog.ThresholdsDefault, s.At)
	}
}

// TestSamplerErrors: a failed sample is skipped; a partial one is recorded.
func TestSamplerErrors(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, cs *catalog.Store) {
		ctx := context.Background()
		i := 0
		smp := SamplerFunc(func(context.Context) (catalog.Sample, error) {
			i++
			switch i {
			case 2:
				return catalog.Sample{}, errors.New("cannot read cpu times")
			case 3:
				return catalog.Sample{CPUPct: 33, Disks: []catalog.Disk{{Path: "/", UsedPct: 10}}},
					&PartialSampleError{Err: errors.New("disk /data: no such file or directory")}
			}
			return catalog.Sample{CPUPct: float64(i)}, nil
		})
		p, err := New(Config{NodeID: "w1", Region: "eu", FlushEvery: 1}, cs, smp)
		require.NoError(t, err)
		for k := range 3 {
			p.step(ctx, t0.Add(time.Duration(k)*5*time.Second))
		}
		got, err := cs.ListSamples(ctx, "w1", t0, t0.Add(time.Minute))
		require.NoError(t, err)
		require.Len(t, got, 2, "the failed sample is skipped")
		require.Equal(t, 1.0, got[0].Metrics.V[catalog.MetricCPU])
		require.Equal(t, 33.0, got[1].Metrics.V[catalog.MetricCPU], "the partial sample is recorded")
		require.True(t, got[1].At.Equal(t0.Add(10*time.Second)))
		require.Equal(t, 10.0, got[1].Metrics.V[catalog.DiskUsedPctMetric("/")])
		require.NotContains(t, got[1].Metrics.V, catalog.DiskUsedPctMetric("/data"))
		require.Equal(t, 33.0, p.Latest().CPUPct)
	})
}
