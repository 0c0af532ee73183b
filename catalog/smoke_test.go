package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestSmokeLifecycle(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		u := &catalog.User{Name: "alice", Role: catalog.RoleAdmin}
		require.NoError(t, s.CreateUser(ctx, u))
		require.NoError(t, s.CreateSystem(ctx, &catalog.System{Name: "a", Kind: "fs", Region: "r1", Settings: catalog.NewJSON(map[string]string{"root": "/tmp/a"})}))
		m := &catalog.Mapping{Name: "m", Source: catalog.NewJSON(catalog.Endpoint{System: "a", Path: "x"}), Target: catalog.NewJSON(catalog.Endpoint{System: "a", Path: "y"}), Enabled: true}
		require.NoError(t, s.PutMapping(ctx, m))
		g := catalog.NewRunIDGenerator("r1")
		r := &catalog.Run{ID: g.Next(), Region: "r1", Mapping: "m", MappingVersion: 1, SourceSystem: "a", TargetSystem: "a", RequestType: "transfer", MaxAttempts: 3, TimeoutSeconds: 60, UserID: u.ID, SubmittedBy: "alice"}
		_, created, err := s.InsertRun(ctx, r)
		require.NoError(t, err)
		require.True(t, created)
		l, err := s.AcquireLease(ctx, catalog.LeaderLeaseName("r1"), "srv1", 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, "srv1", l.Holder)
		runs, err := s.ListDispatchable(ctx, "r1", 10)
		require.NoError(t, err)
		require.Len(t, runs, 1)
		require.NoError(t, s.UpsertNode(ctx, &catalog.Node{ID: "w1", Region: "r1", Roles: catalog.NewJSON([]string{"worker"}), Slots: 2}))
		require.NoError(t, s.DispatchRun(ctx, catalog.DispatchParams{RunID: r.ID, Worker: "w1", Plan: &catalog.Plan{RunID: r.ID}, LeaseName: l.Name, LeaseHolder: "srv1", LeaseToken: l.Token}))
		claimed, err := s.ClaimRuns(ctx, catalog.ClaimParams{Worker: "w1", Limit: 5, LeaseTTL: time.Second})
		require.NoError(t, err)
		require.Len(t, claimed, 1)
		require.Equal(t, 1, claimed[0].Attempt)
		st, err := s.FinishRun(ctx, catalog.FinishParams{RunID: r.ID, FencingToken: claimed[0].FencingToken, State: catalog.StateSucceeded, Manifest: &catalog.Manifest{RunID: r.ID}})
		require.NoError(t, err)
		require.Equal(t, catalog.StateSucceeded, st)
		_, err = s.FinishRun(ctx, catalog.FinishParams{RunID: r.ID, FencingToken: claimed[0].FencingToken, State: catalog.StateSucceeded})
		require.ErrorIs(t, err, catalog.ErrIllegalTransition)
	})
}
