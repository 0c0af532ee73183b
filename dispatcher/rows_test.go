package dispatcher_test

import (
	"context"
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	_ "github.com/glebarez/go-sqlite" // the "sqlite" database/sql driver, to make the test database
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
	"github.com/weirdata/weir/connector"
	"github.com/weirdata/weir/connector/fs"
	"github.com/weirdata/weir/connector/postgres"
	"github.com/weirdata/weir/connector/sqlite"
	"github.com/weirdata/weir/dispatcher"
)

func TestMain(m *testing.M) {
	// The catalog learns the database kinds when their connectors are wired
	// in; until then this test binary declares the one it uses, before any
	// test runs.
	for _, k := range []string{postgres.Kind, sqlite.Kind} {
		if !slices.Contains(catalog.KnownKinds, k) {
			catalog.KnownKinds = append(catalog.KnownKinds, k)
		}
	}
	os.Exit(m.Run())
}

// TestCountRowsOfARealDatabase counts a PostgreSQL table and query through
// the real postgres connector, which reads its partitions (it has no Count).
func TestCountRowsOfARealDatabase(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		dsn := catalogtest.NewPostgresDSN(t)
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `CREATE SCHEMA sales;
			CREATE TABLE sales.trades (id bigint PRIMARY KEY, symbol text NOT NULL, px numeric(18,4));
			INSERT INTO sales.trades SELECT i, CASE WHEN i % 3 = 0 THEN 'AAPL' ELSE 'MSFT' END, i * 1.5 FROM generate_series(1, 25000) i;
			ANALYZE sales.trades;`)
		require.NoError(t, err)

		reg := connector.NewRegistry()
		fs.Register(reg)
		postgres.Register(reg)
		e := newEnv(t, s, withRegistry(reg), withConfig(func(c *dispatcher.AgentConfig) { c.ScanPartitions = 3 }))
		require.NoError(t, s.CreateSystem(ctx, &catalog.System{Name: "pg", Kind: postgres.Kind, Region: testRegion,
			Settings: catalog.NewJSON(map[string]string{"dsn": dsn})}))
		c := e.client("admin")

		res, err := c.Count(ctx, "pg", dispatcher.CountArgs{Table: "sales.trades"})
		require.NoError(t, err)
		require.Equal(t, int64(25000), *res.Rows)
		require.Equal(t, dispatcher.MethodSQL, res.Method, "a table is counted by the database, not read")
		require.Zero(t, res.Partitions)

		res, err = c.Count(ctx, "pg", dispatcher.CountArgs{Query: "SELECT id FROM sales.trades WHERE symbol = 'AAPL'"})
		require.NoError(t, err)
		require.Equal(t, int64(25000/3), *res.Rows)
		require.Equal(t, dispatcher.MethodScan, res.Method)
		require.GreaterOrEqual(t, res.Partitions, 1)
		require.LessOrEqual(t, res.Partitions, 3)

		_, err = c.Count(ctx, "pg", dispatcher.CountArgs{Table: "sales.nothing"})
		var ae *dispatcher.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, http.StatusBadRequest, ae.Status, "%v", err)
		require.Contains(t, ae.Message, "table sales.nothing does not exist")

		_, err = c.Ls(ctx, "pg", dispatcher.LsArgs{})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, http.StatusBadRequest, ae.Status)
		require.Equal(t, dispatcher.CodeUnsupported, ae.Code)

		p, err := c.Probe(ctx, "pg", dispatcher.ProbeArgs{})
		require.NoError(t, err)
		require.Equal(t, postgres.Kind, p.Attributes["kind"])
	})
}

// TestCountRowsOfARealSQLiteDatabase counts an SQLite table and query
// through the real sqlite connector (rowid partitions, read to the end).
func TestCountRowsOfARealSQLiteDatabase(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		dir := t.TempDir()
		db, err := sql.Open("sqlite", filepath.Join(dir, "trades.db"))
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, `CREATE TABLE trades (id INTEGER PRIMARY KEY, symbol TEXT NOT NULL, px REAL);
			WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 7000)
			INSERT INTO trades SELECT i, CASE WHEN i % 7 = 0 THEN 'AAPL' ELSE 'MSFT' END, i * 0.5 FROM n;`)
		require.NoError(t, err)
		require.NoError(t, db.Close())

		reg := connector.NewRegistry()
		fs.Register(reg)
		sqlite.Register(reg)
		e := newEnv(t, s, withRegistry(reg), withConfig(func(c *dispatcher.AgentConfig) {
			c.ScanPartitions = 4
			c.ScanBatchSize = 500
		}))
		require.NoError(t, s.CreateSystem(ctx, &catalog.System{Name: "lite", Kind: sqlite.Kind, Region: testRegion,
			Settings: catalog.NewJSON(map[string]string{"root": dir, "path": "trades.db"})}))
		c := e.client("admin")

		res, err := c.Count(ctx, "lite", dispatcher.CountArgs{Table: "trades"})
		require.NoError(t, err)
		require.Equal(t, int64(7000), *res.Rows)
		require.Equal(t, dispatcher.MethodSQL, res.Method)
		require.Zero(t, res.Bad)

		res, err = c.Count(ctx, "lite", dispatcher.CountArgs{Query: "SELECT id FROM trades WHERE symbol = 'AAPL'"})
		require.NoError(t, err)
		require.Equal(t, int64(1000), *res.Rows)

		_, err = c.Count(ctx, "lite", dispatcher.CountArgs{Table: "nothing"})
		var ae *dispatcher.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, http.StatusNotFound, ae.Status, "the connector reports a missing table as fs.ErrNotExist: %v", err)
		require.Contains(t, ae.Message, "table nothing does not exist")
	})
}
