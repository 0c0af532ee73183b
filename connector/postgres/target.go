package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/weirdata/weir/connector/spi"
)

// targetColumn is one column of a target table.
type targetColumn struct {
	name      string
	ftype     spi.FieldType // how this package reads it
	baseOID   uint32
	typ       string // the type's quoted name (typeRef): what staged values are cast to
	shown     string // format_type(atttypid, atttypmod), for errors
	notNull   bool
	defaulted bool // has a default, or is an identity column
	generated bool
}

// target is a resolved target table.
type target struct {
	rel  relation
	cols map[string]*targetColumn
	// order is the table's columns in their order.
	order []string
}

// target resolves ds as a table that rows can be inserted into.
func (c *Conn) target(ctx context.Context, ds spi.Dataset) (*target, error) {
	if ds.Query != "" {
		return nil, fmt.Errorf("%w: a query cannot be a target; name a table", spi.ErrInvalid)
	}
	if ds.Table == "" {
		return nil, fmt.Errorf("%w: a target dataset needs a table", spi.ErrInvalid)
	}
	rel, err := c.resolve(ctx, ds.Table)
	if err != nil {
		return nil, err
	}
	if rel.relkind != "r" && rel.relkind != "p" {
		return nil, fmt.Errorf("%w: %s is %s, not a table rows can be loaded into", spi.ErrInvalid, rel.name, relkindName(rel.relkind, ""))
	}
	pc, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", rel.name, err)
	}
	defer pc.Release()
	// The row description reports domains as their base types.
	sd, err := pc.Conn().PgConn().Prepare(ctx, "", "SELECT * FROM "+rel.name.sanitize(), nil)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", rel.name, err)
	}
	base := map[uint16]uint32{}
	for _, f := range sd.Fields {
		base[f.TableAttributeNumber] = f.DataTypeOID
	}
	rows, err := pc.Query(ctx, `SELECT a.attnum, a.attname, `+typeRef+`, format_type(a.atttypid, a.atttypmod),
			a.attnotnull, a.atthasdef OR a.attidentity <> '', a.attgenerated <> ''
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, rel.oid)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", rel.name, err)
	}
	t := &target{rel: rel, cols: map[string]*targetColumn{}}
	var num int16
	var col targetColumn
	_, err = pgx.ForEachRow(rows, []any{&num, &col.name, &col.typ, &col.shown, &col.notNull, &col.defaulted, &col.generated}, func() error {
		cc := col
		cc.baseOID = base[uint16(num)]
		cc.ftype, _ = fieldType(cc.baseOID)
		t.cols[cc.name] = &cc
		t.order = append(t.order, cc.name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", rel.name, err)
	}
	return t, nil
}

// check verifies that rows of schema fit t.
func (t *target) check(schema spi.Schema) error {
	if len(schema) == 0 {
		return fmt.Errorf("%w: the schema has no fields", spi.ErrInvalid)
	}
	seen := map[string]bool{}
	for _, f := range schema {
		if seen[f.Name] {
			return fmt.Errorf("%w: the schema has two fields named %s", spi.ErrInvalid, f.Name)
		}
		seen[f.Name] = true
		col, ok := t.cols[f.Name]
		if !ok {
			return fmt.Errorf("%w: table %s has no column %s", spi.ErrInvalid, t.rel.name, f.Name)
		}
		if col.generated {
			return fmt.Errorf("%w: column %s of table %s is generated; it takes no values", spi.ErrInvalid, f.Name, t.rel.name)
		}
		if !compatible(f.Type, col.ftype) {
			return fmt.Errorf("%w: column %s is %s, the field is %s", spi.ErrInvalid, f.Name, col.shown, f.Type)
		}
	}
	for _, name := range t.order {
		col := t.cols[name]
		if col.notNull && !col.defaulted && !col.generated && !seen[name] {
			return fmt.Errorf("%w: column %s of table %s is NOT NULL without a default, and the schema has no field %s", spi.ErrInvalid, name, t.rel.name, name)
		}
	}
	return nil
}

// Check verifies that ds is a table with a column of a compatible type for
// every field of schema (int into integer, numeric or float columns; float
// and decimal into numeric or float; date into date or timestamp; any other
// type into a column read as the same type, string taking every type read as
// its text), and that no NOT NULL column without a default is left out.
// It changes nothing.
func (c *Conn) Check(ctx context.Context, ds spi.Dataset, schema spi.Schema) error {
	t, err := c.target(ctx, ds)
	if err != nil {
		return c.fail("check", ds.Table, err)
	}
	if err := t.check(schema); err != nil {
		return c.fail("check", ds.Table, err)
	}
	return nil
}

// commitsTable is the qualified commit-marker table.
func (c *Conn) commitsTable() string {
	return pgx.Identifier{c.commitSchema, spi.CommitTable}.Sanitize()
}

// Committed reports whether runID's marker is in weir_commits.
func (c *Conn) Committed(ctx context.Context, runID string) (bool, error) {
	var one int
	err := c.pool.QueryRow(ctx, "SELECT 1 FROM "+c.commitsTable()+" WHERE run_id = $1", runID).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows), pgCode(err) == "42P01": // no marker, or no marker table yet
		return false, nil
	case err != nil:
		return false, c.fail("committed", spi.CommitTable, fmt.Errorf("read commit marker of run %s: %w", runID, err))
	}
	return true, nil
}

// LastWatermark returns the watermark of the mapping's latest committed run
// that recorded one.
func (c *Conn) LastWatermark(ctx context.Context, mapping string) (string, bool, error) {
	var w string
	err := c.pool.QueryRow(ctx, "SELECT watermark FROM "+c.commitsTable()+
		" WHERE mapping = $1 AND watermark IS NOT NULL ORDER BY committed_at DESC, run_id DESC LIMIT 1", mapping).Scan(&w)
	switch {
	case errors.Is(err, pgx.ErrNoRows), pgCode(err) == "42P01":
		return "", false, nil
	case err != nil:
		return "", false, c.fail("watermark", spi.CommitTable, fmt.Errorf("read last watermark of mapping %s: %w", mapping, err))
	}
	return w, true, nil
}

var runIDForm = regexp.MustCompile(`^[A-Za-z0-9]{1,40}$`)

// stagePrefix is the start of every staging table's name.
const stagePrefix = "weir_stage_"

// Begin checks the target and the load (mode, upsert key), drops what
// earlier attempts of the same run staged, and creates this attempt's
// staging table: an unlogged table weir_stage_<run_id>_<attempt> in the
// target's schema, with one column per field in the field type's natural
// PostgreSQL type, that every thread copies into.
func (c *Conn) Begin(ctx context.Context, spec spi.LoadSpec) (spi.Load, error) {
	l, err := c.begin(ctx, spec)
	if err != nil {
		return nil, c.fail("begin", spec.Dataset.Table, err)
	}
	return l, nil
}

func (c *Conn) begin(ctx context.Context, spec spi.LoadSpec) (*load, error) {
	if !runIDForm.MatchString(spec.RunID) {
		return nil, fmt.Errorf("%w: run id %q must be 1 to 40 letters and digits", spi.ErrInvalid, spec.RunID)
	}
	if spec.Attempt < 0 {
		return nil, fmt.Errorf("%w: attempt %d is negative", spi.ErrInvalid, spec.Attempt)
	}
	mode := spec.Mode
	if mode == "" {
		mode = spi.ModeAppend
	}
	if mode != spi.ModeAppend && mode != spi.ModeTruncateInsert && mode != spi.ModeUpsert {
		return nil, fmt.Errorf("%w: write mode %q is not append, truncate_insert or upsert", spi.ErrInvalid, spec.Mode)
	}
	t, err := c.target(ctx, spec.Dataset)
	if err != nil {
		return nil, err
	}
	if err := t.check(spec.Schema); err != nil {
		return nil, err
	}
	if mode == spi.ModeUpsert {
		if err := c.checkUpsertKey(ctx, t, spec); err != nil {
			return nil, err
		}
	}
	l := &load{
		c:      c,
		spec:   spec,
		mode:   mode,
		target: t,
		stage:  tableName{Schema: t.rel.name.Schema, Name: fmt.Sprintf("%s%s_%d", stagePrefix, spec.RunID, spec.Attempt)},
	}
	if err := c.dropStages(ctx, t.rel.name.Schema, spec.RunID); err != nil {
		return nil, err
	}
	var ddl strings.Builder
	ddl.WriteString("CREATE UNLOGGED TABLE " + l.stage.sanitize() + " (")
	cols := make([]string, len(spec.Schema))
	for i, f := range spec.Schema {
		if i > 0 {
			ddl.WriteString(", ")
		}
		cols[i] = quoteIdent(f.Name)
		ddl.WriteString(cols[i] + " " + stageType(f.Type))
	}
	ddl.WriteString(")")
	if _, err := c.pool.Exec(ctx, ddl.String()); err != nil {
		return nil, fmt.Errorf("create staging table %s: %w", l.stage, err)
	}
	l.copySQL = "COPY " + l.stage.sanitize() + " (" + strings.Join(cols, ", ") + ") FROM STDIN (FORMAT binary)"
	return l, nil
}

// dropStages drops the staging tables earlier attempts of runID left.
func (c *Conn) dropStages(ctx context.Context, schema, runID string) error {
	rows, err := c.pool.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind = 'r' AND starts_with(c.relname, $2)`, schema, stagePrefix+runID+"_")
	if err != nil {
		return fmt.Errorf("list staging tables of run %s: %w", runID, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list staging tables of run %s: %w", runID, err)
	}
	attempt := regexp.MustCompile(`^` + regexp.QuoteMeta(stagePrefix+runID+"_") + `[0-9]+$`)
	for _, n := range names {
		if !attempt.MatchString(n) {
			continue
		}
		if _, err := c.pool.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{schema, n}.Sanitize()); err != nil {
			return fmt.Errorf("drop staging table %s: %w", n, err)
		}
	}
	return nil
}

