package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

var evalNow = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// calm is a sample that crosses no default threshold.
func calm() catalog.Sample {
	return catalog.Sample{NodeID: "w1", Region: "eu", At: evalNow.Add(-2 * time.Second), CPUPct: 40, MemUsedPct: 50,
		Disks: []catalog.Disk{{Path: "/", UsedPct: 30}, {Path: "/data", UsedPct: 60}}}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	th := catalog.ThresholdsDefault
	type want struct {
		color  catalog.Color
		texts  []string
		metric string
		detail string
		value  float64
		thresh float64
	}
	cases := []struct {
		name string
		mod  func(s *catalog.Sample)
		age  time.Duration
		th   *catalog.Thresholds
		want want
	}{
		{"all calm", func(s *catalog.Sample) {}, 2 * time.Second, nil, want{color: catalog.Green}},
		{"cpu warning", func(s *catalog.Sample) { s.CPUPct = 88 }, 0, nil,
			want{catalog.Yellow, []string{"cpu 88% > 85% warning"}, catalog.ThresholdCPU, "", 88, 85}},
		{"cpu critical", func(s *catalog.Sample) { s.CPUPct = 97 }, 0, nil,
			want{catalog.Red, []string{"cpu 97% > 95% critical"}, catalog.ThresholdCPU, "", 97, 95}},
		{"cpu exactly at critical is only a warning", func(s *catalog.Sample) { s.CPUPct = 95 }, 0, nil,
			want{catalog.Yellow, []string{"cpu 95% > 85% warning"}, catalog.ThresholdCPU, "", 95, 85}},
		{"cpu exactly at warning is fine", func(s *catalog.Sample) { s.CPUPct = 85 }, 0, nil, want{color: catalog.Green}},
		{"cpu with a decimal", func(s *catalog.Sample) { s.CPUPct = 95.44 }, 0, nil,
			want{catalog.Red, []string{"cpu 95.4% > 95% critical"}, catalog.ThresholdCPU, "", 95.44, 95}},
		{"memory warning", func(s *catalog.Sample) { s.MemUsedPct = 90 }, 0, nil,
			want{catalog.Yellow, []string{"memory 90% > 85% warning"}, catalog.ThresholdMemory, "", 90, 85}},
		{"memory critical", func(s *catalog.Sample) { s.MemUsedPct = 99.5 }, 0, nil,
			want{catalog.Red, []string{"memory 99.5% > 95% critical"}, catalog.ThresholdMemory, "", 99.5, 95}},
		{"free disk warning", func(s *catalog.Sample) { s.Disks[1].UsedPct = 92 }, 0, nil,
			want{catalog.Yellow, []string{"free disk on /data 8% < 10% warning"}, catalog.ThresholdDiskFree, "/data", 8, 10}},
		{"free disk critical", func(s *catalog.Sample) { s.Disks[1].UsedPct = 97 }, 0, nil,
			want{catalog.Red, []string{"free disk on /data 3% < 5% critical"}, catalog.ThresholdDiskFree, "/data", 3, 5}},
		{"free disk exactly at critical is only a warning", func(s *catalog.Sample) { s.Disks[0].UsedPct = 95 }, 0, nil,
			want{catalog.Yellow, []string{"free disk on / 5% < 10% warning"}, catalog.ThresholdDiskFree, "/", 5, 10}},
		{"deviation warning", func(s *catalog.Sample) { s.Deviations = map[string]float64{catalog.MetricCPU: 3.4} }, 0, nil,
			want{catalog.Yellow, []string{"cpu 3.4σ above its baseline (> 3σ warning)"}, catalog.ThresholdDeviation, catalog.MetricCPU, 3.4, 3}},
		{"deviation critical below", func(s *catalog.Sample) { s.Deviations = map[string]float64{catalog.MetricNetRxBps: -6.25} }, 0, nil,
			want{catalog.Red, []string{"network in 6.3σ below its baseline (> 5σ critical)"}, catalog.ThresholdDeviation, catalog.MetricNetRxBps, -6.25, 5}},
		{"small deviations are fine", func(s *catalog.Sample) {
			s.Deviations = map[string]float64{catalog.MetricCPU: 2.9, catalog.MetricLoad1: -3}
		}, 0, nil,
			want{color: catalog.Green}},
		{"heartbeat warning", func(s *catalog.Sample) {}, 20 * time.Second, nil,
			want{catalog.Yellow, []string{"no heartbeat for 20s (warning after 15s)"}, catalog.ThresholdHeartbeat, "", 20, 15}},
		{"heartbeat critical", func(s *catalog.Sample) {}, 42 * time.Second, nil,
			want{catalog.Red, []string{"no heartbeat for 42s (critical after 30s)"}, catalog.ThresholdHeartbeat, "", 42, 30}},
		{"heartbeat in minutes", func(s *catalog.Sample) {}, 125*time.Second + 300*time.Millisecond, nil,
			want{catalog.Red, []string{"no heartbeat for 2m5s (critical after 30s)"}, catalog.ThresholdHeartbeat, "", 125.3, 30}},
		{"heartbeat exactly at critical is only a warning", func(s *catalog.Sample) {}, 30 * time.Second, nil,
			want{catalog.Yellow, []string{"no heartbeat for 30s (warning after 15s)"}, catalog.ThresholdHeartbeat, "", 30, 15}},
		{"no sample yet", func(s *catalog.Sample) { *s = catalog.Sample{} }, 0, nil,
			want{catalog.Yellow, []string{"no host statistics recorded yet"}, catalog.ThresholdHeartbeat, "", 0, 0}},
		{"zero levels are not checked", func(s *catalog.Sample) { s.CPUPct = 100; s.Disks[0].UsedPct = 100 }, time.Hour,
			&catalog.Thresholds{}, want{color: catalog.Green}},
		{"only the critical level set", func(s *catalog.Sample) { s.CPUPct = 99 }, 0,
			&catalog.Thresholds{CPUCrit: 98}, want{catalog.Red, []string{"cpu 99% > 98% critical"}, catalog.ThresholdCPU, "", 99, 98}},
		{"critical first, then warnings in order", func(s *catalog.Sample) {
			s.CPUPct, s.MemUsedPct, s.Disks[1].UsedPct = 90, 96, 91
			s.Deviations = map[string]float64{catalog.MetricCPU: 4, catalog.MetricDiskWriteBps: 8}
		}, 16 * time.Second, nil, want{color: catalog.Red, texts: []string{
			"memory 96% > 95% critical",
			"disk writes 8σ above its baseline (> 5σ critical)",
			"no heartbeat for 16s (warning after 15s)",
			"cpu 90% > 85% warning",
			"free disk on /data 9% < 10% warning",
			"cpu 4σ above its baseline (> 3σ warning)",
		}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := calm()
			c.mod(&s)
			use := th
			if c.th != nil {
				use = *c.th
			}
			h := catalog.Evaluate(s, c.age, use, evalNow)
			require.Equal(t, c.want.color, h.Color)
			var texts []string
			for _, r := range h.Reasons {
				texts = append(texts, r.Text)
				require.Contains(t, []catalog.Color{catalog.Yellow, catalog.Red}, r.Level)
			}
			require.Equal(t, c.want.texts, texts)
			if c.want.metric != "" {
				r := h.Reasons[0]
				require.Equal(t, c.want.metric, r.Metric)
				require.Equal(t, c.want.detail, r.Detail)
				require.InDelta(t, c.want.value, r.Value, 1e-9)
				require.Equal(t, c.want.thresh, r.Threshold)
				require.Equal(t, c.want.color, r.Level)
				if r.Metric == catalog.ThresholdHeartbeat && r.Value > 0 {
					require.NotNil(t, r.Since)
					require.True(t, r.Since.Equal(evalNow.Add(-c.age)), "since the last heartbeat")
				} else {
					require.Nil(t, r.Since)
				}
			}
		})
	}
}

