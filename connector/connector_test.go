package connector_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog/catalogtest"
	"github.com/weirdata/weir/connector"
)

func TestDefaultHasEveryKind(t *testing.T) {
	r := connector.Default()
	require.Equal(t, []string{"fs", "mysql", "null", "postgres", "sqlite"}, r.Kinds())
	ctx := context.Background()

	c, err := r.Open(ctx, connector.System{Name: "d", Kind: "fs", Settings: map[string]string{"root": t.TempDir()}})
	require.NoError(t, err)
	require.Implements(t, (*connector.FileSource)(nil), c)
	require.Implements(t, (*connector.FileTarget)(nil), c)
	require.Implements(t, (*connector.RowSource)(nil), c)
	require.Implements(t, (*connector.RowTarget)(nil), c)
	require.NoError(t, c.Close())

	n, err := r.Open(ctx, connector.System{Name: "n", Kind: "null"})
	require.NoError(t, err)
	require.Implements(t, (*connector.FileSource)(nil), n)
	require.Implements(t, (*connector.FileTarget)(nil), n)
	require.Implements(t, (*connector.RowSource)(nil), n)
	require.Implements(t, (*connector.RowTarget)(nil), n)

	_, err = r.Open(ctx, connector.System{Name: "o", Kind: "oracle"})
	require.ErrorIs(t, err, connector.ErrUnknownKind)
	_, err = r.Open(ctx, connector.System{Name: "p", Kind: "postgres"})
	require.ErrorIs(t, err, connector.ErrInvalid, "a postgres system without a dsn")
}

func TestNullRows(t *testing.T) {
	ctx := context.Background()
	c, err := connector.Default().Open(ctx, connector.System{Name: "n", Kind: "null"})
	require.NoError(t, err)
	src, dst := c.(connector.RowSource), c.(connector.RowTarget)
	declared := connector.Schema{{Name: "a", Type: connector.TypeInt}}
	s, err := src.Describe(ctx, connector.Dataset{Schema: declared})
	require.NoError(t, err)
	require.Equal(t, declared, s)
	ps, err := src.Partitions(ctx, connector.Dataset{}, 8)
	require.NoError(t, err)
	require.Len(t, ps, 1)
	require.NoError(t, src.Read(ctx, connector.Dataset{}, ps[0], 10, func(connector.Batch) error {
		t.Fatal("a null source yields no batch")
		return nil
	}))
	l, err := dst.Begin(ctx, connector.LoadSpec{RunID: "r"})
	require.NoError(t, err)
	require.NoError(t, l.Write(ctx, 0, connector.Batch{Rows: []connector.Row{{int64(1)}, {int64(2)}}}))
	require.NoError(t, l.Write(ctx, 1, connector.Batch{Rows: []connector.Row{{int64(3)}}}))
	cm, err := l.Commit(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), cm.Rows)
	_, err = l.Commit(ctx)
	require.ErrorIs(t, err, connector.ErrInvalid)
	_, _, _, err = connector.Count(ctx, c, "null", connector.Dataset{}, 1)
	require.NoError(t, err, "a null system counts its (no) rows by scanning")
}

func TestCountWithSQLAndScan(t *testing.T) {
	ctx := context.Background()
	reg := connector.Default()

	// PostgreSQL: a schema-qualified table with awkward names, by SQL.
	dsn := catalogtest.NewPostgresDSN(t)
	pg, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	_, err = pg.Exec(ctx, `CREATE SCHEMA "Sales"; CREATE TABLE "Sales"."odd ""name""" (id int); INSERT INTO "Sales"."odd ""name""" SELECT generate_series(1, 1234)`)
	require.NoError(t, err)
	require.NoError(t, pg.Close(ctx))
	c, err := reg.Open(ctx, connector.System{Name: "pg", Kind: "postgres", Settings: map[string]string{"dsn": dsn}})
	require.NoError(t, err)
	defer c.Close()
	n, _, method, err := connector.Count(ctx, c, "postgres", connector.Dataset{Table: `Sales.odd "name"`}, 2)
	require.NoError(t, err)
	require.Equal(t, int64(1234), n)
	require.Equal(t, connector.CountedBySQL, method)
	_, _, _, err = connector.Count(ctx, c, "postgres", connector.Dataset{Table: "Sales.missing"}, 2)
	require.ErrorContains(t, err, "missing")

	// SQLite, by SQL.
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "x.db"))
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 321) INSERT INTO t SELECT i FROM n`)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	lite, err := reg.Open(ctx, connector.System{Name: "lite", Kind: "sqlite", Settings: map[string]string{"root": dir, "path": "x.db"}})
	require.NoError(t, err)
	defer lite.Close()
	n, _, method, err = connector.Count(ctx, lite, "sqlite", connector.Dataset{Table: "t"}, 2)
	require.NoError(t, err)
	require.Equal(t, int64(321), n)
	require.Equal(t, connector.CountedBySQL, method)

	// Files with a schema, by scanning: a bad record is counted apart.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.csv"), []byte("id,x\n1,a\n2,\"b\n3,c\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.csv"), []byte("id,x\n4,d\n5,e,f\n"), 0o644))
	files, err := reg.Open(ctx, connector.System{Name: "f", Kind: "fs", Settings: map[string]string{"root": dir}})
	require.NoError(t, err)
	defer files.Close()
	schema := connector.Schema{{Name: "id", Type: connector.TypeInt}, {Name: "x", Type: connector.TypeString}}
	n, bad, method, err := connector.Count(ctx, files, "fs", connector.Dataset{Path: "*.csv", Format: "csv", Schema: schema}, 2)
	require.NoError(t, err)
	require.Equal(t, connector.CountedByScan, method)
	require.Equal(t, int64(3), n, "rows 1, 3 and 4")
	require.Equal(t, int64(2), bad, "the unterminated quote and the extra column")

	// Without a schema, CSV records are counted by their quoting alone,
	// quoted newlines and compression included.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "ok"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ok", "a.csv"), []byte("id,x\n1,\"two\nlines\"\n2,b\n"), 0o644))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("id,x\n3,c\n4,d\n5,e\n"))
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ok", "b.csv.gz"), gz.Bytes(), 0o644))
	n, bad, method, err = connector.Count(ctx, files, "fs", connector.Dataset{Path: "ok", Format: "csv"}, 2)
	require.NoError(t, err)
	require.Equal(t, connector.CountedByRecords, method)
	require.Equal(t, int64(5), n)
	require.Zero(t, bad)
	n, _, _, err = connector.Count(ctx, files, "fs", connector.Dataset{Path: "ok/a.csv", Format: "csv", Options: map[string]string{"header": "false"}}, 2)
	require.NoError(t, err)
	require.Equal(t, int64(3), n, "without a header every record counts")
}
