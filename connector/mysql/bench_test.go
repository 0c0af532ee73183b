package mysql_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	osexec "os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	drv "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/connector/mysql"
	"github.com/weirdata/weir/connector/spi"
)

// benchRows is the size of the benchmarks' table.
const benchRows = 500_000

const benchTable = "CREATE TABLE IF NOT EXISTS %s (id BIGINT PRIMARY KEY, n INT NOT NULL, f DOUBLE, d DECIMAL(18,4), s VARCHAR(64), ts DATETIME(6)) ENGINE=InnoDB"

var benchSchema = spi.Schema{
	{Name: "id", Type: spi.TypeInt}, {Name: "n", Type: spi.TypeInt}, {Name: "f", Type: spi.TypeFloat, Nullable: true},
	{Name: "d", Type: spi.TypeDecimal, Nullable: true}, {Name: "s", Type: spi.TypeString, Nullable: true},
	{Name: "ts", Type: spi.TypeTimestamp, Nullable: true},
}

func benchData(n int) []spi.Row {
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]spi.Row, n)
	for i := range rows {
		rows[i] = spi.Row{int64(i + 1), int64(i % 1000), float64(i) * 1.25, strconv.Itoa(i) + ".5000",
			"name-" + strconv.Itoa(i) + "-with some text", base.Add(time.Duration(i) * time.Millisecond)}
	}
	return rows
}

// benchTSV renders rows as LOAD DATA's default text format.
func benchTSV(rows []spi.Row) []byte {
	var buf bytes.Buffer
	for _, r := range rows {
		buf.WriteString(strconv.FormatInt(r[0].(int64), 10))
		buf.WriteByte('\t')
		buf.WriteString(strconv.FormatInt(r[1].(int64), 10))
		buf.WriteByte('\t')
		buf.WriteString(strconv.FormatFloat(r[2].(float64), 'g', -1, 64))
		buf.WriteByte('\t')
		buf.WriteString(r[3].(string))
		buf.WriteByte('\t')
		buf.WriteString(r[4].(string))
		buf.WriteByte('\t')
		buf.WriteString(r[5].(time.Time).Format("2006-01-02 15:04:05.999999"))
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

var handlerSeq atomic.Int64

// loadData loads tsv into table with LOAD DATA LOCAL INFILE through the driver.
func loadData(b testing.TB, db *sql.DB, table string, tsv []byte) {
	name := "bench" + strconv.FormatInt(handlerSeq.Add(1), 10)
	drv.RegisterReaderHandler(name, func() io.Reader { return bytes.NewReader(tsv) })
	defer drv.DeregisterReaderHandler(name)
	_, err := db.Exec("LOAD DATA LOCAL INFILE 'Reader::" + name + "' INTO TABLE " + table)
	require.NoError(b, err)
}

// BenchmarkLoad loads 500k rows through the connector (2 threads, batches
// of 1024, staged then committed), with interpolated and with server-side
// prepared INSERTs, against LOAD DATA LOCAL INFILE of the same rows
// rendered as text (the server's bulk path, no staging, no commit marker).
//
//	go test -run '^$' -bench Load -benchtime 2x ./connector/mysql/
func BenchmarkLoad(b *testing.B) {
	dsn, db := newDatabase(b)
	rows := benchData(benchRows)
	ctx := context.Background()
	run := 0
	for _, mode := range []string{mysql.StageInfile, mysql.StageInterpolated, mysql.StagePrepared} {
		b.Run("connector-"+mode, func(b *testing.B) {
			c, err := mysql.OpenStaging(ctx, spi.System{Name: "bench", Kind: mysql.Kind, Settings: map[string]string{"dsn": dsn}}, mode)
			require.NoError(b, err)
			defer c.Close()
			var stage, commit time.Duration
			table := "load_" + mode
			exec(b, db, fmt.Sprintf(benchTable, table))
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				exec(b, db, "TRUNCATE TABLE "+table)
				run++
				b.StartTimer()
				l, err := c.Begin(ctx, spi.LoadSpec{RunID: fmt.Sprintf("9%023d", run), Attempt: 1, Mapping: "bench",
					Dataset: spi.Dataset{Table: table}, Schema: benchSchema, Mode: spi.ModeAppend})
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
	}
	b.Run("baseline-load-data-infile", func(b *testing.B) {
		exec(b, db, fmt.Sprintf(benchTable, "load_baseline"))
		b.ResetTimer()
		for b.Loop() {
			b.StopTimer()
			exec(b, db, "TRUNCATE TABLE load_baseline")
			b.StartTimer()
			loadData(b, db, "load_baseline", benchTSV(rows))
		}
		b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// BenchmarkRead reads a 500k-row table through the connector, in one
// partition and in two read in parallel, against database/sql scanning the
// same SELECT into sql.RawBytes (no decoding) and the mysql command-line
// client printing it to /dev/null.
//
//	go test -run '^$' -bench Read -benchtime 3x ./connector/mysql/
func BenchmarkRead(b *testing.B) {
	dsn, db := newDatabase(b)
	exec(b, db, fmt.Sprintf(benchTable, "src"))
	loadData(b, db, "src", benchTSV(benchData(benchRows)))
	ctx := context.Background()
	for _, v := range []struct {
		parts int
		mode  string
	}{{1, mysql.StageInterpolated}, {2, mysql.StageInterpolated}, {1, mysql.StagePrepared}, {2, mysql.StagePrepared}} {
		parts := v.parts
		c := openStaging(b, dsn, v.mode)
		b.Run(fmt.Sprintf("connector-%dpartitions-%s", parts, v.mode), func(b *testing.B) {
			ds := spi.Dataset{Table: "src", Options: map[string]string{"partition_by": "id"}}
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
	b.Run("baseline-database-sql-rawbytes", func(b *testing.B) {
		for b.Loop() {
			rows, err := db.Query("SELECT id, n, f, d, s, ts FROM src")
			require.NoError(b, err)
			dest := make([]any, 6)
			for i := range dest {
				dest[i] = new(sql.RawBytes)
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
	var dbName string
	require.NoError(b, db.QueryRow("SELECT DATABASE()").Scan(&dbName))
	if _, err := osexec.LookPath("mysql"); err == nil {
		b.Run("baseline-mysql-cli", func(b *testing.B) {
			for b.Loop() {
				cmd := osexec.Command("mysql", "-h127.0.0.1", "-uroot", "--batch", "--quick", "-e", "SELECT id, n, f, d, s, ts FROM src", dbName)
				cmd.Stdout = io.Discard
				require.NoError(b, cmd.Run())
			}
			b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
