package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/connector/spi"
)

var tradeSchema = spi.Schema{
	{Name: "id", Type: spi.TypeInt},
	{Name: "sym", Type: spi.TypeString, Nullable: true},
	{Name: "price", Type: spi.TypeDecimal, Nullable: true},
}

func trades(from, to int, sym string) []spi.Row {
	var rows []spi.Row
	for i := from; i <= to; i++ {
		rows = append(rows, spi.Row{int64(i), sym, strconv.Itoa(i) + ".50"})
	}
	return rows
}

// contents returns "id:sym:price" of every row of table, by id.
func contents(t *testing.T, d *db, table string) string {
	return d.scalar(t, "SELECT coalesce(string_agg(id || ':' || coalesce(sym, '-') || ':' || coalesce(price::text, '-'), ' ' ORDER BY id), '') FROM "+table)
}

func stagingTables(t *testing.T, d *db) string {
	return d.scalar(t, "SELECT coalesce(string_agg(relname, ' ' ORDER BY relname), '') FROM pg_class WHERE relname LIKE 'weir\\_stage\\_%'")
}

func TestModes(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	d.exec(t, `CREATE TABLE trades (id int8 PRIMARY KEY, sym varchar(8), price numeric(10,2), loaded_at timestamptz DEFAULT now())`)
	c := d.open(t)
	spec := func(run string, mode spi.WriteMode) spi.LoadSpec {
		return spi.LoadSpec{RunID: run, Attempt: 1, Mapping: "m", Dataset: spi.Dataset{Table: "trades"}, Schema: tradeSchema, Mode: mode, Key: []string{"id"}}
	}
	cm, err := load(t, c, spec("1", spi.ModeAppend), trades(1, 3, "A"), 2)
	require.NoError(t, err)
	require.Equal(t, int64(3), cm.Rows)
	cm, err = load(t, c, spec("2", spi.ModeAppend), trades(4, 5, "B"), 2)
	require.NoError(t, err)
	require.Equal(t, int64(2), cm.Rows)
	require.Equal(t, "1:A:1.50 2:A:2.50 3:A:3.50 4:B:4.50 5:B:5.50", contents(t, d, "trades"))

	// Upsert: new keys inserted, existing ones updated, the last staged row of a key wins.
	rows := append(trades(4, 7, "C"), spi.Row{int64(7), "D", nil})
	cm, err = load(t, c, spec("3", spi.ModeUpsert), rows, 10)
	require.NoError(t, err)
	require.Equal(t, int64(4), cm.Rows)
	require.Equal(t, "1:A:1.50 2:A:2.50 3:A:3.50 4:C:4.50 5:C:5.50 6:C:6.50 7:D:-", contents(t, d, "trades"))

	// Append of an existing key: the unique violation fails the commit, which changes nothing.
	_, err = load(t, c, spec("4", spi.ModeAppend), trades(7, 8, "E"), 10)
	require.ErrorContains(t, err, "duplicate key value violates unique constraint")
	committed, err := c.Committed(context.Background(), "4")
	require.NoError(t, err)
	require.False(t, committed)
	require.Equal(t, "1:A:1.50 2:A:2.50 3:A:3.50 4:C:4.50 5:C:5.50 6:C:6.50 7:D:-", contents(t, d, "trades"))

	cm, err = load(t, c, spec("5", spi.ModeTruncateInsert), trades(10, 11, "F"), 10)
	require.NoError(t, err)
	require.Equal(t, int64(2), cm.Rows)
	require.Equal(t, "10:F:10.50 11:F:11.50", contents(t, d, "trades"))

	// truncate_insert of a table other tables point at: DELETE, in the same transaction.
	d.exec(t, `CREATE TABLE fills (trade_id int8 REFERENCES trades (id))`)
	cm, err = load(t, c, spec("6", spi.ModeTruncateInsert), trades(20, 20, "G"), 10)
	require.NoError(t, err)
	require.Equal(t, "20:G:20.50", contents(t, d, "trades"))
	d.exec(t, `INSERT INTO fills VALUES (20)`)
	_, err = load(t, c, spec("7", spi.ModeTruncateInsert), trades(30, 30, "H"), 10)
	require.ErrorContains(t, err, "violates foreign key constraint")
	committed, err = c.Committed(context.Background(), "7")
	require.NoError(t, err)
	require.False(t, committed)
	require.Equal(t, "20:G:20.50", contents(t, d, "trades"))

	// An empty load commits its marker and, for truncate_insert, empties the table.
	d.exec(t, `DELETE FROM fills`)
	cm, err = load(t, c, spec("8", spi.ModeTruncateInsert), nil, 10)
	require.NoError(t, err)
	require.Equal(t, int64(0), cm.Rows)
	require.Equal(t, "", contents(t, d, "trades"))

	// Upsert where every field is the key: existing keys are left alone.
	d.exec(t, `CREATE TABLE tags (tag text PRIMARY KEY)`)
	tagSpec := spi.LoadSpec{RunID: "9", Dataset: spi.Dataset{Table: "tags"}, Schema: spi.Schema{{Name: "tag", Type: spi.TypeString}}, Mode: spi.ModeUpsert, Key: []string{"tag"}}
	_, err = load(t, c, tagSpec, []spi.Row{{"a"}, {"b"}}, 10)
	require.NoError(t, err)
	tagSpec.RunID = "10"
	cm, err = load(t, c, tagSpec, []spi.Row{{"b"}, {"c"}, {"c"}}, 10)
	require.NoError(t, err)
	require.Equal(t, int64(1), cm.Rows)
	require.Equal(t, "a b c", d.scalar(t, "SELECT string_agg(tag, ' ' ORDER BY tag) FROM tags"))
	require.Equal(t, "", stagingTables(t, d))
	require.Equal(t, "1:3 2:2 3:4 5:2 6:1 8:0 9:2 10:1", d.scalar(t, "SELECT string_agg(run_id || ':' || rows, ' ' ORDER BY run_id::int) FROM weir_commits"))
}

