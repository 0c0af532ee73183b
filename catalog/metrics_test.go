package catalog_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestInstrumentCountsQueriesAndErrors(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		reg := prometheus.NewPedanticRegistry()
		require.NoError(t, s.Instrument(reg))

		require.NoError(t, s.CreateUser(ctx, &catalog.User{Name: "alice", Role: catalog.RoleAdmin}))
		_, err := s.GetUserByName(ctx, "nobody")
		require.ErrorIs(t, err, catalog.ErrNotFound)
		require.Zero(t, sample(t, reg, "weir_catalog_query_errors_total", "query"), "a row not found is not a query error")

		err = s.CreateUser(ctx, &catalog.User{Name: "alice", Role: catalog.RoleAdmin})
		require.ErrorIs(t, err, catalog.ErrConflict, "a duplicate user is refused by the database")
		require.Equal(t, 1.0, sample(t, reg, "weir_catalog_query_errors_total", "create"))

		require.GreaterOrEqual(t, sample(t, reg, "weir_catalog_query_duration_seconds", "create"), 2.0, "both inserts were timed")
		require.GreaterOrEqual(t, sample(t, reg, "weir_catalog_query_duration_seconds", "query"), 1.0, "the lookup was timed")

		problems, err := testutil.GatherAndLint(reg)
		require.NoError(t, err)
		require.Empty(t, problems)
	})
}

func TestInstrumentTwiceOnOneRegistryReusesTheCollectors(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := catalogtest.Open(t, catalog.DialectSQLite), catalogtest.Open(t, catalog.DialectSQLite)
	require.NoError(t, a.Instrument(reg))
	require.NoError(t, b.Instrument(reg), "a second store (a restarted component) shares the metrics")
	ctx := context.Background()
	require.NoError(t, a.CreateUser(ctx, &catalog.User{Name: "a", Role: catalog.RoleAdmin}))
	require.NoError(t, b.CreateUser(ctx, &catalog.User{Name: "b", Role: catalog.RoleAdmin}))
	require.GreaterOrEqual(t, sample(t, reg, "weir_catalog_query_duration_seconds", "create"), 2.0, "both stores count into one histogram")

	// A collector of the same name but another shape is a bug: refused, not reused.
	clash := prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_catalog_query_errors_total", Help: "x"})
	_, err := catalog.RegisterCollector(reg, clash)
	require.Error(t, err)
}

func TestCountRunsByState(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		f := newFixture(t, s)
		f.pending()
		f.pending()
		f.queued()
		counts, err := s.CountRunsByState(ctx, testRegion)
		require.NoError(t, err)
		require.Equal(t, []catalog.RunCount{
			{Mapping: "m", State: catalog.StatePending, Count: 2},
			{Mapping: "m", State: catalog.StateQueued, Count: 1},
		}, counts)
		counts, err = s.CountRunsByState(ctx, "elsewhere")
		require.NoError(t, err)
		require.Empty(t, counts)
	})
}

// sample is the value of counter name{operation=op}, or the sample count of
// histogram name{operation=op}; 0 when it has no such series.
func sample(t *testing.T, reg *prometheus.Registry, name, op string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() != op {
				continue
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
