package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/weirdata/weir/connector/spi"
)

// Dataset options this connector reads, besides "partition_by" and
// "partitioning" (see Partitions).
const (
	// OptionReadMethod chooses how rows travel: "rows" (a query whose rows
	// come in the binary protocol, the default, see ReadMethodDefault) or
	// "copy" (COPY (SELECT ...) TO STDOUT in binary format).
	OptionReadMethod = "read_method"
	// OptionSnapshot, "false", reads each partition in its own snapshot
	// instead of one snapshot exported for the whole run.
	OptionSnapshot = "snapshot"
	// OptionPartitionMinRows is the fewest estimated rows worth a partition
	// of its own (PartitionMinRowsDefault).
	OptionPartitionMinRows = "partition_min_rows"
)

// ReadMethodDefault is the read method when a dataset names none. Measured
// on 2M rows of the benchmark table (PostgreSQL 15), rows cost the server
// 0.72-0.81 s of CPU and copy 0.88-0.90 s, the client the same for both
// (1.2-1.4 s); rows also binds its values where COPY takes literals.
const ReadMethodDefault = "rows"

// shape is what a dataset looks like: where rows come from and their columns.
type shape struct {
	label   string    // for people and errors: public.trades, or "query"
	table   tableName // resolved, schema set, when a table
	oid     uint32
	relkind string
	query   string // checked query, when a query
	cols    []column
	byName  map[string]int
}

// column is one column of a shape.
type column struct {
	name     string
	oid      uint32 // base type, as the row description reports it
	ftype    spi.FieldType
	native   bool // decoded from binary; else read as ::text
	nullable bool
	// precision and scale of a numeric(p,s), 0 when not declared
	precision, scale int
	typ              string // the type's quoted name (typeRef): what bound text is cast to
	dec              decoder
}

// from returns the FROM item of a full read, aliased q.
func (s *shape) from() string {
	if s.query == "" {
		return s.table.sanitize() + " AS q"
	}
	var b strings.Builder
	b.WriteString("(")
	b.WriteString(s.query)
	b.WriteString("\n) AS q(")
	for i, c := range s.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteIdent(c.name))
	}
	b.WriteString(")")
	return b.String()
}

// selectList returns the columns of a read, each native type as is and
// every other type as its text output.
func (s *shape) selectList() string {
	var b strings.Builder
	for i, c := range s.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("q.")
		b.WriteString(quoteIdent(c.name))
		if !c.native {
			b.WriteString("::text")
		}
	}
	return b.String()
}

// column returns the named column, with a precise error when there is none.
func (s *shape) column(name, role string) (*column, error) {
	i, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s column %q is not a column of %s", spi.ErrInvalid, role, name, s.label)
	}
	return &s.cols[i], nil
}

func (s *shape) schema() spi.Schema {
	out := make(spi.Schema, len(s.cols))
	for i, c := range s.cols {
		out[i] = spi.Field{Name: c.name, Type: c.ftype, Nullable: c.nullable, Precision: c.precision, Scale: c.scale}
	}
	return out
}

// shape describes ds, once per dataset per Conn.
func (c *Conn) shape(ctx context.Context, ds spi.Dataset) (*shape, error) {
	key := ds.Table + "\x00" + ds.Query
	c.mu.Lock()
	s := c.shapes[key]
	c.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := c.describe(ctx, ds)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.shapes[key] = s
	c.mu.Unlock()
	return s, nil
}

