package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/weirdata/weir/connector/spi"
)

// copyFlushBytes is how much encoded data a load gathers from Write calls
// before it sends one COPY: fewer statements, whatever the batch size.
const copyFlushBytes = 4 << 20

var runIDForm = regexp.MustCompile(`^[A-Za-z0-9]{1,40}$`)

// stageTable is the temporary table a staged load copies into. It lives in
// the load's session and transaction only (ON COMMIT DROP), so a crash
// leaves nothing behind.
const stageTable = "pg_temp.weir_stage"

// Begin checks the target and the load (mode, upsert key), then opens the
// load's transaction on a connection of its own and inserts the run's commit
// marker in it, where it stays invisible until Commit. The marker serializes
// attempts of one run: while an earlier attempt's transaction is open, Begin
// waits for it; when the run was committed already, the load discards its
// rows and Commit reports ErrAlreadyCommitted.
//
// Rows go straight into the target with binary COPY in that transaction
// (truncate_insert empties the target first, holding its lock until
// Commit) when every field has a binary form for its column's type (see
// encoderFor). An upsert, or a field bound for another type (an interval,
// an inet ...), goes through a temporary staging table in the same
// transaction, whose rows Commit inserts with a cast to each column's type.
// Either way nothing is visible, and nothing is left behind by a crash,
// before Commit.
func (c *Conn) Begin(ctx context.Context, spec spi.LoadSpec) (spi.Load, error) {
	l, err := c.begin(ctx, spec)
	if err != nil {
		return nil, c.fail("begin", spec.Dataset.Table, ctxErr(ctx, err))
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
	l := &load{c: c, spec: spec, mode: mode, target: t, direct: mode != spi.ModeUpsert}
	l.encoders = make([]encoder, len(spec.Schema))
	cols := make([]string, len(spec.Schema))
	for i, f := range spec.Schema {
		cols[i] = quoteIdent(f.Name)
		l.encoders[i] = encoderFor(f.Type, t.cols[f.Name].baseOID)
		if l.encoders[i] == nil {
			l.direct = false
		}
	}
	into := t.rel.name.sanitize()
	if !l.direct {
		into = stageTable
		for i, f := range spec.Schema {
			l.encoders[i] = encoderFor(f.Type, stageOID(f.Type))
		}
	}
	l.copySQL = "COPY " + into + " (" + strings.Join(cols, ", ") + ") FROM STDIN (FORMAT binary)"
	l.pending = append(l.pending, copyHeader...)

	if err := c.ensureCommitTable(ctx); err != nil {
		return nil, err
	}
	pc, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	l.conn = pc
	if err := l.open(ctx); err != nil {
		l.rollback()
		return nil, err
	}
	c.mu.Lock()
	c.loads[l] = struct{}{}
	c.mu.Unlock()
	return l, nil
}

// open starts the load's transaction: the marker, then the staging table
// or the emptying of the target.
func (l *load) open(ctx context.Context) error {
	if _, err := l.conn.Exec(ctx, "BEGIN ISOLATION LEVEL READ COMMITTED"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	var watermark *string
	if l.spec.Watermark != "" {
		watermark = &l.spec.Watermark
	}
	tag, err := l.conn.Exec(ctx, "INSERT INTO "+l.c.commitsTable()+` (run_id, mapping, target, watermark, rows, committed_at)
		VALUES ($1, $2, $3, $4, 0, clock_timestamp()) ON CONFLICT (run_id) DO NOTHING`,
		l.spec.RunID, l.spec.Mapping, l.target.rel.name.String(), watermark)
	if err != nil {
		return fmt.Errorf("insert commit marker: %w", err)
	}
	if tag.RowsAffected() == 0 {
		// Committed by an earlier attempt: nothing to load.
		l.already = true
		l.rollback()
		return nil
	}
	if !l.direct {
		var ddl strings.Builder
		ddl.WriteString("CREATE TEMP TABLE weir_stage (")
		for i, f := range l.spec.Schema {
			if i > 0 {
				ddl.WriteString(", ")
			}
			ddl.WriteString(quoteIdent(f.Name) + " " + stageType(f.Type))
		}
		ddl.WriteString(") ON COMMIT DROP")
		if _, err := l.conn.Exec(ctx, ddl.String()); err != nil {
			return fmt.Errorf("create staging table: %w", err)
		}
	} else if l.mode == spi.ModeTruncateInsert {
		if err := l.empty(ctx); err != nil {
			return err
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

// load is one attempt's load: a transaction on a connection of its own.
type load struct {
	c        *Conn
	spec     spi.LoadSpec
	mode     spi.WriteMode
	target   *target
	direct   bool // COPY into the target; else into the staging table
	encoders []encoder
	copySQL  string

	mu          sync.Mutex
	conn        *pgxpool.Conn // nil once released
	already     bool          // the run was committed before: rows are discarded
	pending     []byte        // COPY header and the tuples not sent yet
	pendingLocs []string      // each pending tuple's source location, "" unknown
	staged      int64         // rows sent
	err         error         // a failure that lost the transaction
	state       string        // "" open, "committed", "aborted", "failed"
}

// copyHeader starts a binary COPY stream: signature, flags, extension length.
var copyHeader = append([]byte("PGCOPY\n\xff\r\n\x00"), 0, 0, 0, 0, 0, 0, 0, 0)

// bufPool holds encoding buffers for Write; one larger than
// maxPooledBuffer is left to the garbage collector.
var bufPool = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledBuffer = 16 << 20

// Write encodes b's rows (concurrently with other threads' Write calls)
// and queues them for the load's COPY, which runs each time copyFlushBytes
// are queued and at Commit. A value that does not fit its field type fails
// the Write with the row's location; a value the server refuses fails the
// load (the transaction is lost), naming the row when the batch gave Locs.
func (l *load) Write(ctx context.Context, _ int, b spi.Batch) error {
	if len(b.Rows) == 0 {
		return nil
	}
	l.mu.Lock()
	state, failed, already := l.state, l.err, l.already
	l.mu.Unlock()
	switch {
	case state != "":
		return l.c.fail("write", l.target.rel.name.String(), fmt.Errorf("write after the load was %s", state))
	case failed != nil:
		return l.c.fail("write", l.target.rel.name.String(), failed)
	case already:
		return nil
	}
	bp := bufPool.Get().(*[]byte)
	data, err := l.encode((*bp)[:0], b)
	defer func() {
		if cap(data) <= maxPooledBuffer {
			*bp = data[:0]
			bufPool.Put(bp)
		}
	}()
	if err != nil {
		return l.c.fail("write", l.target.rel.name.String(), err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.c.fail("write", l.target.rel.name.String(), l.err)
	}
	l.pending = append(l.pending, data...)
	for i := range b.Rows {
		loc := ""
		if i < len(b.Locs) {
			loc = b.Locs[i]
		}
		l.pendingLocs = append(l.pendingLocs, loc)
	}
	if len(l.pending) >= copyFlushBytes {
		if err := l.flush(ctx); err != nil {
			return l.c.fail("write", l.target.rel.name.String(), err)
		}
	}
	return nil
}

// encode appends b's rows as binary COPY tuples.
func (l *load) encode(buf []byte, b spi.Batch) ([]byte, error) {
	schema := l.spec.Schema
	for i, row := range b.Rows {
		if len(row) != len(schema) {
			return buf, fmt.Errorf("%s: row has %d values, the schema has %d fields", rowLoc(b, i), len(row), len(schema))
		}
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(schema)))
		for j, v := range row {
			if v == nil {
				buf = binary.BigEndian.AppendUint32(buf, 0xFFFFFFFF) // NULL
				continue
			}
			out, err := l.encoders[j](buf, v)
			if err != nil {
				return buf, fmt.Errorf("%s: field %s: %w", rowLoc(b, i), schema[j].Name, err)
			}
			buf = out
		}
	}
	return buf, nil
}

// rowLoc names row i of b for an error.
func rowLoc(b spi.Batch, i int) string {
	if i < len(b.Locs) && b.Locs[i] != "" {
		return b.Locs[i]
	}
	return fmt.Sprintf("row %d of the batch", i+1)
}

// flush sends the pending tuples with one COPY. l.mu is held.
func (l *load) flush(ctx context.Context) error {
	if len(l.pendingLocs) == 0 {
		return nil
	}
	data := append(l.pending, 0xFF, 0xFF) // trailer
	tag, err := l.conn.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(data), l.copySQL)
	if err != nil {
		l.err = l.copyError(ctxErr(ctx, err))
		return l.err
	}
	l.staged += tag.RowsAffected()
	l.pending = l.pending[:len(copyHeader)]
	l.pendingLocs = l.pendingLocs[:0]
	return nil
}

var copyLine = regexp.MustCompile(`, line (\d+)`)

// copyError names the source of the row a COPY refused, when known.
func (l *load) copyError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if m := copyLine.FindStringSubmatch(pe.Where); m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= 1 && n <= len(l.pendingLocs) && l.pendingLocs[n-1] != "" {
				return fmt.Errorf("copy into %s: %s: %w", l.target.rel.name, l.pendingLocs[n-1], err)
			}
		}
	}
	return fmt.Errorf("copy into %s: %w", l.target.rel.name, err)
}

