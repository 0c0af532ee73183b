package mysql_test

import (
	"context"
	"fmt"
	iofs "io/fs"
	"strings"
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

func TestExactlyOnce(t *testing.T) {
	dsn, db := newDatabase(t)
	exec(t, db, "CREATE TABLE kv (id BIGINT PRIMARY KEY, v VARCHAR(64))")
	c := open(t, dsn)
	ctx := context.Background()
	ds := spi.Dataset{Table: "kv"}
	spec := spi.LoadSpec{RunID: "200000000000000000000001", Attempt: 1, Mapping: "kv", Dataset: ds, Schema: kvSchema, Mode: spi.ModeAppend, Watermark: "17"}

	ok, err := c.Committed(ctx, spec.RunID)
	require.NoError(t, err)
	require.False(t, ok, "no marker table yet")
	_, found, err := c.LastWatermark(ctx, "kv")
	require.NoError(t, err)
	require.False(t, found)

	// An attempt that stages rows and dies leaves its staging table; the
	// next attempt of the run drops it.
	l1, err := c.Begin(ctx, spec)
	require.NoError(t, err)
	require.NoError(t, l1.Write(ctx, 0, spi.Batch{Rows: kvRows(1, 10, "x")}))
	var stages int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'weir\\_stage\\_%'").Scan(&stages))
	require.Equal(t, 1, stages)

	spec.Attempt = 2
	com, err := load(t, c, spec, kvRows(1, 100, "v"), 4)
	require.NoError(t, err)
	require.Equal(t, int64(100), com.Rows)
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'weir\\_stage\\_%'").Scan(&stages))
	require.Equal(t, 0, stages, "staging tables dropped")
	// The dead attempt cannot write or commit any more.
	require.Error(t, l1.Write(ctx, 0, spi.Batch{Rows: kvRows(11, 12, "x")}))
	_, err = l1.Commit(ctx)
	require.ErrorIs(t, err, spi.ErrAlreadyCommitted)
	require.NoError(t, l1.Abort(ctx))

	ok, err = c.Committed(ctx, spec.RunID)
	require.NoError(t, err)
	require.True(t, ok)
	wm, found, err := c.LastWatermark(ctx, "kv")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "17", wm)

	// A third attempt of the same run loads nothing.
	spec.Attempt = 3
	_, err = load(t, c, spec, kvRows(101, 200, "v"), 2)
	require.ErrorIs(t, err, spi.ErrAlreadyCommitted)
	var n int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM kv").Scan(&n))
	require.Equal(t, 100, n)
	var rowsCol int64
	var target string
	var at time.Time
	require.NoError(t, db.QueryRow("SELECT `rows`, target, committed_at FROM weir_commits WHERE run_id = ?", spec.RunID).Scan(&rowsCol, &target, &at))
	require.Equal(t, int64(100), rowsCol)
	require.True(t, strings.HasSuffix(target, ".kv"))
	require.WithinDuration(t, time.Now(), at, time.Minute)

	// Attempts of one run racing (a zombie worker and its replacement):
	// each Begin drops the staging tables of the others, each Commit races
	// for the marker; exactly one attempt's rows land.
	spec.RunID = "200000000000000000000002"
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for a := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := spec
			s.Attempt = 10 + a
			_, errs[a] = load(t, c, s, kvRows(1000+a*10, 1000+a*10+4, "c"), 2)
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		}
	}
	require.Equal(t, 1, wins, "%v", errs)
	var lo, hi int
	require.NoError(t, db.QueryRow("SELECT COUNT(*), MIN(id), MAX(id) FROM kv WHERE id >= 1000").Scan(&n, &lo, &hi))
	require.Equal(t, 5, n)
	require.Equal(t, 4, hi-lo, "the rows of one attempt")
}

