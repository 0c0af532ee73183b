package postgres_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/weirdata/weir/connector/postgres"
	"github.com/weirdata/weir/connector/spi"
)

// Benchmarks against the real PostgreSQL, each with its baseline measured
// in the same run:
//
//	go test -run '^$' -bench . -benchtime 3x ./connector/postgres/
//	WEIR_BENCH_ROWS=5000000 go test -run '^$' -bench BenchmarkRead -benchtime 3x ./connector/postgres/
//
// WEIR_BENCH_ROWS sets the table's rows (benchRowsDefault). Each reports
// rows/s; the psql sub-benchmarks are the baselines of BENCHMARKS.md #2 and
// #3. BenchmarkReadVsPsql alternates psql and the source in one loop and
// reports ratios, the figure for #3 on a machine whose load varies:
//
//	WEIR_BENCH_ROWS=5000000 go test -run '^$' -bench BenchmarkReadVsPsql -benchtime 2x -timeout 30m ./connector/postgres/
//
// benchSource, psqlCopyOut, readTable, benchLoadRows, BenchTradesDDL and
// BenchTradesSchema are the helpers for the end-to-end benchmarks.

const benchRowsDefault = 1_000_000

func benchRows(b *testing.B) int {
	if v := os.Getenv("WEIR_BENCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("WEIR_BENCH_ROWS=%q is not a positive integer", v)
		}
		return n
	}
	return benchRowsDefault
}

// BenchTradesDDL is the benchmark table: 7 columns of the common types.
const BenchTradesDDL = `CREATE TABLE trades (
	id int8 PRIMARY KEY, sym text NOT NULL, ts timestamptz NOT NULL, price numeric(12,4) NOT NULL,
	qty int4 NOT NULL, buy bool NOT NULL, note text)`

// BenchTradesSchema is the schema of BenchTradesDDL's table.
var BenchTradesSchema = spi.Schema{
	{Name: "id", Type: spi.TypeInt}, {Name: "sym", Type: spi.TypeString}, {Name: "ts", Type: spi.TypeTimestamp},
	{Name: "price", Type: spi.TypeDecimal}, {Name: "qty", Type: spi.TypeInt}, {Name: "buy", Type: spi.TypeBool},
	{Name: "note", Type: spi.TypeString, Nullable: true},
}

// benchSource creates a fresh database holding the trades table with n
// rows, analyzed, and returns its DSN.
func benchSource(b *testing.B, n int) string {
	b.Helper()
	d := newDB(b)
	d.exec(b, BenchTradesDDL)
	start := time.Now()
	d.exec(b, `INSERT INTO trades SELECT g, (ARRAY['AAPL','MSFT','GOOG','AMZN','TSLA'])[g % 5 + 1],
		'2024-01-01'::timestamptz + g * interval '37 millisecond', round((g % 100000) / 7.0, 4), g % 1000, g % 2 = 0,
		CASE WHEN g % 10 = 0 THEN NULL ELSE 'note "' || g || '", with, commas' END
		FROM generate_series(1, $1) g`, n)
	d.exec(b, "VACUUM ANALYZE trades")
	b.Logf("created trades with %d rows in %v", n, time.Since(start).Round(time.Millisecond))
	return d.dsn
}

// psqlCopyOut runs psql's \copy of a SELECT of the whole table to /dev/null in CSV.
func psqlCopyOut(b *testing.B, dsn string) {
	cmd := exec.Command("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", `\copy (SELECT * FROM trades) TO '/dev/null' CSV`)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("psql: %v: %s", err, out)
	}
}

