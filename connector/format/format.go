// Package format holds Weir's file formats as codecs of typed rows: CSV,
// JSON Lines and Parquet, read from an io.Reader (Parquet: an io.ReaderAt)
// into spi batches and written from spi rows to an io.Writer, with gzip and
// zstd compression around them. It knows nothing of files, systems or
// partitions beyond byte offsets: connector/fs decides what to open and
// where a partition starts, and this package decodes what it is handed.
//
// It imports the standard library, connector/spi, parquet-go and
// klauspost/compress only.
//
// # Values
//
// Rows hold the Go values connector/spi documents for each FieldType. In
// text formats (CSV, and JSON strings) values are written and read as:
//
//	string     the text itself
//	int        decimal digits, optional sign ("-42")
//	float      shortest text that reads back the same float64 ("0.1", "1e+21", "NaN", "+Inf")
//	decimal    canonical plain digits ("-12.340"); exponents are accepted on reading
//	bool       true/false; t/f, 1/0, yes/no, y/n accepted on reading, any case
//	date       option date_format, a Go layout (default 2006-01-02)
//	timestamp  option timestamp_format, a Go layout; by default RFC 3339 with
//	           nanoseconds on writing, and on reading ISO 8601 with a "T" or a
//	           space, optional fraction and optional offset; a timestamp without
//	           an offset is in option timezone (default UTC)
//	bytes      standard base64
//
// Leading and trailing spaces around a non-string CSV value are ignored.
package format

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weirdata/weir/connector/spi"
)

// The formats.
const (
	CSV     = "csv"
	JSONL   = "jsonl"
	Parquet = "parquet"
)

// The compressions. Text formats are compressed as a whole stream; Parquet
// compresses its pages with Snappy (its default), Gzip or Zstd.
const (
	None   = "none"
	Gzip   = "gzip"
	Zstd   = "zstd"
	Snappy = "snappy"
)

// Defaults of the options.
const (
	// MaxRecordBytesDefault bounds one CSV or JSON Lines record: a longer
	// one is a bad record (most likely an unterminated quote).
	MaxRecordBytesDefault = 64 << 20
	// MinSplitBytesDefault is the smallest byte range a large text file is
	// split into: smaller files are read whole, by one thread.
	MinSplitBytesDefault = 16 << 20
	// RowGroupRowsDefault is the number of rows per Parquet row group written.
	RowGroupRowsDefault = 1 << 20
	// DateLayoutDefault is the layout of dates in text formats.
	DateLayoutDefault = "2006-01-02"
	// TimestampLayoutWrite is how timestamps are written when no
	// timestamp_format is given: RFC 3339 with nanoseconds, keeping the offset.
	TimestampLayoutWrite = time.RFC3339Nano
)

// Split modes of option split.
const (
	// SplitAuto splits a large uncompressed CSV file at the record boundaries
	// found by parsing it once from the start (so that newlines inside quoted
	// fields are handled), and a JSON Lines file at any newline.
	SplitAuto = "auto"
	// SplitLines trusts that every newline ends a record (no quoted
	// newlines): CSV files are split without the parsing pass.
	SplitLines = "lines"
	// SplitNone reads every file whole.
	SplitNone = "none"
)

// ErrFormat marks options or data of a format that Weir cannot read or
// write; it wraps spi.ErrInvalid, since retrying does not help.
var ErrFormat = fmt.Errorf("%w format", spi.ErrInvalid)

// Options are a dataset's format options, parsed.
type Options struct {
	Format string
	// Header (CSV): the first record names the columns. Default true.
	Header bool
	// Delimiter (CSV) separates fields. Default ','.
	Delimiter byte
	// Quote (CSV) quotes fields; 0 means fields are never quoted. Default '"'.
	// Inside a quoted field the quote is doubled.
	Quote byte
	// Null (CSV) is the text of NULL in an unquoted field. Default "". A
	// quoted field is never NULL, so "" (two quotes) is an empty string.
	Null string
	// Compression is None, Gzip or Zstd for text formats and None, Snappy,
	// Gzip or Zstd for Parquet. CompressionSet tells whether the option was
	// given; when not, readers choose by file extension and writers use none
	// (Snappy for Parquet).
	Compression    string
	CompressionSet bool
	// DateLayout is the Go layout of dates in text formats.
	DateLayout string
	// TimestampLayout is the Go layout of timestamps in text formats; ""
	// means flexible ISO 8601 on reading and RFC 3339 on writing.
	TimestampLayout string
	// Location is the zone of timestamps read without an offset, and of
	// timestamps written with a layout that has none. Default UTC.
	Location *time.Location
	// TimestampUnit (Parquet write) is millis, micros (default) or nanos.
	TimestampUnit string
	// MaxRecordBytes bounds one text record.
	MaxRecordBytes int
	// Split is SplitAuto, SplitLines or SplitNone.
	Split string
	// MinSplitBytes is the smallest byte range of a split text file.
	MinSplitBytes int64
	// RowGroupRows (Parquet write) is the number of rows per row group.
	RowGroupRows int64
}