// checkUpsertKey verifies that the key names fields and that a unique index
// (or primary key) of the table covers exactly the key, as ON CONFLICT needs.
func (c *Conn) checkUpsertKey(ctx context.Context, t *target, spec spi.LoadSpec) error {
	if len(spec.Key) == 0 {
		return fmt.Errorf("%w: upsert into %s needs a key", spi.ErrInvalid, t.rel.name)
	}
	for _, k := range spec.Key {
		if !slices.ContainsFunc(spec.Schema, func(f spi.Field) bool { return f.Name == k }) {
			return fmt.Errorf("%w: upsert key %s is not a field of the schema", spi.ErrInvalid, k)
		}
	}
	var ok bool
	err := c.pool.QueryRow(ctx, `SELECT EXISTS (
			SELECT 1 FROM pg_index i
			WHERE i.indrelid = $1 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
			AND (SELECT array_agg(a.attname::text ORDER BY a.attname)
				FROM unnest(i.indkey[0:i.indnkeyatts-1]) AS k(attnum)
				JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
				= (SELECT array_agg(k ORDER BY k) FROM unnest($2::text[]) AS k))`, t.rel.oid, spec.Key).Scan(&ok)
	if err != nil {
		return fmt.Errorf("read unique indexes of %s: %w", t.rel.name, err)
	}
	if !ok {
		return fmt.Errorf("%w: upsert key (%s) of %s has no primary key or unique index on exactly those columns", spi.ErrInvalid, strings.Join(spec.Key, ", "), t.rel.name)
	}
	return nil
}