func (c *Conn) describe(ctx context.Context, ds spi.Dataset) (*shape, error) {
	switch {
	case ds.Table != "" && ds.Query != "":
		return nil, fmt.Errorf("%w: a dataset names a table or a query, not both", spi.ErrInvalid)
	case ds.Table == "" && ds.Query == "":
		return nil, fmt.Errorf("%w: a dataset needs a table or a query", spi.ErrInvalid)
	}
	s := &shape{}
	var probe string
	if ds.Table != "" {
		rel, err := c.resolve(ctx, ds.Table)
		if err != nil {
			return nil, err
		}
		s.label, s.table, s.oid, s.relkind = rel.name.String(), rel.name, rel.oid, rel.relkind
		probe = "SELECT * FROM " + rel.name.sanitize()
	} else {
		q, err := checkQuery(ds.Query)
		if err != nil {
			return nil, err
		}
		s.label, s.query = "query", q
		probe = "SELECT * FROM (" + q + "\n) AS q"
	}
	pc, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", s.label, err)
	}
	defer pc.Release()
	sd, err := pc.Conn().PgConn().Prepare(ctx, "", probe, nil)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", s.label, err)
	}
	if len(sd.ParamOIDs) > 0 {
		return nil, fmt.Errorf("%w: the query has parameters ($1 ...); Weir binds none", spi.ErrInvalid)
	}
	if len(sd.Fields) == 0 {
		return nil, fmt.Errorf("%w: %s has no columns", spi.ErrInvalid, s.label)
	}
	notNull := map[uint16]bool{}
	if s.query == "" {
		rows, err := pc.Query(ctx, "SELECT attnum, attnotnull FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped", s.oid)
		if err != nil {
			return nil, fmt.Errorf("describe %s: read columns: %w", s.label, err)
		}
		var num int16
		var nn bool
		_, err = pgx.ForEachRow(rows, []any{&num, &nn}, func() error { notNull[uint16(num)] = nn; return nil })
		if err != nil {
			return nil, fmt.Errorf("describe %s: read columns: %w", s.label, err)
		}
	}
	s.byName = map[string]int{}
	oids := make([]int64, 0, len(sd.Fields))
	for i, f := range sd.Fields {
		if _, dup := s.byName[f.Name]; dup {
			return nil, fmt.Errorf("%w: %s has two columns named %q; give them distinct aliases", spi.ErrInvalid, s.label, f.Name)
		}
		s.byName[f.Name] = i
		ft, native := fieldType(f.DataTypeOID)
		col := column{name: f.Name, oid: f.DataTypeOID, ftype: ft, native: native, nullable: true, dec: decodeText}
		if native {
			col.dec = decoderFor(f.DataTypeOID)
		}
		if f.DataTypeOID == pgtype.NumericOID && f.TypeModifier >= 4 {
			// numeric(p,s): typmod - 4 holds p above bit 16, s in 11 signed bits.
			m := f.TypeModifier - 4
			col.precision, col.scale = int(m>>16&0xffff), int((m&0x7ff)^1024)-1024
		}
		if s.query == "" && notNull[f.TableAttributeNumber] {
			col.nullable = false
		}
		s.cols = append(s.cols, col)
		oids = append(oids, int64(f.DataTypeOID))
	}
	rows, err := pc.Query(ctx, `SELECT `+typeRef+` FROM unnest($1::int8[]) WITH ORDINALITY AS u(o, n)
		JOIN pg_type t ON t.oid = u.o::oid JOIN pg_namespace tn ON tn.oid = t.typnamespace ORDER BY u.n`, oids)
	if err != nil {
		return nil, fmt.Errorf("describe %s: name types: %w", s.label, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("describe %s: name types: %w", s.label, err)
	}
	for i := range s.cols {
		s.cols[i].typ = names[i]
	}
	return s, nil
}

// typeRef is the SQL naming a type t (of pg_type, its namespace tn) for a
// cast: quoted and qualified, so that no type modifier applies ("bpchar",
// not "character", which means char(1)).
const typeRef = "quote_ident(tn.nspname) || '.' || quote_ident(t.typname)"

// relation is a resolved table.
type relation struct {
	name    tableName // schema set
	oid     uint32
	relkind string
}

