package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/connector/sqlrow"
)

// SQLite's extended result code of a primary-key violation.
const sqliteConstraintPrimaryKey = 1555

func errorCode(err error) int {
	var coder interface{ Code() int }
	if errors.As(err, &coder) {
		return coder.Code()
	}
	return 0
}

// marker returns the commit-marker SQL, over the main database.
func marker() *sqlrow.Marker {
	const t = `main."` + spi.CommitTable + `"`
	return &sqlrow.Marker{
		Create: `CREATE TABLE IF NOT EXISTS ` + t + ` (
			"run_id" TEXT NOT NULL PRIMARY KEY,
			"mapping" TEXT NOT NULL,
			"target" TEXT NOT NULL,
			"watermark" TEXT,
			"rows" INTEGER NOT NULL,
			"committed_at" TEXT NOT NULL)`,
		Insert:         `INSERT INTO ` + t + ` ("run_id", "mapping", "target", "watermark", "rows", "committed_at") VALUES (?, ?, ?, ?, ?, strftime('%Y-%m-%d %H:%M:%f', 'now'))`,
		Committed:      `SELECT 1 FROM ` + t + ` WHERE "run_id" = ?`,
		Last:           `SELECT "watermark" FROM ` + t + ` WHERE "mapping" = ? AND "watermark" IS NOT NULL ORDER BY rowid DESC LIMIT 1`,
		IsDuplicate:    func(err error) bool { return errorCode(err) == sqliteConstraintPrimaryKey },
		IsMissingTable: func(err error) bool { return err != nil && strings.Contains(err.Error(), "no such table") },
	}
}

// Committed tells whether runID's load was committed (its marker exists).
func (c *Conn) Committed(ctx context.Context, runID string) (bool, error) {
	ok, err := marker().IsCommitted(ctx, c.db, runID)
	if err != nil {
		return false, c.fail("commit", spi.CommitTable, err)
	}
	return ok, nil
}

// LastWatermark returns the mapping's last committed watermark.
func (c *Conn) LastWatermark(ctx context.Context, mapping string) (string, bool, error) {
	wm, ok, err := marker().LastWatermark(ctx, c.db, mapping)
	if err != nil {
		return "", false, c.fail("watermark", spi.CommitTable, err)
	}
	return wm, ok, nil
}

// target is a checked target table.
type target struct {
	label, quoted, schema, tbl string
	cols                       []sqlrow.TargetColumn // in schema order
	info                       []column              // of cols
	decls                      []string              // declared types of cols
	notNull                    []bool                // of cols
	pk                         []string              // primary key columns, lower case
}

// Check verifies that the dataset's table exists and has a column able to
// take every field of schema.
func (c *Conn) Check(ctx context.Context, ds spi.Dataset, schema spi.Schema) error {
	_, err := c.checkTarget(ctx, ds, schema)
	return err
}

func (c *Conn) checkTarget(ctx context.Context, ds spi.Dataset, schema spi.Schema) (*target, error) {
	if ds.Table == "" || ds.Query != "" {
		return nil, c.fail("check", ds.Table, fmt.Errorf("%w: a target is a table, without a query", spi.ErrInvalid))
	}
	sch, tbl, quoted, err := table(ds.Table)
	if err != nil {
		return nil, c.fail("check", ds.Table, err)
	}
	t := &target{label: tbl, quoted: quoted, schema: sch, tbl: tbl}
	if sch != "main" {
		t.label = sch + "." + tbl
	}
	var typ, ddl sql.NullString
	err = c.db.QueryRowContext(ctx, "SELECT type, sql FROM "+quote(sch)+".sqlite_schema WHERE name = ? COLLATE NOCASE AND type IN ('table', 'view')", tbl).Scan(&typ, &ddl)
	switch {
	case errors.Is(err, sql.ErrNoRows) || (err != nil && strings.Contains(err.Error(), "no such table")):
		return nil, c.fail("check", t.label, fmt.Errorf("%w: table %s does not exist", iofs.ErrNotExist, t.label))
	case err != nil:
		return nil, c.fail("check", t.label, err)
	case typ.String != "table":
		return nil, c.fail("check", t.label, fmt.Errorf("%w: %s is a %s, not a table", spi.ErrInvalid, t.label, typ.String))
	}
	tcs, err := c.columns(ctx, sch, tbl)
	if err != nil {
		return nil, c.fail("check", t.label, err)
	}
	rowidTable := !withoutRowid.MatchString(ddl.String)
	var pks []tableColumn
	for _, tc := range tcs {
		if tc.pk > 0 {
			pks = append(pks, tc)
		}
	}
	slices.SortFunc(pks, func(a, b tableColumn) int { return a.pk - b.pk })
	for _, tc := range pks {
		t.pk = append(t.pk, strings.ToLower(tc.name))
	}
	all := make([]sqlrow.TargetColumn, 0, len(tcs))
	byName := map[string]tableColumn{}
	for _, tc := range tcs {
		if tc.hidden == 1 {
			continue
		}
		col := declared(tc.decl)
		// An INTEGER PRIMARY KEY is the rowid: SQLite fills it when not given.
		rowidAlias := rowidTable && len(pks) == 1 && tc.pk == 1 && strings.EqualFold(strings.TrimSpace(tc.decl), "INTEGER")
		all = append(all, sqlrow.TargetColumn{
			Name: tc.name, Native: tc.decl, Type: col.typ,
			Required:  tc.notNull && !tc.hasDflt && !rowidAlias,
			Generated: tc.hidden == 2 || tc.hidden == 3,
		})
		byName[tc.name] = tc
	}
	if t.cols, err = sqlrow.CheckColumns(t.label, all, schema); err != nil {
		return nil, c.fail("check", t.label, err)
	}
	for _, col := range t.cols {
		tc := byName[col.Name]
		info := declared(tc.decl)
		t.info = append(t.info, info)
		t.decls = append(t.decls, tc.decl)
		t.notNull = append(t.notNull, tc.notNull)
	}
	return t, nil
}