// TestCheckErrors: a target that cannot take the rows is refused with a
// precise error, before anything is created.
func TestCheckErrors(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	d.exec(t, `CREATE TABLE trades (id int8 PRIMARY KEY, sym text, price text, qty_gen int GENERATED ALWAYS AS (id * 2) STORED, note text NOT NULL)`)
	d.exec(t, `CREATE TABLE plain (id int8, sym text, price numeric)`)
	d.exec(t, `CREATE VIEW v AS SELECT * FROM plain`)
	c := d.open(t)
	ctx := context.Background()
	withNote := append(spi.Schema{{Name: "note", Type: spi.TypeString}}, tradeSchema...)
	cases := []struct {
		ds     spi.Dataset
		schema spi.Schema
		want   string
	}{
		{spi.Dataset{Table: "nope"}, tradeSchema, "table nope does not exist"},
		{spi.Dataset{Table: "public.nope"}, tradeSchema, "table public.nope does not exist"},
		{spi.Dataset{Table: "plain"}, append(tradeSchema, spi.Field{Name: "qty", Type: spi.TypeInt}), "table public.plain has no column qty"},
		{spi.Dataset{Table: "trades"}, withNote, "column price is text, the field is decimal"},
		{spi.Dataset{Table: "plain"}, spi.Schema{{Name: "sym", Type: spi.TypeInt}}, "column sym is text, the field is int"},
		{spi.Dataset{Table: "plain"}, spi.Schema{{Name: "price", Type: spi.TypeDate}}, "column price is numeric, the field is date"},
		{spi.Dataset{Table: "trades"}, spi.Schema{{Name: "id", Type: spi.TypeInt}, {Name: "qty_gen", Type: spi.TypeInt}}, "column qty_gen of table public.trades is generated"},
		{spi.Dataset{Table: "trades"}, spi.Schema{{Name: "id", Type: spi.TypeInt}}, "column note of table public.trades is NOT NULL without a default, and the schema has no field note"},
		{spi.Dataset{Table: "plain"}, spi.Schema{{Name: "id", Type: spi.TypeInt}, {Name: "id", Type: spi.TypeInt}}, "the schema has two fields named id"},
		{spi.Dataset{Table: "v"}, tradeSchema, "public.v is a view, not a table rows can be loaded into"},
		{spi.Dataset{Query: "SELECT 1"}, tradeSchema, "a query cannot be a target"},
		{spi.Dataset{Table: `bad"name`}, tradeSchema, `table "bad\"name": misplaced quote`},
	}
	for _, tc := range cases {
		err := c.Check(ctx, tc.ds, tc.schema)
		require.ErrorIs(t, err, spi.ErrInvalid, tc.want)
		require.ErrorContains(t, err, tc.want)
		_, err = c.Begin(ctx, spi.LoadSpec{RunID: "1", Dataset: tc.ds, Schema: tc.schema})
		require.ErrorContains(t, err, tc.want)
	}
	require.NoError(t, c.Check(ctx, spi.Dataset{Table: "plain"}, tradeSchema))
	require.NoError(t, c.Check(ctx, spi.Dataset{Table: "plain"}, spi.Schema{{Name: "price", Type: spi.TypeInt}}))

	specs := []struct {
		spec spi.LoadSpec
		want string
	}{
		{spi.LoadSpec{RunID: "1", Dataset: spi.Dataset{Table: "plain"}, Schema: tradeSchema, Mode: spi.ModeUpsert, Key: []string{"id"}}, "upsert key (id) of public.plain has no primary key or unique index on exactly those columns"},
		{spi.LoadSpec{RunID: "1", Dataset: spi.Dataset{Table: "plain"}, Schema: tradeSchema, Mode: spi.ModeUpsert}, "upsert into public.plain needs a key"},
		{spi.LoadSpec{RunID: "1", Dataset: spi.Dataset{Table: "plain"}, Schema: tradeSchema, Mode: spi.ModeUpsert, Key: []string{"qty"}}, "upsert key qty is not a field of the schema"},
		{spi.LoadSpec{RunID: "1", Dataset: spi.Dataset{Table: "plain"}, Schema: tradeSchema, Mode: "merge"}, `write mode "merge" is not append, truncate_insert or upsert`},
		{spi.LoadSpec{RunID: "1; DROP", Dataset: spi.Dataset{Table: "plain"}, Schema: tradeSchema}, `run id "1; DROP" must be 1 to 40 letters and digits`},
	}
	for _, tc := range specs {
		_, err := c.Begin(ctx, tc.spec)
		require.ErrorIs(t, err, spi.ErrInvalid)
		require.ErrorContains(t, err, tc.want)
	}
	require.Equal(t, "", stagingTables(t, d))

	// Values the column refuses fail the load with a reason; nothing changes.
	d.exec(t, `CREATE TABLE narrow (id int2, sym varchar(3), price numeric(4,2))`)
	for _, row := range []spi.Row{{int64(70000), "a", "1"}, {int64(1), "abcd", "1"}, {int64(1), "a", "123.4"}} {
		_, err := load(t, c, spi.LoadSpec{RunID: "n1", Dataset: spi.Dataset{Table: "narrow"}, Schema: tradeSchema}, []spi.Row{row}, 1)
		require.Error(t, err)
		require.Regexp(t, "out of range for smallint|too long|numeric field overflow", err.Error())
	}
	// The server's refusal names the row when the batch gives locations.
	l, err := c.Begin(ctx, spi.LoadSpec{RunID: "n2", Dataset: spi.Dataset{Table: "narrow"}, Schema: tradeSchema})
	require.NoError(t, err)
	require.NoError(t, l.Write(ctx, 0, spi.Batch{Rows: []spi.Row{{int64(1), "ab", "1"}, {int64(2), "abcd", "1"}}, Locs: []string{"in.csv:8", "in.csv:9"}}))
	_, err = l.Commit(ctx)
	require.ErrorContains(t, err, "copy into public.narrow: in.csv:9: ERROR: value too long for type character varying(3)")
	require.ErrorContains(t, l.Write(ctx, 0, spi.Batch{Rows: []spi.Row{{int64(1), "ab", "1"}}}), "write after the load was failed")
	require.NoError(t, l.Abort(ctx))
	require.Equal(t, "0", d.scalar(t, "SELECT count(*)::text FROM narrow"))
	require.Equal(t, "", stagingTables(t, d))
	require.Equal(t, "", d.scalar(t, "SELECT coalesce(string_agg(run_id, ' '), '') FROM weir_commits"))
}