// resolve finds the table named in a dataset.
func (c *Conn) resolve(ctx context.Context, table string) (relation, error) {
	tn, err := parseTable(table)
	if err != nil {
		return relation{}, err
	}
	var rel relation
	err = c.pool.QueryRow(ctx, `SELECT c.oid, n.nspname, c.relname, c.relkind::text
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass($1)`, tn.sanitize()).Scan(&rel.oid, &rel.name.Schema, &rel.name.Name, &rel.relkind)
	if errors.Is(err, pgx.ErrNoRows) {
		return relation{}, fmt.Errorf("%w: table %s does not exist", spi.ErrInvalid, tn)
	}
	if err != nil {
		return relation{}, fmt.Errorf("look up table %s: %w", tn, err)
	}
	switch rel.relkind {
	case "r", "p", "v", "m", "f":
		return rel, nil
	}
	return relation{}, fmt.Errorf("%w: %s is not a table or view", spi.ErrInvalid, tn)
}

// Describe returns the dataset's columns: PostgreSQL types mapped to field
// types (int2/4/8 and oid int; float4/8 float; numeric decimal; text, varchar,
// char, name, uuid, json, jsonb string; bool; date; timestamp and timestamptz
// timestamp; bytea bytes; every other type string, as its text output).
// Table columns are nullable unless NOT NULL; query columns always are.
func (c *Conn) Describe(ctx context.Context, ds spi.Dataset) (spi.Schema, error) {
	s, err := c.shape(ctx, ds)
	if err != nil {
		return nil, c.fail("describe", ds.Table, err)
	}
	return s.schema(), nil
}

// snapshot is one exported snapshot, held open by a transaction on a
// connection of its own, that every partition of the run reads in.
type snapshot struct {
	conn *pgxpool.Conn
	id   string
}

var snapshotID = regexp.MustCompile(`^[0-9A-Fa-f-]+$`)

func (s *snapshot) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5e9)
	defer cancel()
	_, _ = s.conn.Exec(ctx, "ROLLBACK")
	s.conn.Release()
}

// snapshotID returns the run's exported snapshot, exporting it on first use.
func (c *Conn) snapshotID(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap != nil {
		return c.snap.id, nil
	}
	pc, err := c.pool.Acquire(ctx)
	if err != nil {
		return "", fmt.Errorf("export snapshot: %w", err)
	}
	var id string
	_, err = pc.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
	if err == nil {
		err = pc.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&id)
	}
	if err == nil && !snapshotID.MatchString(id) {
		err = fmt.Errorf("unexpected snapshot id %q", id)
	}
	if err != nil {
		pc.Release() // mid-transaction: the pool closes it
		return "", fmt.Errorf("export snapshot: %w", err)
	}
	c.snap = &snapshot{conn: pc, id: id}
	return id, nil
}

// inRead runs fn on a connection inside a read-only transaction: in the
// run's snapshot unless ds's options turn it off. A connection left busy or
// inside the transaction by a failure is closed by the pool on release.
func (c *Conn) inRead(ctx context.Context, ds spi.Dataset, fn func(pg *pgconn.PgConn) error) error {
	begin := "BEGIN READ ONLY"
	if ds.Options[OptionSnapshot] != "false" {
		id, err := c.snapshotID(ctx)
		if err != nil {
			return err
		}
		begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '" + id + "'"
	}
	pc, err := c.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer pc.Release()
	pg := pc.Conn().PgConn()
	if err := pg.Exec(ctx, begin).Close(); err != nil {
		return err
	}
	if err := fn(pg); err != nil {
		return err
	}
	return pg.Exec(ctx, "COMMIT").Close()
}

// MaxWatermark returns max(column) as text, "" when the dataset is empty,
// read in the run's snapshot so that the rows read are exactly those up to it.
func (c *Conn) MaxWatermark(ctx context.Context, ds spi.Dataset, column string) (string, error) {
	s, err := c.shape(ctx, ds)
	if err != nil {
		return "", c.fail("watermark", ds.Table, err)
	}
	if _, err := s.column(column, "watermark"); err != nil {
		return "", c.fail("watermark", ds.Table, err)
	}
	sql := "SELECT max(q." + quoteIdent(column) + ")::text FROM " + s.from()
	var out string
	err = c.inRead(ctx, ds, func(pg *pgconn.PgConn) error {
		res := pg.ExecParams(ctx, sql, nil, nil, nil, nil).Read()
		if res.Err != nil {
			return res.Err
		}
		if len(res.Rows) == 1 && res.Rows[0][0] != nil {
			out = string(res.Rows[0][0])
		}
		return nil
	})
	if err != nil {
		return "", c.fail("watermark", s.label, fmt.Errorf("read max(%s): %w", column, ctxErr(ctx, err)))
	}
	return out, nil
}

