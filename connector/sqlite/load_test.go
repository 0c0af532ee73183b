package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	iofs "io/fs"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/connector/spi"
)

func kvRows(from, to int, val string) []spi.Row {
	var rows []spi.Row
	for i := from; i <= to; i++ {
		rows = append(rows, spi.Row{int64(i), fmt.Sprintf("%s%d", val, i)})
	}
	return rows
}

var kvSchema = spi.Schema{{Name: "id", Type: spi.TypeInt}, {Name: "v", Type: spi.TypeString, Nullable: true}}

func countRows(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(q).Scan(&n))
	return n
}

func TestExactlyOnce(t *testing.T) {
	root, name, db := newDB(t, "CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT)")
	c := open(t, root, name)
	ctx := context.Background()
	spec := spi.LoadSpec{RunID: "200000000000000000000001", Attempt: 1, Mapping: "kv", Dataset: spi.Dataset{Table: "kv"}, Schema: kvSchema, Mode: spi.ModeAppend, Watermark: "17"}

	ok, err := c.Committed(ctx, spec.RunID)
	require.NoError(t, err)
	require.False(t, ok, "no marker table yet")
	_, found, err := c.LastWatermark(ctx, "kv")
	require.NoError(t, err)
	require.False(t, found)

	// A staged attempt holds no lock: others write the database meanwhile.
	l1, err := c.Begin(ctx, spec)
	require.NoError(t, err)
	require.NoError(t, l1.Write(ctx, 0, spi.Batch{Rows: kvRows(1, 10, "x")}))
	exec(t, db, "INSERT INTO kv VALUES (500, 'other writer')")
	require.Zero(t, countRows(t, db, "SELECT COUNT(*) FROM kv WHERE id < 500"), "staged rows are not visible")

	spec.Attempt = 2
	com, err := load(t, c, spec, kvRows(1, 100, "v"), 4)
	require.NoError(t, err)
	require.Equal(t, int64(100), com.Rows)
	// The first attempt, still open, cannot commit its rows any more.
	_, err = l1.Commit(ctx)
	require.ErrorIs(t, err, spi.ErrAlreadyCommitted)
	require.ErrorIs(t, l1.Write(ctx, 0, spi.Batch{Rows: kvRows(1, 1, "x")}), spi.ErrInvalid)
	require.NoError(t, l1.Abort(ctx))

	ok, err = c.Committed(ctx, spec.RunID)
	require.NoError(t, err)
	require.True(t, ok)
	wm, found, err := c.LastWatermark(ctx, "kv")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "17", wm)

	spec.Attempt = 3
	_, err = load(t, c, spec, kvRows(101, 200, "v"), 2)
	require.ErrorIs(t, err, spi.ErrAlreadyCommitted)
	require.Equal(t, 101, countRows(t, db, "SELECT COUNT(*) FROM kv"))
	var rows int64
	var target, at string
	require.NoError(t, db.QueryRow(`SELECT "rows", target, committed_at FROM weir_commits WHERE run_id = ?`, spec.RunID).Scan(&rows, &target, &at))
	require.Equal(t, int64(100), rows)
	require.Equal(t, "kv", target)
	ts, err := time.Parse("2006-01-02 15:04:05.999", at)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), ts, time.Minute)

	// Attempts racing through two connections: one commits, the others
	// find its marker; the rows land once.
	c2 := open(t, root, name)
	spec.RunID = "200000000000000000000002"
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for a := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := spec
			s.Attempt = 10 + a
			conn := c
			if a%2 == 1 {
				conn = c2
			}
			_, errs[a] = load(t, conn, s, kvRows(1000+a*10, 1000+a*10+4, "c"), 2)
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else {
			require.ErrorIs(t, err, spi.ErrAlreadyCommitted)
		}
	}
	require.Equal(t, 1, wins)
	require.Equal(t, 5, countRows(t, db, "SELECT COUNT(*) FROM kv WHERE id >= 1000"))
	require.Equal(t, 4, countRows(t, db, "SELECT MAX(id) - MIN(id) FROM kv WHERE id >= 1000"))
}

