package worker_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
	"github.com/weirdata/weir/connector/fs"
	"github.com/weirdata/weir/connector/postgres"
)

// people.csv: two good rows, one whose score makes 100 / score fail at run
// time, a bad date, broken quoting, a wrong column count, and an
// unterminated quote at the end.
const peopleCSV = "id,name,born,score\n" +
	"1,Ann,1990-05-17,10\n" +
	"2,\"Bob \"\"the\"\" builder\",1985-12-01,0\n" +
	"3,Cat,1990-13-45,7\n" +
	"4,\"Dan\"x,1970-01-01,1\n" +
	"5,Eve,2000-01-01\n" +
	"6,Fay,2001-02-03,20\n" +
	"7,\"Gus\n"

var peopleSchema = []catalog.SchemaField{{Name: "id", Type: "int"}, {Name: "name", Type: "string"}, {Name: "born", Type: "date"}, {Name: "score", Type: "int"}}

// peopleWorld writes people.csv and an SQLite target table for it.
func peopleWorld(t *testing.T, e *env) (*dataWorld, catalog.Endpoint, catalog.Endpoint) {
	d := newDataWorld(t, e)
	require.NoError(t, os.MkdirAll(filepath.Join(d.files, "in"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(d.files, "in", "people.csv"), []byte(peopleCSV), 0o644))
	lite := d.lite("people")
	d.exec(lite, `CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, born DATE, age INTEGER, ratio DOUBLE, initial TEXT)`)
	return d, catalog.Endpoint{System: "files", Path: "in/people.csv", Format: "csv", Schema: peopleSchema},
		catalog.Endpoint{System: lite, Table: "people"}
}

var peopleFields = []catalog.FieldMapping{
	{Name: "id"},
	{Name: "name", Type: "string", Expr: "upper(name)"},
	{Name: "born"},
	{Name: "age", Type: "int", Expr: `age(born, to_date("2024-06-15"))`},
	{Name: "ratio", Type: "float", Expr: "100 / score"},
	{Name: "initial", Type: "string", Expr: `translate("initials", substr(name, 1, 1), "?")`},
}

func peopleMapping(policy catalog.BadRowPolicy) func(m *catalog.Mapping) {
	return func(m *catalog.Mapping) {
		m.Fields = catalog.NewJSON(peopleFields)
		m.BadRows = catalog.NewJSON(policy)
		m.Tables = catalog.NewJSON(map[string]map[string]string{"initials": {"A": "a.", "F": "f."}})
	}
}

// TestBadRowsFail: the first bad row fails the run with its location and
// reason, and nothing reaches the target.
func TestBadRowsFail(t *testing.T) {
	t.Parallel()
	e := newEnv(t, catalog.DialectSQLite)
	d, src, dst := peopleWorld(t, e)
	id := d.run(d.rowMapping("people", src, dst, peopleMapping(catalog.BadRowPolicy{})), nil)
	e.start(e.rowConfig("w1"), e.store, connector.Default())
	r := e.waitState(id, 60*time.Second, catalog.StateFailed)
	require.Equal(t, catalog.StateFailed, r.State)
	require.Equal(t, 1, r.Attempt, "a bad row is not worth another attempt")
	require.Contains(t, r.Error, "bad row at in/people.csv:4")
	require.Contains(t, r.Error, `field "born" (column 3): "1990-13-45" is not a date`)
	require.Contains(t, r.Error, "bad_rows policy fail")
	require.Empty(t, d.read(dst), "nothing is loaded")
	_, err := os.Stat(filepath.Join(d.files, "_weir_rejects"))
	require.True(t, os.IsNotExist(err), "no reject file under fail")
}

// TestBadRowsReject: every bad row goes to the reject file with its
// location, raw record and reason; the good rows are loaded, transformed.
func TestBadRowsReject(t *testing.T) {
	t.Parallel()
	e := newEnv(t, catalog.DialectSQLite)
	d, src, dst := peopleWorld(t, e)
	id := d.run(d.rowMapping("people", src, dst, peopleMapping(catalog.BadRowPolicy{Policy: catalog.BadRowsReject, MaxRejects: 5})), nil)
	e.start(e.rowConfig("w1"), e.store, connector.Default())
	r := e.waitState(id, 60*time.Second, catalog.StateSucceeded)
	require.Equal(t, catalog.StateSucceeded, r.State, r.Error)

	rows := d.read(dst)
	require.Len(t, rows, 2)
	byID := map[int64]connector.Row{}
	for _, row := range rows {
		byID[row[0].(int64)] = row
	}
	require.Equal(t, "ANN", byID[1][1])
	require.Equal(t, int64(34), byID[1][3], "age on 2024-06-15 of someone born 1990-05-17")
	require.Equal(t, 10.0, byID[1][4])
	require.Equal(t, "a.", byID[1][5])
	require.Equal(t, "FAY", byID[6][1])
	require.Equal(t, 5.0, byID[6][4])

	// The reject file: at the source (the target is a database), one line per bad row.
	file := filepath.Join(d.files, "_weir_rejects", id+".jsonl")
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	var recs []map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]string
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
		recs = append(recs, rec)
	}
	require.Len(t, recs, 5)
	byLoc := map[string]map[string]string{}
	for _, rec := range recs {
		byLoc[rec["loc"]] = rec
	}
	require.Contains(t, byLoc["in/people.csv:3"]["reason"], `field "ratio": division by zero`)
	require.Contains(t, byLoc["in/people.csv:3"]["raw"], `"Bob ""the"" builder"`, "the raw record as read")
	require.Contains(t, byLoc["in/people.csv:4"]["reason"], `"1990-13-45" is not a date`)
	require.Equal(t, "3,Cat,1990-13-45,7", byLoc["in/people.csv:4"]["raw"])
	require.Contains(t, byLoc["in/people.csv:5"]["reason"], `unexpected "x" after the closing quote`)
	require.Contains(t, byLoc["in/people.csv:6"]["reason"], "3 fields, expected 4")
	require.Contains(t, byLoc["in/people.csv:8"]["reason"], "unterminated quoted field")

	man := r.Manifest.V
	require.Equal(t, int64(5), man.Rejects)
	require.NotNil(t, man.RejectFile)
	require.Equal(t, "_weir_rejects/"+id+".jsonl", man.RejectFile.Path)
	require.Equal(t, int64(5), man.RejectFile.Rows)
	fi, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, fi.Size(), man.RejectFile.Size)
	require.Equal(t, catalog.ManifestCounts{SourceRows: 3, SourceBad: 4, Rejected: 5, Written: 2, TargetBefore: ptr(int64(0)),
		TargetRows: ptr(int64(2)), TargetMethod: connector.CountedBySQL, Check: man.Counts.Check}, *man.Counts)
	require.Contains(t, man.Counts.Check, "ok")
	require.Equal(t, "people", man.Layout.Table)
	require.Equal(t, []string{"id", "name", "born", "age", "ratio", "initial"}, fieldNames(man.Layout.Fields))
	require.True(t, hasKind(e.events(id), "rejected"))
}

