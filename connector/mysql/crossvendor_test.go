package mysql_test

import (
	"context"
	"database/sql"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/connector/sqlite"
)

// transfer reads every partition of src in parallel and loads the rows into
// dst in one attempt, as the worker's pipeline does.
func transfer(t *testing.T, src spi.RowSource, sds spi.Dataset, dst spi.RowTarget, dds spi.Dataset, runID string) spi.Commit {
	t.Helper()
	ctx := context.Background()
	schema, err := src.Describe(ctx, sds)
	require.NoError(t, err)
	require.NoError(t, dst.Check(ctx, dds, schema))
	l, err := dst.Begin(ctx, spi.LoadSpec{RunID: runID, Attempt: 1, Mapping: "cross", Dataset: dds, Schema: schema, Mode: spi.ModeAppend})
	require.NoError(t, err)
	defer l.Abort(ctx)
	parts, err := src.Partitions(ctx, sds, 3)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make([]error, len(parts))
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = src.Read(ctx, sds, p, 2, func(b spi.Batch) error {
				if len(b.Bad) > 0 {
					t.Errorf("bad rows: %v", b.Bad[0])
				}
				return l.Write(ctx, i, b)
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	com, err := l.Commit(ctx)
	require.NoError(t, err)
	return com
}

// TestCrossVendorRoundTrip moves every type from an SQLite table into a
// MariaDB table and back into SQLite, and finds every value unchanged.
func TestCrossVendorRoundTrip(t *testing.T) {
	dsn, mdb := newDatabase(t)
	exec(t, mdb, "CREATE TABLE mid (id BIGINT PRIMARY KEY, i BIGINT, b BOOLEAN, f DOUBLE, d DECIMAL(38,9), s LONGTEXT, "+
		"dt DATE, ts DATETIME(6), bin LONGBLOB) ENGINE=InnoDB")
	root := t.TempDir()
	ldb, err := sql.Open("sqlite", filepath.Join(root, "x.db"))
	require.NoError(t, err)
	defer ldb.Close()
	for _, tbl := range []string{"src", "back"} {
		_, err := ldb.Exec(`CREATE TABLE ` + tbl + ` (id INTEGER PRIMARY KEY, i BIGINT, b BOOLEAN, f DOUBLE, d TEXT DECIMAL(38,9), s TEXT,
			dt DATE, ts DATETIME, bin BLOB)`)
		require.NoError(t, err)
	}
	big := strings.ToValidUTF8(strings.Repeat("weir \"quoted\"\t'x'\n€😀", 1<<16)[:1<<20], "")
	want := []spi.Row{
		{int64(1), int64(math.MinInt64), true, -1.5e-300, "12345678901234567890123456789.123456789", "emoji 😀🎉 中文 ' \" ` \\ ; , \t\r\n",
			time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2024, 3, 10, 1, 59, 59, 999999000, time.FixedZone("EST", -5*3600)), []byte{0, 1, 255}},
		{int64(2), nil, nil, nil, nil, nil, nil, nil, nil},
		{int64(3), int64(math.MaxInt64), false, math.MaxFloat64, "-0.000000001", "", time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), []byte{}},
		{int64(4), int64(0), true, 0.1, "0.000000000", big, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
			time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.FixedZone("X", 5*3600+45*60)), []byte(big)},
	}
	ctx := context.Background()
	lc, err := sqlite.Open(ctx, spi.System{Name: "lite", Kind: sqlite.Kind, Settings: map[string]string{"root": root, "path": "x.db"}})
	require.NoError(t, err)
	defer lc.Close()
	lite := lc.(*sqlite.Conn)
	schema, err := lite.Describe(ctx, spi.Dataset{Table: "src"})
	require.NoError(t, err)
	l, err := lite.Begin(ctx, spi.LoadSpec{RunID: "700000000000000000000000", Attempt: 1, Mapping: "seed", Dataset: spi.Dataset{Table: "src"}, Schema: schema, Mode: spi.ModeAppend})
	require.NoError(t, err)
	require.NoError(t, l.Write(ctx, 0, spi.Batch{Rows: want}))
	_, err = l.Commit(ctx)
	require.NoError(t, err)
	// A row written by another program in another ISO-8601 form.
	_, err = ldb.Exec(`INSERT INTO src VALUES (5, 7, 0, 2.5, '1.500000000', 'x', '2020-05-06', '2020-05-06T07:08:09.123456+02:00', x'00')`)
	require.NoError(t, err)
	want = append(want, spi.Row{int64(5), int64(7), false, 2.5, "1.500000000", "x", time.Date(2020, 5, 6, 0, 0, 0, 0, time.UTC),
		time.Date(2020, 5, 6, 5, 8, 9, 123456000, time.UTC), []byte{0}})

	maria := open(t, dsn)
	com := transfer(t, lite, spi.Dataset{Table: "src"}, maria, spi.Dataset{Table: "mid"}, "700000000000000000000001")
	require.Equal(t, int64(len(want)), com.Rows)
	com = transfer(t, maria, spi.Dataset{Table: "mid", Options: map[string]string{"partition_by": "id"}}, lite, spi.Dataset{Table: "back"}, "700000000000000000000002")
	require.Equal(t, int64(len(want)), com.Rows)

	mid, bad := readAll(t, maria, spi.Dataset{Table: "mid"}, 1)
	require.Empty(t, bad)
	requireSameRows(t, want, mid)
	back, bad := readAll(t, lite, spi.Dataset{Table: "back"}, 2)
	require.Empty(t, bad)
	requireSameRows(t, want, back)
}
