package worker_test

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
)

// The data plane's end-to-end benchmarks of BENCHMARKS.md (issue 3): each
// runs the whole worker (catalog on SQLite, claim, plan, pipelines, commit,
// count, manifest) and its baseline in the same loop, alternating, and
// reports Weir's speed as a multiple of the baseline's:
//
//	go test -run '^$' -bench BenchmarkCopyVsCp -benchtime 3x -timeout 60m ./worker/
//	go test -run '^$' -bench BenchmarkCSVToPostgresVsPsql -benchtime 3x -timeout 60m ./worker/
//	go test -run '^$' -bench BenchmarkPostgresToCSVVsPsql -benchtime 3x -timeout 60m ./worker/
//
// WEIR_BENCH_ROWS sets the rows of #2 and #3 (default 5,000,000);
// WEIR_BENCH_PG_READ the PostgreSQL read method of #3 (rows or copy);
// WEIR_BENCH_FILES the files of #1 (default 1,000, about 2 GB). The worker
// uses every core whatever the machine's load (the load is not under test).

func benchEnvInt(b *testing.B, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q is not a positive integer", name, v)
		}
		return n
	}
	return def
}

// benchWorker starts a worker for benchmarks: every core, whatever the load.
func benchWorker(e *env) {
	cfg := e.config("w1")
	cfg.Threads, cfg.Slots = runtimeCores(), 1
	cfg.LeaseTTL, cfg.HeartbeatInterval, cfg.ProgressInterval = 30*time.Second, time.Second, time.Second
	cfg.PollInterval = time.Second // the dispatch wakes it at once (same Store)
	cfg.BatchSize = 1024
	cfg.Logger = nil
	cfg.Load = func(context.Context) (float64, int, error) { return 0, runtimeCores(), nil }
	e.start(cfg, e.store, connector.Default())
}

// runtimeCores is the threads of a benchmark run: WEIR_BENCH_THREADS, or one per core.
func runtimeCores() int {
	if n, err := strconv.Atoi(os.Getenv("WEIR_BENCH_THREADS")); err == nil && n > 0 {
		return n
	}
	return runtime.NumCPU()
}