// TestBadRowsAboveMaxRejects: one reject too many fails the run, and
// nothing is loaded.
func TestBadRowsAboveMaxRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, catalog.DialectSQLite)
	d, src, dst := peopleWorld(t, e)
	id := d.run(d.rowMapping("people", src, dst, peopleMapping(catalog.BadRowPolicy{Policy: catalog.BadRowsReject, MaxRejects: 2})), nil)
	e.start(e.rowConfig("w1"), e.store, connector.Default())
	r := e.waitState(id, 60*time.Second, catalog.StateFailed)
	require.Equal(t, catalog.StateFailed, r.State)
	require.Contains(t, r.Error, "3 rows rejected, more than bad_rows.max_rejects (2)")
	require.Equal(t, 1, r.Attempt)
	require.Empty(t, d.read(dst))
}

// TestRunTimeFailures: a mapping whose expression does not compile (stored
// without the broker's check), a missing target table and a target whose
// column has the wrong type fail at once with a precise error.
func TestRunTimeFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, catalog.DialectSQLite)
	d, src, dst := peopleWorld(t, e)
	lite := dst.System
	d.exec(lite, `CREATE TABLE wrong (id INTEGER, name TEXT, born INTEGER, age INTEGER, ratio DOUBLE, initial TEXT)`)
	policy := catalog.BadRowPolicy{Policy: catalog.BadRowsReject}
	bad := d.run(d.rowMapping("bad-expr", src, dst, func(m *catalog.Mapping) {
		peopleMapping(policy)(m)
		m.Fields.V = append(m.Fields.V, catalog.FieldMapping{Name: "x", Type: "int", Expr: "scor + 1"})
	}), nil)
	missing := d.run(d.rowMapping("missing", src, catalog.Endpoint{System: lite, Table: "nope"}, peopleMapping(policy)), nil)
	wrong := d.run(d.rowMapping("wrong", src, catalog.Endpoint{System: lite, Table: "wrong"}, peopleMapping(policy)), nil)
	e.start(e.rowConfig("w1"), e.store, connector.Default())

	r := e.waitState(bad, 60*time.Second, catalog.StateFailed)
	require.Equal(t, catalog.StateFailed, r.State)
	require.Contains(t, r.Error, `compile mapping bad-expr v1: field "x" (1:1): unknown source field "scor"; did you mean "score"?`)
	r = e.waitState(missing, 60*time.Second, catalog.StateFailed)
	require.Equal(t, catalog.StateFailed, r.State)
	require.Contains(t, r.Error, "check target people:nope")
	require.Contains(t, r.Error, "table nope does not exist")
	r = e.waitState(wrong, 60*time.Second, catalog.StateFailed)
	require.Equal(t, catalog.StateFailed, r.State)
	require.Contains(t, r.Error, "check target people:wrong")
	require.Contains(t, r.Error, "born")
	for _, id := range []string{bad, missing, wrong} {
		require.Equal(t, 1, e.run(id).Attempt, "not retried: %s", e.run(id).Error)
	}
}