// Commit sends what is pending, applies a staged load (truncate_insert
// empties the target; upsert inserts the last staged row of each key,
// updating existing rows: ON CONFLICT (key) DO UPDATE), records the row
// count in the marker and commits: the rows, the marker and the watermark
// become visible together. A run committed before gives ErrAlreadyCommitted
// and changes nothing.
func (l *load) Commit(ctx context.Context) (spi.Commit, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != "" {
		return spi.Commit{}, l.c.fail("commit", l.target.rel.name.String(), fmt.Errorf("commit after the load was %s", l.state))
	}
	n, err := l.commit(ctx)
	if err != nil {
		l.state = "failed"
		l.rollback()
		return spi.Commit{}, l.c.fail("commit", l.target.rel.name.String(), ctxErr(ctx, err))
	}
	l.state = "committed"
	l.release()
	return spi.Commit{Rows: n}, nil
}

func (l *load) commit(ctx context.Context) (int64, error) {
	switch {
	case l.already:
		return 0, fmt.Errorf("run %s: %w", l.spec.RunID, spi.ErrAlreadyCommitted)
	case l.err != nil:
		return 0, l.err
	}
	if err := l.flush(ctx); err != nil {
		return 0, err
	}
	n := l.staged
	if !l.direct {
		if l.mode == spi.ModeTruncateInsert {
			if err := l.empty(ctx); err != nil {
				return 0, err
			}
		}
		tag, err := l.conn.Exec(ctx, l.applySQL())
		if err != nil {
			return 0, fmt.Errorf("%s staged rows into %s: %w", l.mode, l.target.rel.name, err)
		}
		n = tag.RowsAffected()
	}
	if _, err := l.conn.Exec(ctx, "UPDATE "+l.c.commitsTable()+" SET rows = $2, committed_at = clock_timestamp() WHERE run_id = $1", l.spec.RunID, n); err != nil {
		return 0, fmt.Errorf("record rows in commit marker: %w", err)
	}
	if _, err := l.conn.Exec(ctx, "COMMIT"); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return n, nil
}

