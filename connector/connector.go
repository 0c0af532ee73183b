// Package connector is the one small interface between Weir's worker and the
// systems data moves between, and the registry of connectors by system kind.
//
// The names are defined in connector/spi (a leaf that connector packages
// import) and re-exported here, so that Default can import every connector
// without an import cycle. A component imports this package only; cmd/weir
// hands it Default(). It imports the standard library and its own
// subpackages only.
package connector

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/weirdata/weir/connector/format"
	"github.com/weirdata/weir/connector/fs"
	"github.com/weirdata/weir/connector/mysql"
	"github.com/weirdata/weir/connector/null"
	"github.com/weirdata/weir/connector/postgres"
	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/connector/sqlite"
	"github.com/weirdata/weir/connector/sqlrow"
)

// Re-exported contract; see connector/spi for each name's documentation.
type (
	// System is what a connector is told about a catalog system.
	System = spi.System
	// Conn is an open connection to one system, used by one run.
	Conn = spi.Conn
	// File is one file a source selected.
	File = spi.File
	// FileSource is a system files are read from.
	FileSource = spi.FileSource
	// FileTarget is a system files are delivered to.
	FileTarget = spi.FileTarget
	// Stage holds the files of one attempt until they are committed.
	Stage = spi.Stage
	// Written describes one staged file.
	Written = spi.Written
	// Error is a failed connector operation on one path of one system.
	Error = spi.Error
	// Opener opens a connection to a system of one kind.
	Opener = spi.Opener
	// Registry maps system kinds to openers.
	Registry = spi.Registry
)

// Re-exported row contract; see connector/spi/rows.go.
type (
	// FieldType is the logical type of a field, the same for every connector.
	FieldType = spi.FieldType
	// Field describes one column of a dataset.
	Field = spi.Field
	// Schema is an ordered list of fields.
	Schema = spi.Schema
	// Row is one record: Row[i] is the value of Schema[i].
	Row = spi.Row
	// Batch is a group of rows that travel together through a pipeline.
	Batch = spi.Batch
	// Dataset names what a row source reads or a row target writes.
	Dataset = spi.Dataset
	// Watermark selects the rows of an incremental run.
	Watermark = spi.Watermark
	// Partition is one independent part of a dataset, read by one thread.
	Partition = spi.Partition
	// RowSource is a system rows are read from.
	RowSource = spi.RowSource
	// WriteMode says how a load treats the target's existing rows.
	WriteMode = spi.WriteMode
	// LoadSpec describes one attempt's load into a target.
	LoadSpec = spi.LoadSpec
	// Commit is what a load committed.
	Commit = spi.Commit
	// RowTarget is a system rows are loaded into, exactly once per run.
	RowTarget = spi.RowTarget
	// Load is one attempt's staged load.
	Load = spi.Load
	// RowError is one bad record: where it came from, the raw record and why.
	RowError = spi.RowError
	// FormatOptions are a file dataset's format options, parsed.
	FormatOptions = format.Options
)

// The field types.
const (
	TypeString    = spi.TypeString
	TypeInt       = spi.TypeInt
	TypeFloat     = spi.TypeFloat
	TypeDecimal   = spi.TypeDecimal
	TypeBool      = spi.TypeBool
	TypeDate      = spi.TypeDate
	TypeTimestamp = spi.TypeTimestamp
	TypeBytes     = spi.TypeBytes
)

// The write modes.
const (
	ModeAppend         = spi.ModeAppend
	ModeTruncateInsert = spi.ModeTruncateInsert
	ModeUpsert         = spi.ModeUpsert
)

// Re-exported names and errors; see connector/spi.
const (
	StagingDir         = spi.StagingDir
	ManifestName       = spi.ManifestName
	ManifestTempPrefix = spi.ManifestTempPrefix
	CommitDir          = spi.CommitDir
	CommitTable        = spi.CommitTable
)

// Errors callers branch on with errors.Is; see connector/spi.
var (
	ErrEscape           = spi.ErrEscape
	ErrInvalid          = spi.ErrInvalid
	ErrUnknownKind      = spi.ErrUnknownKind
	ErrAlreadyCommitted = spi.ErrAlreadyCommitted
)

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return spi.NewRegistry() }

