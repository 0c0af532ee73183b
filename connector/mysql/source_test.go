package mysql_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/connector/spi"
)

func TestPartitionsReadEveryRowOnce(t *testing.T) {
	dsn, db := newDatabase(t)
	exec(t, db, "CREATE TABLE ev (id BIGINT PRIMARY KEY, k BIGINT NULL, note VARCHAR(20))")
	var vals []string
	for i := 1; i <= 5000; i++ {
		k := fmt.Sprint(i * 3)
		if i%97 == 0 {
			k = "NULL"
		}
		vals = append(vals, fmt.Sprintf("(%d, %s, 'n%d')", i, k, i))
	}
	exec(t, db, "INSERT INTO ev VALUES "+strings.Join(vals, ","))
	c := open(t, dsn)
	ctx := context.Background()

	ds := spi.Dataset{Table: "ev", Options: map[string]string{"partition_by": "k"}}
	parts, err := c.Partitions(ctx, ds, 6)
	require.NoError(t, err)
	require.Len(t, parts, 6)
	require.Contains(t, parts[0].Desc, "or NULL")
	require.Equal(t, "k in [3, 2502)", parts[0].Desc[:len("k in [3, 2502)")])
	seen := map[int64]int{}
	rows, bad := readAll(t, c, ds, 6)
	require.Empty(t, bad)
	for _, r := range rows {
		seen[r[0].(int64)]++
	}
	require.Len(t, seen, 5000)
	for id, n := range seen {
		require.Equal(t, 1, n, "id %d", id)
	}
	// A watermark restricts the ranges and the rows.
	ds.Watermark = &spi.Watermark{Column: "id", After: "4000"}
	rows, _ = readAll(t, c, ds, 3)
	require.Len(t, rows, 1000)

	// Without partition_by, or with max 1, one partition.
	parts, err = c.Partitions(ctx, spi.Dataset{Table: "ev"}, 8)
	require.NoError(t, err)
	require.Len(t, parts, 1)
	// More partitions than keys: one per key.
	exec(t, db, "CREATE TABLE small (id INT PRIMARY KEY)", "INSERT INTO small VALUES (5), (6)")
	parts, err = c.Partitions(ctx, spi.Dataset{Table: "small", Options: map[string]string{"partition_by": "id"}}, 8)
	require.NoError(t, err)
	require.Len(t, parts, 2)
	// An empty table: one partition, no rows.
	exec(t, db, "CREATE TABLE empty (id INT PRIMARY KEY)")
	eds := spi.Dataset{Table: "empty", Options: map[string]string{"partition_by": "id"}}
	parts, err = c.Partitions(ctx, eds, 4)
	require.NoError(t, err)
	require.Len(t, parts, 1)
	rows, _ = readAll(t, c, eds, 4)
	require.Empty(t, rows)
	// partition_by must be an integer column of the dataset.
	_, err = c.Partitions(ctx, spi.Dataset{Table: "ev", Options: map[string]string{"partition_by": "note"}}, 4)
	require.ErrorIs(t, err, spi.ErrInvalid)
	_, err = c.Partitions(ctx, spi.Dataset{Table: "ev", Options: map[string]string{"partition_by": "nope"}}, 4)
	require.ErrorIs(t, err, spi.ErrInvalid)
	for _, opts := range []map[string]string{{"partitioning": "blocks"}, {"partitioning": "key"}, {"chunk": "9"}} {
		_, err = c.Partitions(ctx, spi.Dataset{Table: "ev", Options: opts}, 4)
		require.ErrorIs(t, err, spi.ErrInvalid, "%v", opts)
	}
	parts, err = c.Partitions(ctx, spi.Dataset{Table: "ev", Options: map[string]string{"partitioning": "key", "partition_by": "id"}}, 4)
	require.NoError(t, err)
	require.Len(t, parts, 4)
	// A spec that does not parse is refused.
	err = c.Read(ctx, spi.Dataset{Table: "ev"}, spi.Partition{Spec: map[string]string{"kind": "key", "column": "k", "lo": "x"}}, 10, func(spi.Batch) error { return nil })
	require.ErrorIs(t, err, spi.ErrInvalid)
	// emit's error stops the read and comes back.
	stop := fmt.Errorf("stop")
	err = c.Read(ctx, spi.Dataset{Table: "ev"}, parts[0], 10, func(spi.Batch) error { return stop })
	require.ErrorIs(t, err, stop)
}

