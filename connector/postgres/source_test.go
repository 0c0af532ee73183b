package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/connector/spi"
)

// run is one incremental run of a table-to-table mapping: read what is new
// since the target's last watermark, load it with the new watermark.
func incrementalRun(t *testing.T, d *db, runID, column string) (int, string) {
	t.Helper()
	ctx := context.Background()
	src, dst := d.open(t), d.open(t)
	after, _, err := dst.LastWatermark(ctx, "events")
	require.NoError(t, err)
	ds := spi.Dataset{Table: "events", Watermark: &spi.Watermark{Column: column, After: after}, Options: map[string]string{"partition_min_rows": "1"}}
	upto, err := src.MaxWatermark(ctx, ds, column)
	require.NoError(t, err)
	schema, err := src.Describe(ctx, ds)
	require.NoError(t, err)
	rows, _, _ := readAll(t, src, ds, 3)
	if upto == "" {
		upto = after
	}
	_, err = load(t, dst, spi.LoadSpec{RunID: runID, Mapping: "events", Dataset: spi.Dataset{Table: "copy"}, Schema: schema, Watermark: upto}, rows, 100)
	require.NoError(t, err)
	return len(rows), upto
}

// TestWatermarkIncremental: a full load and then increments, with rows
// arriving between runs, leave the target equal to the source: no gap, no
// overlap, for an increasing id and for a timestamp.
func TestWatermarkIncremental(t *testing.T) {
	t.Parallel()
	for _, column := range []string{"id", "updated_at"} {
		t.Run(column, func(t *testing.T) {
			d := newDB(t)
			d.exec(t, `CREATE TABLE events (id int8 PRIMARY KEY, updated_at timestamptz NOT NULL, v text)`)
			d.exec(t, `CREATE TABLE copy (LIKE events)`)
			add := func(from, to int) {
				d.exec(t, `INSERT INTO events SELECT g, '2024-05-01 00:00:00.000001+02'::timestamptz + g * interval '1.5 second', 'v' || g FROM generate_series($1::int, $2::int) g`, from, to)
			}
			add(1, 1000)
			n, w := incrementalRun(t, d, "1", column)
			require.Equal(t, 1000, n)
			add(1001, 1500)
			n, w2 := incrementalRun(t, d, "2", column)
			require.Equal(t, 500, n)
			require.NotEqual(t, w, w2)
			n, w3 := incrementalRun(t, d, "3", column)
			require.Equal(t, 0, n)
			require.Equal(t, w2, w3)
			add(1501, 1502)
			n, _ = incrementalRun(t, d, "4", column)
			require.Equal(t, 2, n)
			require.Equal(t, d.scalar(t, "SELECT md5(string_agg(e::text, '|' ORDER BY id)) FROM events e"),
				d.scalar(t, "SELECT md5(string_agg(e::text, '|' ORDER BY id)) FROM copy e"))
			if column == "updated_at" {
				// The watermark is the server's text of the instant, which reads back exactly.
				require.Equal(t, "2024-04-30 22:37:30.000001+00", w3)
			}
		})
	}
}

func TestQuerySource(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	d.exec(t, `CREATE TABLE people (id int8 PRIMARY KEY, name text NOT NULL, born date)`)
	d.exec(t, `INSERT INTO people SELECT g, 'p' || g, '1980-01-01'::date + g FROM generate_series(1, 1000) g`)
	c := d.open(t)
	ctx := context.Background()
	ds := spi.Dataset{Query: `-- adults; with a ; in a comment
		WITH x AS (SELECT id, upper(name) AS name, born, 'it''s; "q"' AS lit, $$a;b$$ AS dollar, ARRAY[id] AS ids FROM people WHERE id % 2 = 0)
		SELECT * FROM x;  `, Options: map[string]string{"partition_by": "id", "partition_min_rows": "1"}}
	schema, err := c.Describe(ctx, ds)
	require.NoError(t, err)
	require.Equal(t, spi.Schema{
		{Name: "id", Type: spi.TypeInt, Nullable: true}, {Name: "name", Type: spi.TypeString, Nullable: true},
		{Name: "born", Type: spi.TypeDate, Nullable: true}, {Name: "lit", Type: spi.TypeString, Nullable: true},
		{Name: "dollar", Type: spi.TypeString, Nullable: true}, {Name: "ids", Type: spi.TypeString, Nullable: true},
	}, schema)
	for _, method := range []string{"rows", "copy"} {
		ds.Options["read_method"] = method
		rows, _, parts := readAll(t, c, ds, 4)
		require.Len(t, parts, 4)
		require.Len(t, rows, 500)
		var sum int64
		for _, r := range rows {
			id := r[0].(int64)
			sum += id
			require.Equal(t, fmt.Sprintf("P%d", id), r[1])
			require.Equal(t, time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(id)), r[2])
			require.Equal(t, `it's; "q"`, r[3])
			require.Equal(t, "a;b", r[4])
			require.Equal(t, fmt.Sprintf("{%d}", id), r[5])
		}
		require.Equal(t, int64(250500), sum)
	}
	w, err := c.MaxWatermark(ctx, ds, "born")
	require.NoError(t, err)
	require.Equal(t, "1982-09-27", w)

	schema, err = c.Describe(ctx, spi.Dataset{Query: "SELECT 120::numeric(5,-2) AS a, 1.5::numeric(4,3) AS b, 2::numeric AS c"})
	require.NoError(t, err)
	require.Equal(t, spi.Schema{
		{Name: "a", Type: spi.TypeDecimal, Nullable: true, Precision: 5, Scale: -2},
		{Name: "b", Type: spi.TypeDecimal, Nullable: true, Precision: 4, Scale: 3},
		{Name: "c", Type: spi.TypeDecimal, Nullable: true},
	}, schema)

	refused := []struct{ q, want string }{
		{"DELETE FROM people", "it starts with DELETE"},
		{"SELECT 1; DROP TABLE people", "more than one statement"},
		{"SELECT 1; -- x\n;", "more than one statement"},
		{"  ", "it is empty"},
		{"SELECT 'unterminated", "unterminated string"},
		{"/* SELECT */ UPDATE people SET name = 'x'", "it starts with UPDATE"},
		{"(SELECT 1) UNION (SELECT 2); COMMIT", "more than one statement"},
		{"SELECT $1::int", "the query has parameters"},
		{"SELECT 1 AS a, 2 AS a", `query has two columns named "a"`},
		{"WITH d AS (DELETE FROM people RETURNING *) SELECT * FROM d", "WITH clause containing a data-modifying statement must be at the top level"},
		{"SELECT * FROM people FOR UPDATE", "read-only transaction"},
		{"SELECT nextval('s')", "read-only transaction"},
	}
	d.exec(t, "CREATE SEQUENCE s")
	// Key partitions of a query read its range, read-only too.
	_, err = c.Partitions(ctx, spi.Dataset{Query: "SELECT nextval('s') AS id FROM generate_series(1, 1000)", Options: map[string]string{"partition_by": "id", "partition_min_rows": "1"}}, 4)
	require.ErrorContains(t, err, "read-only transaction")
	for _, tc := range refused {
		_, err := c.Describe(ctx, spi.Dataset{Query: tc.q})
		if err == nil {
			err = c.Read(ctx, spi.Dataset{Query: tc.q}, spi.Partition{}, 10, func(spi.Batch) error { return nil })
		}
		require.ErrorContains(t, err, tc.want, tc.q)
	}
	require.Equal(t, "1000", d.scalar(t, "SELECT count(*)::text FROM people"))
	require.Equal(t, "1", d.scalar(t, "SELECT nextval('s')::text"))
}

