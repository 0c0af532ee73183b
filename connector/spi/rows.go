package spi

import (
	"context"
	"errors"
)

// Row-level contract. A row connector reads a Dataset as typed rows in
// batches, split into partitions that threads read in parallel, and loads
// rows into a Dataset exactly once: staged, then committed in one step
// together with a commit marker keyed by run_id.

// FieldType is the logical type of a field, the same for every connector.
// In a Row, a value of each type is held as:
//
//	string    string
//	int       int64
//	float     float64
//	decimal   string, canonical ("-12.340", no exponent)
//	bool      bool
//	date      time.Time at 00:00 UTC of that day
//	timestamp time.Time (instant; connectors keep the zone they read)
//	bytes     []byte
//
// and NULL is nil whatever the type.
type FieldType string

// The field types.
const (
	TypeString    FieldType = "string"
	TypeInt       FieldType = "int"
	TypeFloat     FieldType = "float"
	TypeDecimal   FieldType = "decimal"
	TypeBool      FieldType = "bool"
	TypeDate      FieldType = "date"
	TypeTimestamp FieldType = "timestamp"
	TypeBytes     FieldType = "bytes"
)

// Field describes one column of a dataset.
type Field struct {
	Name     string    `json:"name"`
	Type     FieldType `json:"type"`
	Nullable bool      `json:"nullable"`
	// Precision and Scale, for a decimal, are its declared total and
	// fractional digits (numeric(18,4)); 0 and 0 when not declared.
	Precision int `json:"precision,omitempty"`
	Scale     int `json:"scale,omitempty"`
}

// Schema is an ordered list of fields.
type Schema []Field

// Row is one record: Row[i] is the value of Schema[i].
type Row []any

// Batch is a group of rows that travel together through a pipeline.
type Batch struct {
	Rows []Row
	// Locs, when not nil, gives each row's source location for rejects
	// ("trades/AAPL.csv:1234", "public.trades ctid (12,4)").
	Locs []string
	// Raw, when not nil, gives each row's raw record (a CSV line) for rejects.
	Raw [][]byte
	// Bad are records of this batch's part of the source that could not be
	// decoded (broken quoting, wrong column count, a value not of its
	// declared type); the mapping's bad-row policy decides what happens.
	Bad []*RowError
}

// Dataset names what a row source reads or a row target writes, from one
// side of a mapping.
type Dataset struct {
	// Path (files): a file, directory or glob relative to the system's root.
	Path string `json:"path,omitempty"`
	// Table (databases): a table, optionally schema-qualified ("sales.trades").
	Table string `json:"table,omitempty"`
	// Query (database sources): a SELECT to read instead of a table.
	Query string `json:"query,omitempty"`
	// Format (files): csv, jsonl or parquet.
	Format string `json:"format,omitempty"`
	// Options are format and connector options: for files those of
	// connector/format (header, delimiter, quote, null, compression,
	// date_format, timestamp_format, timezone, timestamp_unit, split,
	// min_split_bytes, max_record_bytes, row_group_rows: see
	// format.ParseOptions; unknown ones are refused); for databases
	// "partition_by" (a key column for key-range partitions), "partitioning"
	// (key, declared, blocks).
	Options map[string]string `json:"options,omitempty"`
	// Schema, when given, is the declared schema of a file source (CSV has no
	// types of its own); connectors that know their types ignore it.
	Schema Schema `json:"schema,omitempty"`
	// Watermark, when not nil, restricts a source to rows whose Column is
	// greater than After (incremental runs); "" After means everything.
	Watermark *Watermark `json:"watermark,omitempty"`
}

// Watermark selects the rows of an incremental run.
type Watermark struct {
	Column string `json:"column"`
	After  string `json:"after,omitempty"` // the last committed watermark, as text
}