// OptionNames lists the options ParseOptions knows.
var OptionNames = []string{
	"compression", "date_format", "delimiter", "header", "max_record_bytes", "min_split_bytes",
	"null", "quote", "row_group_rows", "split", "timestamp_format", "timestamp_unit", "timezone",
}

// ParseOptions checks a dataset's format and options and returns them
// parsed. format may be "" when the caller detects it later (by extension);
// the result's Format is then "". An unknown option is an error, so that a
// misspelt one never goes unnoticed.
func ParseOptions(format string, opts map[string]string) (Options, error) {
	o := Options{
		Format:         strings.ToLower(format),
		Header:         true,
		Delimiter:      ',',
		Quote:          '"',
		DateLayout:     DateLayoutDefault,
		Location:       time.UTC,
		TimestampUnit:  "micros",
		MaxRecordBytes: MaxRecordBytesDefault,
		Split:          SplitAuto,
		MinSplitBytes:  MinSplitBytesDefault,
		RowGroupRows:   RowGroupRowsDefault,
	}
	switch o.Format {
	case "", CSV, JSONL, Parquet:
	case "ndjson":
		o.Format = JSONL
	default:
		return o, fmt.Errorf("%w: unknown format %q (known: csv, jsonl, parquet)", ErrFormat, format)
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := opts[k]
		bad := func(why string) error {
			return fmt.Errorf("%w: option %s=%q: %s", ErrFormat, k, v, why)
		}
		switch k {
		case "header":
			b, ok := parseBool(strings.TrimSpace(v))
			if !ok {
				return o, bad("want true or false")
			}
			o.Header = b
		case "delimiter":
			switch v {
			case "\\t", "tab", "\t":
				o.Delimiter = '\t'
			default:
				if len(v) != 1 {
					return o, bad("want one ASCII character (or \\t)")
				}
				o.Delimiter = v[0]
			}
		case "quote":
			switch v {
			case "", "none":
				o.Quote = 0
			default:
				if len(v) != 1 {
					return o, bad("want one ASCII character, or none")
				}
				o.Quote = v[0]
			}
		case "null":
			o.Null = v
		case "compression":
			c, ok := compressionNames[strings.ToLower(v)]
			if !ok {
				return o, bad("want none, gzip or zstd (Parquet: none, snappy, gzip or zstd)")
			}
			o.Compression, o.CompressionSet = c, true
		case "date_format":
			if v == "" {
				return o, bad("empty layout")
			}
			o.DateLayout = namedLayout(v)
		case "timestamp_format":
			o.TimestampLayout = namedLayout(v)
		case "timezone":
			loc, err := time.LoadLocation(v)
			if err != nil || v == "" {
				return o, bad("not a known time zone (IANA name such as Europe/Paris, or UTC)")
			}
			o.Location = loc
		case "timestamp_unit":
			switch v {
			case "millis", "micros", "nanos":
				o.TimestampUnit = v
			default:
				return o, bad("want millis, micros or nanos")
			}
		case "max_record_bytes", "min_split_bytes", "row_group_rows":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 || n > 1<<40 {
				return o, bad("want a positive number")
			}
			switch k {
			case "max_record_bytes":
				if n > 1<<30 {
					return o, bad("at most 1 GiB")
				}
				o.MaxRecordBytes = int(n)
			case "min_split_bytes":
				o.MinSplitBytes = n
			default:
				o.RowGroupRows = n
			}
		case "split":
			switch v {
			case SplitAuto, SplitLines, SplitNone:
				o.Split = v
			default:
				return o, bad("want auto, lines or none")
			}
		default:
			return o, fmt.Errorf("%w: unknown option %q (known: %s)", ErrFormat, k, strings.Join(OptionNames, ", "))
		}
	}
	if err := o.check(); err != nil {
		return o, err
	}
	return o, nil
}

var compressionNames = map[string]string{
	"": None, "none": None, "uncompressed": None,
	"gzip": Gzip, "gz": Gzip,
	"zstd": Zstd, "zst": Zstd,
	"snappy": Snappy,
}