// load is one attempt's staged load.
type load struct {
	c       *Conn
	spec    spi.LoadSpec
	mode    spi.WriteMode
	target  *target
	stage   tableName
	copySQL string

	staged atomic.Int64
	mu     sync.Mutex
	state  string // "" open, "committed", "aborted", "failed"
}

// bufPool holds encoding buffers for Write; one larger than
// maxPooledBuffer is left to the garbage collector.
var bufPool = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledBuffer = 64 << 20

// Write copies b's rows into the staging table with binary COPY, on a
// connection of its own, so that threads write in parallel.
func (l *load) Write(ctx context.Context, thread int, b spi.Batch) error {
	if len(b.Rows) == 0 {
		return nil
	}
	l.mu.Lock()
	state := l.state
	l.mu.Unlock()
	if state != "" {
		return l.c.fail("write", l.target.rel.name.String(), fmt.Errorf("write after the load was %s", state))
	}
	bp := bufPool.Get().(*[]byte)
	data, err := l.encode((*bp)[:0], b)
	if err != nil {
		bufPool.Put(bp)
		return l.c.fail("write", l.target.rel.name.String(), err)
	}
	defer func() {
		if cap(data) <= maxPooledBuffer {
			*bp = data[:0]
			bufPool.Put(bp)
		}
	}()
	pc, err := l.c.pool.Acquire(ctx)
	if err != nil {
		return l.c.fail("write", l.target.rel.name.String(), fmt.Errorf("thread %d: %w", thread, err))
	}
	defer pc.Release()
	tag, err := pc.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(data), l.copySQL)
	if err != nil {
		return l.c.fail("write", l.target.rel.name.String(), fmt.Errorf("thread %d: copy into staging table %s: %w", thread, l.stage, err))
	}
	l.staged.Add(tag.RowsAffected())
	return nil
}

