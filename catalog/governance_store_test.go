package catalog_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestListSystemAttributeValues(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		for _, name := range []string{"a", "b", "c"} {
			require.NoError(t, s.CreateSystem(f.ctx, &catalog.System{Name: name, Kind: catalog.KindNull, Region: testRegion}))
		}
		require.NoError(t, s.SetSystemAttributes(f.ctx, "a", map[string]string{catalog.SystemNodeAttribute: "db-1", "version": "15"}))
		require.NoError(t, s.SetSystemAttributes(f.ctx, "b", map[string]string{"version": "8"}))
		require.NoError(t, s.SetSystemAttributes(f.ctx, "c", map[string]string{catalog.SystemNodeAttribute: "db-2"}))

		got, err := s.ListSystemAttributeValues(f.ctx, catalog.SystemNodeAttribute)
		require.NoError(t, err)
		require.Equal(t, map[string]string{"a": "db-1", "c": "db-2"}, got)

		got, err = s.ListSystemAttributeValues(f.ctx, "nothing.here")
		require.NoError(t, err)
		require.Empty(t, got)

		_, err = s.ListSystemAttributeValues(f.ctx, "bad key")
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve)
	})
}

func TestSystemHostNode(t *testing.T) {
	nodes := []catalog.Node{
		{ID: "db-1", Address: "10.0.0.1:7070"},
		{ID: "w1", Address: "worker-1.example:7070"},
		{ID: "w2", Address: "http://10.0.0.9:7070"},
		{ID: "w3", Address: "10.0.0.9:7071"},
		{ID: "v6", Address: "[fd00::1]:7070"},
	}
	sys := func(host string) *catalog.System {
		return &catalog.System{Name: "s", Settings: catalog.NewJSON(map[string]string{catalog.SystemHostSetting: host})}
	}
	tests := []struct {
		name     string
		sys      *catalog.System
		nodeAttr string
		want     string
	}{
		{"the node attribute wins", sys("worker-1.example"), "db-1", "db-1"},
		{"the node attribute may name an unknown node", sys(""), "agent-7", "agent-7"},
		{"host setting equal to a node ID", sys("db-1"), "", "db-1"},
		{"host setting equal to an address's host", sys("worker-1.example"), "", "w1"},
		{"an IPv6 address", sys("fd00::1"), "", "v6"},
		{"two nodes on one address are ambiguous", sys("10.0.0.9"), "", ""},
		{"no node on that host", sys("elsewhere"), "", ""},
		{"no host at all", &catalog.System{Name: "s"}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, catalog.SystemHostNode(tc.sys, tc.nodeAttr, nodes))
		})
	}
}