// Default returns a registry holding every connector built into Weir: fs,
// null (which also reads no rows and discards the rows it is given),
// postgres, mysql and sqlite.
func Default() *Registry {
	r := spi.NewRegistry()
	fs.Register(r)
	r.Register(null.Kind, openNull)
	postgres.Register(r)
	mysql.Register(r)
	sqlite.Register(r)
	return r
}

// CleanPath cleans a path relative to a system's root, refusing escapes; see spi.CleanPath.
func CleanPath(p string) (string, error) { return spi.CleanPath(p) }

// ParseFormatOptions checks a file dataset's format (csv, jsonl, parquet, or
// "" to detect it by extension) and options, and returns them parsed.
func ParseFormatOptions(f string, options map[string]string) (FormatOptions, error) {
	return format.ParseOptions(f, options)
}

// Counter is implemented by row connections that count a dataset's rows
// themselves.
type Counter interface {
	Count(ctx context.Context, ds Dataset) (int64, error)
}

// How Count counted.
const (
	// CountedByConnector: the connection's own Counter.
	CountedByConnector = "connector"
	// CountedBySQL: SELECT count(*) on the table, run by the database.
	CountedBySQL = "sql"
	// CountedByScan: every partition read and its rows counted.
	CountedByScan = "scan"
	// CountedByRecords: CSV files' records counted by their quoting and
	// delimiters alone, no value decoded.
	CountedByRecords = "records"
)

// quoteChars are the identifier quotes of the database kinds Count counts
// with SQL.
var quoteChars = map[string]byte{postgres.Kind: '"', sqlite.Kind: '"', mysql.Kind: '`'}

// Count counts the rows of ds on conn, an open system of kind: with the
// connection's Counter when it has one; for a table of a database, with
// SELECT count(*) FROM the table (identifiers quoted, read as a query);
// for CSV files read without a declared schema, by counting their records
// (CountedByRecords: quoting and delimiters only, faster than decoding
// every value); otherwise by reading every partition (at most parts of
// them) and counting rows and bad records. It returns the count, the bad records a
// scan met, and how it counted.
func Count(ctx context.Context, conn Conn, kind string, ds Dataset, parts int) (rows, bad int64, method string, err error) {
	if c, ok := conn.(Counter); ok {
		n, err := c.Count(ctx, ds)
		return n, 0, CountedByConnector, err
	}
	src, ok := conn.(RowSource)
	if !ok {
		return 0, 0, "", fmt.Errorf("%w: a %s system cannot count rows", errors.ErrUnsupported, kind)
	}
	if q, ok := quoteChars[kind]; ok && ds.Table != "" && ds.Watermark == nil {
		schema, table := sqlrow.SplitTable(ds.Table)
		name, err := sqlrow.Quote(table, q)
		if err != nil {
			return 0, 0, "", err
		}
		if schema != "" {
			s, err := sqlrow.Quote(schema, q)
			if err != nil {
				return 0, 0, "", err
			}
			name = s + "." + name
		}
		n, err := countQuery(ctx, src, "SELECT count(*) AS n FROM "+name)
		if err != nil {
			return 0, 0, "", fmt.Errorf("count rows of %s: %w", ds.Table, err)
		}
		return n, 0, CountedBySQL, nil
	}
	if fsrc, ok := conn.(FileSource); ok && kind == fs.Kind && ds.Format == format.CSV && ds.Schema == nil && ds.Watermark == nil {
		n, err := countCSVRecords(ctx, fsrc, ds)
		return n, 0, CountedByRecords, err
	}
	ps, err := src.Partitions(ctx, ds, max(parts, 1))
	if err != nil {
		return 0, 0, "", err
	}
	for _, p := range ps {
		err := src.Read(ctx, ds, p, 4096, func(b Batch) error {
			rows += int64(len(b.Rows))
			bad += int64(len(b.Bad))
			return ctx.Err()
		})
		if err != nil {
			return 0, 0, "", fmt.Errorf("count rows of partition %d (%s): %w", p.Seq, p.Desc, err)
		}
	}
	return rows, bad, CountedByScan, nil
}