// encode appends b's rows as a binary COPY stream.
func (l *load) encode(buf []byte, b spi.Batch) ([]byte, error) {
	buf = append(buf, copySignature...)
	buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0) // flags, header extension length
	schema := l.spec.Schema
	for i, row := range b.Rows {
		if len(row) != len(schema) {
			return nil, fmt.Errorf("%s: row has %d values, the schema has %d fields", l.loc(b, i), len(row), len(schema))
		}
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(schema)))
		for j, v := range row {
			var err error
			if buf, err = appendValue(buf, schema[j].Type, v); err != nil {
				return nil, fmt.Errorf("%s: field %s: %w", l.loc(b, i), schema[j].Name, err)
			}
		}
	}
	return binary.BigEndian.AppendUint16(buf, 0xFFFF), nil
}

// loc names row i of b for an error.
func (l *load) loc(b spi.Batch, i int) string {
	if i < len(b.Locs) && b.Locs[i] != "" {
		return b.Locs[i]
	}
	return fmt.Sprintf("row %d of the batch", i+1)
}

// Commit applies the staged rows to the target in one transaction together
// with the run's commit marker: it inserts the marker (a marker already there
// means an earlier attempt committed: nothing changes, ErrAlreadyCommitted),
// applies the write mode (append: insert; truncate_insert: empty the target
// first, by TRUNCATE, or DELETE when foreign keys point at it; upsert: insert
// the last staged row of each key, updating existing rows), records the row
// count and drops the staging table, then commits.
func (l *load) Commit(ctx context.Context) (spi.Commit, error) {
	l.mu.Lock()
	if l.state != "" {
		state := l.state
		l.mu.Unlock()
		return spi.Commit{}, l.c.fail("commit", l.target.rel.name.String(), fmt.Errorf("commit after the load was %s", state))
	}
	l.state = "failed" // until it succeeds
	l.mu.Unlock()
	n, err := l.commit(ctx)
	if err != nil {
		return spi.Commit{}, l.c.fail("commit", l.target.rel.name.String(), err)
	}
	l.mu.Lock()
	l.state = "committed"
	l.mu.Unlock()
	return spi.Commit{Rows: n}, nil
}

