package workload

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// hostStats is a host's latest sample as a test writes it.
type hostStats struct {
	cpu, mem float64
	disks    map[string]float64 // path -> used percent
	dev      map[string]float64 // metric -> deviation
}

// sample records st as node's latest sample, taken now.
func sample(t *testing.T, s *catalog.Store, node string, st hostStats) {
	t.Helper()
	m := map[string]float64{catalog.MetricCPU: st.cpu, catalog.MetricMemUsedPct: st.mem}
	for p, used := range st.disks {
		m[catalog.DiskUsedPctMetric(p)] = used
		m[catalog.DiskFreeBytesMetric(p)] = (100 - used) * 1e9
	}
	l := &catalog.HostLatest{NodeID: node, Region: region, At: s.Now(), Metrics: catalog.NewJSON(m)}
	if st.dev != nil {
		l.Deviations = catalog.NewJSON(st.dev)
	}
	require.NoError(t, s.UpsertLatestSample(context.Background(), l))
}

func threshold(t *testing.T, s *catalog.Store, scope, metric string, warn, crit float64) {
	t.Helper()
	require.NoError(t, s.SetThreshold(context.Background(), &catalog.HealthThreshold{Scope: scope, Metric: metric, Warn: warn, Crit: crit}))
}

// alertsOf returns every alert (open or resolved) with key.
func alertsOf(t *testing.T, s *catalog.Store, key string) []catalog.Alert {
	t.Helper()
	as, _, err := s.ListAlerts(context.Background(), catalog.AlertFilter{Key: key})
	require.NoError(t, err)
	return as
}

func holdsOf(t *testing.T, s *catalog.Store) []catalog.RunHold {
	t.Helper()
	hs, err := s.ListRunHolds(context.Background(), region)
	require.NoError(t, err)
	return hs
}

func TestManagerHoldsRunsOnARedWorkerUntilItsThresholdsRise(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.system("src", 0)
		e.system("dst", 0)
		e.mapping("m", "src", "dst")
		heartbeat(t, s, "w1", 4)
		sample(t, s, "w1", hostStats{cpu: 62, mem: 40, disks: map[string]float64{"/var/lib/weir": 30}})
		// The worker's thresholds lowered below its real load.
		threshold(t, s, catalog.NodeScope("w1"), catalog.ThresholdCPU, 40, 50)
		runs := []*catalog.Run{e.submit("m", 0), e.submit("m", 0), e.submit("m", 0)}
		const reason = "no healthy worker with a free slot in region local: worker w1: cpu 62% > 50% critical"

		m := start(t, testConfig(t, "mgr1"), s)
		for _, r := range runs {
			require.Eventually(t, func() bool { return e.run(r.ID).HoldReason == reason }, 5*time.Second, 5*time.Millisecond,
				"hold reason of %s: %q", r.ID, e.run(r.ID).HoldReason)
		}
		time.Sleep(15 * testConfig(t, "").PollInterval) // many ticks
		m.stop(t)
		// Another leader takes over: the holds are the catalog's, not the first leader's.
		start(t, testConfig(t, "mgr2"), s)
		time.Sleep(15 * testConfig(t, "").PollInterval)
		for _, r := range runs {
			got := e.run(r.ID)
			require.Equal(t, catalog.StatePending, got.State)
			require.Equal(t, reason, got.HoldReason, "each run shows its own hold reason")
			require.Empty(t, alertsOf(t, s, AlertKeyRunHeld+r.ID), "no alert per run")
		}
		as := alertsOf(t, s, AlertKeyHold+"workers of region local")
		require.Len(t, as, 1, "one alert for the cause of the holds")
		require.Equal(t, int64(1), as[0].Count, "raised once, not once per tick nor again by the next leader")
		require.True(t, as[0].Open())
		require.Equal(t, catalog.AlertWarning, as[0].Severity)
		require.Equal(t, "workers of region local holds runs", as[0].Subject)
		require.Equal(t, "3 runs held ("+runs[0].ID+", "+runs[1].ID+", "+runs[2].ID+"): "+reason, as[0].Message)
		require.Equal(t, region, as[0].Region)
		require.Len(t, holdsOf(t, s), 3)

		// Raising the thresholds dispatches them, without a restart.
		threshold(t, s, catalog.NodeScope("w1"), catalog.ThresholdCPU, 80, 90)
		for _, r := range runs {
			got := e.waitState(r.ID, catalog.StateQueued, 5*time.Second)
			require.Equal(t, "w1", got.WorkerID)
			require.Empty(t, got.HoldReason)
		}
		require.Eventually(t, func() bool { return len(holdsOf(t, s)) == 0 }, 5*time.Second, 5*time.Millisecond)
		require.Eventually(t, func() bool {
			as := alertsOf(t, s, AlertKeyHold+"workers of region local")
			return len(as) == 1 && !as[0].Open()
		}, 5*time.Second, 5*time.Millisecond, "the alert is resolved once its runs are dispatched")
	})
}

