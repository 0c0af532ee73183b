package catalog_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func brokerStoreSystems(t *testing.T, s *catalog.Store) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, s.CreateSystem(ctx, &catalog.System{Name: "bsrc", Kind: catalog.KindFS, Region: "eu",
		Settings: catalog.NewJSON(map[string]string{"root": "/tmp/bsrc"})}))
	require.NoError(t, s.CreateSystem(ctx, &catalog.System{Name: "bdst", Kind: catalog.KindNull, Region: "us"}))
}

func brokerStoreMapping(name string) *catalog.Mapping {
	return &catalog.Mapping{Name: name, Enabled: true,
		Source: catalog.NewJSON(catalog.Endpoint{System: "bsrc", Path: "in"}),
		Target: catalog.NewJSON(catalog.Endpoint{System: "bdst"})}
}

func TestCreateMappingStoresVersionOneWithDefaults(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		brokerStoreSystems(t, s)
		m := brokerStoreMapping("fresh")
		require.NoError(t, s.CreateMapping(ctx, m))
		require.Equal(t, 1, m.Version)
		got, err := s.GetMapping(ctx, "fresh")
		require.NoError(t, err)
		require.Equal(t, 1, got.Version)
		require.Equal(t, "eu", got.Region, "the region defaults to the source system's")
		require.Equal(t, catalog.MaxAttemptsDefault, got.MaxAttempts)
		require.Equal(t, catalog.TimeoutSecondsDefault, got.TimeoutSeconds)
		require.Equal(t, "bsrc", got.SourceSystem)
		require.Equal(t, "bdst", got.TargetSystem)
	})
}

func TestCreateMappingRefusesAnExistingNameAndStoresNothing(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		brokerStoreSystems(t, s)
		require.NoError(t, s.CreateMapping(ctx, brokerStoreMapping("dup")))
		again := brokerStoreMapping("dup")
		again.Description = "second"
		require.ErrorIs(t, s.CreateMapping(ctx, again), catalog.ErrConflict)
		_, err := s.GetMappingVersion(ctx, "dup", 2)
		require.ErrorIs(t, err, catalog.ErrNotFound)
		got, err := s.GetMapping(ctx, "dup")
		require.NoError(t, err)
		require.Empty(t, got.Description)
	})
}

func TestCreateMappingConcurrentCreatorsOneWins(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		brokerStoreSystems(t, s)
		const n = 6
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.CreateMapping(ctx, brokerStoreMapping("race"))
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else {
				require.ErrorIs(t, err, catalog.ErrConflict)
			}
		}
		require.Equal(t, 1, ok)
		got, err := s.GetMapping(ctx, "race")
		require.NoError(t, err)
		require.Equal(t, 1, got.Version, "no second version was stored")
	})
}

func TestCreateMappingValidatesBeforeWriting(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		brokerStoreSystems(t, s)
		m := brokerStoreMapping("badsys")
		m.Target = catalog.NewJSON(catalog.Endpoint{System: "nope"})
		var ve *catalog.ValidationError
		require.ErrorAs(t, s.CreateMapping(ctx, m), &ve)
		require.Equal(t, "target.system", ve.Field)
		esc := brokerStoreMapping("escape")
		esc.Source = catalog.NewJSON(catalog.Endpoint{System: "bsrc", Path: "../etc"})
		require.ErrorAs(t, s.CreateMapping(ctx, esc), &ve)
		require.Equal(t, "source.path", ve.Field)
		ms, err := s.ListMappings(ctx)
		require.NoError(t, err)
		require.Empty(t, ms)
	})
}