func ptr[T any](v T) *T { return &v }

func fieldNames(fs []catalog.SchemaField) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}

// TestWatermarkFullThenIncremental: a full load, then incremental runs as
// rows arrive, leave the target with exactly the source's rows: no gap, no
// overlap; a run with nothing new is empty and keeps the watermark.
func TestWatermarkFullThenIncremental(t *testing.T) {
	t.Parallel()
	e := newEnv(t, catalog.DialectSQLite)
	d := newDataWorld(t, e)
	d.exec("pg", `CREATE TABLE events (id bigint PRIMARY KEY, v text, updated_at timestamptz NOT NULL)`)
	lite := d.lite("events")
	d.exec(lite, `CREATE TABLE events (id INTEGER PRIMARY KEY, v TEXT, updated_at TIMESTAMP)`)
	insert := func(from, to int) {
		d.exec("pg", fmt.Sprintf(`INSERT INTO events SELECT i, 'v' || i, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second'
			FROM generate_series(%d, %d) i`, from, to))
	}
	insert(1, 500)
	mapping := d.rowMapping("events", catalog.Endpoint{System: "pg", Table: "events"}, catalog.Endpoint{System: lite, Table: "events"},
		func(m *catalog.Mapping) { m.WatermarkColumn = "updated_at" })
	e.start(e.rowConfig("w1"), e.store, connector.Default())
	runOnce := func(want catalog.RunState) *catalog.Run {
		id := d.run(mapping, nil)
		r := e.waitState(id, 60*time.Second, want)
		require.Equal(t, want, r.State, r.Error)
		return r
	}
	r := runOnce(catalog.StateSucceeded)
	require.Equal(t, int64(500), r.Manifest.V.TotalRows)
	require.Equal(t, catalog.ManifestWatermark{Column: "updated_at", From: "", To: "2026-01-01 00:08:20+00"}, *r.Manifest.V.Watermark)

	insert(501, 1200)
	r = runOnce(catalog.StateSucceeded)
	require.Equal(t, int64(700), r.Manifest.V.TotalRows, "only the new rows")
	require.Equal(t, "2026-01-01 00:08:20+00", r.Manifest.V.Watermark.From)

	r = runOnce(catalog.StateEmpty)
	require.Equal(t, int64(0), r.Manifest.V.TotalRows)
	require.Equal(t, r.Manifest.V.Watermark.From, r.Manifest.V.Watermark.To, "nothing new: the watermark stays")

	insert(1201, 1203)
	r = runOnce(catalog.StateSucceeded)
	require.Equal(t, int64(3), r.Manifest.V.TotalRows)

	rows := d.read(catalog.Endpoint{System: lite, Table: "events"})
	require.Len(t, rows, 1203)
	seen := map[int64]bool{}
	for _, row := range rows {
		id := row[0].(int64)
		require.False(t, seen[id], "row %d delivered twice", id)
		seen[id] = true
	}
	for i := int64(1); i <= 1203; i++ {
		require.True(t, seen[i], "row %d missing", i)
	}
}

