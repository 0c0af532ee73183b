package worker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
)

func TestRowThreads(t *testing.T) {
	for _, c := range []struct {
		threads, planMax int
		load             float64
		cores            int
		want             int
		why              string
	}{
		{8, 0, 0.5, 8, 8, "limited by the worker's 8 threads"},
		{8, 3, 0.5, 8, 3, "the plan's maximum of 3 threads"},
		{8, 0, 5.9, 8, 8, "limited by the worker's 8 threads"}, // 0.74 per core: not high
		{8, 0, 6.0, 8, 2, "the node's load of 6.00 on 8 cores (2 cores free)"},
		{8, 0, 7.6, 8, 1, "the node's load of 7.60 on 8 cores (1 core free)"},
		{8, 0, 40, 8, 1, "(1 core free)"},
		{2, 0, 1.6, 2, 1, "the node's load of 1.60 on 2 cores"},
		{4, 2, 0, 0, 2, "the plan's maximum of 2 threads"},
	} {
		n, why := rowThreads(c.threads, c.planMax, c.load, c.cores, HighLoadDefault)
		require.Equal(t, c.want, n, "%+v: %s", c, why)
		require.Contains(t, why, c.why)
	}
}

func TestBound(t *testing.T) {
	schema := connector.Schema{{Name: "n", Type: connector.TypeInt}, {Name: "f", Type: connector.TypeFloat},
		{Name: "d", Type: connector.TypeDecimal}, {Name: "ts", Type: connector.TypeTimestamp}, {Name: "day", Type: connector.TypeDate},
		{Name: "s", Type: connector.TypeString}, {Name: "b", Type: connector.TypeBool}}
	row := func(col int, v any) connector.Row {
		r := make(connector.Row, len(schema))
		r[col] = v
		return r
	}
	for _, c := range []struct {
		col, top string
		at       int
		in, out  any
	}{
		{"n", "100", 0, int64(100), int64(101)},
		{"f", "1.5", 1, 1.5, 1.5000001},
		{"d", "10.50", 2, "10.5", "10.5000001"},
		{"ts", "2026-01-01 00:08:20+00", 3, time.Date(2026, 1, 1, 1, 8, 20, 0, time.FixedZone("", 3600)), time.Date(2026, 1, 1, 0, 8, 20, 1000, time.UTC)},
		{"ts", "2026-01-01 00:08:20.5", 3, time.Date(2026, 1, 1, 0, 8, 20, 5e8, time.UTC), time.Date(2026, 1, 1, 0, 8, 21, 0, time.UTC)},
		{"ts", "2026-01-01T00:08:20Z", 3, time.Date(2026, 1, 1, 0, 8, 20, 0, time.UTC), time.Date(2026, 1, 1, 0, 8, 21, 0, time.UTC)},
		{"day", "2026-01-01", 4, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
	} {
		b, err := newBound(schema, c.col, c.top)
		require.NoError(t, err, c.col)
		require.NotNil(t, b, c.col)
		require.False(t, b.beyond(row(c.at, c.in)), "%s %v is within %s", c.col, c.in, c.top)
		require.True(t, b.beyond(row(c.at, c.out)), "%s %v is beyond %s", c.col, c.out, c.top)
		require.False(t, b.beyond(row(c.at, nil)), "NULL is never beyond")
	}
	b, err := newBound(schema, "s", "zzz")
	require.NoError(t, err)
	require.Nil(t, b, "text is bounded by the source's own collation")
	b, err = newBound(schema, "n", "")
	require.NoError(t, err)
	require.True(t, b.beyond(row(0, int64(1))), "an empty source: every row appeared after the max was read")
	_, err = newBound(schema, "nope", "1")
	var ve *catalog.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Contains(t, ve.Message, "fields: n, f, d")
	_, err = newBound(schema, "b", "1")
	require.ErrorAs(t, err, &ve)
	_, err = newBound(schema, "n", "12x")
	require.ErrorContains(t, err, `the source's greatest n, "12x", cannot be read as a int`)
}

func TestOutBatchReuse(t *testing.T) {
	b := newOutBatch(3, 2)
	for i := range 3 {
		require.False(t, b.full())
		r := b.next()
		r[0], r[1] = i, "x"
		b.keep("loc", true)
	}
	require.True(t, b.full())
	out := b.batch()
	require.Len(t, out.Rows, 3)
	require.Equal(t, []string{"loc", "loc", "loc"}, out.Locs)
	require.Equal(t, connector.Row{2, "x"}, out.Rows[2])
	b.reset()
	require.Empty(t, b.rows)
	require.Nil(t, b.cells[0], "values are dropped so that they can be freed")
	r := b.next()
	r[0] = 9
	b.keep("", false)
	require.Nil(t, b.batch().Locs, "no locations when the source gave none")
}
