package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestDispatchRunNeedsTheLeaderLease(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		r := f.pending()
		before := f.reload(r.ID)
		params := func(mod func(*catalog.DispatchParams)) catalog.DispatchParams {
			p := catalog.DispatchParams{RunID: r.ID, Worker: "w1", Plan: &catalog.Plan{RunID: r.ID},
				LeaseName: f.lease.Name, LeaseHolder: f.lease.Holder, LeaseToken: f.lease.Token}
			mod(&p)
			return p
		}
		for name, mod := range map[string]func(*catalog.DispatchParams){
			"other holder":  func(p *catalog.DispatchParams) { p.LeaseHolder = "srv2" },
			"old token":     func(p *catalog.DispatchParams) { p.LeaseToken-- },
			"other lease":   func(p *catalog.DispatchParams) { p.LeaseName = catalog.LeaderLeaseName("r2") },
			"no lease name": func(p *catalog.DispatchParams) { p.LeaseName = "" },
		} {
			err := s.DispatchRun(f.ctx, params(mod))
			require.ErrorIs(t, err, catalog.ErrNotLeader, name)
			f.unchanged(before)
		}
		require.Equal(t, []string{"submitted"}, f.events(r.ID))

		// An expired lease is not held, even by its last holder.
		short, err := s.AcquireLease(f.ctx, catalog.LeaderLeaseName("r9"), "srv1", time.Second)
		require.NoError(t, err)
		f.clock.Advance(2 * time.Second)
		err = s.DispatchRun(f.ctx, params(func(p *catalog.DispatchParams) { p.LeaseName, p.LeaseToken = short.Name, short.Token }))
		require.ErrorIs(t, err, catalog.ErrNotLeader)
		f.unchanged(before)

		// The holder dispatches: queued on the worker with the plan.
		plan := &catalog.Plan{SchemaVersion: catalog.PlanSchemaVersion, RunID: r.ID, Mapping: "m", Steps: []string{"read", "write"}, Worker: "w1", MaxThreads: 4}
		require.NoError(t, s.SetHoldReason(f.ctx, r.ID, "system src is at its limit"))
		require.NoError(t, s.DispatchRun(f.ctx, params(func(p *catalog.DispatchParams) { p.Plan = plan })))
		got := f.reload(r.ID)
		require.Equal(t, catalog.StateQueued, got.State)
		require.Equal(t, "w1", got.WorkerID)
		require.Equal(t, plan, got.Plan.V)
		require.True(t, got.QueuedAt.Equal(f.clock.Now()))
		require.Empty(t, got.HoldReason, "a dispatched run is no longer held")
		require.Equal(t, []string{"submitted", "queued"}, f.events(r.ID))
	})
}

func TestListDispatchable(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		old := f.pending()
		high := f.pending(func(r *catalog.Run) { r.Priority = 10 })
		young := f.pending()
		later := f.pending(func(r *catalog.Run) { r.NotBefore = f.clock.Now().Add(time.Minute); r.Priority = 20 })
		f.pending(func(r *catalog.Run) { r.Region = "r2" })
		f.queued()
		f.active()
		canceled := f.pending()
		_, err := s.RequestCancel(f.ctx, canceled.ID, "alice")
		require.NoError(t, err)

		ids := func(limit int) []string {
			t.Helper()
			rs, err := s.ListDispatchable(f.ctx, testRegion, limit)
			require.NoError(t, err)
			out := []string{}
			for _, r := range rs {
				require.Nil(t, r.Plan.V, "the list does not carry plans")
				out = append(out, r.ID)
			}
			return out
		}
		require.Equal(t, []string{high.ID, old.ID, young.ID}, ids(10))
		require.Equal(t, []string{high.ID, old.ID}, ids(2))
		f.clock.Advance(time.Minute)
		require.Equal(t, []string{later.ID, high.ID, old.ID, young.ID}, ids(10), "not_before reached")
	})
}

