package broker_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// node registers a node of testRegion seen now.
func (e *env) node(id string, roles ...string) {
	e.t.Helper()
	if len(roles) == 0 {
		roles = []string{catalog.NodeRoleWorker}
	}
	require.NoError(e.t, e.store.UpsertNode(e.ctx, &catalog.Node{ID: id, Region: testRegion, Roles: catalog.NewJSON(roles), Slots: 2, Address: id + ".example:7070"}))
}

// stats records a node's latest sample, taken now: cpu, memory and disk
// paths with their used percent.
func (e *env) stats(id string, cpu, mem float64, disks map[string]float64) {
	e.t.Helper()
	m := map[string]float64{catalog.MetricCPU: cpu, catalog.MetricMemUsedPct: mem}
	for p, used := range disks {
		m[catalog.DiskUsedPctMetric(p)] = used
		m[catalog.DiskFreeBytesMetric(p)] = (100 - used) * 1e9
	}
	require.NoError(e.t, e.store.UpsertLatestSample(e.ctx, &catalog.HostLatest{NodeID: id, Region: testRegion, At: e.clock.Now(), Metrics: catalog.NewJSON(m)}))
}

func reasonTexts(h catalog.Health) []string {
	out := make([]string, len(h.Reasons))
	for i, r := range h.Reasons {
		out[i] = r.String()
	}
	return out
}

// healthFixture builds nodes green, yellow, red, silent, left and bare (no
// statistics), systems on them, services and runs in every condition.
func healthFixture(t *testing.T, e *env) (held, queued broker.RunView) {
	t.Helper()
	ctx := context.Background()
	e.node("silent")
	e.clock.Advance(45 * time.Second)
	for _, id := range []string{"green", "yellow", "red", "bare", "gone"} {
		e.node(id)
	}
	require.NoError(t, e.store.SetNodeState(ctx, "gone", catalog.NodeLeft))
	e.stats("green", 12, 30, map[string]float64{"/": 40})
	e.stats("yellow", 20, 88, map[string]float64{"/": 40})
	e.stats("red", 20, 30, map[string]float64{"/": 40, "/data": 97})
	// src lives on red (whose /data is nearly full), dst on green.
	require.NoError(t, e.store.SetSystemAttributes(ctx, "src", map[string]string{catalog.SystemNodeAttribute: "red"}))
	require.NoError(t, e.store.UpdateSystem(ctx, &catalog.System{Name: "dst", Kind: catalog.KindFS, Region: testRegion,
		Settings: catalog.NewJSON(map[string]string{"root": "/data/dst", catalog.SystemHostSetting: "green.example"})}))
	for _, sv := range []*catalog.Service{
		{Node: "green", Name: "worker", Kind: catalog.ServiceInProcess, Status: catalog.ServiceRunning},
		{Node: "red", Name: "exporter", Kind: catalog.ServiceCommand, Status: catalog.ServiceFailed, Restarts: 5, LastError: "exit status 2"},
		{Node: "silent", Name: "worker", Kind: catalog.ServiceInProcess, Status: catalog.ServiceRunning},
	} {
		require.NoError(t, e.store.UpsertService(ctx, sv))
	}
	held = e.mustSubmit("sub", tradesRequest("2026-11-20"))
	require.NoError(t, e.store.SetHoldReasons(ctx, map[string]string{held.ID: "source host red: free disk on /data 3% < 5% critical"}))
	queued = e.mustSubmit("admin", map[string]any{"mapping": "other"})
	lease, err := e.store.AcquireLease(ctx, catalog.LeaderLeaseName(testRegion), "mgr", time.Hour)
	require.NoError(t, err)
	require.NoError(t, e.store.DispatchRun(ctx, catalog.DispatchParams{RunID: queued.ID, Worker: "red",
		Plan: &catalog.Plan{RunID: queued.ID}, LeaseName: lease.Name, LeaseHolder: lease.Holder, LeaseToken: lease.Token}))
	return held, queued
}