func TestCombineAboutWorst(t *testing.T) {
	t.Parallel()
	require.Equal(t, catalog.Green, catalog.Worst())
	require.Equal(t, catalog.Red, catalog.Worst(catalog.Green, catalog.Red, catalog.Yellow))
	require.Equal(t, catalog.Yellow, catalog.Worst(catalog.Yellow, catalog.Green))

	s := calm()
	s.CPUPct = 90
	a := catalog.Evaluate(s, 0, catalog.ThresholdsDefault, evalNow).About("node w1")
	s = calm()
	s.Disks[1].UsedPct = 97
	b := catalog.Evaluate(s, 0, catalog.ThresholdsDefault, evalNow).About("node w2")
	g := catalog.Evaluate(calm(), 0, catalog.ThresholdsDefault, evalNow).About("node w3")
	require.Nil(t, g.Reasons)

	all := catalog.Combine(a, g, b)
	require.Equal(t, catalog.Red, all.Color)
	require.Len(t, all.Reasons, 2)
	require.Equal(t, "node w2: free disk on /data 3% < 5% critical", all.Reasons[0].String())
	require.Equal(t, "node w1: cpu 90% > 85% warning", all.Reasons[1].String())
	require.Equal(t, "red: node w2: free disk on /data 3% < 5% critical; node w1: cpu 90% > 85% warning", all.String())
	// About keeps a subject already set, and leaves the original alone.
	region := all.About("region eu")
	require.Equal(t, "node w2", region.Reasons[0].Subject)
	require.Equal(t, "", catalog.Evaluate(calm(), time.Minute, catalog.ThresholdsDefault, evalNow).Reasons[0].Subject)
	require.Equal(t, catalog.Health{Color: catalog.Green}, catalog.Combine())
	require.Equal(t, "green", catalog.Combine(g).String())

	// Worst and Only look at some metrics: a deviation alone does not make a host unfit.
	s = calm()
	s.CPUPct = 90
	s.Deviations = map[string]float64{catalog.MetricCPU: 9}
	h := catalog.Evaluate(s, 0, catalog.ThresholdsDefault, evalNow)
	require.Equal(t, catalog.Red, h.Color)
	fit := []string{catalog.ThresholdCPU, catalog.ThresholdMemory, catalog.ThresholdDiskFree}
	require.Equal(t, catalog.Yellow, h.Worst(fit...))
	require.Equal(t, catalog.Red, h.Worst(catalog.ThresholdDeviation))
	only := h.Only(fit...)
	require.Equal(t, catalog.Yellow, only.Color)
	require.Len(t, only.Reasons, 1)
	require.Equal(t, "cpu 90% > 85% warning", only.Reasons[0].Text)
}