// timeRun submits a run of mapping, dispatches it and returns how long it
// took to end, failing unless it succeeded.
func timeRun(b *testing.B, e *env, mapping string) time.Duration {
	id := e.submit(mapping, nil)
	start := time.Now()
	e.dispatch(id, "w1", 0)
	for {
		r := e.run(id)
		if r.State.Terminal() {
			took := time.Since(start)
			if r.State != catalog.StateSucceeded {
				b.Fatalf("run %s: %s %s", id, r.State, r.Error)
			}
			return took
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func timeCmd(b *testing.B, name string, args ...string) time.Duration {
	start := time.Now()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkCopyVsCp is BENCHMARKS.md #1: 1,000 files of mixed sizes (1 KB
// to 50 MB, about 2 GB) from one fs system to another, against cp -r. Both
// read the source from the page cache (a warm-up cp reads it first); Weir
// also hashes every file (the manifest's SHA-256) and makes the delivery
// durable (fsync, rename, manifest last), so cp -r followed by sync is
// reported as a second baseline.
func BenchmarkCopyVsCp(b *testing.B) {
	e := newEnv(b, catalog.DialectSQLite)
	files := benchEnvInt(b, "WEIR_BENCH_FILES", 1000)
	rng := rand.New(rand.NewPCG(1, 2))
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = byte(rng.Uint32())
	}
	var total int64
	for i := range files {
		var size int
		if i%25 == 0 { // 4%: 20 to 50 MB
			size = 20<<20 + rng.IntN(30<<20)
		} else { // the rest: 1 KB to 4 MB, log-uniform
			size = int(math.Exp(math.Log(1<<10) + rng.Float64()*(math.Log(4<<20)-math.Log(1<<10))))
		}
		p := filepath.Join(e.src, "tree", fmt.Sprintf("d%02d", i%37), fmt.Sprintf("f%04d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		for left := size; left > 0; left -= len(block) {
			chunk := block[:min(left, len(block))]
			chunk[0] = byte(i) // no two files alike
			if _, err := f.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		f.Close()
		total += int64(size)
	}
	b.Logf("%d files, %.2f GB", files, float64(total)/1e9)
	e.mapping("tree", "src", "tree", "dst", "out")
	benchWorker(e)
	cpDst := b.TempDir()
	timeCmd(b, "cp", "-r", filepath.Join(e.src, "tree"), filepath.Join(cpDst, "warm"))
	timeCmd(b, "sync")
	// The same guarantees by hand: copy, a SHA-256 of every file on as many
	// processes as Weir has threads, then sync.
	byHand := fmt.Sprintf("cp -r %s %s && find %s -type f -print0 | xargs -0 -P %d -n 50 sha256sum > /dev/null && sync",
		filepath.Join(e.src, "tree"), filepath.Join(cpDst, "hand"), filepath.Join(cpDst, "hand"), runtimeCores())
	var cps, cpSyncs, hands, weirs []time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		os.RemoveAll(filepath.Join(cpDst, "out"))
		os.RemoveAll(filepath.Join(cpDst, "hand"))
		os.RemoveAll(filepath.Join(e.dst, "out"))
		timeCmd(b, "sync")
		b.StartTimer()
		cp := timeCmd(b, "cp", "-r", filepath.Join(e.src, "tree"), filepath.Join(cpDst, "out"))
		cps = append(cps, cp)
		cpSyncs = append(cpSyncs, cp+timeCmd(b, "sync"))
		hands = append(hands, timeCmd(b, "sh", "-c", byHand))
		weirs = append(weirs, timeRun(b, e, "tree"))
		timeCmd(b, "sync")
		b.Logf("iteration %d: cp -r %s, cp -r + sync %s, cp -r + sha256sum + sync %s, weir %s", i, cp.Round(time.Millisecond),
			cpSyncs[i].Round(time.Millisecond), hands[i].Round(time.Millisecond), weirs[i].Round(time.Millisecond))
	}
	b.ReportMetric(float64(total)/1e6/median(weirs).Seconds(), "weir-MB/s")
	b.ReportMetric(float64(total)/1e6/median(cps).Seconds(), "cp-MB/s")
	b.ReportMetric(median(weirs).Seconds()/median(cps).Seconds(), "time-vs-cp")
	b.ReportMetric(median(weirs).Seconds()/median(cpSyncs).Seconds(), "time-vs-cp+sync")
	b.ReportMetric(median(weirs).Seconds()/median(hands).Seconds(), "time-vs-cp+sha256+sync")
}

// benchPG is a benchmark's PostgreSQL database, registered as system "pg",
// and an fs system "files".
func benchPG(b *testing.B, e *env) (*dataWorld, *pgx.Conn) {
	d := newDataWorld(b, e)
	ctx := context.Background()
	pg, err := pgx.Connect(ctx, d.pgDSN)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pg.Close(context.Background()) })
	return d, pg
}

func pgExec(b *testing.B, pg *pgx.Conn, sql string) {
	if _, err := pg.Exec(context.Background(), sql); err != nil {
		b.Fatalf("%s: %v", sql, err)
	}
}

// BenchmarkCSVToPostgresVsPsql is BENCHMARKS.md #2: a CSV file of 5 million
// rows into a PostgreSQL table through a 6-field mapping with 3
// expressions, against psql's \copy of the same file, untransformed.
func BenchmarkCSVToPostgresVsPsql(b *testing.B) {
	rows := benchEnvInt(b, "WEIR_BENCH_ROWS", 5_000_000)
	e := newEnv(b, catalog.DialectSQLite)
	d, pg := benchPG(b, e)
	csvPath := filepath.Join(d.files, "trades.csv")
	writeTradesCSV(b, csvPath, rows)
	pgExec(b, pg, `CREATE TABLE raw_trades (id bigint, symbol text, price numeric(18,4), qty bigint, ts timestamptz, side text)`)
	pgExec(b, pg, `CREATE TABLE trades (id bigint, symbol text, price numeric(18,4), qty bigint, notional numeric(24,4), side text)`)
	d.rowMapping("csv-to-pg", catalog.Endpoint{System: "files", Path: "trades.csv", Format: "csv", Schema: []catalog.SchemaField{
		{Name: "id", Type: "int"}, {Name: "symbol", Type: "string"}, {Name: "price", Type: "decimal", Precision: 18, Scale: 4},
		{Name: "qty", Type: "int"}, {Name: "ts", Type: "timestamp"}, {Name: "side", Type: "string"}}},
		catalog.Endpoint{System: "pg", Table: "trades"}, func(m *catalog.Mapping) {
			m.Fields = catalog.NewJSON([]catalog.FieldMapping{{Name: "id"}, {Name: "symbol", Type: "string", Expr: "upper(symbol)"},
				{Name: "price"}, {Name: "qty"}, {Name: "notional", Type: "decimal", Expr: "price * qty"},
				{Name: "side", Type: "string", Expr: `side == "B" ? "buy" : "sell"`}})
			m.WriteMode = catalog.WriteTruncateInsert
		})
	benchWorker(e)
	var psqls, weirs []time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		pgExec(b, pg, "TRUNCATE raw_trades; TRUNCATE trades; CHECKPOINT")
		b.StartTimer()
		psqls = append(psqls, timeCmd(b, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", d.pgDSN, "-c",
			`\copy raw_trades FROM '`+csvPath+`' CSV HEADER`))
		b.StopTimer()
		pgExec(b, pg, "CHECKPOINT")
		b.StartTimer()
		weirs = append(weirs, timeRun(b, e, "csv-to-pg"))
		b.Logf("iteration %d: psql \\copy %s (%.0f rows/s), weir %s (%.0f rows/s)", i, psqls[i].Round(time.Millisecond),
			float64(rows)/psqls[i].Seconds(), weirs[i].Round(time.Millisecond), float64(rows)/weirs[i].Seconds())
	}
	var n int64
	if err := pg.QueryRow(context.Background(), "SELECT count(*) FROM trades WHERE notional = price * qty").Scan(&n); err != nil || n != int64(rows) {
		b.Fatalf("%d rows mapped, want %d (%v)", n, rows, err)
	}
	b.ReportMetric(float64(rows)/median(weirs).Seconds(), "weir-rows/s")
	b.ReportMetric(float64(rows)/median(psqls).Seconds(), "psql-rows/s")
	b.ReportMetric(median(psqls).Seconds()/median(weirs).Seconds(), "speed-vs-psql")
}

// writeTradesCSV writes rows of id,symbol,price,qty,ts,side.
func writeTradesCSV(b *testing.B, path string, rows int) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	syms := []string{"aapl", "msft", "goog", "amzn", "ibm", "orcl", "nvda"}
	t0 := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	w.WriteString("id,symbol,price,qty,ts,side\n")
	for i := 1; i <= rows; i++ {
		side := "B"
		if i%3 == 0 {
			side = "S"
		}
		fmt.Fprintf(w, "%d,%s,%d.%04d,%d,%s,%s\n", i, syms[i%len(syms)], 10+i%990, i%10000, 1+i%500,
			t0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), side)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
}

