package mysql_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"
	"time"

	drv "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/connector/mysql"
	"github.com/weirdata/weir/connector/spi"
)

// adminDSN is the test server's administrative DSN (WEIR_MYSQL_DSN, or
// MariaDB's root on 127.0.0.1:3306).
func adminDSN() string {
	if dsn := os.Getenv("WEIR_MYSQL_DSN"); dsn != "" {
		return dsn
	}
	return "root@tcp(127.0.0.1:3306)/test"
}

// newDatabase creates a uniquely named database, dropped at cleanup, and
// returns its DSN (no password) and an administrative handle on it. Without
// a reachable server the test is skipped, or fails when WEIR_REQUIRE_MYSQL=1.
func newDatabase(t testing.TB) (string, *sql.DB) {
	t.Helper()
	cfg, err := drv.ParseDSN(adminDSN())
	require.NoError(t, err)
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		if os.Getenv("WEIR_REQUIRE_MYSQL") == "1" {
			t.Fatalf("MySQL/MariaDB at %s: %v", cfg.Addr, err)
		}
		t.Skipf("no MySQL/MariaDB at %s (set WEIR_REQUIRE_MYSQL=1 to fail): %v", cfg.Addr, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "weir_t_" + hex.EncodeToString(b)
	_, err = admin.Exec("CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
	require.NoError(t, err)
	admin.Close()
	cfg.DBName = name
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = db.Exec("DROP DATABASE `" + name + "`")
		db.Close()
	})
	cfg.Params = nil
	return cfg.FormatDSN(), db
}

// open opens the connector on dsn.
func open(t testing.TB, dsn string) *mysql.Conn {
	t.Helper()
	c, err := mysql.Open(context.Background(), spi.System{Name: "maria", Kind: mysql.Kind, Settings: map[string]string{"dsn": dsn}})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c.(*mysql.Conn)
}

// stagingPaths are the ways a load can stage rows.
var stagingPaths = []string{mysql.StageInfile, mysql.StageInterpolated, mysql.StagePrepared}

// openStaging opens the connector on dsn, staging rows by path.
func openStaging(t testing.TB, dsn, path string) *mysql.Conn {
	t.Helper()
	c, err := mysql.OpenStaging(context.Background(), spi.System{Name: "maria", Kind: mysql.Kind, Settings: map[string]string{"dsn": dsn}}, path)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// exec runs statements on db, failing the test on error.
func exec(t testing.TB, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		_, err := db.Exec(s)
		require.NoError(t, err, s)
	}
}

// readAll reads every partition of ds (at most max) and returns the rows,
// copied, and the bad records.
func readAll(t testing.TB, src spi.RowSource, ds spi.Dataset, max int) ([]spi.Row, []*spi.RowError) {
	t.Helper()
	ctx := context.Background()
	parts, err := src.Partitions(ctx, ds, max)
	require.NoError(t, err)
	var rows []spi.Row
	var bad []*spi.RowError
	for _, p := range parts {
		err := src.Read(ctx, ds, p, 7, func(b spi.Batch) error {
			require.LessOrEqual(t, len(b.Rows)+len(b.Bad), 7)
			for _, r := range b.Rows {
				rows = append(rows, append(spi.Row(nil), r...))
			}
			bad = append(bad, b.Bad...)
			return nil
		})
		require.NoError(t, err)
	}
	return rows, bad
}

// load loads rows into ds in one attempt, split over threads, and commits.
func load(t testing.TB, dst spi.RowTarget, spec spi.LoadSpec, rows []spi.Row, threads int) (spi.Commit, error) {
	t.Helper()
	ctx := context.Background()
	l, err := dst.Begin(ctx, spec)
	if err != nil {
		return spi.Commit{}, err
	}
	defer l.Abort(ctx)
	if err := writeThreads(ctx, l, rows, threads, 3); err != nil {
		return spi.Commit{}, err
	}
	return l.Commit(ctx)
}

// writeThreads writes rows through l from threads goroutines, in batches.
func writeThreads(ctx context.Context, l spi.Load, rows []spi.Row, threads, batch int) error {
	if threads < 1 {
		threads = 1
	}
	errs := make(chan error, threads)
	for th := range threads {
		go func() {
			var mine []spi.Row
			for i := th; i < len(rows); i += threads {
				mine = append(mine, rows[i])
			}
			for len(mine) > 0 {
				n := min(batch, len(mine))
				if err := l.Write(ctx, th, spi.Batch{Rows: mine[:n]}); err != nil {
					errs <- err
					return
				}
				mine = mine[n:]
			}
			errs <- nil
		}()
	}
	var first error
	for range threads {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
