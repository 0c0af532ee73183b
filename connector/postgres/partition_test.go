package postgres_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/connector/spi"
)

// checkOnce asserts that rows (id first) hold every id of 1..n exactly once.
func checkOnce(t *testing.T, rows []spi.Row, n int64, extra ...int64) {
	t.Helper()
	seen := map[int64]int{}
	for _, r := range rows {
		seen[r[0].(int64)]++
	}
	var sum, want int64
	for id, k := range seen {
		require.Equal(t, 1, k, "id %d read %d times", id, k)
		sum += id
	}
	for i := int64(1); i <= n; i++ {
		want += i
	}
	for _, e := range extra {
		want += e
	}
	require.Equal(t, int(n)+len(extra), len(rows))
	require.Equal(t, want, sum)
}

const partRows = 10000

// partTable creates t(id, ts, grp, v) with partRows rows, some keys NULL.
func partTable(t *testing.T, d *db) {
	d.exec(t, `CREATE TABLE t (id int8 PRIMARY KEY, ts timestamptz, day date, k int4, v text)`)
	d.exec(t, `INSERT INTO t SELECT g, CASE WHEN g % 1000 = 0 THEN NULL ELSE '2024-01-01'::timestamptz + g * interval '1 minute' END,
		'2024-01-01'::date + (g / 100), CASE WHEN g % 777 = 0 THEN NULL ELSE (g * g) % 5003 END, repeat('x', g % 50)
		FROM generate_series(1, $1) g`, partRows)
}

func TestPartitionsReadEveryRowOnce(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	partTable(t, d)
	c := d.open(t)
	opts := func(kv ...string) map[string]string {
		m := map[string]string{"partition_min_rows": "1"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name    string
		opts    map[string]string
		method  string
		atLeast int
		analyze bool
	}{
		{"key id equal width", opts("partition_by", "id"), "key", 4, false},
		{"key ts equal width", opts("partition_by", "ts"), "key", 4, false},
		{"key day equal width", opts("partition_by", "day"), "key", 4, false},
		{"key skewed int equal width", opts("partition_by", "k"), "key", 4, false},
		{"blocks unanalyzed", opts(), "blocks", 4, false},
		{"none", opts("partitioning", "none"), "none", 1, false},
		{"key id histogram", opts("partition_by", "id"), "key", 4, true},
		{"key ts histogram", opts("partition_by", "ts"), "key", 4, true},
		{"key skewed int histogram", opts("partition_by", "k"), "key", 3, true},
		{"blocks", opts(), "blocks", 4, true},
		{"blocks over a text partition_by", opts("partition_by", "v"), "blocks", 4, true},
		{"few rows per partition", opts("partition_min_rows", "4000"), "blocks", 3, true},
	}
	for _, tc := range cases {
		if tc.analyze {
			d.exec(t, "ANALYZE t")
		}
		for _, method := range []string{"rows", "copy"} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				tc.opts["read_method"] = method
				ds := spi.Dataset{Table: "t", Options: tc.opts}
				rows, bad, parts := readAll(t, c, ds, 4)
				require.Empty(t, bad)
				require.GreaterOrEqual(t, len(parts), tc.atLeast)
				for i, p := range parts {
					require.Equal(t, i, p.Seq)
					require.Equal(t, tc.method, p.Spec["method"], p.Desc)
					if tc.analyze {
						require.Positive(t, p.EstRows, p.Desc)
						require.Positive(t, p.EstBytes, p.Desc)
					}
				}
				checkOnce(t, rows, partRows)
			})
		}
	}
	// Histogram ranges are balanced: no partition holds more than twice its share.
	d.exec(t, "ANALYZE t")
	parts, err := c.Partitions(context.Background(), spi.Dataset{Table: "t", Options: opts("partition_by", "k")}, 4)
	require.NoError(t, err)
	for _, p := range parts {
		var n int
		err := c.Read(context.Background(), spi.Dataset{Table: "t"}, p, 1000, func(b spi.Batch) error { n += len(b.Rows); return nil })
		require.NoError(t, err)
		require.Less(t, n, 2*partRows/len(parts), p.Desc)
	}
	require.Contains(t, parts[0].Desc, "k in [-inf, ")
	require.Contains(t, parts[0].Desc, "or NULL")
}

