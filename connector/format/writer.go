package format

import (
	"fmt"
	"io"

	"github.com/weirdata/weir/connector/spi"
)

// Writer encodes rows of a schema.
type Writer interface {
	// Write encodes rows, whose values are of the Go types connector/spi
	// gives each field type (int also takes the other Go integer types,
	// float float32, decimal int64 and float64). A value of another type is
	// an error naming the row and the field.
	Write(rows []spi.Row) error
	// Close writes out what is buffered (and Parquet's footer). It neither
	// closes nor syncs the underlying writer.
	Close() error
}

// NewWriter returns a writer of rows of schema into w in format o.Format.
// Text formats are written uncompressed: wrap w with NewCompressor.
func NewWriter(w io.Writer, schema spi.Schema, o Options) (Writer, error) {
	if err := CheckSchema(schema); err != nil {
		return nil, err
	}
	switch o.Format {
	case CSV:
		return newCSVWriter(w, schema, o)
	case JSONL:
		return newJSONLWriter(w, schema, o), nil
	case Parquet:
		return newParquetWriter(w, schema, o)
	}
	return nil, fmt.Errorf("%w: unknown format %q", ErrFormat, o.Format)
}