func TestCountActive(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		c, err := s.CountActive(f.ctx, testRegion)
		require.NoError(t, err)
		require.Equal(t, catalog.ActiveCounts{Systems: map[string]int{}, Workers: map[string]int{}}, c)

		f.pending()
		q := f.queued()
		a := f.active(func(r *catalog.Run) { r.SourceSystem, r.TargetSystem = "x", "x" })
		f.inState(catalog.StateSucceeded)
		f.pending(func(r *catalog.Run) { r.Region = "r2" })
		r2 := f.pending(func(r *catalog.Run) { r.Region = "r2" })
		f.dispatch(r2.ID, "w-r2")

		c, err = s.CountActive(f.ctx, testRegion)
		require.NoError(t, err)
		require.Equal(t, 2, c.Region)
		require.Equal(t, map[string]int{"src": 1, "dst": 1, "x": 1}, c.Systems, "a run reading and writing one system counts once")
		require.Equal(t, map[string]int{workerFor(q.ID): 1, workerFor(a.ID): 1}, c.Workers)
		c, err = s.CountActive(f.ctx, "r2")
		require.NoError(t, err)
		require.Equal(t, 1, c.Region)
	})
}

func TestSetHoldReason(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		r := f.pending()
		require.NoError(t, s.SetHoldReason(f.ctx, r.ID, "region at its limit of 4 active runs"))
		require.Equal(t, "region at its limit of 4 active runs", f.reload(r.ID).HoldReason)
		f.clock.Advance(time.Second)
		before := f.reload(r.ID)
		require.NoError(t, s.SetHoldReason(f.ctx, r.ID, "region at its limit of 4 active runs"))
		f.unchanged(before) // the same reason is not written again
		require.NoError(t, s.SetHoldReason(f.ctx, r.ID, ""))
		require.Empty(t, f.reload(r.ID).HoldReason)

		a := f.active()
		before = f.reload(a.ID)
		require.NoError(t, s.SetHoldReason(f.ctx, a.ID, "held"))
		f.unchanged(before) // only pending runs are held
	})
}

func TestReapExpiredLeases(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		retry := f.active()                                                       // attempt 1 of 3: retried
		last := f.active(func(r *catalog.Run) { r.MaxAttempts = 1 })              // attempt 1 of 1: fails
		renewed := f.active()                                                     // its worker renews in time
		other := f.active(func(r *catalog.Run) { r.Region = "r2" })               // another region's
		fresh := f.active(func(r *catalog.Run) { r.TimeoutSeconds = 3600 * 100 }) // claimed later

		reaped, err := s.ReapExpiredLeases(f.ctx, testRegion)
		require.NoError(t, err)
		require.Empty(t, reaped, "nothing expired yet")

		f.clock.Advance(50 * time.Second)
		_, err = s.RenewLeases(f.ctx, []catalog.RunLease{{RunID: renewed.ID, FencingToken: renewed.FencingToken}}, time.Minute)
		require.NoError(t, err)
		f.clock.Advance(20 * time.Second) // the claim leases (1 minute) are gone, the renewed one is not
		_, err = s.RenewLeases(f.ctx, []catalog.RunLease{{RunID: fresh.ID, FencingToken: fresh.FencingToken}}, time.Minute)
		require.NoError(t, err)

		reaped, err = s.ReapExpiredLeases(f.ctx, testRegion)
		require.NoError(t, err)
		require.ElementsMatch(t, []string{retry.ID, last.ID}, reaped)

		row := f.reload(retry.ID)
		require.Equal(t, catalog.StatePending, row.State)
		require.True(t, row.NotBefore.Equal(f.clock.Now().Add(catalog.RetryBackoff(1))))
		require.Contains(t, row.Error, "lease")
		require.Empty(t, row.WorkerID)
		as, err := s.ListRunAttempts(f.ctx, retry.ID)
		require.NoError(t, err)
		require.Equal(t, catalog.StateFailed, as[0].State)

		row = f.reload(last.ID)
		require.Equal(t, catalog.StateFailed, row.State)
		require.NotNil(t, row.FinishedAt)

		require.Equal(t, catalog.StateActive, f.reload(renewed.ID).State)
		require.Equal(t, catalog.StateActive, f.reload(fresh.ID).State)
		require.Equal(t, catalog.StateActive, f.reload(other.ID).State)

		reaped, err = s.ReapExpiredLeases(f.ctx, testRegion)
		require.NoError(t, err)
		require.Empty(t, reaped, "a run is reaped once")
	})
}