func TestWriteModes(t *testing.T) {
	dsn, db := newDatabase(t)
	exec(t, db, "CREATE TABLE kv (id BIGINT PRIMARY KEY, v VARCHAR(64), extra INT NOT NULL DEFAULT 7)",
		"CREATE TABLE nokey (id BIGINT, v VARCHAR(64))")
	c := open(t, dsn)
	ds := spi.Dataset{Table: "kv"}
	run := 0
	spec := func(mode spi.WriteMode, key ...string) spi.LoadSpec {
		run++
		return spi.LoadSpec{RunID: fmt.Sprintf("3000000000000000000000%02d", run), Attempt: 1, Mapping: "m", Dataset: ds, Schema: kvSchema, Mode: mode, Key: key}
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
	_, err := load(t, c, spec(spi.ModeAppend), kvRows(1, 5, "a"), 2)
	require.NoError(t, err)
	_, err = load(t, c, spec(spi.ModeAppend), kvRows(6, 8, "a"), 2)
	require.NoError(t, err)
	require.Len(t, contents(), 8)

	// Appending a key that exists fails and changes nothing.
	_, err = load(t, c, spec(spi.ModeAppend), kvRows(8, 9, "dup"), 1)
	require.Error(t, err)
	require.Len(t, contents(), 8)
	ok, err := c.Committed(context.Background(), fmt.Sprintf("3000000000000000000000%02d", run))
	require.NoError(t, err)
	require.False(t, ok, "a failed commit leaves no marker")

	com, err := load(t, c, spec(spi.ModeUpsert, "ID"), kvRows(7, 12, "u"), 3)
	require.NoError(t, err)
	require.Equal(t, int64(6), com.Rows)
	got := contents()
	require.Len(t, got, 12)
	require.Equal(t, "a1", got[1])
	require.Equal(t, "u7", got[7])
	require.Equal(t, "u12", got[12])

	_, err = load(t, c, spec(spi.ModeTruncateInsert), kvRows(100, 102, "t"), 2)
	require.NoError(t, err)
	require.Equal(t, map[int64]string{100: "t100", 101: "t101", 102: "t102"}, contents())

	// truncate_insert of nothing empties the table.
	_, err = load(t, c, spec(spi.ModeTruncateInsert), nil, 1)
	require.NoError(t, err)
	require.Empty(t, contents())

	// Upsert needs the primary key or a unique index as its key.
	_, err = c.Begin(context.Background(), spec(spi.ModeUpsert, "v"))
	require.ErrorIs(t, err, spi.ErrInvalid)
	require.Contains(t, err.Error(), "upsert key (v) is not the primary key or a unique index")
	_, err = c.Begin(context.Background(), spec(spi.ModeUpsert))
	require.ErrorIs(t, err, spi.ErrInvalid)
	s := spec(spi.ModeUpsert, "id")
	s.Dataset = spi.Dataset{Table: "nokey"}
	_, err = c.Begin(context.Background(), s)
	require.ErrorIs(t, err, spi.ErrInvalid)
	_, err = c.Begin(context.Background(), spec("replace"))
	require.ErrorIs(t, err, spi.ErrInvalid)
}

func TestCheckErrors(t *testing.T) {
	dsn, db := newDatabase(t)
	exec(t, db,
		"CREATE TABLE t (id BIGINT PRIMARY KEY AUTO_INCREMENT, n INT NOT NULL, s VARCHAR(10), ts DATETIME, g INT AS (n * 2) VIRTUAL)",
		"CREATE TABLE my (id INT) ENGINE=MyISAM",
		"CREATE VIEW v AS SELECT id FROM t",
	)
	c := open(t, dsn)
	ctx := context.Background()
	var dbName string
	require.NoError(t, db.QueryRow("SELECT DATABASE()").Scan(&dbName))

	err := c.Check(ctx, spi.Dataset{Table: "missing"}, kvSchema)
	require.ErrorIs(t, err, iofs.ErrNotExist)
	require.Contains(t, err.Error(), "table "+dbName+".missing does not exist")
	err = c.Check(ctx, spi.Dataset{Table: "T"}, kvSchema)
	require.ErrorIs(t, err, iofs.ErrNotExist, "table names are case sensitive")

	err = c.Check(ctx, spi.Dataset{Table: "t"}, spi.Schema{{Name: "n", Type: spi.TypeString}, {Name: "ts", Type: spi.TypeInt}, {Name: "nope", Type: spi.TypeInt}, {Name: "g", Type: spi.TypeInt}})
	require.ErrorIs(t, err, spi.ErrInvalid)
	for _, want := range []string{
		"column " + dbName + ".t.n is int(11) (int), it cannot take field \"n\" of type string",
		"column " + dbName + ".t.ts is datetime (timestamp), it cannot take field \"ts\" of type int",
		"table " + dbName + ".t has no column \"nope\"",
		"column " + dbName + ".t.g is generated",
	} {
		require.Contains(t, err.Error(), want)
	}
	err = c.Check(ctx, spi.Dataset{Table: "t"}, spi.Schema{{Name: "s", Type: spi.TypeString}})
	require.ErrorContains(t, err, "column "+dbName+".t.n is NOT NULL without a default")
	require.NoError(t, c.Check(ctx, spi.Dataset{Table: "t"}, spi.Schema{{Name: "n", Type: spi.TypeBool}, {Name: "ts", Type: spi.TypeDate}}))

	err = c.Check(ctx, spi.Dataset{Table: "my"}, spi.Schema{{Name: "id", Type: spi.TypeInt}})
	require.ErrorIs(t, err, spi.ErrInvalid)
	require.ErrorContains(t, err, "uses engine MyISAM")
	err = c.Check(ctx, spi.Dataset{Table: "v"}, spi.Schema{{Name: "id", Type: spi.TypeInt}})
	require.ErrorContains(t, err, "is a view")
	err = c.Check(ctx, spi.Dataset{Query: "SELECT 1"}, kvSchema)
	require.ErrorIs(t, err, spi.ErrInvalid)

	// Abort drops the staging table; a commit after it is refused.
	l, err := c.Begin(ctx, spi.LoadSpec{RunID: "400000000000000000000001", Attempt: 1, Mapping: "m", Dataset: spi.Dataset{Table: "t"},
		Schema: spi.Schema{{Name: "n", Type: spi.TypeInt}}, Mode: spi.ModeAppend})
	require.NoError(t, err)
	require.NoError(t, l.Write(ctx, 0, spi.Batch{Rows: []spi.Row{{int64(1)}}}))
	require.NoError(t, l.Abort(ctx))
	require.NoError(t, l.Abort(ctx), "twice")
	_, err = l.Commit(ctx)
	require.ErrorIs(t, err, spi.ErrInvalid, "commit after abort")
	var n int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'weir\\_stage%'").Scan(&n))
	require.Zero(t, n)
}
