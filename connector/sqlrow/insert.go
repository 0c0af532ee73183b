package sqlrow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/weirdata/weir/connector/spi"
)

// Encoder turns a field's Go value (see spi.FieldType; never nil) into the
// argument the driver binds for its column, or says why the column cannot
// take it.
type Encoder func(v any) (any, error)

// Execer runs statements: *sql.DB, *sql.Conn and *sql.Tx are Execers.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// InserterConfig describes the multi-row INSERT statements of an Inserter.
type InserterConfig struct {
	// Table is the quoted (and qualified) name of the table written.
	Table string
	// Columns are the quoted column names, in the order of the rows' values.
	Columns []string
	// Names are the plain column names, for errors.
	Names []string
	// Encoders convert each column's values; nil values are bound as NULL.
	Encoders []Encoder
	// MaxParams caps the placeholders of one statement (the driver's or the
	// server's limit).
	MaxParams int
	// MaxRows caps the rows of one statement (InsertRowsDefault when 0).
	MaxRows int
	// MaxBytes ends a statement once its values reach about this many bytes,
	// so that it stays under the server's packet limit (InsertBytesDefault when 0).
	MaxBytes int
	// Prepare prepares each statement size once and reuses it; otherwise
	// every statement goes through ExecContext (for drivers that interpolate
	// arguments client-side).
	Prepare bool
	// PrepareOn, when not nil, is where the statement is prepared (a
	// *sql.DB); Insert given a *sql.Tx then runs it in the transaction.
	// Without it the statement is prepared on the first Execer given, which
	// must then outlive the Inserter (a *sql.DB or *sql.Conn).
	PrepareOn interface {
		PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	}
}

// Defaults of InserterConfig.
const (
	InsertRowsDefault  = 4096
	InsertBytesDefault = 4 << 20
)

// Inserter writes rows into one table with multi-row INSERT statements. It
// is safe for concurrent use.
type Inserter struct {
	cfg  InserterConfig
	head string // INSERT INTO t (a, b) VALUES
	full string // the statement for MaxRows rows

	mu    sync.Mutex
	stmts map[int]*sql.Stmt // by rows, prepared on first use
	pool  sync.Pool         // *[]any argument buffers
}

// NewInserter returns an Inserter for cfg.
func NewInserter(cfg InserterConfig) (*Inserter, error) {
	nc := len(cfg.Columns)
	if nc == 0 || len(cfg.Names) != nc || len(cfg.Encoders) != nc {
		return nil, fmt.Errorf("%w: an inserter needs as many names and encoders as columns", spi.ErrInvalid)
	}
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = InsertRowsDefault
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = InsertBytesDefault
	}
	if cfg.MaxParams > 0 {
		cfg.MaxRows = max(1, min(cfg.MaxRows, cfg.MaxParams/nc))
	}
	in := &Inserter{cfg: cfg, stmts: map[int]*sql.Stmt{}, head: "INSERT INTO " + cfg.Table + " (" + strings.Join(cfg.Columns, ", ") + ") VALUES "}
	in.full = in.statement(cfg.MaxRows)
	return in, nil
}

// statement returns the INSERT of n rows.
func (in *Inserter) statement(n int) string {
	tuple := "(" + strings.Repeat("?, ", len(in.cfg.Columns)-1) + "?)"
	var b strings.Builder
	b.Grow(len(in.head) + n*(len(tuple)+2))
	b.WriteString(in.head)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
	}
	return b.String()
}

// Insert writes rows through db, as few statements as the limits allow,
// and returns how many rows it wrote. A value a column cannot take stops it
// with an error naming the row (its index in rows) and the column; rows
// written by earlier statements stay written.
func (in *Inserter) Insert(ctx context.Context, db Execer, rows []spi.Row) (int64, error) {
	nc := len(in.cfg.Columns)
	bufp, _ := in.pool.Get().(*[]any)
	if bufp == nil {
		b := make([]any, 0, min(len(rows), in.cfg.MaxRows)*nc)
		bufp = &b
	}
	args := (*bufp)[:0]
	defer func() {
		clear(args)
		*bufp = args[:0]
		in.pool.Put(bufp)
	}()
	var written int64
	start, size := 0, 0
	for i, row := range rows {
		if len(row) != nc {
			return written, fmt.Errorf("%w: row %d has %d values for %d columns", spi.ErrInvalid, i, len(row), nc)
		}
		for c, v := range row {
			if v == nil {
				args = append(args, nil)
				continue
			}
			a, err := in.cfg.Encoders[c](v)
			if err != nil {
				return written, fmt.Errorf("%w: row %d column %s: %w", spi.ErrInvalid, i, in.cfg.Names[c], err)
			}
			args = append(args, a)
			size += argSize(a)
		}
		if n := i - start + 1; n == in.cfg.MaxRows || size >= in.cfg.MaxBytes || i == len(rows)-1 {
			if err := in.exec(ctx, db, n, args); err != nil {
				return written, fmt.Errorf("insert rows %d to %d into %s: %w", start, i, in.cfg.Table, err)
			}
			written += int64(n)
			clear(args)
			args = args[:0]
			start, size = i+1, 0
		}
	}
	return written, nil
}

// preparedSizes caps how many statement sizes an Inserter keeps prepared:
// the full size, the usual batch size and its remainders.
const preparedSizes = 4

func (in *Inserter) exec(ctx context.Context, db Execer, n int, args []any) error {
	in.mu.Lock()
	stmt, cached := in.stmts[n]
	crowded := len(in.stmts) >= preparedSizes
	in.mu.Unlock()
	if !in.cfg.Prepare || (!cached && crowded) {
		q := in.full
		if n != in.cfg.MaxRows {
			q = in.statement(n)
		}
		_, err := db.ExecContext(ctx, q, args...)
		return err
	}
	if stmt == nil {
		var on interface {
			PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
		} = db
		if in.cfg.PrepareOn != nil {
			on = in.cfg.PrepareOn
		}
		q := in.full
		if n != in.cfg.MaxRows {
			q = in.statement(n)
		}
		var err error
		if stmt, err = on.PrepareContext(ctx, q); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		in.mu.Lock()
		if prev := in.stmts[n]; prev != nil {
			stmt.Close()
			stmt = prev
		} else {
			in.stmts[n] = stmt
		}
		in.mu.Unlock()
	}
	if tx, ok := db.(*sql.Tx); ok && in.cfg.PrepareOn != nil {
		stmt = tx.StmtContext(ctx, stmt)
		defer stmt.Close()
	}
	_, err := stmt.ExecContext(ctx, args...)
	return err
}

// Close releases the prepared statements.
func (in *Inserter) Close() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	var errs []error
	for n, st := range in.stmts {
		errs = append(errs, st.Close())
		delete(in.stmts, n)
	}
	return errors.Join(errs...)
}

// argSize estimates the bytes a bound argument takes in a statement.
func argSize(a any) int {
	switch v := a.(type) {
	case string:
		return len(v) + 4
	case []byte:
		return len(v) + 4
	default:
		return 12
	}
}