// changeWhileBlocked runs op while another PostgreSQL connection holds the
// run's row locked; once op waits for the lock, that connection applies
// change (SQL with args) and commits. It returns op's error. This puts a
// concurrent change exactly between what op read and what op writes.
func changeWhileBlocked(t *testing.T, dsn, runID string, op func() error, change string, args ...any) error {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, "SELECT id FROM runs WHERE id = $1 FOR UPDATE", runID)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- op() }()
	mon, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer mon.Close(ctx)
	require.Eventually(t, func() bool {
		var n int
		err := mon.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(&n)
		return err == nil && n > 0
	}, 10*time.Second, 5*time.Millisecond, "op never waited for the row")
	_, err = tx.Exec(ctx, change, args...)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	return <-done
}

// TestReapSparesALeaseRenewedMeanwhile: a worker that renews its lease between
// the reaper's read and its write keeps its run.
func TestReapSparesALeaseRenewedMeanwhile(t *testing.T) {
	dsn := catalogtest.NewPostgresDSN(t)
	s := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn})
	f := newFixture(t, s)
	r := f.active()
	f.clock.Advance(2 * time.Minute)
	var reaped []string
	err := changeWhileBlocked(t, dsn, r.ID, func() (err error) {
		reaped, err = s.ReapExpiredLeases(f.ctx, testRegion)
		return err
	}, "UPDATE runs SET lease_expires_at = $1 WHERE id = $2", f.clock.Now().Add(time.Minute), r.ID) // the worker's renewal
	require.NoError(t, err)
	require.Empty(t, reaped, "the reaper took a run whose lease was just renewed")
	row := f.reload(r.ID)
	require.Equal(t, catalog.StateActive, row.State)
	require.Equal(t, r.FencingToken, row.FencingToken)
}

// TestCancelRacingAFinish: a run that finishes between RequestCancel's read
// and its write is not reported as being canceled.
func TestCancelRacingAFinish(t *testing.T) {
	dsn := catalogtest.NewPostgresDSN(t)
	s := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn})
	f := newFixture(t, s)
	r := f.active()
	err := changeWhileBlocked(t, dsn, r.ID, func() error {
		_, err := s.RequestCancel(f.ctx, r.ID, "bob")
		return err
	}, "UPDATE runs SET state = 'succeeded' WHERE id = $1", r.ID) // the worker's finish
	require.ErrorIs(t, err, catalog.ErrIllegalTransition)
	row := f.reload(r.ID)
	require.Equal(t, catalog.StateSucceeded, row.State)
	require.False(t, row.CancelRequested)
	require.NotContains(t, f.events(r.ID), "cancel_requested")
}

// TestRequeueRacingAClaim: a queued run that its worker claims between
// RequeueOrphans' read and its write stays with the worker, and the other
// orphans are requeued all the same.
func TestRequeueRacingAClaim(t *testing.T) {
	dsn := catalogtest.NewPostgresDSN(t)
	s := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn})
	f := newFixture(t, s)
	claimed := f.pending()
	f.dispatch(claimed.ID, "slow")
	orphan := f.pending()
	f.dispatch(orphan.ID, "slow")
	var ids []string
	err := changeWhileBlocked(t, dsn, claimed.ID, func() (err error) {
		ids, err = s.RequeueOrphans(f.ctx, testRegion)
		return err
	}, "UPDATE runs SET state = 'active', attempt = 1, fencing_token = 1 WHERE id = $1", claimed.ID) // the claim
	require.NoError(t, err)
	require.Equal(t, []string{orphan.ID}, ids)
	require.Equal(t, catalog.StateActive, f.reload(claimed.ID).State)
	require.Equal(t, catalog.StatePending, f.reload(orphan.ID).State)
}