// TestPartitionsBlocksUseTidRangeScans: a block partition reads its blocks
// only, as the plan of its query shows.
func TestPartitionsBlocksUseTidRangeScans(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	partTable(t, d)
	d.exec(t, "ANALYZE t")
	c := d.open(t)
	parts, err := c.Partitions(context.Background(), spi.Dataset{Table: "t", Options: map[string]string{"partition_min_rows": "1"}}, 4)
	require.NoError(t, err)
	require.Len(t, parts, 4)
	from, to := parts[1].Spec["from"], parts[1].Spec["to"]
	require.NotEmpty(t, from)
	plan := d.scalar(t, `EXPLAIN SELECT * FROM t AS q WHERE q.ctid >= CAST($1::text AS tid) AND q.ctid < CAST($2::text AS tid)`, "("+from+",0)", "("+to+",0)")
	require.Contains(t, plan, "Tid Range Scan")
	require.Equal(t, "ctid blocks ["+from+", "+to+")", parts[1].Desc)
}

func TestPartitionsDeclared(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	d.exec(t, `CREATE TABLE m (id int8, region text, v text) PARTITION BY LIST (region)`)
	d.exec(t, `CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu')`)
	d.exec(t, `CREATE TABLE m_us PARTITION OF m FOR VALUES IN ('us') PARTITION BY RANGE (id)`)
	d.exec(t, `CREATE TABLE m_us_lo PARTITION OF m_us FOR VALUES FROM (MINVALUE) TO (5000)`)
	d.exec(t, `CREATE TABLE m_us_hi PARTITION OF m_us FOR VALUES FROM (5000) TO (MAXVALUE)`)
	d.exec(t, `CREATE TABLE "m ap" PARTITION OF m FOR VALUES IN ('ap')`)
	d.exec(t, `CREATE TABLE m_other PARTITION OF m DEFAULT`)
	d.exec(t, `INSERT INTO m SELECT g, (ARRAY['eu','us','ap','xx'])[g % 4 + 1], 'v' || g FROM generate_series(1, 10000) g`)
	d.exec(t, `ANALYZE m`)
	c := d.open(t)
	for _, max := range []int{8, 3, 1} {
		ds := spi.Dataset{Table: "m", Options: map[string]string{"partition_min_rows": "1"}}
		rows, _, parts := readAll(t, c, ds, max)
		require.Len(t, parts, min(max, 5))
		if max == 8 {
			var descs []string
			for _, p := range parts {
				require.Equal(t, "declared", p.Spec["method"])
				descs = append(descs, p.Desc)
			}
			require.Equal(t, []string{`only public."m ap"`, "only public.m_eu", "only public.m_other", "only public.m_us_hi", "only public.m_us_lo"}, descs)
		}
		checkOnce(t, rows, 10000)
	}
	// Inheritance children, on request: the parent's own rows too.
	d.exec(t, `CREATE TABLE parent (id int8)`)
	d.exec(t, `CREATE TABLE child (extra text) INHERITS (parent)`)
	d.exec(t, `INSERT INTO parent SELECT g FROM generate_series(1, 10) g`)
	d.exec(t, `INSERT INTO child SELECT g, 'x' FROM generate_series(11, 25) g`)
	c = d.open(t) // a new run: the first one reads in its snapshot, from before these rows
	rows, _, parts := readAll(t, c, spi.Dataset{Table: "parent", Options: map[string]string{"partitioning": "declared", "partition_min_rows": "1"}}, 4)
	require.Len(t, parts, 2)
	checkOnce(t, rows, 25)
	// An empty partitioned table: one partition, no rows.
	d.exec(t, `CREATE TABLE e (id int8) PARTITION BY RANGE (id)`)
	rows, _, parts = readAll(t, c, spi.Dataset{Table: "e"}, 4)
	require.Len(t, parts, 1)
	require.Empty(t, rows)
}

