package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/connector/sqlite"
)

// newDB creates a database file under a fresh root, runs ddl in it, and
// returns the root, the file's name under it and a handle of its own.
func newDB(t testing.TB, ddl ...string) (root, name string, db *sql.DB) {
	t.Helper()
	root = t.TempDir()
	name = "data.db"
	db, err := sql.Open("sqlite", filepath.Join(root, name)+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	for _, s := range ddl {
		_, err := db.Exec(s)
		require.NoError(t, err, s)
	}
	return root, name, db
}

// open opens the connector on root/name.
func open(t testing.TB, root, name string) *sqlite.Conn {
	t.Helper()
	c, err := sqlite.Open(context.Background(), spi.System{Name: "lite", Kind: sqlite.Kind, Settings: map[string]string{"root": root, "path": name}})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c.(*sqlite.Conn)
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

// load loads rows into a target in one attempt, from threads, and commits.
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
	threads = max(threads, 1)
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

func sortRows(rows []spi.Row) {
	sort.Slice(rows, func(a, b int) bool { return rows[a][0].(int64) < rows[b][0].(int64) })
}

// requireSameRows compares rows by their first column, times as instants.
func requireSameRows(t *testing.T, want, got []spi.Row) {
	t.Helper()
	sortRows(want)
	sortRows(got)
	require.Len(t, got, len(want))
	for i := range want {
		require.Len(t, got[i], len(want[i]))
		for j := range want[i] {
			w, g := want[i][j], got[i][j]
			if wt, ok := w.(time.Time); ok {
				gt, ok := g.(time.Time)
				require.True(t, ok, "row %v column %d: got %T", want[i][0], j, g)
				require.True(t, wt.Equal(gt), "row %v column %d: want %v got %v", want[i][0], j, wt, gt)
				continue
			}
			if ws, ok := w.(string); ok && len(ws) > 1000 {
				require.True(t, ws == g, "row %v column %d: long strings differ", want[i][0], j)
				continue
			}
			require.Equal(t, w, g, "row %v column %d", want[i][0], j)
		}
	}
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
