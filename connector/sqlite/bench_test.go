package sqlite_test

import (
	"context"
	"fmt"
	"io"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/connector/sqlite"
)

// benchRows is the size of the benchmarks' table.
const benchRows = 500_000

const benchTable = "CREATE TABLE IF NOT EXISTS %s (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, f REAL, d DECIMAL(18,4), s TEXT, ts DATETIME)"

var benchSchema = spi.Schema{
	{Name: "id", Type: spi.TypeInt}, {Name: "n", Type: spi.TypeInt}, {Name: "f", Type: spi.TypeFloat, Nullable: true},
	{Name: "d", Type: spi.TypeDecimal, Nullable: true}, {Name: "s", Type: spi.TypeString, Nullable: true},
	{Name: "ts", Type: spi.TypeTimestamp, Nullable: true},
}

func benchData(n int) []spi.Row {
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]spi.Row, n)
	for i := range rows {
		rows[i] = spi.Row{int64(i + 1), int64(i % 1000), float64(i) * 1.25, strconv.Itoa(i) + ".5",
			"name-" + strconv.Itoa(i) + "-with some text", base.Add(time.Duration(i) * time.Millisecond)}
	}
	return rows
}

// BenchmarkLoad loads 500k rows through the connector (2 threads, batches
// of 1024, staged in a TEMP table then committed with the marker), against
// the plain way of loading SQLite from Go: one prepared single-row INSERT
// executed per row in one transaction, straight into the table.
//
//	go test -run '^$' -bench Load -benchtime 2x ./connector/sqlite/
func BenchmarkLoad(b *testing.B) {
	root, name, db := newDB(b, fmt.Sprintf(benchTable, "conn"), fmt.Sprintf(benchTable, "plain"))
	c := open(b, root, name)
	rows := benchData(benchRows)
	ctx := context.Background()
	run := 0
	b.Run("connector", func(b *testing.B) {
		var stage, commit time.Duration
		for b.Loop() {
			b.StopTimer()
			exec(b, db, "DELETE FROM conn")
			run++
			b.StartTimer()
			l, err := c.Begin(ctx, spi.LoadSpec{RunID: fmt.Sprintf("9%023d", run), Attempt: 1, Mapping: "bench",
				Dataset: spi.Dataset{Table: "conn"}, Schema: benchSchema, Mode: spi.ModeAppend})
			require.NoError(b, err)
			t0 := time.Now()
			require.NoError(b, writeThreads(ctx, l, rows, 2, 1024))
			t1 := time.Now()
			com, err := l.Commit(ctx)
			require.NoError(b, err)
			stage += t1.Sub(t0)
			commit += time.Since(t1)
			require.Equal(b, int64(benchRows), com.Rows)
		}
		b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(stage.Seconds()/float64(b.N), "stage-s/op")
		b.ReportMetric(commit.Seconds()/float64(b.N), "commit-s/op")
	})
	b.Run("baseline-prepared-insert-one-tx", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			exec(b, db, "DELETE FROM plain")
			b.StartTimer()
			tx, err := db.Begin()
			require.NoError(b, err)
			st, err := tx.Prepare("INSERT INTO plain (id, n, f, d, s, ts) VALUES (?, ?, ?, ?, ?, ?)")
			require.NoError(b, err)
			for _, r := range rows {
				_, err := st.Exec(r[0], r[1], r[2], r[3], r[4], r[5].(time.Time).Format("2006-01-02 15:04:05.999999999"))
				require.NoError(b, err)
			}
			require.NoError(b, st.Close())
			require.NoError(b, tx.Commit())
		}
		b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// BenchmarkStageParams stages 100k rows (no commit) with INSERT statements
// of at most n parameters, to choose StageParamsDefault.
//
//	go test -run '^$' -bench StageParams -benchtime 3x ./connector/sqlite/
func BenchmarkStageParams(b *testing.B) {
	root, name, _ := newDB(b, fmt.Sprintf(benchTable, "t"))
	c := open(b, root, name)
	rows := benchData(100_000)
	ctx := context.Background()
	run := 0
	for _, n := range []int{6, 24, 48, 64, 96, 192, 384, 1536} {
		b.Run(fmt.Sprintf("params-%d", n), func(b *testing.B) {
			sqlite.SetStageParams(c, n)
			for b.Loop() {
				run++
				l, err := c.Begin(ctx, spi.LoadSpec{RunID: fmt.Sprintf("9%023d", run), Attempt: 1, Mapping: "bench",
					Dataset: spi.Dataset{Table: "t"}, Schema: benchSchema, Mode: spi.ModeAppend})
				require.NoError(b, err)
				require.NoError(b, writeThreads(ctx, l, rows, 1, 1024))
				require.NoError(b, l.Abort(ctx))
			}
			b.ReportMetric(float64(len(rows))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkRead reads a 500k-row table through the connector, in one
// partition and in two rowid ranges read in parallel, against database/sql
// scanning the same SELECT into *any (the driver's own cost, no decoding)
// and the sqlite3 command-line shell printing it to /dev/null.
//
//	go test -run '^$' -bench Read -benchtime 3x ./connector/sqlite/
func BenchmarkRead(b *testing.B) {
	root, name, db := newDB(b, fmt.Sprintf(benchTable, "src"))
	c := open(b, root, name)
	ctx := context.Background()
	l, err := c.Begin(ctx, spi.LoadSpec{RunID: "800000000000000000000001", Attempt: 1, Mapping: "fill", Dataset: spi.Dataset{Table: "src"}, Schema: benchSchema, Mode: spi.ModeAppend})
	require.NoError(b, err)
	require.NoError(b, writeThreads(ctx, l, benchData(benchRows), 1, 4096))
	_, err = l.Commit(ctx)
	require.NoError(b, err)
	for _, parts := range []int{1, 2} {
		b.Run(fmt.Sprintf("connector-%dpartitions", parts), func(b *testing.B) {
			ds := spi.Dataset{Table: "src"}
			for b.Loop() {
				ps, err := c.Partitions(ctx, ds, parts)
				require.NoError(b, err)
				var n atomic.Int64
				var wg sync.WaitGroup
				for _, p := range ps {
					wg.Add(1)
					go func() {
						defer wg.Done()
						err := c.Read(ctx, ds, p, 1024, func(bt spi.Batch) error {
							n.Add(int64(len(bt.Rows)))
							return nil
						})
						if err != nil {
							b.Error(err)
						}
					}()
				}
				wg.Wait()
				require.Equal(b, int64(benchRows), n.Load())
			}
			b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
	b.Run("baseline-database-sql-any", func(b *testing.B) {
		for b.Loop() {
			rows, err := db.Query("SELECT id, n, f, d, s, ts FROM src")
			require.NoError(b, err)
			vals := make([]any, 6)
			dest := make([]any, 6)
			for i := range dest {
				dest[i] = &vals[i]
			}
			n := 0
			for rows.Next() {
				require.NoError(b, rows.Scan(dest...))
				n++
			}
			require.NoError(b, rows.Err())
			rows.Close()
			require.Equal(b, benchRows, n)
		}
		b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	if _, err := osexec.LookPath("sqlite3"); err == nil {
		b.Run("baseline-sqlite3-cli", func(b *testing.B) {
			for b.Loop() {
				cmd := osexec.Command("sqlite3", "-readonly", filepath.Join(root, name), "SELECT id, n, f, d, s, ts FROM src")
				cmd.Stdout = io.Discard
				require.NoError(b, cmd.Run())
			}
			b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