func TestWriteModes(t *testing.T) {
	root, name, db := newDB(t,
		"CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT, extra INTEGER NOT NULL DEFAULT 7)",
		"CREATE TABLE composite (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b))",
		"CREATE TABLE uniq (id INTEGER, code TEXT UNIQUE, v TEXT)",
		"CREATE TABLE nokey (id INTEGER, v TEXT)")
	c := open(t, root, name)
	run := 0
	spec := func(table string, mode spi.WriteMode, key ...string) spi.LoadSpec {
		run++
		return spi.LoadSpec{RunID: fmt.Sprintf("3000000000000000000000%02d", run), Attempt: 1, Mapping: "m", Dataset: spi.Dataset{Table: table}, Schema: kvSchema, Mode: mode, Key: key}
	}
	contents := func() map[int64]string {
		rows, err := db.Query("SELECT id, v, extra FROM kv")
		require.NoError(t, err)
		defer rows.Close()
		out := map[int64]string{}
		for rows.Next() {
			var id int64
			var v string
			var extra int
			require.NoError(t, rows.Scan(&id, &v, &extra))
			require.Equal(t, 7, extra, "columns outside the schema take their default")
			out[id] = v
		}
		return out
	}
	_, err := load(t, c, spec("kv", spi.ModeAppend), kvRows(1, 5, "a"), 2)
	require.NoError(t, err)
	_, err = load(t, c, spec("kv", spi.ModeAppend), kvRows(6, 8, "a"), 2)
	require.NoError(t, err)
	require.Len(t, contents(), 8)

	_, err = load(t, c, spec("kv", spi.ModeAppend), kvRows(8, 9, "dup"), 1)
	require.ErrorContains(t, err, "UNIQUE constraint failed: kv.id")
	require.Len(t, contents(), 8)
	ok, err := c.Committed(context.Background(), fmt.Sprintf("3000000000000000000000%02d", run))
	require.NoError(t, err)
	require.False(t, ok, "a failed commit leaves no marker")

	com, err := load(t, c, spec("kv", spi.ModeUpsert, "ID"), kvRows(7, 12, "u"), 3)
	require.NoError(t, err)
	require.Equal(t, int64(6), com.Rows)
	got := contents()
	require.Len(t, got, 12)
	require.Equal(t, "a1", got[1])
	require.Equal(t, "u7", got[7])
	require.Equal(t, "u12", got[12])
	// A key given twice in one upsert fails when staged.
	_, err = load(t, c, spec("kv", spi.ModeUpsert, "id"), append(kvRows(1, 2, "z"), kvRows(2, 2, "zz")...), 1)
	require.ErrorContains(t, err, "UNIQUE constraint failed")
	require.Equal(t, "a1", contents()[1])

	_, err = load(t, c, spec("kv", spi.ModeTruncateInsert), kvRows(100, 102, "t"), 2)
	require.NoError(t, err)
	require.Equal(t, map[int64]string{100: "t100", 101: "t101", 102: "t102"}, contents())
	_, err = load(t, c, spec("kv", spi.ModeTruncateInsert), nil, 1)
	require.NoError(t, err)
	require.Empty(t, contents())

	// Composite primary keys and unique indexes are keys; anything else is not.
	s := spec("composite", spi.ModeUpsert, "b", "a")
	s.Schema = spi.Schema{{Name: "a", Type: spi.TypeString}, {Name: "b", Type: spi.TypeInt}, {Name: "v", Type: spi.TypeString}}
	_, err = load(t, c, s, []spi.Row{{"x", int64(1), "one"}, {"x", int64(2), "two"}}, 1)
	require.NoError(t, err)
	s.RunID += "b"
	_, err = load(t, c, s, []spi.Row{{"x", int64(1), "uno"}}, 1)
	require.NoError(t, err)
	require.Equal(t, 1, countRows(t, db, "SELECT COUNT(*) FROM composite WHERE v = 'uno'"))
	require.Equal(t, 2, countRows(t, db, "SELECT COUNT(*) FROM composite"))
	s = spec("uniq", spi.ModeUpsert, "code")
	s.Schema = spi.Schema{{Name: "code", Type: spi.TypeString}, {Name: "v", Type: spi.TypeString}}
	_, err = load(t, c, s, []spi.Row{{"A", "1"}}, 1)
	require.NoError(t, err)
	for _, bad := range []spi.LoadSpec{spec("kv", spi.ModeUpsert, "v"), spec("kv", spi.ModeUpsert), spec("nokey", spi.ModeUpsert, "id"), spec("kv", "replace"), spec("kv", spi.ModeUpsert, "nope")} {
		_, err := c.Begin(context.Background(), bad)
		require.ErrorIs(t, err, spi.ErrInvalid, "%+v", bad)
	}
	_, err = c.Begin(context.Background(), spec("kv", spi.ModeUpsert, "v"))
	require.ErrorContains(t, err, "upsert key (v) is not the primary key or a unique index of kv")
}