func TestHealthReportsColorsAndReasonsEverywhere(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		held, _ := healthFixture(t, e)

		r := e.get("/api/v1/health", "viewer")
		require.Equal(t, http.StatusOK, r.Status, r.String())
		var rep broker.HealthReport
		r.decode(t, &rep)

		nodes := map[string]broker.NodeView{}
		for _, n := range rep.Nodes {
			nodes[n.ID] = n
		}
		require.Len(t, nodes, 6)
		require.Equal(t, catalog.Green, nodes["green"].Health.Color)
		require.Empty(t, nodes["green"].Health.Reasons)
		require.Equal(t, catalog.Yellow, nodes["yellow"].Health.Color)
		require.Equal(t, []string{"memory 88% > 85% warning"}, reasonTexts(nodes["yellow"].Health))
		require.Equal(t, catalog.Red, nodes["red"].Health.Color)
		require.Equal(t, []string{"free disk on /data 3% < 5% critical"}, reasonTexts(nodes["red"].Health))
		require.Equal(t, catalog.Red, nodes["silent"].Health.Color)
		require.Contains(t, reasonTexts(nodes["silent"].Health), "no heartbeat for 45s (critical after 30s)")
		require.Equal(t, catalog.Yellow, nodes["bare"].Health.Color)
		require.Equal(t, []string{"no host statistics recorded yet"}, reasonTexts(nodes["bare"].Health))
		require.Equal(t, catalog.Yellow, nodes["gone"].Health.Color)
		require.Equal(t, []string{"left the cluster; last seen 0s ago"}, reasonTexts(nodes["gone"].Health))

		require.Len(t, rep.Regions, 1)
		reg := rep.Regions[0]
		require.Equal(t, testRegion, reg.Region)
		require.Equal(t, catalog.Red, reg.Health.Color)
		require.Equal(t, broker.HealthCounts{Green: 1, Yellow: 2, Red: 2}, reg.Nodes, "a node that left does not count")
		require.Contains(t, reasonTexts(reg.Health), "node red: free disk on /data 3% < 5% critical")
		require.Equal(t, "node red: free disk on /data 3% < 5% critical", reasonTexts(reg.Health)[0], "worst first")

		systems := map[string]broker.SystemHealthView{}
		for _, sv := range rep.Systems {
			systems[sv.Name] = sv
		}
		require.Len(t, systems, 3, "a viewer of everything sees every system")
		require.Equal(t, "red", systems["src"].Health.Host)
		require.Equal(t, catalog.Red, systems["src"].Health.Color)
		require.Equal(t, []string{"free disk on /data 3% < 5% critical"}, reasonTexts(systems["src"].Health.Health))
		require.Equal(t, "green", systems["dst"].Health.Host, "linked by its host setting")
		require.Equal(t, catalog.Green, systems["dst"].Health.Color)
		require.Empty(t, systems["far"].Health.Host)
		require.Equal(t, catalog.Green, systems["far"].Health.Color)

		services := map[string]broker.ServiceView{}
		for _, sv := range rep.Services {
			services[sv.Node+"/"+sv.Name] = sv
		}
		require.Equal(t, catalog.Green, services["green/worker"].Health.Color)
		require.Equal(t, []string{"keeps dying (5 restarts): exit status 2"}, reasonTexts(services["red/exporter"].Health))
		require.Equal(t, catalog.Red, services["silent/worker"].Health.Color)
		require.Equal(t, []string{"status unknown: node silent no heartbeat for 45s (critical after 30s)"}, reasonTexts(services["silent/worker"].Health))

		require.Equal(t, int64(1), rep.Runs.Held)
		require.Equal(t, int64(1), rep.Runs.Pending)
		require.Equal(t, int64(1), rep.Runs.Queued)
		require.Equal(t, catalog.Red, rep.Health.Color)
		require.Contains(t, reasonTexts(rep.Health), "system src on host red: free disk on /data 3% < 5% critical")
		require.Contains(t, reasonTexts(rep.Health), "service red/exporter: keeps dying (5 restarts): exit status 2")

		// A caller sees only the systems it may read.
		e.get("/api/v1/health", "sub").decode(t, &rep)
		require.Empty(t, rep.Systems)

		// The region filter.
		e.get("/api/v1/health?region=us-east", "viewer").decode(t, &rep)
		require.Empty(t, rep.Nodes)
		require.Empty(t, rep.Regions)
		require.Len(t, rep.Systems, 1)
		require.Equal(t, "far", rep.Systems[0].Name)
		requireError(t, e.get("/api/v1/health?region=no%20such", "viewer"), http.StatusBadRequest, broker.CodeBadRequest)

		// Health on each resource: systems and runs.
		var sys broker.SystemView
		e.get("/api/v1/systems/src", "admin").decode(t, &sys)
		require.NotNil(t, sys.Health)
		require.Equal(t, catalog.Red, sys.Health.Color)
		require.Equal(t, "red", sys.Health.Host)
		var list struct{ Systems []broker.SystemView }
		e.get("/api/v1/systems", "admin").decode(t, &list)
		for _, v := range list.Systems {
			require.NotNil(t, v.Health, v.Name)
		}
		var run broker.RunView
		e.get("/api/v1/runs/"+held.ID, "sub").decode(t, &run)
		require.Equal(t, catalog.Yellow, run.Health.Color)
		require.Equal(t, []string{"held: source host red: free disk on /data 3% < 5% critical"}, reasonTexts(run.Health))

		requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/health", Token: "-"}), http.StatusUnauthorized, broker.CodeUnauthenticated)
		requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/health", Token: "weir_nope"}), http.StatusUnauthorized, broker.CodeUnauthenticated)
	})
}