func TestManagerSendsNoRunToAWorkerWithANearlyFullDisk(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.system("src", 0)
		e.system("dst", 0)
		e.mapping("m", "src", "dst")
		heartbeat(t, s, "w1", 8)
		heartbeat(t, s, "w2", 4)
		for _, w := range []string{"w1", "w2"} {
			sample(t, s, w, hostStats{cpu: 10, mem: 30, disks: map[string]float64{"/": 20, "/var/lib/weir": 40}})
		}
		// w1's disk path is "near full" by its thresholds: 60% free < 70% critical.
		threshold(t, s, catalog.NodeScope("w1"), catalog.ThresholdDiskFree, 75, 70)
		var runs []*catalog.Run
		for range 4 {
			runs = append(runs, e.submit("m", 0))
		}
		start(t, testConfig(t, "mgr1"), s)
		for _, r := range runs {
			got := e.waitState(r.ID, catalog.StateQueued, 5*time.Second)
			require.Equal(t, "w2", got.WorkerID, "the red worker receives no run though it has more free slots")
		}
		// A fifth run waits: w2 is full and w1 red, a health hold naming w1.
		fifth := e.submit("m", 0)
		require.Eventually(t, func() bool {
			return e.run(fifth.ID).HoldReason == "no healthy worker with a free slot in region local: worker w1: free disk on /var/lib/weir 60% < 70% critical"
		}, 5*time.Second, 5*time.Millisecond, "reason: %q", e.run(fifth.ID).HoldReason)
		// The worker going red is an alert of its own.
		require.Eventually(t, func() bool {
			as := alertsOf(t, s, AlertKeyNodeRed+"w1")
			return len(as) == 1 && as[0].Open() && as[0].Severity == catalog.AlertCritical
		}, 5*time.Second, 5*time.Millisecond)
		require.Empty(t, alertsOf(t, s, AlertKeyNodeRed+"w2"))
	})
}

func TestManagerAbortsARunHeldPastTheMaximumHoldTime(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		e := newEnv(t, s)
		e.system("src", 0)
		e.system("dst", 0)
		e.system("ok", 0)
		e.mapping("m", "src", "dst")
		e.mapping("fine", "ok", "dst")
		// src lives on db-1, whose disk holding src's root is nearly full.
		require.NoError(t, s.SetSystemAttributes(ctx, "src", map[string]string{catalog.SystemNodeAttribute: "db-1"}))
		require.NoError(t, s.UpdateSystem(ctx, &catalog.System{Name: "ok", Kind: catalog.KindFS, Region: region,
			Settings: catalog.NewJSON(map[string]string{"root": "/tmp/ok", catalog.SystemHostSetting: "db-2"})}))
		heartbeat(t, s, "db-1", 0, "agent")
		heartbeat(t, s, "db-2", 0, "agent")
		heartbeat(t, s, "w1", 4)
		sample(t, s, "db-1", hostStats{cpu: 5, mem: 20, disks: map[string]float64{"/": 10, "/tmp": 97}})
		sample(t, s, "db-2", hostStats{cpu: 5, mem: 20, disks: map[string]float64{"/": 10, "/tmp": 50}})
		sample(t, s, "w1", hostStats{cpu: 5, mem: 20})
		held := e.submit("m", 5)
		fine := e.submit("fine", 0)

		cfg := testConfig(t, "mgr1")
		cfg.MaxHold = 400 * time.Millisecond
		start(t, cfg, s)
		const reason = "source host db-1: free disk on /tmp 3% < 5% critical"
		require.Eventually(t, func() bool { return e.run(held.ID).HoldReason == reason }, 5*time.Second, 5*time.Millisecond,
			"reason: %q", e.run(held.ID).HoldReason)
		e.waitState(fine.ID, catalog.StateQueued, 5*time.Second) // a run on a healthy host goes ahead
		got := e.waitState(held.ID, catalog.StateAborted, 5*time.Second)
		require.Equal(t, "held longer than the maximum hold time of 400ms: "+reason, got.Error)
		require.Empty(t, got.HoldReason)
		require.Eventually(t, func() bool {
			as := alertsOf(t, s, AlertKeyHold+"host db-1")
			return len(as) == 1 && !as[0].Open() && as[0].Message == "1 run held ("+held.ID+"): "+reason
		}, 5*time.Second, 5*time.Millisecond, "the hold ended with the run")
		require.Eventually(t, func() bool {
			as := alertsOf(t, s, AlertKeyRunFailed+"m")
			return len(as) == 1 && as[0].Open() && strings.Contains(as[0].Message, reason)
		}, 5*time.Second, 5*time.Millisecond, "the aborted run raises its alert")
		require.Empty(t, holdsOf(t, s))
		require.Equal(t, int64(1), alertsOf(t, s, AlertKeyHold+"host db-1")[0].Count)
	})
}