func TestCheckErrors(t *testing.T) {
	root, name, _ := newDB(t,
		"CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, s TEXT, ts DATETIME, g INTEGER AS (n * 2), loose)",
		"CREATE VIEW v AS SELECT id FROM t")
	c := open(t, root, name)
	ctx := context.Background()
	err := c.Check(ctx, spi.Dataset{Table: "missing"}, kvSchema)
	require.ErrorIs(t, err, iofs.ErrNotExist)
	require.ErrorContains(t, err, "table missing does not exist")
	err = c.Check(ctx, spi.Dataset{Table: "t"}, spi.Schema{{Name: "n", Type: spi.TypeString}, {Name: "ts", Type: spi.TypeInt}, {Name: "nope", Type: spi.TypeInt}, {Name: "g", Type: spi.TypeInt}})
	require.ErrorIs(t, err, spi.ErrInvalid)
	for _, want := range []string{
		`column t.n is INTEGER (int), it cannot take field "n" of type string`,
		`column t.ts is DATETIME (timestamp), it cannot take field "ts" of type int`,
		`table t has no column "nope"`,
		"column t.g is generated",
	} {
		require.ErrorContains(t, err, want)
	}
	require.ErrorContains(t, c.Check(ctx, spi.Dataset{Table: "t"}, spi.Schema{{Name: "s", Type: spi.TypeString}}), "column t.n is NOT NULL without a default")
	require.NoError(t, c.Check(ctx, spi.Dataset{Table: "T"}, spi.Schema{{Name: "N", Type: spi.TypeBool}, {Name: "ts", Type: spi.TypeDate}, {Name: "loose", Type: spi.TypeBytes}}), "names without case; INTEGER PRIMARY KEY fills itself")
	require.ErrorContains(t, c.Check(ctx, spi.Dataset{Table: "v"}, spi.Schema{{Name: "id", Type: spi.TypeInt}}), "v is a view")
	require.ErrorIs(t, c.Check(ctx, spi.Dataset{Query: "SELECT 1"}, kvSchema), spi.ErrInvalid)

	l, err := c.Begin(ctx, spi.LoadSpec{RunID: "400000000000000000000001", Attempt: 1, Mapping: "m", Dataset: spi.Dataset{Table: "t"},
		Schema: spi.Schema{{Name: "n", Type: spi.TypeInt}, {Name: "s", Type: spi.TypeString}}, Mode: spi.ModeAppend})
	require.NoError(t, err)
	defer l.Abort(ctx)
	err = l.Write(ctx, 0, spi.Batch{Rows: []spi.Row{{int64(1), "ok"}, {"2", "ok"}}})
	require.ErrorIs(t, err, spi.ErrInvalid)
	require.ErrorContains(t, err, "row 1 column n: string is not a value of a int field")
	require.ErrorContains(t, l.Write(ctx, 0, spi.Batch{Rows: []spi.Row{{int64(1), "ok"}, {nil, "ok"}}}), "NOT NULL constraint failed")
	require.NoError(t, l.Write(ctx, 0, spi.Batch{Rows: []spi.Row{{int64(5), "kept"}}}))
	com, err := l.Commit(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), com.Rows, "failed batches left nothing staged")
}

