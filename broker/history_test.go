package broker_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestNodeHistoryGivesSamplesRollupsAndBaselines(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.node("w1", catalog.NodeRoleWorker)
		now := e.clock.Now()
		// Two hours of one sample a minute: cpu climbs 0, 1, 2 ... 119.
		var samples []catalog.HostSample
		for i := 0; i < 120; i++ {
			at := now.Add(-2*time.Hour + time.Duration(i)*time.Minute)
			samples = append(samples, catalog.HostSample{NodeID: "w1", At: at,
				Metrics: catalog.NewJSON(map[string]float64{"cpu.busy_pct": float64(i)})})
		}
		require.NoError(t, s.InsertSamples(e.ctx, samples))
		_, err := s.Rollup(e.ctx, catalog.RollupParams{NodeID: "w1", Through: now})
		require.NoError(t, err)

		var h broker.NodeHistory
		r := e.get("/api/v1/nodes/w1/history?window=30m", "viewer")
		require.Equal(t, http.StatusOK, r.Status, r.String())
		r.decode(t, &h)
		require.Equal(t, broker.HistoryRaw, h.Resolution)
		require.Len(t, h.Points, 30, "the samples of the last 30 minutes")
		require.Equal(t, 90.0, h.Points[0].Metrics["cpu.busy_pct"])
		require.Equal(t, 119.0, h.Points[29].Metrics["cpu.busy_pct"])
		require.True(t, h.Points[0].At.Before(h.Points[1].At), "oldest first")
		require.NotEmpty(t, h.Baselines, "the baseline of the hours the window touches")
		var found bool
		for _, b := range h.Baselines {
			if lvl, ok := b.Metrics["cpu.busy_pct"]; ok && lvl.N > 0 {
				found = true
				require.Greater(t, lvl.Stddev, 0.0)
			}
		}
		require.True(t, found, "a baseline level for cpu")

		e.get("/api/v1/nodes/w1/history?window=6h", "viewer").decode(t, &h)
		require.Equal(t, broker.HistoryMinute, h.Resolution)
		require.Len(t, h.Points, 120, "one minute rollup per minute")
		require.Equal(t, 0.0, h.Points[0].Metrics["cpu.busy_pct"])

		e.get("/api/v1/nodes/w1/history?window=72h", "viewer").decode(t, &h)
		require.Equal(t, broker.HistoryHour, h.Resolution)

		d := requireError(t, e.get("/api/v1/nodes/w1/history?window=soon", "viewer"), http.StatusBadRequest, broker.CodeBadRequest)
		require.Equal(t, "window", d.Field)
		requireError(t, e.get("/api/v1/nodes/w1/history?window=30d", "viewer"), http.StatusBadRequest, broker.CodeBadRequest)
		requireError(t, e.get("/api/v1/nodes/nope/history", "viewer"), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/nodes/w1/history", Token: "-"}), http.StatusUnauthorized, broker.CodeUnauthenticated)
	})
}

func TestNodeHistoryMarksDeviationsFromTheBaseline(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.node("w2", catalog.NodeRoleWorker)
		now := e.clock.Now() // 12:00 UTC: the last 40 minutes share one hour of the week
		start := now.Add(-41 * time.Minute)
		var samples []catalog.HostSample
		for i := 0; i < 400; i++ { // a quiet baseline: cpu 10% or 12%
			samples = append(samples, catalog.HostSample{NodeID: "w2", At: start.Add(time.Duration(i) * 6 * time.Second),
				Metrics: catalog.NewJSON(map[string]float64{"cpu.busy_pct": 10 + float64(i%2)*2})})
		}
		require.NoError(t, s.InsertSamples(e.ctx, samples))
		_, err := s.Rollup(e.ctx, catalog.RollupParams{NodeID: "w2", Through: now.Add(-time.Minute)})
		require.NoError(t, err)
		spike := catalog.HostSample{NodeID: "w2", At: now.Add(-time.Second), Metrics: catalog.NewJSON(map[string]float64{"cpu.busy_pct": 95})}
		require.NoError(t, s.InsertSamples(e.ctx, []catalog.HostSample{spike}))

		var h broker.NodeHistory
		r := e.get("/api/v1/nodes/w2/history?window=1h", "viewer")
		require.Equal(t, http.StatusOK, r.Status, r.String())
		r.decode(t, &h)
		last := h.Points[len(h.Points)-1]
		require.Equal(t, 95.0, last.Metrics["cpu.busy_pct"])
		require.Greater(t, last.Deviations["cpu.busy_pct"], 10.0, "the spike is many deviations above the baseline")
		require.Less(t, h.Points[0].Deviations["cpu.busy_pct"], 2.0, "a quiet sample is not")
		require.Len(t, h.Baselines, 1)
		lvl := h.Baselines[0].Metrics["cpu.busy_pct"]
		require.True(t, lvl.Scored)
		require.InDelta(t, 11.0, lvl.Mean, 0.01)
		require.GreaterOrEqual(t, lvl.ScoreStddev, lvl.Stddev, "the scoring deviation is floored, never below the measured one")
	})
}