func TestRunHolds(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		t0 := f.clock.Now()
		a, b, c := f.pending(), f.pending(), f.pending()
		other := f.pending(func(r *catalog.Run) { r.Region = "r2" })

		require.NoError(t, s.StartRunHolds(f.ctx, []catalog.RunHold{{RunID: a.ID, Region: testRegion}, {RunID: b.ID, Region: testRegion, Since: t0.Add(-time.Hour)}}))
		require.NoError(t, s.StartRunHolds(f.ctx, []catalog.RunHold{{RunID: other.ID, Region: "r2"}}))
		f.clock.Advance(time.Minute)
		// Starting again keeps the first start.
		require.NoError(t, s.StartRunHolds(f.ctx, []catalog.RunHold{{RunID: a.ID, Region: testRegion}, {RunID: c.ID, Region: testRegion}}))

		got, err := s.ListRunHolds(f.ctx, testRegion)
		require.NoError(t, err)
		require.Len(t, got, 3)
		since := map[string]time.Time{}
		for _, h := range got {
			require.Equal(t, catalog.StatePending, h.State)
			require.Equal(t, testRegion, h.Region)
			since[h.RunID] = h.Since
		}
		require.True(t, since[a.ID].Equal(t0), "a's hold began at its first start: %v", since[a.ID])
		require.True(t, since[b.ID].Equal(t0.Add(-time.Hour)), "%v", since[b.ID])
		require.True(t, since[c.ID].Equal(t0.Add(time.Minute)), "%v", since[c.ID])

		// The run's state comes with its hold.
		_, err = s.RequestCancel(f.ctx, b.ID, "alice")
		require.NoError(t, err)
		got, err = s.ListRunHolds(f.ctx, testRegion)
		require.NoError(t, err)
		states := map[string]catalog.RunState{}
		for _, h := range got {
			states[h.RunID] = h.State
		}
		require.Equal(t, catalog.StateCanceled, states[b.ID])

		require.NoError(t, s.ClearRunHolds(f.ctx, []string{a.ID, b.ID, "000000000000000000000000"}))
		got, err = s.ListRunHolds(f.ctx, testRegion)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, c.ID, got[0].RunID)
		got, err = s.ListRunHolds(f.ctx, "r2")
		require.NoError(t, err)
		require.Len(t, got, 1, "another region's holds are left alone")

		// Bad input is refused and changes nothing.
		var ve *catalog.ValidationError
		require.ErrorAs(t, s.StartRunHolds(f.ctx, []catalog.RunHold{{RunID: a.ID, Region: testRegion}, {RunID: "", Region: testRegion}}), &ve)
		require.ErrorAs(t, s.StartRunHolds(f.ctx, []catalog.RunHold{{RunID: a.ID, Region: ""}}), &ve)
		got, err = s.ListRunHolds(f.ctx, testRegion)
		require.NoError(t, err)
		require.Len(t, got, 1)
	})
}

func TestRaiseAlertOnce(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		p := catalog.RaiseAlertParams{Key: "run-failed:1", Severity: catalog.AlertCritical, Subject: "run 1 failed", Region: testRegion}
		a, created, err := s.RaiseAlertOnce(f.ctx, p)
		require.NoError(t, err)
		require.True(t, created)
		b, created, err := s.RaiseAlertOnce(f.ctx, p)
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, a.ID, b.ID)
		require.Equal(t, int64(1), b.Count, "noticing it again does not count it again")

		// Resolved by an operator: it stays resolved.
		_, err = s.ResolveAlertByID(f.ctx, a.ID)
		require.NoError(t, err)
		c, created, err := s.RaiseAlertOnce(f.ctx, p)
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, a.ID, c.ID)
		require.False(t, c.Open())
		all, _, err := s.ListAlerts(f.ctx, catalog.AlertFilter{Key: p.Key})
		require.NoError(t, err)
		require.Len(t, all, 1)

		_, _, err = s.RaiseAlertOnce(f.ctx, catalog.RaiseAlertParams{Key: "x", Severity: "loud", Subject: "x"})
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve)
	})
}

func TestListRunsEndedAndCountRunHealth(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		t0 := f.clock.Now()
		f.inState(catalog.StateSucceeded)
		failed := f.inState(catalog.StateFailed)
		f.clock.Advance(time.Minute)
		aborted := f.inState(catalog.StateAborted) // ends 6s after its start
		f.inState(catalog.StateCanceled)
		f.pending()
		held := f.pending()
		require.NoError(t, s.SetHoldReasons(f.ctx, map[string]string{held.ID: "source host db-1: cpu 99% > 95% critical"}))
		q := f.inState(catalog.StateQueued)
		act := f.inState(catalog.StateActive)

		ended, err := s.ListRunsEnded(f.ctx, testRegion, t0.Add(-time.Second), 10)
		require.NoError(t, err)
		require.Len(t, ended, 2)
		require.Equal(t, failed.ID, ended[0].ID, "oldest end first")
		require.Equal(t, aborted.ID, ended[1].ID)
		require.Nil(t, ended[0].Plan.V, "plans are not read")

		ended, err = s.ListRunsEnded(f.ctx, testRegion, t0.Add(30*time.Second), 10)
		require.NoError(t, err)
		require.Len(t, ended, 1)
		require.Equal(t, aborted.ID, ended[0].ID)
		ended, err = s.ListRunsEnded(f.ctx, "elsewhere", t0.Add(-time.Hour), 10)
		require.NoError(t, err)
		require.Empty(t, ended)

		c, err := s.CountRunHealth(f.ctx, testRegion, t0.Add(-time.Second))
		require.NoError(t, err)
		require.Equal(t, catalog.RunHealthCounts{Pending: 2, Held: 1, Queued: 1, Active: 1, Failed: 2, FailedSince: t0.Add(-time.Second)}, c)
		c, err = s.CountRunHealth(f.ctx, "", t0.Add(30*time.Second))
		require.NoError(t, err)
		require.Equal(t, int64(1), c.Failed)
		c, err = s.CountRunHealth(f.ctx, "elsewhere", t0)
		require.NoError(t, err)
		require.Equal(t, catalog.RunHealthCounts{FailedSince: t0}, c)

		runs, err := s.ListWorkerRuns(f.ctx, workerFor(q.ID))
		require.NoError(t, err)
		require.Len(t, runs, 1)
		require.Equal(t, q.ID, runs[0].ID)
		runs, err = s.ListWorkerRuns(f.ctx, workerFor(act.ID))
		require.NoError(t, err)
		require.Len(t, runs, 1)
		require.Equal(t, catalog.StateActive, runs[0].State)
		runs, err = s.ListWorkerRuns(f.ctx, workerFor(failed.ID))
		require.NoError(t, err)
		require.Empty(t, runs, "a worker's ended runs are not listed")
	})
}