func TestWatermarkIncremental(t *testing.T) {
	dsn, db := newDatabase(t)
	exec(t, db,
		"CREATE TABLE src (id BIGINT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, v VARCHAR(20))",
		"CREATE TABLE dst (id BIGINT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, v VARCHAR(20))")
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	insert := func(from, to int) {
		for i := from; i <= to; i++ {
			// Several rows share a timestamp: the watermark must not split them.
			_, err := db.Exec("INSERT INTO src VALUES (?, ?, ?)", i, base.Add(time.Duration(i/3)*time.Millisecond+time.Microsecond), fmt.Sprint("v", i))
			require.NoError(t, err)
		}
	}
	insert(1, 50)
	c := open(t, dsn)
	ctx := context.Background()
	run := func(n int) (int64, string) {
		last, _, err := c.LastWatermark(ctx, "inc")
		require.NoError(t, err)
		ds := spi.Dataset{Table: "src", Options: map[string]string{"partition_by": "id"}, Watermark: &spi.Watermark{Column: "updated_at", After: last}}
		wm, err := c.MaxWatermark(ctx, ds, "updated_at")
		require.NoError(t, err)
		rows, _ := readAll(t, c, ds, 3)
		schema, err := c.Describe(ctx, ds)
		require.NoError(t, err)
		com, err := load(t, c, spi.LoadSpec{RunID: fmt.Sprintf("5000000000000000000000%02d", n), Attempt: 1, Mapping: "inc",
			Dataset: spi.Dataset{Table: "dst"}, Schema: schema, Mode: spi.ModeAppend, Watermark: wm}, rows, 2)
		require.NoError(t, err)
		return com.Rows, wm
	}
	n, wm := run(1)
	require.Equal(t, int64(50), n)
	require.Equal(t, "2025-01-01 00:00:00.016001", wm)
	n, wm2 := run(2)
	require.Equal(t, int64(0), n, "nothing new")
	require.Equal(t, "", wm2)
	insert(51, 80)
	n, wm = run(3)
	require.Equal(t, int64(30), n)
	require.Equal(t, "2025-01-01 00:00:00.026001", wm)
	last, ok, err := c.LastWatermark(ctx, "inc")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, wm, last, "an empty run keeps the last watermark")
	var cnt, distinct int
	require.NoError(t, db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT id) FROM dst").Scan(&cnt, &distinct))
	require.Equal(t, [2]int{80, 80}, [2]int{cnt, distinct}, "no gap, no overlap")

	// Integer, date and string watermarks compare as their type.
	for _, tc := range []struct{ col, after, max string }{
		{"id", "75", "80"}, {"v", "v8", "v9"},
	} {
		ds := spi.Dataset{Table: "src", Watermark: &spi.Watermark{Column: tc.col, After: tc.after}}
		got, err := c.MaxWatermark(ctx, ds, tc.col)
		require.NoError(t, err)
		require.Equal(t, tc.max, got)
	}
	rows, _ := readAll(t, c, spi.Dataset{Table: "src", Watermark: &spi.Watermark{Column: "id", After: "75"}}, 1)
	require.Len(t, rows, 5)

	// Decimals and unsigned 64-bit integers compare exactly, not as DOUBLE.
	exec(t, db, "CREATE TABLE big (d DECIMAL(38,9), u BIGINT UNSIGNED)",
		"INSERT INTO big VALUES (12345678901234567890.000000001, 18446744073709551614), (12345678901234567890.000000002, 18446744073709551615)")
	for _, tc := range []struct{ col, after, max string }{
		{"d", "12345678901234567890.000000001", "12345678901234567890.000000002"},
		{"u", "18446744073709551614", "18446744073709551615"},
	} {
		ds := spi.Dataset{Table: "big", Watermark: &spi.Watermark{Column: tc.col, After: tc.after}}
		got, err := c.MaxWatermark(ctx, ds, tc.col)
		require.NoError(t, err)
		require.Equal(t, tc.max, got)
		rows, _ := readAll(t, c, ds, 1)
		require.Len(t, rows, 1, tc.col)
	}
	_, err = c.MaxWatermark(ctx, spi.Dataset{Table: "src", Watermark: &spi.Watermark{Column: "id", After: "x"}}, "id")
	require.ErrorIs(t, err, spi.ErrInvalid)
	_, err = c.MaxWatermark(ctx, spi.Dataset{Table: "src"}, "nope")
	require.ErrorIs(t, err, spi.ErrInvalid)
}

