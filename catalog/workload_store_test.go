package catalog_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// pendingFixture makes a region r1 with one pending run and a leader lease held by srv1.
func pendingFixture(t *testing.T, s *catalog.Store) (*catalog.Run, *catalog.Lease) {
	t.Helper()
	ctx := context.Background()
	u := &catalog.User{Name: "alice", Role: catalog.RoleAdmin}
	require.NoError(t, s.CreateUser(ctx, u))
	require.NoError(t, s.CreateSystem(ctx, &catalog.System{Name: "a", Kind: catalog.KindFS, Region: "r1", Settings: catalog.NewJSON(map[string]string{"root": "/tmp/a"})}))
	m := &catalog.Mapping{Name: "m", Source: catalog.NewJSON(catalog.Endpoint{System: "a", Path: "x"}), Target: catalog.NewJSON(catalog.Endpoint{System: "a", Path: "y"}), Enabled: true}
	require.NoError(t, s.PutMapping(ctx, m))
	r := &catalog.Run{ID: catalog.NewRunIDGenerator("r1").Next(), Region: "r1", Mapping: "m", MappingVersion: 7, SourceSystem: "a", TargetSystem: "a",
		RequestType: catalog.RequestTransfer, MaxAttempts: 3, TimeoutSeconds: 60, UserID: u.ID, SubmittedBy: "alice"}
	_, _, err := s.InsertRun(ctx, r)
	require.NoError(t, err)
	l, err := s.AcquireLease(ctx, catalog.LeaderLeaseName("r1"), "srv1", time.Minute)
	require.NoError(t, err)
	return r, l
}

func TestAbortPending(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		r, l := pendingFixture(t, s)
		finished := s.Subscribe(t.Context(), catalog.ChannelRunsFinished)

		require.NoError(t, s.AbortPending(ctx, catalog.AbortPendingParams{RunID: r.ID, Error: "mapping m version 7 no longer exists",
			LeaseName: l.Name, LeaseHolder: "srv1", LeaseToken: l.Token}))

		got, err := s.GetRun(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, catalog.StateAborted, got.State)
		require.Equal(t, "mapping m version 7 no longer exists", got.Error)
		require.NotNil(t, got.FinishedAt)
		evs, err := s.ListRunEvents(ctx, r.ID, 0)
		require.NoError(t, err)
		last := evs[len(evs)-1]
		require.Equal(t, "aborted", last.Kind)
		require.Equal(t, "srv1", last.Node)
		require.Contains(t, last.Message, "cannot be dispatched: mapping m version 7 no longer exists")
		select {
		case <-finished:
		case <-time.After(5 * time.Second):
			t.Fatal("AbortPending did not notify ChannelRunsFinished")
		}

		// A run that is no longer pending changes nothing.
		err = s.AbortPending(ctx, catalog.AbortPendingParams{RunID: r.ID, Error: "again", LeaseName: l.Name, LeaseHolder: "srv1", LeaseToken: l.Token})
		require.ErrorIs(t, err, catalog.ErrIllegalTransition)
		var te *catalog.TransitionError
		require.ErrorAs(t, err, &te)
		require.Equal(t, []catalog.RunState{catalog.StateAborted}, te.From)
		got, err = s.GetRun(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, "mapping m version 7 no longer exists", got.Error)

		err = s.AbortPending(ctx, catalog.AbortPendingParams{RunID: "000000000000000000000000", Error: "x", LeaseName: l.Name, LeaseHolder: "srv1", LeaseToken: l.Token})
		require.ErrorIs(t, err, catalog.ErrNotFound)
	})
}

func TestAbortPendingNeedsLeaderAndReason(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		r, l := pendingFixture(t, s)
		for name, p := range map[string]catalog.AbortPendingParams{
			"other holder": {RunID: r.ID, Error: "x", LeaseName: l.Name, LeaseHolder: "srv2", LeaseToken: l.Token},
			"stale token":  {RunID: r.ID, Error: "x", LeaseName: l.Name, LeaseHolder: "srv1", LeaseToken: l.Token + 1},
			"other region": {RunID: r.ID, Error: "x", LeaseName: catalog.LeaderLeaseName("r2"), LeaseHolder: "srv1", LeaseToken: l.Token},
		} {
			err := s.AbortPending(ctx, p)
			require.ErrorIs(t, err, catalog.ErrNotLeader, name)
		}
		err := s.AbortPending(ctx, catalog.AbortPendingParams{RunID: r.ID, Error: "  ", LeaseName: l.Name, LeaseHolder: "srv1", LeaseToken: l.Token})
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Equal(t, "error", ve.Field)

		// An expired lease no longer allows it either.
		require.NoError(t, s.ReleaseLease(ctx, l.Name, "srv1"))
		err = s.AbortPending(ctx, catalog.AbortPendingParams{RunID: r.ID, Error: "x", LeaseName: l.Name, LeaseHolder: "srv1", LeaseToken: l.Token})
		require.ErrorIs(t, err, catalog.ErrNotLeader)

		got, err := s.GetRun(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, catalog.StatePending, got.State)
		require.Empty(t, got.Error)
	})
}

func TestAbortPendingTruncatesLongErrors(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		r, l := pendingFixture(t, s)
		long := strings.Repeat("é", 3000) // 6000 bytes
		require.NoError(t, s.AbortPending(ctx, catalog.AbortPendingParams{RunID: r.ID, Error: long, LeaseName: l.Name, LeaseHolder: "srv1", LeaseToken: l.Token}))
		got, err := s.GetRun(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, catalog.StateAborted, got.State)
		require.LessOrEqual(t, len(got.Error), 4000)
		require.True(t, strings.HasPrefix(long, got.Error))
	})
}

func TestSetHoldReasons(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		first, l := pendingFixture(t, s)
		g := catalog.NewRunIDGenerator("r1")
		ids := []string{first.ID}
		for range 3 {
			r := *first
			r.ID = g.Next()
			_, _, err := s.InsertRun(ctx, &r)
			require.NoError(t, err)
			ids = append(ids, r.ID)
		}
		// The last run is queued: hold reasons are for pending runs only.
		require.NoError(t, s.DispatchRun(ctx, catalog.DispatchParams{RunID: ids[3], Worker: "w1", Plan: &catalog.Plan{RunID: ids[3]},
			LeaseName: l.Name, LeaseHolder: "srv1", LeaseToken: l.Token}))

		require.NoError(t, s.SetHoldReasons(ctx, map[string]string{
			ids[0]: "system a at its limit of 2 concurrent runs",
			ids[1]: "system a at its limit of 2 concurrent runs",
			ids[2]: "region r1 at its limit of 4 active runs",
			ids[3]: "region r1 at its limit of 4 active runs",
		}))
		want := []string{"system a at its limit of 2 concurrent runs", "system a at its limit of 2 concurrent runs", "region r1 at its limit of 4 active runs", ""}
		for i, id := range ids {
			got, err := s.GetRun(ctx, id)
			require.NoError(t, err)
			require.Equal(t, want[i], got.HoldReason, "run %d", i)
		}
		require.NoError(t, s.SetHoldReasons(ctx, map[string]string{ids[0]: "", ids[2]: "no live worker in region r1"}))
		got, err := s.GetRun(ctx, ids[0])
		require.NoError(t, err)
		require.Empty(t, got.HoldReason)
		got, err = s.GetRun(ctx, ids[2])
		require.NoError(t, err)
		require.Equal(t, "no live worker in region r1", got.HoldReason)
		require.NoError(t, s.SetHoldReasons(ctx, nil))
	})
}
