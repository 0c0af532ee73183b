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

func TestUpsertAndListServices(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)
		start := clock.Now().In(time.FixedZone("x", 3600))
		w := &catalog.Service{Node: "n1", Name: "worker", Kind: catalog.ServiceInProcess, Status: catalog.ServiceRunning, LastStart: &start}
		require.NoError(t, s.UpsertService(ctx, w))
		require.NoError(t, s.UpsertService(ctx, &catalog.Service{Node: "n1", Name: "agent", Kind: catalog.ServiceCommand, Status: catalog.ServiceRunning, PID: 42}))
		require.NoError(t, s.UpsertService(ctx, &catalog.Service{Node: "n2", Name: "worker", Kind: catalog.ServiceInProcess, Status: catalog.ServiceStopped}))

		got, err := s.ListServices(ctx, "n1")
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.Equal(t, "agent", got[0].Name, "by name")
		require.Equal(t, 42, got[0].PID)
		require.Equal(t, "worker", got[1].Name)
		require.True(t, got[1].LastStart.Equal(start))
		require.True(t, got[1].UpdatedAt.Equal(clock.Now()))

		// An update replaces the row of the same node and name.
		clock.Advance(time.Minute)
		exit := clock.Now()
		w2 := &catalog.Service{Node: "n1", Name: "worker", Kind: catalog.ServiceInProcess, Status: catalog.ServiceRestarting,
			Restarts: 3, LastError: "panic: boom\x00", LastStart: &start, LastExit: &exit}
		require.NoError(t, s.UpsertService(ctx, w2))
		got, err = s.ListServices(ctx, "n1")
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.Equal(t, catalog.ServiceRestarting, got[1].Status)
		require.Equal(t, 3, got[1].Restarts)
		require.Equal(t, "panic: boom\uFFFD", got[1].LastError)
		require.True(t, got[1].LastExit.Equal(exit))
		require.True(t, got[1].UpdatedAt.Equal(clock.Now()))

		all, err := s.ListServices(ctx, "")
		require.NoError(t, err)
		require.Len(t, all, 3)
		require.Equal(t, "n2", all[2].Node)

		// Long errors are cut to the column.
		require.NoError(t, s.UpsertService(ctx, &catalog.Service{Node: "n2", Name: "worker", Kind: catalog.ServiceInProcess,
			Status: catalog.ServiceFailed, LastError: strings.Repeat("x", 5000)}))
		got, err = s.ListServices(ctx, "n2")
		require.NoError(t, err)
		require.Len(t, []rune(got[0].LastError), 4000)
	})
}

func TestUpsertServiceValidation(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		ok := catalog.Service{Node: "n1", Name: "worker", Kind: catalog.ServiceInProcess, Status: catalog.ServiceRunning}
		for name, mut := range map[string]func(*catalog.Service){
			"no node":     func(sv *catalog.Service) { sv.Node = "" },
			"no name":     func(sv *catalog.Service) { sv.Name = "" },
			"long name":   func(sv *catalog.Service) { sv.Name = strings.Repeat("n", 65) },
			"bad kind":    func(sv *catalog.Service) { sv.Kind = "daemon" },
			"bad status":  func(sv *catalog.Service) { sv.Status = "dead" },
			"neg restart": func(sv *catalog.Service) { sv.Restarts = -1 },
		} {
			sv := ok
			mut(&sv)
			var ve *catalog.ValidationError
			require.ErrorAs(t, s.UpsertService(ctx, &sv), &ve, name)
		}
		got, err := s.ListServices(ctx, "")
		require.NoError(t, err)
		require.Empty(t, got)
	})
}

func TestPruneServices(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		for _, n := range []string{"a", "b", "c"} {
			require.NoError(t, s.UpsertService(ctx, &catalog.Service{Node: "n1", Name: n, Kind: catalog.ServiceCommand, Status: catalog.ServiceRunning}))
		}
		require.NoError(t, s.UpsertService(ctx, &catalog.Service{Node: "n2", Name: "a", Kind: catalog.ServiceCommand, Status: catalog.ServiceRunning}))
		_, err := s.PruneServices(ctx, "", nil)
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve)

		n, err := s.PruneServices(ctx, "n1", []string{"b"})
		require.NoError(t, err)
		require.Equal(t, int64(2), n)
		got, err := s.ListServices(ctx, "")
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.Equal(t, "b", got[0].Name)
		require.Equal(t, "n2", got[1].Node, "other nodes' services are kept")

		n, err = s.PruneServices(ctx, "n1", nil)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		got, err = s.ListServices(ctx, "n1")
		require.NoError(t, err)
		require.Empty(t, got)
	})
}