// TestExactlyOnce: a second load of the same run, by a later attempt or a
// duplicate worker, finds the marker and changes nothing.
func TestExactlyOnce(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	d.exec(t, `CREATE TABLE trades (id int8, sym text, price numeric)`)
	ctx := context.Background()
	spec := spi.LoadSpec{RunID: "000000000000000000000042", Attempt: 1, Mapping: "m", Dataset: spi.Dataset{Table: "trades"}, Schema: tradeSchema, Watermark: "100"}

	c1 := d.open(t)
	ok, err := c1.Committed(ctx, spec.RunID)
	require.NoError(t, err)
	require.False(t, ok, "no marker table yet")
	_, found, err := c1.LastWatermark(ctx, "m")
	require.NoError(t, err)
	require.False(t, found)
	cm, err := load(t, c1, spec, trades(1, 100, "A"), 30)
	require.NoError(t, err)
	require.Equal(t, int64(100), cm.Rows)

	c2 := d.open(t)
	ok, err = c2.Committed(ctx, spec.RunID)
	require.NoError(t, err)
	require.True(t, ok)
	spec.Attempt = 2
	spec.Watermark = "200"
	l, err := c2.Begin(ctx, spec)
	require.NoError(t, err)
	require.NoError(t, l.Write(ctx, 0, spi.Batch{Rows: trades(1, 100, "A")}))
	_, err = l.Commit(ctx)
	require.ErrorIs(t, err, spi.ErrAlreadyCommitted)
	require.NoError(t, l.Abort(ctx))
	require.Equal(t, "100", d.scalar(t, "SELECT count(*)::text FROM trades"))
	w, found, err := c2.LastWatermark(ctx, "m")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "100", w)
	require.Equal(t, "", stagingTables(t, d))

	// Two attempts of one run at the same moment: the second waits in Begin
	// for the first; when the first commits, the second loads nothing.
	spec.RunID = "7"
	a, err := d.open(t).Begin(ctx, spec)
	require.NoError(t, err)
	require.NoError(t, a.Write(ctx, 0, spi.Batch{Rows: trades(1000, 1009, "Z")}))
	began := make(chan spi.Load, 1)
	go func() {
		l, err := d.open(t).Begin(ctx, spec)
		assert.NoError(t, err)
		began <- l
	}()
	time.Sleep(200 * time.Millisecond)
	require.Empty(t, began, "the second attempt waits for the first")
	_, err = a.Commit(ctx)
	require.NoError(t, err)
	b := <-began
	require.NoError(t, b.Write(ctx, 0, spi.Batch{Rows: trades(1000, 1009, "Z")}))
	_, err = b.Commit(ctx)
	require.ErrorIs(t, err, spi.ErrAlreadyCommitted)
	require.Equal(t, "10", d.scalar(t, "SELECT count(*)::text FROM trades WHERE sym = 'Z'"))

	// When the first attempt dies instead, the second one loads.
	spec.RunID = "8"
	a, err = d.open(t).Begin(ctx, spec)
	require.NoError(t, err)
	require.NoError(t, a.Write(ctx, 0, spi.Batch{Rows: trades(2000, 2004, "Y")}))
	go func() {
		l, err := d.open(t).Begin(ctx, spec)
		assert.NoError(t, err)
		began <- l
	}()
	time.Sleep(200 * time.Millisecond)
	require.Empty(t, began)
	require.NoError(t, a.Abort(ctx))
	b = <-began
	require.NoError(t, b.Write(ctx, 0, spi.Batch{Rows: trades(2000, 2004, "Y")}))
	cm, err = b.Commit(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(5), cm.Rows)
	require.Equal(t, "5", d.scalar(t, "SELECT count(*)::text FROM trades WHERE sym = 'Y'"))
}