// TestAlreadyCommittedByAnEarlierAttempt: attempt 1 committed its load and
// died before finishing; attempt 2 finds the commit marker, loads nothing
// again and succeeds, the manifest saying so.
func TestAlreadyCommittedByAnEarlierAttempt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, catalog.DialectSQLite)
	d := newDataWorld(t, e)
	ctx := context.Background()
	src := d.endpoint(dataKinds[0], "src", false)
	d.put(src, goldenSchema, goldenRows())
	dst := d.endpoint(dataKind{"postgres", "postgres", ""}, "gold", true)
	mapping := d.rowMapping("gold", src, dst, func(m *catalog.Mapping) { m.MaxAttempts = 3 })
	id := e.submit(mapping, nil)
	e.dispatch(id, "dead", 4)
	claimed, err := e.store.ClaimRuns(ctx, catalog.ClaimParams{Worker: "dead", Limit: 1, LeaseTTL: time.Second})
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	// The dead attempt's load, committed.
	tgt := d.open("pg").(connector.RowTarget)
	l, err := tgt.Begin(ctx, connector.LoadSpec{RunID: id, Attempt: 1, Mapping: mapping, Dataset: datasetOf(dst), Schema: goldenSchema, Mode: connector.ModeAppend})
	require.NoError(t, err)
	require.NoError(t, l.Write(ctx, 0, connector.Batch{Rows: goldenRows()}))
	_, err = l.Commit(ctx)
	require.NoError(t, err)

	reaper := e.openStore()
	reaper.SetClock(func() time.Time { return time.Now().UTC().Add(time.Hour) })
	_, err = reaper.ReapExpiredLeases(ctx, region)
	require.NoError(t, err)
	e.dispatch(id, "w1", 4)
	e.start(e.rowConfig("w1"), e.store, connector.Default())
	r := e.waitState(id, 60*time.Second, catalog.StateSucceeded)
	require.Equal(t, catalog.StateSucceeded, r.State, r.Error)
	require.Equal(t, 2, r.Attempt)
	require.True(t, r.Manifest.V.AlreadyCommitted)
	require.Equal(t, int64(len(goldenRows())), *r.Manifest.V.Counts.TargetRows)
	require.True(t, hasKind(e.events(id), "already-delivered"))
	sameRows(t, goldenSchema, goldenRows(), d.read(dst))
}

// TestParallelRowsAndLoad: a CSV file large enough to split is read by
// several threads, each with its partition in the plan and its task; under
// a high node load the same run gets one thread.
func TestParallelRowsAndLoad(t *testing.T) {
	t.Parallel()
	e := newEnv(t, catalog.DialectSQLite)
	d := newDataWorld(t, e)
	var b strings.Builder
	b.WriteString("id,sym,px\n")
	const n = 40000
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d,\"S,%d\",%d.%02d\n", i, i%97, i, i%100)
	}
	require.NoError(t, os.WriteFile(filepath.Join(d.files, "big.csv"), []byte(b.String()), 0o644))
	src := catalog.Endpoint{System: "files", Path: "big.csv", Format: "csv", Options: map[string]string{"min_split_bytes": "65536"},
		Schema: []catalog.SchemaField{{Name: "id", Type: "int"}, {Name: "sym", Type: "string"}, {Name: "px", Type: "decimal"}}}
	d.exec("pg", `CREATE TABLE quotes (id bigint, sym text, px numeric, cents bigint)`)
	fields := func(m *catalog.Mapping) {
		m.Fields = catalog.NewJSON([]catalog.FieldMapping{{Name: "id"}, {Name: "sym"}, {Name: "px"}, {Name: "cents", Type: "int", Expr: "to_int(px * 100)"}})
		m.WriteMode = catalog.WriteTruncateInsert
	}
	mapping := d.rowMapping("quotes", src, catalog.Endpoint{System: "pg", Table: "quotes"}, fields)
	id := d.run(mapping, nil)
	stop := e.start(e.rowConfig("w1"), e.store, connector.Default())
	r := e.waitState(id, 60*time.Second, catalog.StateSucceeded)
	require.Equal(t, catalog.StateSucceeded, r.State, r.Error)
	plan := r.Plan.V
	require.Equal(t, 4, plan.Parallelism, plan.Reason)
	require.Equal(t, []string{"describe", "read", "map", "write", "commit", "count", "manifest"}, plan.Steps)
	for i, p := range plan.Partitions {
		require.Equal(t, i, p.Thread)
		require.NotEmpty(t, p.Desc)
		require.NotEmpty(t, p.Spec)
	}
	tasks, err := e.store.ListRunTasks(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, tasks, 4)
	var rows int64
	for _, tk := range tasks {
		require.Equal(t, catalog.TaskDone, tk.State)
		rows += tk.Rows
	}
	require.Equal(t, int64(n), rows)
	require.Equal(t, int64(n), r.Rows)
	got := d.read(catalog.Endpoint{System: "pg", Table: "quotes"})
	require.Len(t, got, n)
	seen := map[int64]bool{}
	for _, row := range got {
		i := row[0].(int64)
		require.False(t, seen[i])
		seen[i] = true
		require.Equal(t, i*100+i%100, row[3].(int64), "cents of row %d", i)
	}
	stop()

	// The same run under a load of 3.9 on 2 cores: one thread.
	cfg := e.rowConfig("w2")
	cfg.Load = func(context.Context) (float64, int, error) { return 3.9, 2, nil }
	id = e.submit(mapping, nil)
	e.dispatch(id, "w2", 4)
	e.start(cfg, e.store, connector.Default())
	r = e.waitState(id, 60*time.Second, catalog.StateSucceeded)
	require.Equal(t, catalog.StateSucceeded, r.State, r.Error)
	require.Equal(t, 1, r.Plan.V.Parallelism)
	require.Contains(t, r.Plan.V.Reason, "the node's load of 3.90 on 2 cores")
	require.Len(t, d.read(catalog.Endpoint{System: "pg", Table: "quotes"}), n, "truncate_insert replaced the rows")
}