// checkKey verifies that key is exactly the primary key or a unique index
// of the target, as ON CONFLICT (key) needs.
func (c *Conn) checkKey(ctx context.Context, t *target, key []string) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: an upsert needs a key", spi.ErrInvalid)
	}
	want := make([]string, len(key))
	for i, k := range key {
		found := false
		for _, col := range t.cols {
			if strings.EqualFold(col.Name, k) {
				want[i], found = strings.ToLower(col.Name), true
			}
		}
		if !found {
			return fmt.Errorf("%w: upsert key column %q is not among the loaded fields", spi.ErrInvalid, k)
		}
	}
	slices.Sort(want)
	keys := [][]string{slices.Sorted(slices.Values(t.pk))}
	rows, err := c.db.QueryContext(ctx, `SELECT il.name, ii.name FROM pragma_index_list(?, ?) AS il, pragma_index_info(il.name, ?) AS ii
		WHERE il."unique" = 1 ORDER BY il.name, ii.seqno`, t.tbl, t.schema, t.schema)
	if err != nil {
		return err
	}
	defer rows.Close()
	byIndex := map[string][]string{}
	for rows.Next() {
		var index string
		var col sql.NullString // NULL for an expression
		if err := rows.Scan(&index, &col); err != nil {
			return err
		}
		byIndex[index] = append(byIndex[index], strings.ToLower(col.String))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, cols := range byIndex {
		keys = append(keys, slices.Sorted(slices.Values(cols)))
	}
	for _, k := range keys {
		if slices.Equal(k, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: upsert key (%s) is not the primary key or a unique index of %s", spi.ErrInvalid, strings.Join(key, ", "), t.label)
}

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,40}$`)

// Begin checks the target and creates the attempt's staging table, a TEMP
// table on a connection the load keeps until it ends.
func (c *Conn) Begin(ctx context.Context, spec spi.LoadSpec) (spi.Load, error) {
	if !runIDPattern.MatchString(spec.RunID) || spec.Attempt < 0 {
		return nil, c.fail("begin", spec.Dataset.Table, fmt.Errorf("%w: run id %q and attempt %d do not name a staging table", spi.ErrInvalid, spec.RunID, spec.Attempt))
	}
	switch spec.Mode {
	case spi.ModeAppend, spi.ModeTruncateInsert, spi.ModeUpsert:
	default:
		return nil, c.fail("begin", spec.Dataset.Table, fmt.Errorf("%w: write mode %q (want append, truncate_insert or upsert)", spi.ErrInvalid, spec.Mode))
	}
	t, err := c.checkTarget(ctx, spec.Dataset, spec.Schema)
	if err != nil {
		return nil, err
	}
	if spec.Mode == spi.ModeUpsert {
		if err := c.checkKey(ctx, t, spec.Key); err != nil {
			return nil, c.fail("begin", t.label, err)
		}
	}
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return nil, c.fail("begin", t.label, err)
	}
	l := &load{c: c, spec: spec, t: t, conn: conn, stage: `temp."weir_stage_` + spec.RunID + "_" + strconv.Itoa(spec.Attempt) + `"`}
	cols := make([]string, len(t.cols))
	names := make([]string, len(t.cols))
	encs := make([]sqlrow.Encoder, len(t.cols))
	defs := make([]string, len(t.cols))
	for i, col := range t.cols {
		cols[i], names[i] = quote(col.Name), col.Name
		encs[i] = encoder(t.info[i], spec.Schema[i].Type)
		defs[i] = cols[i] + " " + t.decls[i]
		if t.notNull[i] {
			defs[i] += " NOT NULL"
		}
	}
	if spec.Mode == spi.ModeUpsert {
		// A key given twice in one load fails when staged, as in MySQL.
		keys := make([]string, len(spec.Key))
		for i, k := range spec.Key {
			keys[i] = quote(k)
		}
		defs = append(defs, "UNIQUE ("+strings.Join(keys, ", ")+")")
	}
	l.cols = strings.Join(cols, ", ")
	create := "CREATE TEMP TABLE " + l.stage + " (" + strings.Join(defs, ", ") + ")"
	if _, err := conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+l.stage); err != nil {
		l.release(ctx)
		return nil, c.fail("begin", t.label, err)
	}
	if _, err := conn.ExecContext(ctx, create); err != nil {
		l.release(ctx)
		return nil, c.fail("begin", t.label, fmt.Errorf("create staging table: %w", err))
	}
	if l.in, err = sqlrow.NewInserter(sqlrow.InserterConfig{Table: l.stage, Columns: cols, Names: names, Encoders: encs, MaxParams: c.stageParams, Prepare: true}); err != nil {
		l.release(ctx)
		return nil, c.fail("begin", t.label, err)
	}
	return l, nil
}

// load is one attempt's load through a TEMP staging table on one connection.
type load struct {
	c     *Conn
	spec  spi.LoadSpec
	t     *target
	stage string // temp."weir_stage_..."
	cols  string // quoted loaded columns

	mu        sync.Mutex // one writer: batches go through conn in turn
	conn      *sql.Conn  // nil once released
	in        *sqlrow.Inserter
	rows      int64
	committed bool
}

// Write stages a batch in one transaction on the load's connection; the
// threads' batches take turns.
func (l *load) Write(ctx context.Context, thread int, b spi.Batch) error {
	if len(b.Rows) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return l.c.fail("write", l.t.label, fmt.Errorf("%w: the load was committed or aborted", spi.ErrInvalid))
	}
	// The staging table is TEMP: a deferred transaction writes it without
	// locking the database file.
	if _, err := l.conn.ExecContext(ctx, "BEGIN"); err != nil {
		return l.c.fail("write", l.t.label, err)
	}
	n, err := l.in.Insert(ctx, l.conn, b.Rows)
	if err == nil {
		_, err = l.conn.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		_, _ = l.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return l.c.fail("write", l.t.label, fmt.Errorf("thread %d: %w", thread, err))
	}
	l.rows += n
	return nil
}

// Commit moves the staged rows into the target together with the run's
// commit marker, in one transaction, and releases the staging table.
func (l *load) Commit(ctx context.Context) (spi.Commit, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return spi.Commit{}, l.c.fail("commit", l.t.label, fmt.Errorf("%w: the load was committed or aborted already", spi.ErrInvalid))
	}
	m := marker()
	if _, err := l.conn.ExecContext(ctx, m.Create); err != nil {
		return spi.Commit{}, l.c.fail("commit", l.t.label, fmt.Errorf("create %s: %w", spi.CommitTable, err))
	}
	var apply []sqlrow.Statement
	if l.spec.Mode == spi.ModeTruncateInsert {
		apply = append(apply, sqlrow.Statement{SQL: "DELETE FROM " + l.t.quoted})
	}
	ins := "INSERT INTO " + l.t.quoted + " (" + l.cols + ") SELECT " + l.cols + " FROM " + l.stage + " WHERE true"
	if l.spec.Mode == spi.ModeUpsert {
		ins += l.onConflict()
	}
	apply = append(apply, sqlrow.Statement{SQL: ins, CheckRows: l.spec.Mode != spi.ModeUpsert})
	tx, err := l.conn.BeginTx(ctx, nil) // BEGIN IMMEDIATE
	if err != nil {
		return spi.Commit{}, l.c.fail("commit", l.t.label, err)
	}
	err = m.Commit(ctx, tx, sqlrow.CommitParams{
		RunID: l.spec.RunID, Mapping: l.spec.Mapping, Target: l.t.label, Watermark: l.spec.Watermark, Rows: l.rows, Apply: apply,
	})
	if err != nil {
		if errors.Is(err, spi.ErrAlreadyCommitted) {
			l.release(ctx)
		}
		return spi.Commit{}, l.c.fail("commit", l.t.label, err)
	}
	l.committed = true
	l.release(ctx)
	return spi.Commit{Rows: l.rows}, nil
}

// onConflict returns the upsert clause: every loaded column not in the key
// takes the staged value.
func (l *load) onConflict() string {
	keys := make([]string, len(l.spec.Key))
	for i, k := range l.spec.Key {
		keys[i] = quote(k)
	}
	var set []string
	for _, col := range l.t.cols {
		if !slices.ContainsFunc(l.spec.Key, func(k string) bool { return strings.EqualFold(k, col.Name) }) {
			q := quote(col.Name)
			set = append(set, q+" = excluded."+q)
		}
	}
	clause := " ON CONFLICT (" + strings.Join(keys, ", ") + ") DO "
	if len(set) == 0 {
		return clause + "NOTHING"
	}
	return clause + "UPDATE SET " + strings.Join(set, ", ")
}

// release drops the staging table and gives the connection back; a
// connection whose table could not be dropped is discarded instead.
func (l *load) release(ctx context.Context) {
	if l.conn == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if l.in != nil {
		l.in.Close()
	}
	if _, err := l.conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+l.stage); err != nil {
		l.c.log.Warn("drop staging table; discarding its connection", slog.String("run_id", l.spec.RunID), slog.Any("err", err))
		_ = l.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	l.conn.Close()
	l.conn = nil
}

// Abort drops the staging table. It is safe after Commit, failed or not.
func (l *load) Abort(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.release(ctx)
	return nil
}