func TestWatermarkIncremental(t *testing.T) {
	root, name, db := newDB(t,
		"CREATE TABLE src (id INTEGER PRIMARY KEY, updated_at DATETIME NOT NULL, v TEXT)",
		"CREATE TABLE dst (id INTEGER PRIMARY KEY, updated_at DATETIME NOT NULL, v TEXT)")
	c := open(t, root, name)
	ctx := context.Background()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	insert := func(from, to int) {
		var rows []spi.Row
		for i := from; i <= to; i++ {
			rows = append(rows, spi.Row{int64(i), base.Add(time.Duration(i/3) * time.Millisecond), fmt.Sprint("v", i)})
		}
		schema, err := c.Describe(ctx, spi.Dataset{Table: "src"})
		require.NoError(t, err)
		_, err = load(t, c, spi.LoadSpec{RunID: fmt.Sprintf("51000000000000000000%04d", from), Attempt: 1, Mapping: "fill", Dataset: spi.Dataset{Table: "src"}, Schema: schema, Mode: spi.ModeAppend}, rows, 1)
		require.NoError(t, err)
	}
	insert(1, 50)
	run := func(n int) (int64, string) {
		last, _, err := c.LastWatermark(ctx, "inc")
		require.NoError(t, err)
		ds := spi.Dataset{Table: "src", Watermark: &spi.Watermark{Column: "updated_at", After: last}}
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
	require.Equal(t, "2025-01-01 00:00:00.016", wm)
	n, wm2 := run(2)
	require.Zero(t, n)
	require.Empty(t, wm2)
	insert(51, 80)
	n, wm = run(3)
	require.Equal(t, int64(30), n)
	require.Equal(t, "2025-01-01 00:00:00.026", wm)
	last, ok, err := c.LastWatermark(ctx, "inc")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, wm, last)
	require.Equal(t, 80, countRows(t, db, "SELECT COUNT(DISTINCT id) FROM dst"))
	require.Equal(t, 80, countRows(t, db, "SELECT COUNT(*) FROM dst"), "no gap, no overlap")

	got, err := c.MaxWatermark(ctx, spi.Dataset{Table: "src", Watermark: &spi.Watermark{Column: "id", After: "75"}}, "id")
	require.NoError(t, err)
	require.Equal(t, "80", got)
	rows, _ := readAll(t, c, spi.Dataset{Table: "src", Watermark: &spi.Watermark{Column: "id", After: "75"}}, 2)
	require.Len(t, rows, 5, "integers compare as numbers, 9 < 75 < 80")
	_, err = c.MaxWatermark(ctx, spi.Dataset{Table: "src", Watermark: &spi.Watermark{Column: "id", After: "x"}}, "id")
	require.ErrorIs(t, err, spi.ErrInvalid)
	_, err = c.MaxWatermark(ctx, spi.Dataset{Table: "src"}, "nope")
	require.ErrorIs(t, err, spi.ErrInvalid)
}

// TestIdentifiers moves rows through names with spaces, quotes and reserved words.
func TestIdentifiers(t *testing.T) {
	root, name, _ := newDB(t,
		`CREATE TABLE "select from" ("order" INTEGER PRIMARY KEY, "group by" TEXT, "we""ird col" INTEGER, "Ünï" TEXT)`,
		`CREATE TABLE "to table" ("order" INTEGER PRIMARY KEY, "group by" TEXT, "we""ird col" INTEGER, "Ünï" TEXT)`)
	c := open(t, root, name)
	ctx := context.Background()
	want := []spi.Row{{int64(1), "b", int64(-1), "x"}, {int64(2), "c`'\"", nil, "ü"}}
	schema, err := c.Describe(ctx, spi.Dataset{Table: "select from"})
	require.NoError(t, err)
	require.Equal(t, []string{"order", "group by", `we"ird col`, "Ünï"}, []string{schema[0].Name, schema[1].Name, schema[2].Name, schema[3].Name})
	_, err = load(t, c, spi.LoadSpec{RunID: "600000000000000000000001", Attempt: 1, Mapping: "ids", Dataset: spi.Dataset{Table: "select from"}, Schema: schema, Mode: spi.ModeAppend}, want, 1)
	require.NoError(t, err)
	src := spi.Dataset{Table: "main.select from", Options: map[string]string{"partition_by": "order"}, Watermark: &spi.Watermark{Column: "group by", After: "a"}}
	rows, _ := readAll(t, c, src, 2)
	requireSameRows(t, want, rows)
	_, err = load(t, c, spi.LoadSpec{RunID: "600000000000000000000002", Attempt: 1, Mapping: "ids", Dataset: spi.Dataset{Table: "to table"}, Schema: schema, Mode: spi.ModeUpsert, Key: []string{"order"}}, rows, 2)
	require.NoError(t, err)
	got, _ := readAll(t, c, spi.Dataset{Table: "to table"}, 1)
	requireSameRows(t, want, got)
}