// TestWeirdNames: names with spaces, quotes, capitals and keywords are
// quoted everywhere: source, partitions, watermark, target, upsert.
func TestWeirdNames(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	d.exec(t, `CREATE SCHEMA "Odd Schema"`)
	d.exec(t, `CREATE TABLE "Odd Schema"."Odd Table" ("select" int8 PRIMARY KEY, "Mixed Case" text, "we""ird.col" numeric, "from" timestamptz)`)
	d.exec(t, `INSERT INTO "Odd Schema"."Odd Table" SELECT g, 'v' || g, g / 3.0, '2024-01-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 300) g`)
	d.exec(t, `CREATE TABLE "Odd Schema"."Odd Copy" (LIKE "Odd Schema"."Odd Table" INCLUDING ALL)`)
	c := d.open(t)
	ctx := context.Background()
	src := spi.Dataset{Table: `"Odd Schema"."Odd Table"`, Watermark: &spi.Watermark{Column: "from", After: "2024-01-01 10:00:00+00"},
		Options: map[string]string{"partition_by": "select", "partition_min_rows": "1"}}
	schema, err := c.Describe(ctx, src)
	require.NoError(t, err)
	require.Equal(t, []string{"select", "Mixed Case", `we"ird.col`, "from"}, []string{schema[0].Name, schema[1].Name, schema[2].Name, schema[3].Name})
	rows, _, parts := readAll(t, c, src, 3)
	require.Len(t, parts, 3)
	require.Len(t, rows, 290)
	w, err := c.MaxWatermark(ctx, src, "from")
	require.NoError(t, err)
	require.Equal(t, "2024-01-13 12:00:00+00", w)
	d.exec(t, `ANALYZE "Odd Schema"."Odd Table"`)
	c = d.open(t)
	rows, _, _ = readAll(t, c, spi.Dataset{Table: `"Odd Schema"."Odd Table"`, Options: map[string]string{"partition_min_rows": "1"}}, 3)
	require.Len(t, rows, 300)

	dst := spi.Dataset{Table: `"Odd Schema"."Odd Copy"`}
	for _, mode := range []spi.WriteMode{spi.ModeAppend, spi.ModeUpsert, spi.ModeTruncateInsert} {
		_, err := load(t, c, spi.LoadSpec{RunID: "r" + string(mode[:1]), Dataset: dst, Schema: schema, Mode: mode, Key: []string{"select"}}, rows, 64)
		require.NoError(t, err, mode)
	}
	require.Equal(t, d.scalar(t, `SELECT md5(string_agg(e::text, '|' ORDER BY "select")) FROM "Odd Schema"."Odd Table" e`),
		d.scalar(t, `SELECT md5(string_agg(e::text, '|' ORDER BY "select")) FROM "Odd Schema"."Odd Copy" e`))
	require.Equal(t, "", stagingTables(t, d))
	err = c.Check(ctx, dst, spi.Schema{{Name: "Select", Type: spi.TypeInt}})
	require.ErrorContains(t, err, `table "Odd Schema"."Odd Copy" has no column Select`)
	_, err = c.Describe(ctx, spi.Dataset{Table: "Odd Schema.Odd Table"})
	require.NoError(t, err, "unquoted parts are taken literally")
	_, err = c.Describe(ctx, spi.Dataset{Table: `"Odd Schema".odd table`})
	require.ErrorContains(t, err, `table "Odd Schema"."odd table" does not exist`)
}