// namedLayout maps a few names to Go layouts.
func namedLayout(v string) string {
	switch strings.ToLower(v) {
	case "iso", "rfc3339":
		return time.RFC3339Nano
	case "iso_date":
		return DateLayoutDefault
	}
	return v
}

// check verifies that the CSV characters do not collide.
func (o *Options) check() error {
	switch {
	case o.Delimiter == '\n' || o.Delimiter == '\r' || o.Delimiter >= 0x80:
		return fmt.Errorf("%w: delimiter %q cannot be a line break or a non-ASCII byte", ErrFormat, o.Delimiter)
	case o.Quote == '\n' || o.Quote == '\r' || o.Quote >= 0x80:
		return fmt.Errorf("%w: quote %q cannot be a line break or a non-ASCII byte", ErrFormat, o.Quote)
	case o.Quote != 0 && o.Quote == o.Delimiter:
		return fmt.Errorf("%w: quote and delimiter are both %q", ErrFormat, o.Delimiter)
	case strings.ContainsAny(o.Null, "\r\n") || strings.IndexByte(o.Null, o.Delimiter) >= 0 || (o.Quote != 0 && strings.IndexByte(o.Null, o.Quote) >= 0):
		return fmt.Errorf("%w: null %q cannot hold the delimiter, the quote or a line break", ErrFormat, o.Null)
	case o.Compression == Snappy && o.Format != Parquet && o.Format != "":
		return fmt.Errorf("%w: snappy compresses Parquet pages only; %s files take none, gzip or zstd", ErrFormat, o.Format)
	}
	return nil
}

// WithFormat returns o for format f, checking again what depends on it.
func (o Options) WithFormat(f string) (Options, error) {
	o.Format = f
	return o, o.check()
}

// Detect returns the format and the compression of a file from its name:
// "a.csv.gz" is (csv, gzip), "b.parquet" (parquet, none), "c.txt" ("", none).
func Detect(name string) (format, compression string) {
	base := strings.ToLower(path.Base(name))
	compression = None
	switch {
	case strings.HasSuffix(base, ".gz"):
		compression, base = Gzip, strings.TrimSuffix(base, ".gz")
	case strings.HasSuffix(base, ".zst"):
		compression, base = Zstd, strings.TrimSuffix(base, ".zst")
	}
	switch path.Ext(base) {
	case ".csv", ".tsv", ".txt":
		format = CSV
	case ".jsonl", ".ndjson", ".json":
		format = JSONL
	case ".parquet", ".pq":
		format = Parquet
	}
	return format, compression
}

// Ext returns the file name extension of format f compressed with c:
// ".csv", ".csv.gz", ".jsonl.zst", ".parquet".
func Ext(f, c string) string {
	ext := "." + f
	if f == Parquet {
		return ext
	}
	switch c {
	case Gzip:
		ext += ".gz"
	case Zstd:
		ext += ".zst"
	}
	return ext
}

// CheckSchema verifies that a schema can be read or written: at least one
// field, names non-empty and unique, types known, decimal precision and
// scale sensible.
func CheckSchema(s spi.Schema) error {
	if len(s) == 0 {
		return fmt.Errorf("%w: the schema has no fields", ErrFormat)
	}
	seen := make(map[string]int, len(s))
	for i, f := range s {
		if f.Name == "" {
			return fmt.Errorf("%w: field %d has no name", ErrFormat, i+1)
		}
		if j, dup := seen[f.Name]; dup {
			return fmt.Errorf("%w: field %q appears twice (fields %d and %d)", ErrFormat, f.Name, j+1, i+1)
		}
		seen[f.Name] = i
		switch f.Type {
		case spi.TypeString, spi.TypeInt, spi.TypeFloat, spi.TypeBool, spi.TypeDate, spi.TypeTimestamp, spi.TypeBytes:
		case spi.TypeDecimal:
			if f.Precision < 0 || f.Precision > 76 || f.Scale < 0 || (f.Precision > 0 && f.Scale > f.Precision) || (f.Precision == 0 && f.Scale != 0) {
				return fmt.Errorf("%w: field %q: decimal precision %d and scale %d (want 1 <= precision <= 76, 0 <= scale <= precision, or both 0)", ErrFormat, f.Name, f.Precision, f.Scale)
			}
		default:
			return fmt.Errorf("%w: field %q has unknown type %q", ErrFormat, f.Name, f.Type)
		}
	}
	return nil
}
