package catalog_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestAuthFailuresAreCountedAtomicallyAndPruned(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		w1 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
		w2 := w1.Add(time.Minute)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				_, err := s.CountAuthFailures(ctx, "auth-failures:192.0.2.7", w1, 1)
				require.NoError(t, err)
			})
		}
		wg.Wait()
		n, err := s.CountAuthFailures(ctx, "auth-failures:192.0.2.7", w1, 2)
		require.NoError(t, err)
		require.Equal(t, 10, n, "concurrent counts add up")
		n, err = s.CountAuthFailures(ctx, "auth-failures:192.0.2.7", w2, 1)
		require.NoError(t, err)
		require.Equal(t, 1, n, "a new window starts over")
		n, err = s.CountAuthFailures(ctx, "auth-failures:192.0.2.8", w1, 1)
		require.NoError(t, err)
		require.Equal(t, 1, n, "per subject")

		pruned, err := s.PruneAuthFailures(ctx, w2)
		require.NoError(t, err)
		require.Equal(t, int64(2), pruned)
		n, err = s.CountAuthFailures(ctx, "auth-failures:192.0.2.7", w1, 1)
		require.NoError(t, err)
		require.Equal(t, 1, n, "the pruned window is gone")

		_, err = s.CountAuthFailures(ctx, "", w1, 1)
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve)
	})
}
