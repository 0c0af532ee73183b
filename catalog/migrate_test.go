package catalog_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestMigrateTwiceIsANoOp(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		ids, err := s.AppliedMigrations(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, ids)
		require.Equal(t, catalog.LatestMigration(), ids[len(ids)-1])
		require.NoError(t, s.CreateUser(ctx, &catalog.User{Name: "alice"}))

		require.NoError(t, s.Migrate(ctx))
		require.NoError(t, s.Migrate(ctx))
		again, err := s.AppliedMigrations(ctx)
		require.NoError(t, err)
		require.Equal(t, ids, again)
		_, err = s.GetUserByName(ctx, "alice")
		require.NoError(t, err, "data survives a migration")
	})
}

func TestMigrateFreshCatalog(t *testing.T) {
	for _, d := range catalogtest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, err := catalog.Open(ctx, catalog.StoreConfig{DSN: catalogtest.DSN(t, d)})
			require.NoError(t, err)
			defer s.Close()
			_, err = s.AppliedMigrations(ctx)
			require.Error(t, err, "an unmigrated catalog has no migrations table")
			require.NoError(t, s.Migrate(ctx))
			ids, err := s.AppliedMigrations(ctx)
			require.NoError(t, err)
			require.Contains(t, ids, catalog.LatestMigration())
		})
	}
}

// TestMigrateConcurrently: several servers starting at once on one fresh
// PostgreSQL catalog all succeed, and each migration is applied once.
func TestMigrateConcurrently(t *testing.T) {
	dsn := catalogtest.NewPostgresDSN(t)
	ctx := context.Background()
	const n = 5
	stores := make([]*catalog.Store, n)
	for i := range stores {
		s, err := catalog.Open(ctx, catalog.StoreConfig{DSN: dsn, MaxOpenConns: 2})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		stores[i] = s
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range stores {
		wg.Go(func() {
			<-start
			errs[i] = s.Migrate(ctx)
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	ids, err := stores[0].AppliedMigrations(ctx)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, id := range ids {
		require.False(t, seen[id], "migration %s recorded twice", id)
		seen[id] = true
	}
	require.True(t, seen[catalog.LatestMigration()])
	require.NoError(t, stores[1].CreateUser(ctx, &catalog.User{Name: "alice"}))
}