// countCSVRecords counts the records of the CSV files ds selects, header
// lines aside, by parsing their quoting and delimiters only: a record that
// would not decode still counts.
func countCSVRecords(ctx context.Context, src FileSource, ds Dataset) (int64, error) {
	o, err := format.ParseOptions(ds.Format, ds.Options)
	if err != nil {
		return 0, err
	}
	files, err := src.ListFiles(ctx, ds.Path)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := countCSVFile(ctx, src, f.Path, o)
		if err != nil {
			return 0, fmt.Errorf("count records of %s: %w", f.Path, err)
		}
		total += n
	}
	return total, nil
}

func countCSVFile(ctx context.Context, src FileSource, path string, o format.Options) (int64, error) {
	rc, err := src.OpenFile(ctx, path)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	c := o.Compression
	if !o.CompressionSet {
		_, c = format.Detect(path)
	}
	r, err := format.NewDecompressor(rc, c)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	n, err := format.CountRecords(r, o)
	if err != nil {
		return 0, err
	}
	if o.Header && n > 0 {
		n--
	}
	return n, nil
}

// countQuery reads the one integer a count query returns.
func countQuery(ctx context.Context, src RowSource, q string) (int64, error) {
	ds := Dataset{Query: q}
	ps, err := src.Partitions(ctx, ds, 1)
	if err != nil {
		return 0, err
	}
	var n int64
	seen := false
	for _, p := range ps {
		err := src.Read(ctx, ds, p, 16, func(b Batch) error {
			for _, r := range b.Rows {
				if seen || len(r) != 1 {
					return fmt.Errorf("%w: the count query returned more than one value", ErrInvalid)
				}
				seen = true
				switch v := r[0].(type) {
				case int64:
					n = v
				case string:
					x, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					if err != nil {
						return fmt.Errorf("%w: count %q is not an integer", ErrInvalid, v)
					}
					n = x
				case float64:
					n = int64(v)
				default:
					return fmt.Errorf("%w: count is a %T", ErrInvalid, r[0])
				}
			}
			if len(b.Bad) > 0 {
				return fmt.Errorf("read count: %w", b.Bad[0])
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	if !seen {
		return 0, fmt.Errorf("%w: the count query returned no row", ErrInvalid)
	}
	return n, nil
}

// nullConn is the null connector with rows: as a source it reads no rows
// (its schema is the declared one), as a target it discards the rows it is
// given, counting them.
type nullConn struct{ *null.Conn }

var (
	_ RowSource = nullConn{}
	_ RowTarget = nullConn{}
)

func openNull(ctx context.Context, sys System) (Conn, error) {
	c, err := null.Open(ctx, sys)
	if err != nil {
		return nil, err
	}
	return nullConn{c.(*null.Conn)}, nil
}

// Describe returns the declared schema.
func (nullConn) Describe(_ context.Context, ds Dataset) (Schema, error) { return ds.Schema, nil }

// Partitions returns the one, empty, partition.
func (nullConn) Partitions(context.Context, Dataset, int) ([]Partition, error) {
	return []Partition{{Seq: 0, Desc: "nothing: a null system holds no rows"}}, nil
}

// Read reads nothing.
func (nullConn) Read(ctx context.Context, _ Dataset, _ Partition, _ int, _ func(Batch) error) error {
	return ctx.Err()
}

// MaxWatermark is "": there are no rows.
func (nullConn) MaxWatermark(context.Context, Dataset, string) (string, error) { return "", nil }

// Check accepts any schema.
func (nullConn) Check(context.Context, Dataset, Schema) error { return nil }

// Committed is false: a null system keeps nothing, markers included.
func (nullConn) Committed(context.Context, string) (bool, error) { return false, nil }

// LastWatermark is none.
func (nullConn) LastWatermark(context.Context, string) (string, bool, error) { return "", false, nil }

// Begin starts a load that discards its rows.
func (nullConn) Begin(context.Context, LoadSpec) (Load, error) { return &nullLoad{}, nil }

type nullLoad struct {
	rows atomic.Int64
	done atomic.Bool
}

func (l *nullLoad) Write(ctx context.Context, _ int, b Batch) error {
	l.rows.Add(int64(len(b.Rows)))
	return ctx.Err()
}

func (l *nullLoad) Commit(context.Context) (Commit, error) {
	if l.done.Swap(true) {
		return Commit{}, fmt.Errorf("%w: the load was committed already", ErrInvalid)
	}
	return Commit{Rows: l.rows.Load()}, nil
}

func (l *nullLoad) Abort(context.Context) error { l.done.Store(true); return nil }