// Read reads partition p of ds in batches of at most batchSize rows.
// Rows and their slices are reused from one batch to the next. A value that
// has no field value (NaN numeric, infinite date) makes its row a Bad record.
func (c *Conn) Read(ctx context.Context, ds spi.Dataset, p spi.Partition, batchSize int, emit func(spi.Batch) error) error {
	s, err := c.shape(ctx, ds)
	if err != nil {
		return c.fail("read", ds.Table, err)
	}
	if batchSize < 1 {
		batchSize = 1
	}
	method := ds.Options[OptionReadMethod]
	if method == "" {
		method = ReadMethodDefault
	}
	if method != "rows" && method != "copy" {
		return c.fail("read", s.label, fmt.Errorf("%w: option %s must be rows or copy, got %q", spi.ErrInvalid, OptionReadMethod, method))
	}
	plan, err := s.readPlan(ds, p)
	if err != nil {
		return c.fail("read", s.label, err)
	}
	sink := newRowSink(s.cols, batchSize, emit, fmt.Sprintf("%s partition %d", s.label, p.Seq))
	for _, from := range plan.froms {
		err := c.inRead(ctx, ds, func(pg *pgconn.PgConn) error {
			if method == "copy" {
				return readCopy(ctx, pg, s, from, plan, sink)
			}
			return readRows(ctx, pg, s, from, plan, sink)
		})
		if err != nil {
			var ee *emitError
			if errors.As(err, &ee) {
				return ee.err
			}
			return c.fail("read", s.label, fmt.Errorf("read partition %d (%s): %w", p.Seq, p.Desc, ctxErr(ctx, err)))
		}
	}
	if err := sink.flush(); err != nil {
		return err
	}
	return nil
}

// emitError carries an error of the caller's emit through the connection
// code, so that Read returns it as it is.
type emitError struct{ err error }

func (e *emitError) Error() string { return e.err.Error() }
func (e *emitError) Unwrap() error { return e.err }

// readRows reads with a query whose rows come in binary.
func readRows(ctx context.Context, pg *pgconn.PgConn, s *shape, from string, plan *readPlan, sink *rowSink) error {
	sql := "SELECT " + s.selectList() + " FROM " + from + plan.where(func(i int) string { return fmt.Sprintf("$%d", i+1) })
	params := make([][]byte, len(plan.args))
	oids := make([]uint32, len(plan.args))
	for i, a := range plan.args {
		params[i] = []byte(a)
		oids[i] = 25 // text: the SQL casts it
	}
	formats := make([]int16, len(s.cols))
	for i := range formats {
		formats[i] = 1
	}
	rr := pg.ExecParams(ctx, sql, params, oids, nil, formats)
	for rr.NextRow() {
		if err := sink.add(rr.Values()); err != nil {
			return &emitError{err}
		}
	}
	_, err := rr.Close()
	return err
}

// readCopy reads with COPY (SELECT ...) TO STDOUT in binary. COPY takes no
// parameters, so the plan's values (validated numbers, timestamps and the
// watermark) go in as quoted literals.
func readCopy(ctx context.Context, pg *pgconn.PgConn, s *shape, from string, plan *readPlan, sink *rowSink) error {
	sql := "COPY (SELECT " + s.selectList() + " FROM " + from + plan.where(func(i int) string { return quoteLiteral(plan.args[i]) }) + ") TO STDOUT (FORMAT binary)"
	cp := &copyParser{sink: sink, fields: make([][]byte, len(s.cols))}
	_, err := pg.CopyTo(ctx, cp, sql)
	if cp.emitErr != nil {
		return &emitError{cp.emitErr}
	}
	if err != nil {
		return err
	}
	if !cp.done {
		return errors.New("COPY ended without its trailer")
	}
	return nil
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings
// is on in every session this package opens).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, "\x00", ""), "'", "''") + "'"
}