// sleepAt makes inserting the row with id into table sleep, so that a load
// can be caught in the middle of its COPY.
func sleepAt(t *testing.T, d *db, table string, id int) {
	d.exec(t, fmt.Sprintf(`CREATE FUNCTION weir_sleepy() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.id = %d THEN PERFORM pg_sleep(60); END IF; RETURN NEW; END $$`, id))
	d.exec(t, "CREATE TRIGGER weir_sleepy BEFORE INSERT ON "+table+" FOR EACH ROW EXECUTE FUNCTION weir_sleepy()")
}

// waitSleeping returns the pid of the weir backend sleeping in the trigger.
func waitSleeping(t *testing.T, d *db) int {
	var pid int
	require.Eventually(t, func() bool {
		err := d.pg.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity WHERE application_name = 'weir' AND wait_event = 'PgSleep' AND datname = current_database()`).Scan(&pid)
		return err == nil
	}, 20*time.Second, 10*time.Millisecond)
	return pid
}

// TestCrashInWrite: an attempt dies in the middle of a Write's COPY (its
// context ends, or its backend is killed, and its Conn goes away without
// Abort); nothing is committed, and the next attempt of the run loads
// everything exactly once.
func TestCrashInWrite(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"cancel", "terminate"} {
		t.Run(how, func(t *testing.T) {
			d := newDB(t)
			d.exec(t, `CREATE TABLE trades (id int8, sym text, price numeric)`)
			ctx := context.Background()
			rows := trades(1, 150000, "A") // more than one COPY's worth
			spec := spi.LoadSpec{RunID: "99", Attempt: 1, Mapping: "m", Dataset: spi.Dataset{Table: "trades"}, Schema: tradeSchema}
			sleepAt(t, d, "trades", 1500)

			c1 := d.open(t)
			l, err := c1.Begin(ctx, spec)
			require.NoError(t, err)
			require.NoError(t, l.Write(ctx, 0, spi.Batch{Rows: rows[:1000]}))
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- l.Write(wctx, 1, spi.Batch{Rows: rows[1000:]}) }()
			pid := waitSleeping(t, d)
			if how == "cancel" {
				cancel()
			} else {
				d.exec(t, "SELECT pg_terminate_backend($1)", pid)
			}
			err = <-done
			require.Error(t, err)
			if how == "cancel" {
				require.True(t, errors.Is(err, context.Canceled), "%v", err)
			}
			require.NoError(t, c1.Close()) // the worker is gone
			d.exec(t, "DROP TRIGGER weir_sleepy ON trades")
			require.Equal(t, "0", d.scalar(t, "SELECT count(*)::text FROM trades"))

			c2 := d.open(t)
			ok, err := c2.Committed(ctx, spec.RunID)
			require.NoError(t, err)
			require.False(t, ok)
			spec.Attempt = 2
			cm, err := load(t, c2, spec, rows, 5000)
			require.NoError(t, err)
			require.Equal(t, int64(len(rows)), cm.Rows)
			require.Equal(t, "150000 11250075000", d.scalar(t, "SELECT count(*) || ' ' || sum(id) FROM trades"))
			require.Equal(t, "", stagingTables(t, d))
		})
	}
}

// TestCrashInCommit: an attempt dies while Commit runs (its context ends, or
// its backend is killed), for a direct and for a staged load; nothing is
// committed, and the next attempt loads the rows once.
func TestCrashInCommit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		how  string
		mode spi.WriteMode
	}{{"cancel", spi.ModeTruncateInsert}, {"terminate", spi.ModeTruncateInsert}, {"cancel", spi.ModeUpsert}, {"terminate", spi.ModeUpsert}} {
		t.Run(tc.how+"/"+string(tc.mode), func(t *testing.T) {
			d := newDB(t)
			d.exec(t, `CREATE TABLE trades (id int8 PRIMARY KEY, sym text, price numeric)`)
			d.exec(t, `INSERT INTO trades VALUES (0, 'old', 0)`)
			ctx := context.Background()
			spec := spi.LoadSpec{RunID: "5", Attempt: 1, Mapping: "m", Dataset: spi.Dataset{Table: "trades"}, Schema: tradeSchema, Mode: tc.mode, Key: []string{"id"}, Watermark: "w1"}
			sleepAt(t, d, "trades", 500)
			c1 := d.open(t)
			l, err := c1.Begin(ctx, spec)
			require.NoError(t, err)
			require.NoError(t, l.Write(ctx, 0, spi.Batch{Rows: trades(1, 1000, "A")}))

			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan error, 1)
			go func() { _, err := l.Commit(cctx); done <- err }()
			pid := waitSleeping(t, d)
			// The marker is inserted but not committed: no one else sees it.
			ok, err := d.open(t).Committed(ctx, spec.RunID)
			require.NoError(t, err)
			require.False(t, ok)
			if tc.how == "cancel" {
				cancel()
			} else {
				d.exec(t, "SELECT pg_terminate_backend($1)", pid)
			}
			err = <-done
			require.Error(t, err)
			if tc.how == "cancel" {
				require.ErrorIs(t, err, context.Canceled)
			}
			require.NoError(t, c1.Close())
			d.exec(t, "DROP TRIGGER weir_sleepy ON trades")
			require.Equal(t, "0:old:0", contents(t, d, "trades"))

			c2 := d.open(t)
			ok, err = c2.Committed(ctx, spec.RunID)
			require.NoError(t, err)
			require.False(t, ok)
			_, found, err := c2.LastWatermark(ctx, "m")
			require.NoError(t, err)
			require.False(t, found)
			spec.Attempt = 2
			cm, err := load(t, c2, spec, trades(1, 1000, "A"), 300)
			require.NoError(t, err)
			require.Equal(t, int64(1000), cm.Rows)
			want := "1000 500500"
			if tc.mode == spi.ModeUpsert {
				want = "1001 500500"
			}
			require.Equal(t, want, d.scalar(t, "SELECT count(*) || ' ' || sum(id) FROM trades"))
			require.Equal(t, "", stagingTables(t, d))
			w, _, err := c2.LastWatermark(ctx, "m")
			require.NoError(t, err)
			require.Equal(t, "w1", w)
		})
	}
}

// TestConcurrentWrites: threads write at once into one staging table.
func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	d.exec(t, `CREATE TABLE trades (id int8 PRIMARY KEY, sym text, price numeric)`)
	c := d.open(t, "max_conns", "4")
	ctx := context.Background()
	l, err := c.Begin(ctx, spi.LoadSpec{RunID: "1", Dataset: spi.Dataset{Table: "trades"}, Schema: tradeSchema})
	require.NoError(t, err)
	errs := make(chan error, 8)
	for th := range 8 {
		go func() {
			for b := range 10 {
				from := th*10000 + b*1000 + 1
				if err := l.Write(ctx, th, spi.Batch{Rows: trades(from, from+999, fmt.Sprint(th))}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		require.NoError(t, <-errs)
	}
	cm, err := l.Commit(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(80000), cm.Rows)
	require.Equal(t, "80000 3200040000", d.scalar(t, "SELECT count(*) || ' ' || sum(id) FROM trades"))
	require.ErrorContains(t, l.Write(ctx, 0, spi.Batch{Rows: trades(1, 1, "x")}), "write after the load was committed")
	require.NoError(t, l.Abort(ctx))
}

// TestConcurrentLoads: loads of different runs into one table do not wait
// for each other, whatever their order.
func TestConcurrentLoads(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	d.exec(t, `CREATE TABLE trades (id int8 PRIMARY KEY, sym text, price numeric)`)
	ctx := context.Background()
	spec := func(run string) spi.LoadSpec {
		return spi.LoadSpec{RunID: run, Mapping: "m", Dataset: spi.Dataset{Table: "trades"}, Schema: tradeSchema}
	}
	a, err := d.open(t).Begin(ctx, spec("1"))
	require.NoError(t, err)
	require.NoError(t, a.Write(ctx, 0, spi.Batch{Rows: trades(1, 10, "A")}))
	// b, on a Conn of its own (a new run), starts and commits while a is open.
	cb := d.open(t)
	done := make(chan error, 1)
	go func() {
		cm, err := load(t, cb, spec("2"), trades(11, 20, "B"), 4)
		if err == nil && cm.Rows != 10 {
			err = fmt.Errorf("committed %d rows", cm.Rows)
		}
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		d.exec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'weir' AND datname = current_database()")
		t.Fatal("a load of another run waits for the open one")
	}
	_, err = a.Commit(ctx)
	require.NoError(t, err)
	require.Equal(t, "20", d.scalar(t, "SELECT count(*)::text FROM trades"))
	// The marker's time is the commit's: the later commit's watermark is the last.
	w1, w2 := spec("3"), spec("4")
	w1.Watermark, w2.Watermark = "first-begun", "last-committed"
	l1, err := d.open(t).Begin(ctx, w1)
	require.NoError(t, err)
	_, err = load(t, d.open(t), w2, nil, 1)
	require.NoError(t, err)
	_, err = l1.Commit(ctx)
	require.NoError(t, err)
	w, _, err := d.open(t).LastWatermark(ctx, "m")
	require.NoError(t, err)
	require.Equal(t, "first-begun", w)
}