func (l *load) commit(ctx context.Context) (int64, error) {
	if err := l.c.ensureCommitTable(ctx); err != nil {
		return 0, err
	}
	tx, err := l.c.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var watermark *string
	if l.spec.Watermark != "" {
		watermark = &l.spec.Watermark
	}
	tag, err := tx.Exec(ctx, "INSERT INTO "+l.c.commitsTable()+` (run_id, mapping, target, watermark, rows, committed_at)
		VALUES ($1, $2, $3, $4, 0, clock_timestamp()) ON CONFLICT (run_id) DO NOTHING`,
		l.spec.RunID, l.spec.Mapping, l.target.rel.name.String(), watermark)
	if err != nil {
		return 0, fmt.Errorf("insert commit marker: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return 0, fmt.Errorf("run %s: %w", l.spec.RunID, spi.ErrAlreadyCommitted)
	}
	if l.mode == spi.ModeTruncateInsert {
		if err := l.empty(ctx, tx); err != nil {
			return 0, err
		}
	}
	tag, err = tx.Exec(ctx, l.applySQL())
	if err != nil {
		return 0, fmt.Errorf("%s staged rows into %s: %w", l.mode, l.target.rel.name, err)
	}
	n := tag.RowsAffected()
	if _, err := tx.Exec(ctx, "UPDATE "+l.c.commitsTable()+" SET rows = $2 WHERE run_id = $1", l.spec.RunID, n); err != nil {
		return 0, fmt.Errorf("record rows in commit marker: %w", err)
	}
	if _, err := tx.Exec(ctx, "DROP TABLE "+l.stage.sanitize()); err != nil {
		return 0, fmt.Errorf("drop staging table %s: %w", l.stage, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return n, nil
}

// empty removes the target's rows for truncate_insert.
func (l *load) empty(ctx context.Context, tx pgx.Tx) error {
	var referenced bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE confrelid = $1 AND contype = 'f')", l.target.rel.oid).Scan(&referenced); err != nil {
		return fmt.Errorf("read foreign keys of %s: %w", l.target.rel.name, err)
	}
	sql := "TRUNCATE " + l.target.rel.name.sanitize()
	if referenced {
		sql = "DELETE FROM " + l.target.rel.name.sanitize()
	}
	if _, err := tx.Exec(ctx, sql); err != nil {
		return fmt.Errorf("empty %s: %w", l.target.rel.name, err)
	}
	return nil
}

// applySQL is the statement moving staged rows into the target, each value
// cast from its staging type to the column's type (without its modifier, so
// that the insert's own assignment checks lengths and precision).
func (l *load) applySQL() string {
	schema := l.spec.Schema
	cols := make([]string, len(schema))
	vals := make([]string, len(schema))
	for i, f := range schema {
		cols[i] = quoteIdent(f.Name)
		vals[i] = "s." + cols[i]
		if tc := l.target.cols[f.Name]; tc.baseOID != stageOID(f.Type) {
			vals[i] = "CAST(s." + cols[i] + " AS " + tc.typ + ")"
		}
	}
	sql := "INSERT INTO " + l.target.rel.name.sanitize() + " (" + strings.Join(cols, ", ") + ") SELECT "
	if l.mode != spi.ModeUpsert {
		return sql + strings.Join(vals, ", ") + " FROM " + l.stage.sanitize() + " AS s"
	}
	keys := make([]string, len(l.spec.Key))
	for i, k := range l.spec.Key {
		keys[i] = quoteIdent(k)
	}
	var sets []string
	for _, col := range cols {
		if !slices.Contains(keys, col) {
			sets = append(sets, col+" = EXCLUDED."+col)
		}
	}
	// The last staged row of a key wins; ON CONFLICT cannot take a key twice.
	sql += "DISTINCT ON (s." + strings.Join(keys, ", s.") + ") " + strings.Join(vals, ", ") +
		" FROM " + l.stage.sanitize() + " AS s ORDER BY s." + strings.Join(keys, ", s.") + ", s.ctid DESC" +
		" ON CONFLICT (" + strings.Join(keys, ", ") + ") DO "
	if len(sets) == 0 {
		return sql + "NOTHING"
	}
	return sql + "UPDATE SET " + strings.Join(sets, ", ")
}

// ensureCommitTable creates weir_commits when it does not exist.
func (c *Conn) ensureCommitTable(ctx context.Context) error {
	ddl := "CREATE TABLE IF NOT EXISTS " + c.commitsTable() + ` (
		run_id text PRIMARY KEY,
		mapping text NOT NULL,
		target text NOT NULL,
		watermark text,
		rows bigint NOT NULL,
		committed_at timestamptz NOT NULL);
	CREATE INDEX IF NOT EXISTS ` + quoteIdent(spi.CommitTable+"_mapping") + " ON " + c.commitsTable() + " (mapping, committed_at)"
	var err error
	for range 3 {
		// Two sessions creating it at once: one of them meets a duplicate
		// key in the catalog; the table is there on the next try.
		if _, err = c.pool.Exec(ctx, ddl); err == nil || (pgCode(err) != "23505" && pgCode(err) != "42P07") {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("create commit-marker table %s: %w", c.commitsTable(), err)
	}
	return nil
}

// Abort drops the staging table. It is safe after a failed Commit and twice.
func (l *load) Abort(ctx context.Context) error {
	l.mu.Lock()
	if l.state == "committed" {
		l.mu.Unlock()
		return nil
	}
	l.state = "aborted"
	l.mu.Unlock()
	if _, err := l.c.pool.Exec(ctx, "DROP TABLE IF EXISTS "+l.stage.sanitize()); err != nil {
		return l.c.fail("abort", l.target.rel.name.String(), fmt.Errorf("drop staging table %s: %w", l.stage, err))
	}
	return nil
}