func TestManagerAlertsNodesAndEndedRuns(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		e := newEnv(t, s)
		e.system("src", 0)
		e.system("dst", 0)
		e.mapping("m", "src", "dst")
		// A node last heard from a minute ago.
		s.SetClock(func() time.Time { return time.Now().Add(-time.Minute) })
		require.NoError(t, s.UpsertNode(ctx, &catalog.Node{ID: "gone", Region: region, Roles: catalog.NewJSON([]string{"agent"})}))
		s.SetClock(time.Now)
		heartbeat(t, s, "w1", 2)
		heartbeat(t, s, "w2", 2)
		sample(t, s, "w1", hostStats{cpu: 99, mem: 20})
		sample(t, s, "w2", hostStats{cpu: 10, mem: 20, dev: map[string]float64{catalog.MetricCPU: 4.2}})
		// A run that fails.
		r := e.submit("m", 0)

		start(t, testConfig(t, "mgr1"), s)
		require.Eventually(t, func() bool {
			red, silent, dev := alertsOf(t, s, AlertKeyNodeRed+"w1"), alertsOf(t, s, AlertKeyNodeSilent+"gone"), alertsOf(t, s, AlertKeyNodeDeviation+"w2")
			return len(red) == 1 && len(silent) == 1 && len(dev) == 1
		}, 5*time.Second, 5*time.Millisecond)
		red := alertsOf(t, s, AlertKeyNodeRed+"w1")[0]
		require.Equal(t, catalog.AlertCritical, red.Severity)
		require.Equal(t, "cpu 99% > 95% critical", red.Message)
		silent := alertsOf(t, s, AlertKeyNodeSilent+"gone")[0]
		require.Equal(t, catalog.AlertCritical, silent.Severity)
		require.Contains(t, silent.Message, "not heard from for 1m")
		dev := alertsOf(t, s, AlertKeyNodeDeviation+"w2")[0]
		require.Equal(t, catalog.AlertWarning, dev.Severity)
		require.Equal(t, "cpu 4.2σ above its baseline (> 3σ warning)", dev.Message)
		require.Empty(t, alertsOf(t, s, AlertKeyNodeRed+"w2"))

		// The run (on w2, the only healthy worker) fails.
		q := e.waitState(r.ID, catalog.StateQueued, 5*time.Second)
		require.Equal(t, "w2", q.WorkerID)
		claimed := claim(t, s, "w2", time.Minute)[r.ID]
		_, err := s.FinishRun(ctx, catalog.FinishParams{RunID: r.ID, FencingToken: claimed.FencingToken, Worker: "w2", State: catalog.StateFailed, Error: "disk quota exceeded"})
		require.NoError(t, err)
		require.Eventually(t, func() bool { return len(alertsOf(t, s, AlertKeyRunFailed+"m")) == 1 }, 5*time.Second, 5*time.Millisecond)

		// The deviation gets worse: escalated on the same alert.
		sample(t, s, "w2", hostStats{cpu: 10, mem: 20, dev: map[string]float64{catalog.MetricCPU: 6}})
		require.Eventually(t, func() bool {
			as := alertsOf(t, s, AlertKeyNodeDeviation+"w2")
			return len(as) == 1 && as[0].Severity == catalog.AlertCritical && as[0].Count == 2
		}, 5*time.Second, 5*time.Millisecond)

		// Yellow keeps the red alert open; green resolves it; so does a return to baseline.
		sample(t, s, "w1", hostStats{cpu: 90, mem: 20})
		time.Sleep(10 * testConfig(t, "").PollInterval)
		require.True(t, alertsOf(t, s, AlertKeyNodeRed+"w1")[0].Open(), "a yellow node's red alert stays open")
		sample(t, s, "w1", hostStats{cpu: 20, mem: 20})
		sample(t, s, "w2", hostStats{cpu: 10, mem: 20})
		require.Eventually(t, func() bool {
			return !alertsOf(t, s, AlertKeyNodeRed+"w1")[0].Open() && !alertsOf(t, s, AlertKeyNodeDeviation+"w2")[0].Open()
		}, 5*time.Second, 5*time.Millisecond)

		// Many ticks later: nothing raised twice.
		time.Sleep(10 * testConfig(t, "").PollInterval)
		for _, key := range []string{AlertKeyNodeRed + "w1", AlertKeyNodeSilent + "gone", AlertKeyRunFailed + "m"} {
			as := alertsOf(t, s, key)
			require.Len(t, as, 1, key)
			require.Equal(t, int64(1), as[0].Count, key)
		}
		f := alertsOf(t, s, AlertKeyRunFailed+"m")[0]
		require.Equal(t, catalog.AlertCritical, f.Severity)
		require.Equal(t, "disk quota exceeded", f.Message)
		require.Contains(t, f.Subject, "failed")

		// The silent node comes back: its alert is resolved.
		heartbeat(t, s, "gone", 0, "agent")
		require.Eventually(t, func() bool { return !alertsOf(t, s, AlertKeyNodeSilent+"gone")[0].Open() }, 5*time.Second, 5*time.Millisecond)
	})
}