func TestRequeueOrphans(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		require.NoError(t, s.UpsertNode(f.ctx, &catalog.Node{ID: "alive", Region: testRegion, Roles: catalog.NewJSON([]string{"worker"})}))
		require.NoError(t, s.UpsertNode(f.ctx, &catalog.Node{ID: "dead", Region: testRegion, Roles: catalog.NewJSON([]string{"worker"})}))
		require.NoError(t, s.SetNodeState(f.ctx, "dead", catalog.NodeDead))
		queueOn := func(worker string, region string) string {
			r := f.pending(func(r *catalog.Run) { r.Region = region })
			f.dispatch(r.ID, worker)
			return r.ID
		}
		activeOnDead := f.pending()
		f.dispatch(activeOnDead.ID, "dead")
		_, err := s.ClaimRuns(f.ctx, catalog.ClaimParams{Worker: "dead", Limit: 1, LeaseTTL: time.Minute})
		require.NoError(t, err)
		require.Equal(t, catalog.StateActive, f.reload(activeOnDead.ID).State)
		onAlive := queueOn("alive", testRegion)
		onDead := queueOn("dead", testRegion)
		onUnknown := queueOn("never-seen", testRegion)
		otherRegion := queueOn("dead", "r2")

		ids, err := s.RequeueOrphans(f.ctx, testRegion)
		require.NoError(t, err)
		require.ElementsMatch(t, []string{onDead, onUnknown}, ids)
		for _, id := range ids {
			r := f.reload(id)
			require.Equal(t, catalog.StatePending, r.State)
			require.Empty(t, r.WorkerID)
			require.Nil(t, r.QueuedAt)
			require.Equal(t, "requeued", f.events(id)[len(f.events(id))-1])
		}
		require.Equal(t, catalog.StateQueued, f.reload(onAlive).State)
		require.Equal(t, catalog.StateQueued, f.reload(otherRegion).State)
		require.Equal(t, catalog.StateActive, f.reload(activeOnDead.ID).State, "active runs are the reaper's")
		ids, err = s.RequeueOrphans(f.ctx, testRegion)
		require.NoError(t, err)
		require.Empty(t, ids)
	})
}

func TestAbortTimedOut(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		short := f.active(func(r *catalog.Run) { r.TimeoutSeconds = 10 })
		long := f.active(func(r *catalog.Run) { r.TimeoutSeconds = 100 })
		other := f.active(func(r *catalog.Run) { r.TimeoutSeconds = 10; r.Region = "r2" })
		pend := f.pending(func(r *catalog.Run) { r.TimeoutSeconds = 10 })

		f.clock.Advance(9 * time.Second)
		ids, err := s.AbortTimedOut(f.ctx, testRegion)
		require.NoError(t, err)
		require.Empty(t, ids)
		f.clock.Advance(time.Second)
		ids, err = s.AbortTimedOut(f.ctx, testRegion)
		require.NoError(t, err)
		require.Equal(t, []string{short.ID}, ids)
		row := f.reload(short.ID)
		require.Equal(t, catalog.StateAborted, row.State)
		require.Contains(t, row.Error, "timed out")
		require.NotNil(t, row.FinishedAt)
		require.Nil(t, row.LeaseExpiresAt)
		as, err := s.ListRunAttempts(f.ctx, short.ID)
		require.NoError(t, err)
		require.Equal(t, catalog.StateAborted, as[0].State)
		require.Equal(t, catalog.StateActive, f.reload(long.ID).State)
		require.Equal(t, catalog.StateActive, f.reload(other.ID).State)
		require.Equal(t, catalog.StatePending, f.reload(pend.ID).State)

		// The worker of the aborted run can no longer finish it.
		before := f.reload(short.ID)
		_, err = s.FinishRun(f.ctx, catalog.FinishParams{RunID: short.ID, FencingToken: short.FencingToken, State: catalog.StateSucceeded})
		require.ErrorIs(t, err, catalog.ErrIllegalTransition)
		f.unchanged(before)
	})
}