func TestThresholdsOverride(t *testing.T) {
	t.Parallel()
	got := catalog.ThresholdsDefault.Override(map[string]catalog.HealthThreshold{
		catalog.ThresholdCPU:       {Warn: 50, Crit: 60},
		catalog.ThresholdMemory:    {Warn: 70, Crit: 0},
		catalog.ThresholdDiskFree:  {Warn: 30, Crit: 20},
		catalog.ThresholdDeviation: {Warn: 2, Crit: 4},
		catalog.ThresholdHeartbeat: {Warn: 1.5, Crit: 4},
	})
	require.Equal(t, catalog.Thresholds{CPUWarn: 50, CPUCrit: 60, MemWarn: 70, MemCrit: 0, DiskFreeWarnPct: 30, DiskFreeCritPct: 20,
		DeviationWarn: 2, DeviationCrit: 4, HeartbeatWarn: 1500 * time.Millisecond, HeartbeatCrit: 4 * time.Second}, got)
	require.Equal(t, catalog.ThresholdsDefault, catalog.ThresholdsDefault.Override(nil))
}

// TestThresholdResolution goes through the real catalog: a node override
// beats a system override, which beats the default scope, which beats the
// built-in levels; the result judges a sample.
func TestThresholdResolution(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, st *catalog.Store) {
		ctx := context.Background()
		set := func(scope, metric string, warn, crit float64) {
			require.NoError(t, st.SetThreshold(ctx, &catalog.HealthThreshold{Scope: scope, Metric: metric, Warn: warn, Crit: crit}))
		}
		s := calm()
		s.CPUPct = 75
		s.Disks[1].UsedPct = 82 // 18% free

		resolve := func() catalog.Thresholds {
			rows, err := st.ResolveThresholds(ctx, catalog.NodeScope("w1"), catalog.SystemScope("pg-main"))
			require.NoError(t, err)
			return catalog.ThresholdsDefault.Override(rows)
		}
		require.Equal(t, catalog.Green, catalog.Evaluate(s, 0, resolve(), evalNow).Color, "built-in levels")

		set(catalog.ThresholdScopeDefault, catalog.ThresholdCPU, 70, 90)
		require.Equal(t, []string{"cpu 75% > 70% warning"}, texts(catalog.Evaluate(s, 0, resolve(), evalNow)))

		set(catalog.SystemScope("pg-main"), catalog.ThresholdCPU, 60, 74)
		set(catalog.SystemScope("pg-main"), catalog.ThresholdDiskFree, 25, 20)
		require.Equal(t, []string{"cpu 75% > 74% critical", "free disk on /data 18% < 20% critical"}, texts(catalog.Evaluate(s, 0, resolve(), evalNow)))

		set(catalog.NodeScope("w1"), catalog.ThresholdCPU, 80, 99)
		require.Equal(t, []string{"free disk on /data 18% < 20% critical"}, texts(catalog.Evaluate(s, 0, resolve(), evalNow)), "the node's own level wins")

		require.NoError(t, st.DeleteThreshold(ctx, catalog.SystemScope("pg-main"), catalog.ThresholdDiskFree))
		require.NoError(t, st.DeleteThreshold(ctx, catalog.NodeScope("w1"), catalog.ThresholdCPU))
		require.Equal(t, []string{"cpu 75% > 74% critical"}, texts(catalog.Evaluate(s, 0, resolve(), evalNow)))
	})
}

func texts(h catalog.Health) []string {
	var out []string
	for _, r := range h.Reasons {
		out = append(out, r.Text)
	}
	return out
}