func TestHealthViewJudgesSystemsOnTheirRootDisk(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	metrics := map[string]float64{catalog.MetricCPU: 30,
		catalog.DiskUsedPctMetric("/"): 50, catalog.DiskUsedPctMetric("/data"): 92, catalog.DiskUsedPctMetric("/data/pg"): 60}
	nodes := []catalog.Node{{ID: "db-1", Address: "db-1.example:7070", LastSeen: now}}
	latest := []catalog.HostLatest{{NodeID: "db-1", At: now.Add(-2 * time.Second), Metrics: catalog.NewJSON(metrics)}}
	rows := []catalog.HealthThreshold{
		{Scope: catalog.SystemScope("archive"), Metric: catalog.ThresholdDiskFree, Warn: 20, Crit: 10},
		{Scope: catalog.NodeScope("db-1"), Metric: catalog.ThresholdCPU, Warn: 20, Crit: 25},
		{Scope: catalog.SystemScope("lenient"), Metric: catalog.ThresholdCPU, Warn: 80, Crit: 90},
	}
	hv := newHealthView(now, nodes, latest, rows, map[string]string{"lenient": "db-1"})
	sys := func(name, root, host string) *catalog.System {
		return &catalog.System{Name: name, Settings: catalog.NewJSON(map[string]string{"root": root, catalog.SystemHostSetting: host})}
	}
	tests := []struct {
		name string
		sys  *catalog.System
		want SystemHost
	}{
		{"no host", sys("free", "/data", ""), SystemHost{}},
		{"the node's cpu threshold applies to its systems", sys("pg", "/data/pg/main", "db-1.example"), SystemHost{Host: "db-1", Red: "cpu 30% > 25% critical"}},
		{"a system's own threshold comes first", sys("lenient", "/data/pg", ""), SystemHost{Host: "db-1"}},
		{"free disk judged on the disk holding the root", sys("archive", "/data/archive", "db-1"),
			SystemHost{Host: "db-1", Red: "cpu 30% > 25% critical; free disk on /data 8% < 10% critical"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, hv.system(tc.sys))
		})
	}

	// Statistics older than the critical heartbeat age are not judged.
	stale := newHealthView(now.Add(time.Minute), nodes, latest, rows, nil)
	require.Equal(t, SystemHost{Host: "db-1"}, stale.system(sys("pg", "/data/pg", "db-1")))
	require.Equal(t, WorkerLoad{ID: "db-1", Slots: 2}, stale.worker(WorkerLoad{ID: "db-1", Slots: 2}))
	require.Equal(t, WorkerLoad{ID: "db-1", Slots: 2, CPU: 30, Red: "cpu 30% > 25% critical"}, hv.worker(WorkerLoad{ID: "db-1", Slots: 2}))
}