func TestNodesAndMarkDeadNodes(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		n := &catalog.Node{ID: "n1", Region: testRegion, Roles: catalog.NewJSON([]string{catalog.NodeRoleServer, catalog.NodeRoleWorker}), Address: "127.0.0.1:1", Slots: 8, Version: "v1"}
		require.NoError(t, s.UpsertNode(f.ctx, n))
		started := f.clock.Now()
		require.NoError(t, s.UpsertNode(f.ctx, &catalog.Node{ID: "n2", Region: testRegion}))
		require.NoError(t, s.UpsertNode(f.ctx, &catalog.Node{ID: "n3", Region: "r2"}))

		f.clock.Advance(10 * time.Second)
		require.NoError(t, s.UpsertNode(f.ctx, &catalog.Node{ID: "n1", Region: testRegion, Roles: n.Roles, Slots: 6, Version: "v2", StartedAt: started})) // heartbeat
		ns, err := s.ListNodes(f.ctx, testRegion)
		require.NoError(t, err)
		require.Equal(t, []string{"n1", "n2", testWorker}, []string{ns[0].ID, ns[1].ID, ns[2].ID})
		require.Equal(t, 6, ns[0].Slots)
		require.Equal(t, "v2", ns[0].Version)
		require.True(t, ns[0].HasRole(catalog.NodeRoleWorker))
		require.False(t, ns[1].HasRole(catalog.NodeRoleWorker))
		require.True(t, ns[0].LastSeen.Equal(f.clock.Now()))
		require.True(t, ns[0].StartedAt.Equal(started))
		require.Equal(t, catalog.NodeAlive, ns[0].State)

		dead, err := s.MarkDeadNodes(f.ctx, testRegion, f.clock.Now().Add(-5*time.Second))
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"n2", testWorker}, dead)
		dead, err = s.MarkDeadNodes(f.ctx, testRegion, f.clock.Now().Add(-5*time.Second))
		require.NoError(t, err)
		require.Empty(t, dead, "a dead node is marked once")
		ns, err = s.ListNodes(f.ctx, "")
		require.NoError(t, err)
		states := map[string]string{}
		for _, n := range ns {
			states[n.ID] = n.State
		}
		require.Equal(t, map[string]string{"n1": catalog.NodeAlive, "n2": catalog.NodeDead, "n3": catalog.NodeAlive, testWorker: catalog.NodeDead}, states)

		// A node that comes back is alive again; one that leaves says so.
		require.NoError(t, s.UpsertNode(f.ctx, &catalog.Node{ID: "n2", Region: testRegion}))
		require.NoError(t, s.SetNodeState(f.ctx, "n1", catalog.NodeLeft))
		ns, err = s.ListNodes(f.ctx, testRegion)
		require.NoError(t, err)
		require.Equal(t, catalog.NodeLeft, ns[0].State)
		require.Equal(t, catalog.NodeAlive, ns[1].State)
	})
}

// TestTimesInOtherZones: callers may pass times in any zone; the catalog
// compares instants, on SQLite (which stores times as text) too.
func TestTimesInOtherZones(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		east := time.FixedZone("UTC+5", 5*3600)
		west := time.FixedZone("UTC-7", -7*3600)
		require.NoError(t, s.UpsertNode(f.ctx, &catalog.Node{ID: "n1", Region: testRegion}))
		// An hour before now, said in another zone: n1 was seen after it.
		dead, err := s.MarkDeadNodes(f.ctx, testRegion, f.clock.Now().Add(-time.Hour).In(east))
		require.NoError(t, err)
		require.Empty(t, dead)
		dead, err = s.MarkDeadNodes(f.ctx, testRegion, f.clock.Now().Add(time.Second).In(west))
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"n1", testWorker}, dead)

		// A clock in another zone.
		s.SetClock(func() time.Time { return f.clock.Now().In(east) })
		r := f.pending(func(r *catalog.Run) { r.NotBefore = f.clock.Now().Add(30 * time.Minute).In(west) })
		ds, err := s.ListDispatchable(f.ctx, testRegion, 10)
		require.NoError(t, err)
		require.Empty(t, ds, "not_before is half an hour away")
		f.clock.Advance(31 * time.Minute)
		ds, err = s.ListDispatchable(f.ctx, testRegion, 10)
		require.NoError(t, err)
		require.Len(t, ds, 1)
		require.Equal(t, r.ID, ds[0].ID)
	})
}