func TestNodesListAndDetail(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		_, queued := healthFixture(t, e)

		var list broker.NodeList
		r := e.get("/api/v1/nodes", "nobody")
		require.Equal(t, http.StatusOK, r.Status, "any authenticated caller sees the nodes")
		r.decode(t, &list)
		require.Len(t, list.Nodes, 6)
		for _, n := range list.Nodes {
			require.NotEmpty(t, n.Health.Color, n.ID)
		}
		e.get("/api/v1/nodes?region=us-east", "nobody").decode(t, &list)
		require.Empty(t, list.Nodes)

		var d broker.NodeDetail
		r = e.get("/api/v1/nodes/red", "admin")
		require.Equal(t, http.StatusOK, r.Status, r.String())
		r.decode(t, &d)
		require.Equal(t, "red", d.ID)
		require.Equal(t, catalog.Red, d.Health.Color)
		require.NotNil(t, d.Sample)
		require.Equal(t, 20.0, d.Sample.CPUPct)
		require.Len(t, d.Sample.Disks, 2)
		require.Equal(t, broker.ThresholdLevels{Warn: 10, Crit: 5}, d.Thresholds[catalog.ThresholdDiskFree])
		require.Len(t, d.Services, 1)
		require.Equal(t, catalog.Red, d.Services[0].Health.Color)
		require.Len(t, d.Runs, 1)
		require.Equal(t, queued.ID, d.Runs[0].ID)

		// A caller sees only the runs of the mappings it may read.
		e.get("/api/v1/nodes/red", "sub").decode(t, &d)
		require.Empty(t, d.Runs)

		e.get("/api/v1/nodes/bare", "admin").decode(t, &d)
		require.Nil(t, d.Sample, "never sampled")
		require.Empty(t, d.Services)

		requireError(t, e.get("/api/v1/nodes/nope", "admin"), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/nodes/red", Token: "-"}), http.StatusUnauthorized, broker.CodeUnauthenticated)
	})
}

