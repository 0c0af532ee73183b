package format

import (
	"fmt"
	"io"
	"strconv"

	"github.com/weirdata/weir/connector/spi"
)

// Reader decodes records into batches of typed rows.
type Reader interface {
	// Read refills b with the next records: at most n of them, good rows
	// and bad records (b.Bad) together. It reuses b's slices and rows, and
	// the memory b.Raw points into, so b is only valid until the next call.
	// The *spi.RowError values are fresh and may be kept. Read returns
	// io.EOF, with b empty, when no record is left; any other error stops
	// the read (the input failed, or a header cannot be read).
	Read(b *spi.Batch, n int) error
}

// Source says where a reader's bytes come from.
type Source struct {
	// Name is the file's name in locations ("trades/AAPL.csv").
	Name string
	// Offset is the byte offset in the (uncompressed) file of the reader's
	// first byte, which must be a record start. At offset 0 a byte order
	// mark is skipped and a CSV header read.
	Offset int64
	// Line is the line number of the first byte, 0 when it is unknown:
	// locations then give byte offsets.
	Line int64
	// End stops the reader before the first record starting at or after
	// this offset (a record starting before it is read whole, past End);
	// 0 means the end of the input.
	End int64
	// Header holds the file's CSV header names, read separately, for a
	// reader that starts after the header (Offset > 0).
	Header []string
}

// Location formats: a line number when known, else the byte offset of the
// record's first byte; Parquet gives the row number in the file.
//
//	trades/AAPL.csv:1234     line 1234
//	trades/AAPL.csv@567890   the record starting at byte 567890
//	trades/AAPL.parquet#42   the 42nd row of the file
func location(dst []byte, name string, line, offset int64) []byte {
	dst = append(dst, name...)
	if line > 0 {
		dst = append(dst, ':')
		return strconv.AppendInt(dst, line, 10)
	}
	dst = append(dst, '@')
	return strconv.AppendInt(dst, offset, 10)
}

// NewReader returns a reader of the rows of schema from r, an uncompressed
// CSV or JSON Lines input (Parquet needs NewParquetReader). For CSV with a
// header, schema fields are found in the header by name (exactly, else
// ignoring case); columns the schema does not name are skipped.
func NewReader(r io.Reader, schema spi.Schema, o Options, src Source) (Reader, error) {
	if err := CheckSchema(schema); err != nil {
		return nil, err
	}
	switch o.Format {
	case CSV:
		return newCSVReader(r, schema, o, src)
	case JSONL:
		return newJSONLReader(r, schema, o, src), nil
	case Parquet:
		return nil, fmt.Errorf("%w: Parquet is read from a file (NewParquetReader), not a stream", ErrFormat)
	}
	return nil, fmt.Errorf("%w: unknown format %q", ErrFormat, o.Format)
}

// startScanner returns a scanner positioned per src.
func startScanner(r io.Reader, o Options, src Source, delim, quote byte) *scanner {
	line := src.Line
	if src.Offset == 0 {
		line = 1
	}
	s := newScanner(r, src.Offset, line, delim, quote, o.MaxRecordBytes)
	if src.End > 0 {
		s.limit = src.End
	}
	return s
}

// batchBuf reuses a batch's memory between reads.
type batchBuf struct {
	arena []byte // raw records
	loc   []byte
}

// resetBatch empties b, keeping its capacity.
func resetBatch(b *spi.Batch) {
	b.Rows = b.Rows[:0]
	b.Locs = b.Locs[:0]
	b.Raw = b.Raw[:0]
	b.Bad = b.Bad[:0]
}

// nextRow returns a row of width w for the next slot of b, reusing the
// row that slot held in an earlier batch.
func nextRow(b *spi.Batch, w int) spi.Row {
	n := len(b.Rows)
	if n < cap(b.Rows) {
		if r := b.Rows[:n+1][n]; cap(r) >= w {
			return r[:w]
		}
	}
	return make(spi.Row, w)
}