// readTable reads the whole table with the given read method and threads.
func readTable(b *testing.B, c *postgres.Conn, method string, threads int) int64 {
	ctx := context.Background()
	ds := spi.Dataset{Table: "trades", Options: map[string]string{"read_method": method, "partitioning": "blocks"}}
	parts, err := c.Partitions(ctx, ds, threads)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var total int64
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	for _, p := range parts {
		wg.Go(func() {
			var n int64
			errs <- c.Read(ctx, ds, p, 4096, func(bt spi.Batch) error { n += int64(len(bt.Rows)); return nil })
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return total
}

// BenchmarkRead reads the trades table with each read method, on one and two
// threads (block partitions), against psql's \copy (SELECT ...) TO in CSV.
func BenchmarkRead(b *testing.B) {
	n := benchRows(b)
	dsn := benchSource(b, n)
	for _, bc := range []struct {
		method  string
		threads int
	}{{"psql", 1}, {"rows", 1}, {"copy", 1}, {"rows", 2}, {"copy", 2}} {
		b.Run(fmt.Sprintf("%s/threads=%d", bc.method, bc.threads), func(b *testing.B) {
			if bc.method == "psql" {
				for b.Loop() {
					psqlCopyOut(b, dsn)
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
				return
			}
			for b.Loop() {
				// A Conn per run, as the worker opens it: its snapshot is fresh.
				c := (&db{dsn: dsn}).open(b, "max_conns", "4")
				if got := readTable(b, c, bc.method, bc.threads); got != int64(n) {
					b.Fatalf("read %d rows, want %d", got, n)
				}
				_ = c.Close()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// benchLoadRows returns n rows of BenchTradesSchema.
func benchLoadRows(n int) []spi.Row {
	rows := make([]spi.Row, n)
	syms := []string{"AAPL", "MSFT", "GOOG", "AMZN", "TSLA"}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		var note any = fmt.Sprintf(`note "%d", with, commas`, i)
		if i%10 == 0 {
			note = nil
		}
		rows[i] = spi.Row{int64(i + 1), syms[i%5], t0.Add(time.Duration(i) * 37 * time.Millisecond),
			strconv.FormatFloat(float64(i%100000)/7, 'f', 4, 64), int64(i % 1000), i%2 == 0, note}
	}
	return rows
}

// BenchmarkLoad loads rows into an empty trades table through Begin, Write
// (batches of 10,000 on two threads) and Commit, against a plain binary COPY
// of the same rows straight into the table (pgx CopyFrom) and psql's \copy of
// the same rows from a CSV file.
func BenchmarkLoad(b *testing.B) {
	n := benchRows(b)
	rows := benchLoadRows(n)
	d := newDB(b)
	d.exec(b, BenchTradesDDL)
	ctx := context.Background()
	csvPath := filepath.Join(b.TempDir(), "trades.csv")
	f, err := os.Create(csvPath)
	if err != nil {
		b.Fatal(err)
	}
	w := csv.NewWriter(f)
	rec := make([]string, len(BenchTradesSchema))
	for _, r := range rows {
		rec[0] = strconv.FormatInt(r[0].(int64), 10)
		rec[1] = r[1].(string)
		rec[2] = r[2].(time.Time).Format(time.RFC3339Nano)
		rec[3] = r[3].(string)
		rec[4] = strconv.FormatInt(r[4].(int64), 10)
		rec[5] = strconv.FormatBool(r[5].(bool))
		rec[6] = ""
		if r[6] != nil {
			rec[6] = r[6].(string)
		}
		_ = w.Write(rec)
	}
	w.Flush()
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	}
	b.Run("psql-copy-csv", func(b *testing.B) {
		for b.Loop() {
			d.exec(b, "TRUNCATE trades")
			cmd := exec.Command("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", d.dsn, "-c", `\copy trades FROM '`+csvPath+`' CSV`)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("psql: %v: %s", err, out)
			}
		}
		report(b)
	})
	b.Run("pgx-copyfrom", func(b *testing.B) {
		for b.Loop() {
			d.exec(b, "TRUNCATE trades")
			src := pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) { return rows[i], nil })
			cols := make([]string, len(BenchTradesSchema))
			for i, f := range BenchTradesSchema {
				cols[i] = f.Name
			}
			if _, err := d.pg.CopyFrom(ctx, pgx.Identifier{"trades"}, cols, src); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	for _, bc := range []struct {
		mode    spi.WriteMode
		threads int
	}{{spi.ModeTruncateInsert, 1}, {spi.ModeTruncateInsert, 2}, {spi.ModeAppend, 2}, {spi.ModeUpsert, 2}} {
		threads := bc.threads
		b.Run(fmt.Sprintf("load/%s/threads=%d", bc.mode, threads), func(b *testing.B) {
			c := d.open(b)
			run := 0
			for b.Loop() {
				run++
				if bc.mode != spi.ModeTruncateInsert {
					d.exec(b, "TRUNCATE trades")
				}
				l, err := c.Begin(ctx, spi.LoadSpec{RunID: fmt.Sprintf("%s%d%d", bc.mode[:1], threads, run), Mapping: "bench", Dataset: spi.Dataset{Table: "trades"},
					Schema: BenchTradesSchema, Mode: bc.mode, Key: []string{"id"}})
				if err != nil {
					b.Fatal(err)
				}
				var wg sync.WaitGroup
				const batch = 10000
				for th := range threads {
					wg.Go(func() {
						for i := th * batch; i < len(rows); i += threads * batch {
							if err := l.Write(ctx, th, spi.Batch{Rows: rows[i:min(i+batch, len(rows))]}); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				if cm, err := l.Commit(ctx); err != nil || cm.Rows != int64(n) {
					b.Fatalf("commit: %d rows, %v", cm.Rows, err)
				}
			}
			report(b)
		})
	}
}

// BenchmarkReadVsPsql alternates psql's \copy (SELECT ...) TO '/dev/null'
// CSV with the source's reads of the same table, so that both meet the same
// machine load, and reports each read's speed as a multiple of psql's
// (BENCHMARKS.md #3: goal at least 1.0): "rows-1t-x" is the rows method on
// one thread, "copy-2t-x" the copy method on two, and so on.
func BenchmarkReadVsPsql(b *testing.B) {
	n := benchRows(b)
	dsn := benchSource(b, n)
	type variant struct {
		name    string
		method  string
		threads int
		total   time.Duration
	}
	vs := []*variant{{"rows-1t", "rows", 1, 0}, {"copy-1t", "copy", 1, 0}, {"rows-2t", "rows", 2, 0}, {"copy-2t", "copy", 2, 0}}
	var psql time.Duration
	for b.Loop() {
		start := time.Now()
		psqlCopyOut(b, dsn)
		psql += time.Since(start)
		for _, v := range vs {
			start := time.Now()
			c := (&db{dsn: dsn}).open(b, "max_conns", "4")
			if got := readTable(b, c, v.method, v.threads); got != int64(n) {
				b.Fatalf("read %d rows, want %d", got, n)
			}
			_ = c.Close()
			v.total += time.Since(start)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/psql.Seconds(), "psql-rows/s")
	for _, v := range vs {
		b.ReportMetric(psql.Seconds()/v.total.Seconds(), v.name+"-x")
	}
}