// slowRows is the fs connector whose row reads pause before each batch.
type slowRows struct {
	*fs.Conn
	delay   time.Duration
	batches *atomic.Int64
}

func (s *slowRows) Read(ctx context.Context, ds connector.Dataset, p connector.Partition, n int, emit func(connector.Batch) error) error {
	return s.Conn.Read(ctx, ds, p, n, func(b connector.Batch) error {
		s.batches.Add(1)
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		return emit(b)
	})
}

// TestCancelRowRun: a cancellation during a row run stops the pipelines,
// aborts the load and commits nothing.
func TestCancelRowRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, catalog.DialectSQLite)
	d := newDataWorld(t, e)
	var b strings.Builder
	b.WriteString("id,v\n")
	for i := 1; i <= 5000; i++ {
		fmt.Fprintf(&b, "%d,v%d\n", i, i)
	}
	require.NoError(t, os.WriteFile(filepath.Join(d.files, "in.csv"), []byte(b.String()), 0o644))
	d.exec("pg", "CREATE TABLE slow (id bigint, v text)")
	mapping := d.rowMapping("slow", catalog.Endpoint{System: "files", Path: "in.csv", Format: "csv",
		Schema: []catalog.SchemaField{{Name: "id", Type: "int"}, {Name: "v", Type: "string"}}},
		catalog.Endpoint{System: "pg", Table: "slow"}, nil)
	var batches atomic.Int64
	reg := connector.NewRegistry()
	reg.Register(fs.Kind, func(ctx context.Context, sys connector.System) (connector.Conn, error) {
		c, err := fs.Open(ctx, sys)
		if err != nil {
			return nil, err
		}
		return &slowRows{Conn: c.(*fs.Conn), delay: 50 * time.Millisecond, batches: &batches}, nil
	})
	postgres.Register(reg)
	id := d.run(mapping, nil)
	e.start(e.rowConfig("w1"), e.store, reg)
	e.waitRun(id, 60*time.Second, "rows moving", func(*catalog.Run) bool { return batches.Load() >= 3 })
	_, err := e.store.RequestCancel(context.Background(), id, "tester")
	require.NoError(t, err)
	r := e.waitState(id, 30*time.Second, catalog.StateCanceled)
	require.Equal(t, catalog.StateCanceled, r.State, r.Error)
	require.Less(t, batches.Load(), int64(5000/64), "the read stopped early")
	require.Empty(t, d.read(catalog.Endpoint{System: "pg", Table: "slow"}), "nothing committed")
}
