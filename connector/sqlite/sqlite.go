// Package sqlite is the connector of kind "sqlite": an SQLite database file
// as a row source and a row target, through the pure-Go driver
// github.com/glebarez/go-sqlite.
//
// # Settings
//
// "path" names the database file ("dsn" is taken when "path" is not set).
// With a "root" setting (an absolute directory) the path is relative to it
// and confined to it: "..", an absolute path outside the root and a
// symbolic link leading out are refused with spi.ErrEscape. Without a root
// the path must be absolute. The file must exist: a connector never creates
// an empty database by mistake. Connections use WAL mode, a busy timeout of
// BusyTimeoutDefault, and BEGIN IMMEDIATE for write transactions.
//
// # Types
//
// SQLite types values, not columns, so a column's field type comes from its
// declared type, checked in this order:
//
//	contains BOOL                           bool (0 and 1)
//	contains DATETIME or TIMESTAMP          timestamp
//	contains DATE                           date
//	contains DEC, NUMERIC, NUMBER or MONEY  decimal
//	contains INT                            int
//	contains CHAR, CLOB, TEXT, JSON, UUID or TIME  string
//	contains BLOB                           bytes
//	contains REAL, FLOA or DOUB             float
//	none (or an expression in a query)      the storage class of the first row's value
//	anything else                           string
//
// Dates and timestamps are stored as ISO-8601 text, the convention of
// SQLite's own date functions: a date as "2006-01-02", a timestamp as
// "2006-01-02 15:04:05.999999999" in UTC (the form of CURRENT_TIMESTAMP,
// with up to nine fraction digits), so that text order is time order and
// watermarks compare as text. Readers also accept a "T" separator, a "Z" or
// "+hh:mm" zone (kept in the time read) and integer Unix seconds.
//
// A decimal column with NUMERIC affinity (DECIMAL(38,9)) holds what SQLite
// makes of it: integers that fit 64 bits exactly, other values as REAL with
// 15 significant digits, so a load refuses a decimal that would lose digits
// there. Exact decimals of any size go to a column whose declared type also
// names TEXT ("TEXT DECIMAL(38,9)"): TEXT affinity keeps the canonical text.
// A float NaN is refused (SQLite would store NULL).
//
// # Reading and loading
//
// A source is a table or a single SELECT/WITH query. Tables are split into
// rowid ranges (or key ranges of Options["partition_by"]); queries, views
// and WITHOUT ROWID tables are one partition unless partition_by is given.
//
// A load stages rows into a TEMP table weir_stage_<run>_<attempt> held by
// one connection, through which every thread's batches are written in turn
// (SQLite has one writer), so staging never locks the database file and a
// crashed attempt leaves nothing behind. Commit runs BEGIN IMMEDIATE, the
// run's marker row in weir_commits, DELETE (truncate_insert), INSERT ...
// SELECT from the staging table (upsert: ON CONFLICT (key) DO UPDATE, the
// key being the primary key or a unique index), COMMIT.
//
// It imports the standard library, connector/spi, connector/sqlrow and the driver.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/glebarez/go-sqlite" // registers the "sqlite" driver

	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/connector/sqlrow"
)

// Kind is the system kind this connector serves.
const Kind = "sqlite"

// Register adds the sqlite connector to r.
func Register(r *spi.Registry) { r.Register(Kind, Open) }

// Defaults of a connection.
const (
	// BusyTimeoutDefault is how long a statement waits for another writer.
	BusyTimeoutDefault = 10 * time.Second
	// MaxIdleConnsDefault is how many idle connections a Conn keeps. Open
	// connections are not capped: a load holds one for its staging table
	// while reads hold theirs.
	MaxIdleConnsDefault = 8
	// StageParamsDefault caps the parameters of one staging INSERT. The
	// pure-Go driver parses a statement at every execution and binds its
	// parameters in quadratic time, so statements of a few dozen rows load
	// fastest (see BenchmarkStageParams).
	StageParamsDefault = 96
)

// Conn is an open SQLite database. It is both a spi.RowSource and a
// spi.RowTarget, and safe for concurrent use.
type Conn struct {
	name        string
	path        string // the database file, symbolic links resolved
	db          *sql.DB
	log         *slog.Logger
	stageParams int

	mu   sync.Mutex
	rels map[string]*relation // Describe results by dataset
}