func TestPartitionsErrors(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	partTable(t, d)
	d.exec(t, `CREATE VIEW tv AS SELECT * FROM t`)
	c := d.open(t)
	ctx := context.Background()
	cases := []struct {
		ds   spi.Dataset
		want string
	}{
		{spi.Dataset{Table: "t", Options: map[string]string{"partitioning": "key"}}, "key partitions need the option partition_by"},
		{spi.Dataset{Table: "t", Options: map[string]string{"partitioning": "key", "partition_by": "v"}}, "partition_by column v is pg_catalog.text; key partitions need an integer, date or timestamp column"},
		{spi.Dataset{Table: "t", Options: map[string]string{"partition_by": "nope"}}, `partition_by column "nope" is not a column of public.t`},
		{spi.Dataset{Table: "t", Options: map[string]string{"partitioning": "declared"}}, "public.t has no declared partitions"},
		{spi.Dataset{Table: "tv", Options: map[string]string{"partitioning": "blocks"}}, "block partitions need a plain table; public.tv is a view"},
		{spi.Dataset{Query: "SELECT * FROM t", Options: map[string]string{"partitioning": "blocks"}}, "block partitions need a plain table; query is a query"},
		{spi.Dataset{Table: "t", Options: map[string]string{"partitioning": "random"}}, `option partitioning must be key, declared, blocks or none, got "random"`},
		{spi.Dataset{Table: "t", Options: map[string]string{"partition_min_rows": "0"}}, "option partition_min_rows must be a positive integer"},
	}
	for _, tc := range cases {
		_, err := c.Partitions(ctx, tc.ds, 4)
		require.ErrorIs(t, err, spi.ErrInvalid)
		require.ErrorContains(t, err, tc.want)
	}
	// A view and a query get one partition by default; a view can be split by key.
	for _, ds := range []spi.Dataset{{Table: "tv"}, {Query: "SELECT * FROM t"}} {
		parts, err := c.Partitions(ctx, ds, 4)
		require.NoError(t, err)
		require.Len(t, parts, 1)
	}
	ds := spi.Dataset{Table: "tv", Options: map[string]string{"partition_by": "id", "partition_min_rows": "1"}}
	rows, _, parts := readAll(t, c, ds, 4)
	require.Len(t, parts, 4)
	checkOnce(t, rows, partRows)
	// A bad spec in a plan is refused before any read.
	err := c.Read(ctx, spi.Dataset{Table: "t"}, spi.Partition{Seq: 2, Spec: map[string]string{"method": "blocks", "from": "1; DROP TABLE t"}}, 10, func(spi.Batch) error { return nil })
	require.ErrorIs(t, err, spi.ErrInvalid)
	require.ErrorContains(t, err, "is not a block number")
	err = c.Read(ctx, spi.Dataset{Table: "t"}, spi.Partition{Spec: map[string]string{"method": "key", "column": "id", "lo": "x'"}}, 10, func(spi.Batch) error { return nil })
	require.ErrorContains(t, err, `bound "x'" is not an integer`)
}

// TestSnapshot: the partitions and the watermark of one Conn read one
// snapshot: rows committed meanwhile wait for the next run.
func TestSnapshot(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	partTable(t, d)
	c := d.open(t)
	ctx := context.Background()
	ds := spi.Dataset{Table: "t", Watermark: &spi.Watermark{Column: "id"}, Options: map[string]string{"partition_min_rows": "1"}}
	w, err := c.MaxWatermark(ctx, ds, "id")
	require.NoError(t, err)
	require.Equal(t, "10000", w)
	d.exec(t, `INSERT INTO t (id) SELECT g FROM generate_series(10001, 10100) g`)
	d.exec(t, `DELETE FROM t WHERE id <= 10`)
	rows, _, _ := readAll(t, c, ds, 4)
	checkOnce(t, rows, partRows)
	// Without the snapshot option, each partition sees the latest data.
	ds.Options["snapshot"] = "false"
	rows, _, _ = readAll(t, c, ds, 4)
	require.Len(t, rows, partRows+100-10)
	// The next run (a new Conn) sees the new rows above the watermark only.
	c2 := d.open(t)
	ds = spi.Dataset{Table: "t", Watermark: &spi.Watermark{Column: "id", After: w}}
	rows, _, _ = readAll(t, c2, ds, 4)
	require.Len(t, rows, 100)
}