// Partition is one independent part of a dataset, read by one thread.
type Partition struct {
	Seq      int    `json:"seq"`
	Desc     string `json:"desc"` // for people: "id in [1, 100000)", "AAPL.csv bytes 0-67108864"
	EstRows  int64  `json:"est_rows,omitempty"`
	EstBytes int64  `json:"est_bytes,omitempty"`
	// Spec is the connector's own description, kept in the execution plan
	// so that a retried attempt reads the same partitions.
	Spec map[string]string `json:"spec,omitempty"`
}

// RowSource is a system rows are read from.
type RowSource interface {
	Conn
	// Describe returns the dataset's schema.
	Describe(ctx context.Context, ds Dataset) (Schema, error)
	// Partitions splits the dataset into at most max partitions (at least
	// one, even when empty), balanced by the connector's estimates.
	Partitions(ctx context.Context, ds Dataset, max int) ([]Partition, error)
	// Read reads one partition, calling emit with batches of at most
	// batchSize rows. emit may keep neither the batch nor its rows after it
	// returns (sources may reuse them). A bad record the source can skip
	// goes into Batch.Bad; an error that stops the read is returned.
	Read(ctx context.Context, ds Dataset, p Partition, batchSize int, emit func(Batch) error) error
	// MaxWatermark returns the greatest value of column in the dataset as
	// text ("" when empty), read before the rows so that the run commits a
	// watermark it has certainly covered.
	MaxWatermark(ctx context.Context, ds Dataset, column string) (string, error)
}

// WriteMode says how a load treats the target's existing rows.
type WriteMode string

// The write modes.
const (
	ModeAppend         WriteMode = "append"
	ModeTruncateInsert WriteMode = "truncate_insert"
	ModeUpsert         WriteMode = "upsert"
)

// LoadSpec describes one attempt's load into a target.
type LoadSpec struct {
	RunID   string
	Attempt int
	// Mapping names the mapping, the key of its watermark.
	Mapping string
	Dataset Dataset
	// Schema is the schema of the rows written.
	Schema Schema
	Mode   WriteMode
	// Key is the upsert key (ModeUpsert).
	Key []string
	// Watermark, when not "", is committed with the data as the mapping's new watermark.
	Watermark string
}

// Commit is what a load committed.
type Commit struct {
	Rows  int64
	Files []Written // file targets: the delivered files
}

// RowTarget is a system rows are loaded into, exactly once per run.
type RowTarget interface {
	Conn
	// Check verifies that the dataset can take rows of schema (the table
	// exists with compatible column types, or the path is writable) and
	// returns a precise error when not.
	Check(ctx context.Context, ds Dataset, schema Schema) error
	// Committed tells whether runID's load was already committed, by this
	// or an earlier attempt (its commit marker exists).
	Committed(ctx context.Context, runID string) (bool, error)
	// LastWatermark returns the mapping's last committed watermark ("" and
	// false when there is none).
	LastWatermark(ctx context.Context, mapping string) (string, bool, error)
	// Begin starts an attempt's load into staging.
	Begin(ctx context.Context, spec LoadSpec) (Load, error)
}

// Load is one attempt's staged load. Write may be called concurrently by
// the run's threads; Commit and Abort once, after every Write returned.
type Load interface {
	Write(ctx context.Context, thread int, b Batch) error
	// Commit makes the staged rows visible together with the commit marker
	// (and the watermark) in one transaction or atomic rename. When the
	// marker of the run already exists, nothing changes and the error
	// wraps ErrAlreadyCommitted.
	Commit(ctx context.Context) (Commit, error)
	// Abort drops what was staged. It is safe after a failed Commit.
	Abort(ctx context.Context) error
}

// ErrAlreadyCommitted means the run's load was committed before: a retried
// or duplicated attempt must not load again.
var ErrAlreadyCommitted = errors.New("run already committed at the target")

// RowError is one bad record: where it came from, the raw record and why.
type RowError struct {
	Loc    string
	Raw    []byte
	Reason string
}

func (e *RowError) Error() string { return e.Loc + ": " + e.Reason }

// CommitTable is the name of the commit-marker table database targets keep.
const CommitTable = "weir_commits"