var (
	_ spi.RowSource = (*Conn)(nil)
	_ spi.RowTarget = (*Conn)(nil)
)

// Open opens the database file the system's settings name.
func Open(ctx context.Context, sys spi.System) (spi.Conn, error) {
	file, err := resolve(sys.Settings)
	if err != nil {
		return nil, &spi.Error{Op: "connect", System: sys.Name, Path: sys.Settings["path"], Err: err}
	}
	q := url.Values{}
	q.Set("mode", "rw") // never create the file
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(BusyTimeoutDefault.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Path: file}).String() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, &spi.Error{Op: "connect", System: sys.Name, Path: sys.Settings["path"], Err: err}
	}
	db.SetMaxIdleConns(MaxIdleConnsDefault)
	db.SetConnMaxIdleTime(time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, &spi.Error{Op: "connect", System: sys.Name, Path: sys.Settings["path"], Err: err}
	}
	return &Conn{name: sys.Name, path: file, db: db, rels: map[string]*relation{}, stageParams: StageParamsDefault,
		log: slog.Default().With(slog.String("connector", Kind), slog.String("system", sys.Name))}, nil
}

// resolve returns the database file named by the settings, confined to the
// root when there is one, symbolic links resolved.
func resolve(settings map[string]string) (string, error) {
	p := settings["path"]
	if p == "" {
		p = settings["dsn"]
	}
	if p == "" {
		return "", fmt.Errorf("%w: setting path (the database file) is required", spi.ErrInvalid)
	}
	if strings.ContainsAny(p, "\x00") {
		return "", fmt.Errorf("%w: path %q holds a NUL byte", spi.ErrInvalid, p)
	}
	root := settings["root"]
	if root == "" {
		if !filepath.IsAbs(p) {
			return "", fmt.Errorf("%w: path %q must be absolute when the system has no root", spi.ErrInvalid, p)
		}
		return existingFile(filepath.Clean(p))
	}
	if !filepath.IsAbs(root) {
		return "", fmt.Errorf("%w: setting root must be an absolute directory, got %q", spi.ErrInvalid, root)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("%w: root directory: %w", spi.ErrInvalid, err)
	}
	rel := p
	if filepath.IsAbs(p) {
		if rel, err = filepath.Rel(filepath.Clean(root), filepath.Clean(p)); err != nil || !filepath.IsLocal(rel) {
			return "", fmt.Errorf("%w: %q is outside the root", spi.ErrEscape, p)
		}
	}
	clean, err := spi.CleanPath(filepath.ToSlash(rel))
	if err != nil {
		return "", err
	}
	file, err := existingFile(filepath.Join(realRoot, filepath.FromSlash(clean)))
	if err != nil {
		return "", err
	}
	// A symbolic link, here or in a parent directory, must not lead out.
	if r, err := filepath.Rel(realRoot, file); err != nil || !filepath.IsLocal(r) {
		return "", fmt.Errorf("%w: %q leads outside the root through a symbolic link", spi.ErrEscape, p)
	}
	return file, nil
}

// existingFile resolves p's symbolic links and checks that it is a regular file.
func existingFile(p string) (string, error) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return "", fmt.Errorf("%w: database file %s does not exist", iofs.ErrNotExist, filepath.Base(p))
		}
		return "", err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s is not a regular file", spi.ErrInvalid, filepath.Base(p))
	}
	return real, nil
}

// Close closes the connection pool.
func (c *Conn) Close() error { return c.db.Close() }

// fail wraps err as a connector error on the dataset or table label.
func (c *Conn) fail(op, label string, err error) error {
	return &spi.Error{Op: op, System: c.name, Path: label, Err: err}
}

// quote quotes an identifier for SQLite. Names come from the database, or
// were found among the dataset's columns first.
func quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// table returns the schema (attached database, "main" by default) and name
// of a dataset's table and its quoted, qualified form.
func table(name string) (schema, tbl, quoted string, err error) {
	schema, tbl = sqlrow.SplitTable(name)
	if schema == "" {
		schema = "main"
	}
	qs, err := sqlrow.Quote(schema, '"')
	if err != nil {
		return "", "", "", err
	}
	qt, err := sqlrow.Quote(tbl, '"')
	if err != nil {
		return "", "", "", err
	}
	return schema, tbl, qs + "." + qt, nil
}