func TestQuerySource(t *testing.T) {
	dsn, db := newDatabase(t)
	exec(t, db, "CREATE TABLE t (id INT PRIMARY KEY, flag TINYINT(1), amount DECIMAL(10,2), name VARCHAR(10))",
		"INSERT INTO t VALUES (1, 1, 10.50, 'a'), (2, 0, -3.25, 'b'), (3, 2, NULL, 'c')")
	c := open(t, dsn)
	ctx := context.Background()
	ds := spi.Dataset{Query: "WITH x AS (SELECT id, flag, amount * 2 AS twice, CONCAT(name, ';') AS n FROM t) SELECT * FROM x -- all\n;"}
	schema, err := c.Describe(ctx, ds)
	require.NoError(t, err)
	require.Equal(t, []spi.FieldType{spi.TypeInt, spi.TypeInt, spi.TypeDecimal, spi.TypeString},
		[]spi.FieldType{schema[0].Type, schema[1].Type, schema[2].Type, schema[3].Type})
	require.Equal(t, [2]int{11, 2}, [2]int{schema[2].Precision, schema[2].Scale}, "MariaDB types amount * 2 of a DECIMAL(10,2) as DECIMAL(11,2)")
	rows, bad := readAll(t, c, ds, 4)
	require.Empty(t, bad)
	sortRows(rows)
	require.Equal(t, []spi.Row{{int64(1), int64(1), "21.00", "a;"}, {int64(2), int64(0), "-6.50", "b;"}, {int64(3), int64(2), nil, "c;"}}, rows)
	ds.Options = map[string]string{"partition_by": "id"}
	ds.Watermark = &spi.Watermark{Column: "id", After: "1"}
	rows, _ = readAll(t, c, ds, 4)
	require.Len(t, rows, 2)

	// In a table, TINYINT(1) is bool and a value other than 0 or 1 is a bad row.
	rows, bad = readAll(t, c, spi.Dataset{Table: "t"}, 1)
	require.Len(t, rows, 2)
	require.Len(t, bad, 1)
	require.Contains(t, bad[0].Loc, "maria:")
	require.Contains(t, bad[0].Loc, ".t partition 0 row 3")
	require.Contains(t, bad[0].Reason, "column flag: value 2 of a TINYINT(1) column is not a boolean")

	for _, q := range []string{"DELETE FROM t", "SELECT 1; DROP TABLE t", "UPDATE t SET id = 5"} {
		_, err := c.Describe(ctx, spi.Dataset{Query: q})
		require.ErrorIs(t, err, spi.ErrInvalid, q)
	}
	_, err = c.Describe(ctx, spi.Dataset{Query: "SELECT nope FROM t"})
	require.ErrorContains(t, err, "nope")
	_, err = c.Describe(ctx, spi.Dataset{Table: "t", Query: "SELECT 1"})
	require.ErrorIs(t, err, spi.ErrInvalid)
	_, err = c.Describe(ctx, spi.Dataset{})
	require.ErrorIs(t, err, spi.ErrInvalid)
	var n int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM t").Scan(&n))
	require.Equal(t, 3, n)
}

// TestIdentifiers moves rows through names with spaces, quotes and reserved words.
func TestIdentifiers(t *testing.T) {
	dsn, db := newDatabase(t)
	exec(t, db, "CREATE TABLE `select from` (`order` BIGINT PRIMARY KEY, `group by` VARCHAR(20), `we``ird col` INT, `Ünï` TEXT)",
		"CREATE TABLE `to table` LIKE `select from`")
	c := open(t, dsn)
	ctx := context.Background()
	src := spi.Dataset{Table: "select from", Options: map[string]string{"partition_by": "order"}, Watermark: &spi.Watermark{Column: "group by", After: "a"}}
	want := []spi.Row{{int64(1), "b", int64(-1), "x"}, {int64(2), "c`'\"", nil, "ü"}}
	schema, err := c.Describe(ctx, src)
	require.NoError(t, err)
	require.Equal(t, []string{"order", "group by", "we`ird col", "Ünï"}, []string{schema[0].Name, schema[1].Name, schema[2].Name, schema[3].Name})
	_, err = load(t, c, spi.LoadSpec{RunID: "600000000000000000000001", Attempt: 1, Mapping: "ids", Dataset: spi.Dataset{Table: "select from"}, Schema: schema, Mode: spi.ModeAppend}, want, 1)
	require.NoError(t, err)
	rows, _ := readAll(t, c, src, 2)
	requireSameRows(t, want, rows)
	var dbName string
	require.NoError(t, db.QueryRow("SELECT DATABASE()").Scan(&dbName))
	_, err = load(t, c, spi.LoadSpec{RunID: "600000000000000000000002", Attempt: 1, Mapping: "ids", Dataset: spi.Dataset{Table: dbName + ".to table"}, Schema: schema, Mode: spi.ModeUpsert, Key: []string{"order"}}, rows, 2)
	require.NoError(t, err)
	got, _ := readAll(t, c, spi.Dataset{Table: "to table"}, 1)
	requireSameRows(t, want, got)
}