func TestSetThresholdsAndDeleteScope(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		scope := catalog.NodeScope("w1")
		require.NoError(t, s.SetThreshold(f.ctx, &catalog.HealthThreshold{Scope: scope, Metric: catalog.ThresholdCPU, Warn: 70, Crit: 80}))
		require.NoError(t, s.SetThreshold(f.ctx, &catalog.HealthThreshold{Scope: "default", Metric: catalog.ThresholdCPU, Warn: 85, Crit: 95}))

		// One bad threshold: none is written.
		var ve *catalog.ValidationError
		err := s.SetThresholds(f.ctx, []catalog.HealthThreshold{
			{Scope: scope, Metric: catalog.ThresholdMemory, Warn: 80, Crit: 90},
			{Scope: scope, Metric: catalog.ThresholdDiskFree, Warn: 5, Crit: 10}, // critical above warning
		})
		require.ErrorAs(t, err, &ve)
		require.Equal(t, "crit", ve.Field)
		err = s.SetThresholds(f.ctx, []catalog.HealthThreshold{
			{Scope: scope, Metric: catalog.ThresholdMemory, Warn: 80, Crit: 90},
			{Scope: scope, Metric: catalog.ThresholdMemory, Warn: 81, Crit: 91},
		})
		require.ErrorAs(t, err, &ve)
		rows, err := s.ListThresholds(f.ctx, scope)
		require.NoError(t, err)
		require.Len(t, rows, 1)

		require.NoError(t, s.SetThresholds(f.ctx, []catalog.HealthThreshold{
			{Scope: scope, Metric: catalog.ThresholdCPU, Warn: 50, Crit: 60, UpdatedBy: "admin"},
			{Scope: scope, Metric: catalog.ThresholdDiskFree, Warn: 20, Crit: 10, UpdatedBy: "admin"},
		}))
		got, err := s.ResolveThresholds(f.ctx, scope)
		require.NoError(t, err)
		require.Equal(t, 60.0, got[catalog.ThresholdCPU].Crit, "replaced")
		require.Equal(t, 10.0, got[catalog.ThresholdDiskFree].Crit)
		require.Equal(t, "admin", got[catalog.ThresholdDiskFree].UpdatedBy)

		n, err := s.DeleteScopeThresholds(f.ctx, scope)
		require.NoError(t, err)
		require.Equal(t, int64(2), n)
		rows, err = s.ListThresholds(f.ctx, "")
		require.NoError(t, err)
		require.Len(t, rows, 1, "other scopes stay")
		n, err = s.DeleteScopeThresholds(f.ctx, scope)
		require.NoError(t, err)
		require.Zero(t, n)
		_, err = s.DeleteScopeThresholds(f.ctx, "everything")
		require.ErrorAs(t, err, &ve)
	})
}