// rowSink decodes rows into reused batches and emits them.
type rowSink struct {
	cols  []column
	size  int
	rows  []spi.Row
	n     int
	bad   []*spi.RowError
	emit  func(spi.Batch) error
	label string
	seen  int64 // rows decoded or refused so far
	arena arena
}

func newRowSink(cols []column, size int, emit func(spi.Batch) error, label string) *rowSink {
	vals := make([]any, size*len(cols))
	rows := make([]spi.Row, size)
	for i := range rows {
		rows[i] = vals[i*len(cols) : (i+1)*len(cols) : (i+1)*len(cols)]
	}
	return &rowSink{cols: cols, size: size, rows: rows, emit: emit, label: label}
}

// add decodes one row of raw binary values (nil for NULL).
func (s *rowSink) add(raw [][]byte) error {
	s.seen++
	row := s.rows[s.n]
	for i, b := range raw {
		if b == nil {
			row[i] = nil
			continue
		}
		v, err := s.cols[i].dec(&s.arena, b)
		if err != nil {
			s.bad = append(s.bad, &spi.RowError{
				Loc:    fmt.Sprintf("%s row %d", s.label, s.seen),
				Reason: fmt.Sprintf("column %s: %v", s.cols[i].name, err),
			})
			if len(s.bad) >= s.size {
				return s.flush()
			}
			return nil
		}
		row[i] = v
	}
	s.n++
	if s.n == s.size {
		return s.flush()
	}
	return nil
}

func (s *rowSink) flush() error {
	if s.n == 0 && len(s.bad) == 0 {
		return nil
	}
	err := s.emit(spi.Batch{Rows: s.rows[:s.n], Bad: s.bad})
	s.n, s.bad = 0, nil
	return err
}

// copyParser decodes a binary COPY stream written to it in pieces of any size.
type copyParser struct {
	sink    *rowSink
	carry   []byte
	header  bool
	done    bool
	fields  [][]byte
	emitErr error
}

var copySignature = []byte("PGCOPY\n\xff\r\n\x00")

func (p *copyParser) Write(b []byte) (int, error) {
	data := b
	if len(p.carry) > 0 {
		p.carry = append(p.carry, b...)
		data = p.carry
	}
	off, err := p.parse(data)
	if err != nil {
		return 0, err
	}
	rest := data[off:]
	if len(p.carry) > 0 {
		n := copy(p.carry, rest)
		p.carry = p.carry[:n]
	} else {
		p.carry = append(p.carry, rest...)
	}
	return len(b), nil
}

// parse decodes the whole tuples at the start of data and returns how many
// bytes they took.
func (p *copyParser) parse(data []byte) (int, error) {
	off := 0
	if !p.header {
		if len(data) < 19 {
			return 0, nil
		}
		if string(data[:11]) != string(copySignature) {
			return 0, errors.New("COPY stream has no binary signature")
		}
		ext := int(be32(data[15:]))
		if len(data) < 19+ext {
			return 0, nil
		}
		off = 19 + ext
		p.header = true
	}
	for !p.done {
		if len(data)-off < 2 {
			return off, nil
		}
		n := int(int16(be16(data[off:])))
		if n == -1 {
			p.done = true
			return off + 2, nil
		}
		if n != len(p.fields) {
			return 0, fmt.Errorf("COPY tuple has %d fields, want %d", n, len(p.fields))
		}
		pos := off + 2
		for i := 0; i < n; i++ {
			if len(data)-pos < 4 {
				return off, nil
			}
			l := int(int32(be32(data[pos:])))
			pos += 4
			if l < 0 {
				p.fields[i] = nil
				continue
			}
			if len(data)-pos < l {
				return off, nil
			}
			p.fields[i] = data[pos : pos+l : pos+l]
			pos += l
		}
		if err := p.sink.add(p.fields); err != nil {
			p.emitErr = err
			return 0, err
		}
		off = pos
	}
	return off, nil
}

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