// BenchmarkPostgresToCSVVsPsql is BENCHMARKS.md #3: a PostgreSQL table of 5
// million rows to a CSV file, against psql -c "\copy (SELECT ...) TO ...".
func BenchmarkPostgresToCSVVsPsql(b *testing.B) {
	rows := benchEnvInt(b, "WEIR_BENCH_ROWS", 5_000_000)
	e := newEnv(b, catalog.DialectSQLite)
	d, pg := benchPG(b, e)
	pgExec(b, pg, `CREATE TABLE trades (id bigint PRIMARY KEY, symbol text NOT NULL, price numeric(18,4) NOT NULL, qty bigint NOT NULL,
		ts timestamptz NOT NULL, side text)`)
	pgExec(b, pg, fmt.Sprintf(`INSERT INTO trades SELECT i, (ARRAY['AAPL','MSFT','GOOG','AMZN','IBM'])[1 + i %% 5], 10 + (i %% 9990) / 10.0,
		1 + i %% 500, timestamptz '2026-11-20 08:00:00+00' + i * interval '1 millisecond', CASE WHEN i %% 3 = 0 THEN 'sell' ELSE 'buy' END
		FROM generate_series(1, %d) i`, rows))
	pgExec(b, pg, "VACUUM ANALYZE trades")
	var opts map[string]string
	if m := os.Getenv("WEIR_BENCH_PG_READ"); m != "" {
		opts = map[string]string{"read_method": m}
	}
	d.rowMapping("pg-to-csv", catalog.Endpoint{System: "pg", Table: "trades", Options: opts},
		catalog.Endpoint{System: "files", Path: "out", Format: "csv"}, func(m *catalog.Mapping) { m.WriteMode = catalog.WriteTruncateInsert })
	benchWorker(e)
	out := filepath.Join(b.TempDir(), "psql.csv")
	var psqls, weirs []time.Duration
	b.ResetTimer()
	for i := range b.N {
		psqls = append(psqls, timeCmd(b, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", d.pgDSN, "-c",
			`\copy (SELECT * FROM trades) TO '`+out+`' CSV HEADER`))
		weirs = append(weirs, timeRun(b, e, "pg-to-csv"))
		b.Logf("iteration %d: psql \\copy %s (%.0f rows/s), weir %s (%.0f rows/s)", i, psqls[i].Round(time.Millisecond),
			float64(rows)/psqls[i].Seconds(), weirs[i].Round(time.Millisecond), float64(rows)/weirs[i].Seconds())
	}
	b.ReportMetric(float64(rows)/median(weirs).Seconds(), "weir-rows/s")
	b.ReportMetric(float64(rows)/median(psqls).Seconds(), "psql-rows/s")
	b.ReportMetric(median(psqls).Seconds()/median(weirs).Seconds(), "speed-vs-psql")
}