func TestThresholdsAPIIsForAdminsAndChangesHealth(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.node("w1")
		e.stats("w1", 55, 30, map[string]float64{"/": 40})
		nodeColor := func() catalog.Color {
			var d broker.NodeDetail
			e.get("/api/v1/nodes/w1", "viewer").decode(t, &d)
			return d.Health.Color
		}
		require.Equal(t, catalog.Green, nodeColor())

		var st broker.ScopeThresholds
		r := e.get("/api/v1/thresholds/node:w1", "admin")
		require.Equal(t, http.StatusOK, r.Status, r.String())
		r.decode(t, &st)
		require.Equal(t, "node:w1", st.Scope)
		require.Empty(t, st.Thresholds)
		require.Equal(t, broker.EffectiveThreshold{ThresholdLevels: broker.ThresholdLevels{Warn: 85, Crit: 95}, From: broker.ThresholdBuiltIn}, st.Effective[catalog.ThresholdCPU])
		require.Equal(t, 30.0, st.Effective[catalog.ThresholdHeartbeat].Crit)

		put := func(user, scope string, body any) response {
			return e.do(request{Method: http.MethodPut, Path: "/api/v1/thresholds/" + scope, Token: e.tokens[user], Body: body})
		}
		r = put("admin", "node:w1", map[string]any{"cpu": map[string]float64{"warn": 40, "crit": 50}})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		r.decode(t, &st)
		require.Len(t, st.Thresholds, 1)
		require.Equal(t, "admin", st.Thresholds[0].UpdatedBy)
		require.Equal(t, broker.EffectiveThreshold{ThresholdLevels: broker.ThresholdLevels{Warn: 40, Crit: 50}, From: "node:w1"}, st.Effective[catalog.ThresholdCPU])
		require.Equal(t, catalog.Red, nodeColor(), "thresholds apply at once")

		// The default scope applies to nodes without their own; the escaped form of a scope works too.
		r = put("admin", "default", map[string]any{"memory": map[string]float64{"warn": 20, "crit": 90}})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		e.get("/api/v1/thresholds/node%3Aw1", "admin").decode(t, &st)
		require.Equal(t, "default", st.Effective[catalog.ThresholdMemory].From)

		// Bad input is refused precisely and changes nothing, even the valid part of the body.
		before, err := s.ListThresholds(e.ctx, "")
		require.NoError(t, err)
		d := requireError(t, put("admin", "node:w1", map[string]any{"cpu": map[string]float64{"warn": 10, "crit": 20},
			"disk_free": map[string]float64{"warn": 5, "crit": 10}}), http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "disk_free.crit", d.Field)
		d = requireError(t, put("admin", "node:w1", map[string]any{"cpu": map[string]float64{"warn": 10, "crit": 20},
			"load": map[string]float64{"warn": 1, "crit": 2}}), http.StatusBadRequest, broker.CodeBadRequest)
		require.Equal(t, "load", d.Field)
		requireError(t, put("admin", "node:w1", map[string]any{"cpu": map[string]float64{"warn": 101, "crit": 120}}), http.StatusBadRequest, broker.CodeInvalid)
		requireError(t, put("admin", "node:w1", map[string]any{}), http.StatusBadRequest, broker.CodeBadRequest)
		requireError(t, put("admin", "node:w1", map[string]any{"cpu": map[string]any{"warn": 1, "crit": 2, "extra": 3}}), http.StatusBadRequest, broker.CodeBadRequest)
		d = requireError(t, put("admin", "rack:7", map[string]any{"cpu": map[string]float64{"warn": 10, "crit": 20}}), http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "scope", d.Field)
		after, err := s.ListThresholds(e.ctx, "")
		require.NoError(t, err)
		require.Equal(t, before, after)

		// Only admins.
		for _, user := range []string{"viewer", "sub", "nobody"} {
			requireError(t, e.get("/api/v1/thresholds/node:w1", user), http.StatusForbidden, broker.CodeForbidden)
			requireError(t, e.get("/api/v1/thresholds", user), http.StatusForbidden, broker.CodeForbidden)
			requireError(t, put(user, "node:w1", map[string]any{"cpu": map[string]float64{"warn": 90, "crit": 99}}), http.StatusForbidden, broker.CodeForbidden)
			requireError(t, e.do(request{Method: http.MethodDelete, Path: "/api/v1/thresholds/node:w1", Token: e.tokens[user]}), http.StatusForbidden, broker.CodeForbidden)
		}
		requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/thresholds", Token: "-"}), http.StatusUnauthorized, broker.CodeUnauthenticated)
		after, err = s.ListThresholds(e.ctx, "")
		require.NoError(t, err)
		require.Equal(t, before, after)

		var all broker.ThresholdList
		e.get("/api/v1/thresholds", "admin").decode(t, &all)
		require.Len(t, all.Thresholds, 2)
		require.Equal(t, broker.ThresholdLevels{Warn: 10, Crit: 5}, all.BuiltIn[catalog.ThresholdDiskFree])

		// Delete one metric, then a whole scope; deleting nothing is 404.
		r = e.do(request{Method: http.MethodDelete, Path: "/api/v1/thresholds/node:w1?metric=cpu"})
		require.Equal(t, http.StatusNoContent, r.Status, r.String())
		require.Equal(t, catalog.Yellow, nodeColor(), "cpu back to the built-in levels; memory still above the default scope's warning")
		requireError(t, e.do(request{Method: http.MethodDelete, Path: "/api/v1/thresholds/node:w1?metric=cpu"}), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, e.do(request{Method: http.MethodDelete, Path: "/api/v1/thresholds/node:w1?metric=load"}), http.StatusBadRequest, broker.CodeBadRequest)
		requireError(t, e.do(request{Method: http.MethodDelete, Path: "/api/v1/thresholds/node:w1"}), http.StatusNotFound, broker.CodeNotFound)
		r = e.do(request{Method: http.MethodDelete, Path: "/api/v1/thresholds/default"})
		require.Equal(t, http.StatusNoContent, r.Status, r.String())
		left, err := s.ListThresholds(e.ctx, "")
		require.NoError(t, err)
		require.Empty(t, left)
		require.Equal(t, catalog.Green, nodeColor())
	})
}