// empty removes the target's rows for truncate_insert: TRUNCATE, or
// DELETE when foreign keys point at the table.
func (l *load) empty(ctx context.Context) error {
	var referenced bool
	if err := l.conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE confrelid = $1 AND contype = 'f')", l.target.rel.oid).Scan(&referenced); err != nil {
		return fmt.Errorf("read foreign keys of %s: %w", l.target.rel.name, err)
	}
	sql := "TRUNCATE " + l.target.rel.name.sanitize()
	if referenced {
		sql = "DELETE FROM " + l.target.rel.name.sanitize()
	}
	if _, err := l.conn.Exec(ctx, sql); err != nil {
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
		return sql + strings.Join(vals, ", ") + " FROM " + stageTable + " AS s"
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
		" FROM " + stageTable + " AS s ORDER BY s." + strings.Join(keys, ", s.") + ", s.ctid DESC" +
		" ON CONFLICT (" + strings.Join(keys, ", ") + ") DO "
	if len(sets) == 0 {
		return sql + "NOTHING"
	}
	return sql + "UPDATE SET " + strings.Join(sets, ", ")
}

// ensureCommitTable creates weir_commits when it does not exist. It looks
// first: CREATE INDEX IF NOT EXISTS would lock the table against the marker
// inserts of loads in progress, and wait for them.
func (c *Conn) ensureCommitTable(ctx context.Context) error {
	c.mu.Lock()
	known := c.commitTable
	c.mu.Unlock()
	if known {
		return nil
	}
	var exists bool
	err := c.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL",
		c.commitsTable(), pgx.Identifier{c.commitSchema, spi.CommitTable + "_mapping"}.Sanitize()).Scan(&exists)
	if err != nil {
		return fmt.Errorf("look up commit-marker table %s: %w", c.commitsTable(), err)
	}
	if !exists {
		if err := c.createCommitTable(ctx); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.commitTable = true
	c.mu.Unlock()
	return nil
}

func (c *Conn) createCommitTable(ctx context.Context) error {
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

// Abort rolls the load's transaction back: nothing it wrote stays. It is
// safe after a failed Commit and twice; after a successful Commit it does
// nothing.
func (l *load) Abort(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == "committed" {
		return nil
	}
	l.state = "aborted"
	l.rollback()
	return nil
}

// rollback ends the transaction, if the connection is still held. A
// connection that cannot roll back is closed by the pool on release, which
// ends the transaction on the server. l.mu is held.
func (l *load) rollback() {
	if l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = l.conn.Exec(ctx, "ROLLBACK")
	}
	l.release()
}

// release hands the connection back and forgets the load. l.mu is held,
// or the load is not shared yet.
func (l *load) release() {
	if l.conn != nil {
		l.conn.Release()
		l.conn = nil
	}
	l.c.mu.Lock()
	delete(l.c.loads, l)
	l.c.mu.Unlock()
}