func TestHealthOfStaleAndDeadNodesAndStalledRuns(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	started := now.Add(-time.Hour)
	active := catalog.Run{State: catalog.StateActive, StartedAt: &started, UpdatedAt: now.Add(-10 * time.Minute)}
	require.Equal(t, []string{"no progress for 10m0s"}, reasonTexts(broker.RunHealth(&active, now)))
	active.UpdatedAt = now.Add(-time.Minute)
	require.Equal(t, catalog.Green, broker.RunHealth(&active, now).Color)
	failed := catalog.Run{State: catalog.StateFailed, Error: "connection refused"}
	h := broker.RunHealth(&failed, now)
	require.Equal(t, catalog.Red, h.Color)
	require.Equal(t, []string{"failed: connection refused"}, reasonTexts(h))
	aborted := catalog.Run{State: catalog.StateAborted, Error: "timed out after 60s"}
	require.Equal(t, []string{"aborted: timed out after 60s"}, reasonTexts(broker.RunHealth(&aborted, now)))
	require.Equal(t, catalog.Green, broker.RunHealth(&catalog.Run{State: catalog.StatePending}, now).Color)
	require.Equal(t, catalog.Green, broker.RunHealth(&catalog.Run{State: catalog.StateSucceeded}, now).Color)

	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.stats("stale", 99, 99, nil) // red figures, soon two minutes old
		e.clock.Advance(100 * time.Second)
		e.node("dead")
		require.NoError(t, s.SetNodeState(e.ctx, "dead", catalog.NodeDead))
		e.clock.Advance(20 * time.Second) // dead for 20s: past a dead-after of 15s, short of the heartbeat's critical 30s
		e.node("stale")
		var d broker.NodeDetail
		e.get("/api/v1/nodes/stale", "viewer").decode(t, &d)
		require.Equal(t, catalog.Yellow, d.Health.Color, "stale statistics are not judged")
		require.Equal(t, []string{"host statistics last recorded 2m0s ago"}, reasonTexts(d.Health))
		require.NotNil(t, d.Sample, "the stale sample is still shown")
		e.get("/api/v1/nodes/dead", "viewer").decode(t, &d)
		require.Equal(t, catalog.Red, d.Health.Color)
		require.Equal(t, []string{"marked dead: not heard from for 20s", "no heartbeat for 20s (warning after 15s)", "no host statistics recorded yet"}, reasonTexts(d.Health))
	})
}
