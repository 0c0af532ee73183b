package format

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/encoding"
	pformat "github.com/parquet-go/parquet-go/format"

	"github.com/weirdata/weir/connector/spi"
)

// Parquet.
//
// Written: one optional column per field, in schema order (nullability is
// not declared reliably across connectors, so every column may hold NULL):
//
//	string     BYTE_ARRAY (STRING)
//	int        INT64
//	float      DOUBLE
//	decimal    DECIMAL(precision, scale) on INT32, INT64 or FIXED_LEN_BYTE_ARRAY
//	           when the field declares a precision; the canonical text as
//	           BYTE_ARRAY (STRING) when it does not, since a DECIMAL column
//	           has one scale and rescaling "1.5" to "1.50" would change the
//	           value's text. A value with more fractional digits than the
//	           scale (other than zeros) or more digits than the precision is
//	           an error, never rounded.
//	bool       BOOLEAN
//	date       DATE
//	timestamp  TIMESTAMP(isAdjustedToUTC=true, MICROS) (option timestamp_unit:
//	           millis, micros, nanos); a value finer than the unit is an
//	           error, never truncated; the zone is not kept (read back as UTC)
//	bytes      BYTE_ARRAY
//
// The Weir schema is kept in the file's key-value metadata (ParquetSchemaKey)
// so that a decimal written as text reads back as a decimal.
//
// Read: the file's own types: BOOLEAN bool; INT32/INT64 int (DATE date,
// TIMESTAMP timestamp, DECIMAL decimal, TIME its text "15:04:05.000000",
// UINT64 int with values above the int range bad); INT96 timestamp; FLOAT
// and DOUBLE float; BYTE_ARRAY string when annotated STRING, ENUM or JSON,
// decimal when DECIMAL, else bytes; FIXED_LEN_BYTE_ARRAY decimal when
// DECIMAL, string when UUID, else bytes. Nested columns (groups, lists,
// maps) and repeated columns are refused.

// ParquetSchemaKey is the key-value metadata key holding the Weir schema.
const ParquetSchemaKey = "weir.schema"

// ParquetFile is an open Parquet file.
type ParquetFile struct {
	name   string
	f      *parquet.File
	schema spi.Schema
	cols   []*parquet.Column // by leaf index
	starts []int64           // first row of each row group
}

// RowGroup describes one row group of a Parquet file.
type RowGroup struct {
	Rows  int64
	Bytes int64 // compressed size
}

// OpenParquet opens the Parquet file read through ra, of size bytes, and
// derives its schema; name is used in errors and locations.
func OpenParquet(ra io.ReaderAt, size int64, name string) (pf *ParquetFile, err error) {
	defer func() {
		if r := recover(); r != nil { // parquet-go panics on some corrupt files
			pf, err = nil, fmt.Errorf("%w: %s: not a readable Parquet file: %v", ErrFormat, name, r)
		}
	}()
	f, err := parquet.OpenFile(ra, size, parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not a readable Parquet file: %v", ErrFormat, name, err)
	}
	p := &ParquetFile{name: name, f: f}
	var declared map[string]spi.Field
	if js, ok := f.Lookup(ParquetSchemaKey); ok {
		var s spi.Schema
		if json.Unmarshal([]byte(js), &s) == nil {
			declared = make(map[string]spi.Field, len(s))
			for _, fl := range s {
				declared[fl.Name] = fl
			}
		}
	}
	for _, c := range f.Root().Columns() {
		if !c.Leaf() || c.Repeated() {
			return nil, fmt.Errorf("%w: %s: column %q is nested or repeated, which Weir does not read", ErrFormat, name, c.Name())
		}
		fl, err := parquetField(c)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: column %q: %v", ErrFormat, name, c.Name(), err)
		}
		if d, ok := declared[fl.Name]; ok && d.Type == spi.TypeDecimal && fl.Type == spi.TypeString {
			fl.Type, fl.Precision, fl.Scale = spi.TypeDecimal, d.Precision, d.Scale
		}
		p.schema = append(p.schema, fl)
		p.cols = append(p.cols, c)
	}
	if len(p.schema) == 0 {
		return nil, fmt.Errorf("%w: %s: the Parquet file has no columns", ErrFormat, name)
	}
	var n int64
	for _, rg := range f.RowGroups() {
		p.starts = append(p.starts, n)
		n += rg.NumRows()
	}
	return p, nil
}

// Schema returns the file's schema.
func (p *ParquetFile) Schema() spi.Schema { return p.schema }

// NumRows returns the number of rows in the file.
func (p *ParquetFile) NumRows() int64 { return p.f.NumRows() }

// RowGroups describes the file's row groups.
func (p *ParquetFile) RowGroups() []RowGroup {
	md := p.f.Metadata()
	out := make([]RowGroup, len(md.RowGroups))
	for i, rg := range md.RowGroups {
		out[i] = RowGroup{Rows: rg.NumRows, Bytes: rg.TotalCompressedSize}
		if out[i].Bytes <= 0 {
			out[i].Bytes = rg.TotalByteSize
		}
	}
	return out
}

// parquetField maps a leaf column to a field.
func parquetField(c *parquet.Column) (spi.Field, error) {
	t := c.Type()
	fl := spi.Field{Name: c.Name(), Nullable: c.Optional()}
	lt := t.LogicalType()
	var ct deprecated.ConvertedType = -1
	if p := t.ConvertedType(); p != nil {
		ct = *p
	}
	if lt != nil {
		if d, ok := lt.Value.(*pformat.DecimalType); ok {
			fl.Type, fl.Precision, fl.Scale = spi.TypeDecimal, int(d.Precision), int(d.Scale)
			switch t.Kind() {
			case parquet.Int32, parquet.Int64, parquet.ByteArray, parquet.FixedLenByteArray:
				return fl, nil
			}
			return fl, fmt.Errorf("DECIMAL on %s", t.Kind())
		}
	}
	switch t.Kind() {
	case parquet.Boolean:
		fl.Type = spi.TypeBool
	case parquet.Int32, parquet.Int64:
		fl.Type = spi.TypeInt
		switch {
		case isLogical[*pformat.DateType](lt) || ct == deprecated.Date:
			fl.Type = spi.TypeDate
		case isLogical[*pformat.TimestampType](lt) || ct == deprecated.TimestampMillis || ct == deprecated.TimestampMicros:
			fl.Type = spi.TypeTimestamp
		case isLogical[*pformat.TimeType](lt) || ct == deprecated.TimeMillis || ct == deprecated.TimeMicros:
			fl.Type = spi.TypeString
		}
	case parquet.Int96:
		fl.Type = spi.TypeTimestamp
	case parquet.Float, parquet.Double:
		fl.Type = spi.TypeFloat
	case parquet.ByteArray:
		fl.Type = spi.TypeBytes
		if isLogical[*pformat.StringType](lt) || isLogical[*pformat.EnumType](lt) || isLogical[*pformat.JsonType](lt) ||
			ct == deprecated.UTF8 || ct == deprecated.Enum || ct == deprecated.Json {
			fl.Type = spi.TypeString
		}
	case parquet.FixedLenByteArray:
		fl.Type = spi.TypeBytes
		if isLogical[*pformat.UUIDType](lt) {
			fl.Type = spi.TypeString
		}
	default:
		return fl, fmt.Errorf("unsupported type %s", t)
	}
	return fl, nil
}

func isLogical[T any](lt *pformat.LogicalType) bool {
	if lt == nil {
		return false
	}
	_, ok := lt.Value.(T)
	return ok
}

// converter turns one Parquet value of a column into the Go value of a field.
type converter func(v parquet.Value) (any, error)

// converterFor returns the converter of column c into a field of type want.
func (p *ParquetFile) converterFor(i int, want spi.Field) (converter, error) {
	c := p.cols[i]
	have := p.schema[i]
	t := c.Type()
	lt := t.LogicalType()
	base, err := baseConverter(c, have)
	if err != nil {
		return nil, err
	}
	if want.Type == have.Type {
		return base, nil
	}
	switch {
	case have.Type == spi.TypeInt && want.Type == spi.TypeFloat:
		return func(v parquet.Value) (any, error) {
			x, err := base(v)
			if err != nil {
				return nil, err
			}
			return float64(x.(int64)), nil
		}, nil
	case have.Type == spi.TypeInt && want.Type == spi.TypeDecimal:
		return func(v parquet.Value) (any, error) {
			x, err := base(v)
			if err != nil {
				return nil, err
			}
			return strconv.FormatInt(x.(int64), 10), nil
		}, nil
	case have.Type == spi.TypeDecimal && want.Type == spi.TypeString,
		have.Type == spi.TypeString && want.Type == spi.TypeDecimal && !isLogical[*pformat.DecimalType](lt):
		if want.Type == spi.TypeDecimal {
			return func(v parquet.Value) (any, error) {
				x, err := base(v)
				if err != nil {
					return nil, err
				}
				return CanonicalDecimal(x.(string))
			}, nil
		}
		return base, nil
	}
	return nil, fmt.Errorf("%w: %s: column %q holds %s values, the schema wants %s", ErrFormat, p.name, have.Name, have.Type, want.Type)
}

// baseConverter converts a column's values to its own field type.
func baseConverter(c *parquet.Column, fl spi.Field) (converter, error) {
	t := c.Type()
	lt := t.LogicalType()
	kind := t.Kind()
	switch fl.Type {
	case spi.TypeBool:
		return func(v parquet.Value) (any, error) { return v.Boolean(), nil }, nil
	case spi.TypeFloat:
		if kind == parquet.Float {
			return func(v parquet.Value) (any, error) { return float64(v.Float()), nil }, nil
		}
		return func(v parquet.Value) (any, error) { return v.Double(), nil }, nil
	case spi.TypeInt:
		if kind == parquet.Int32 {
			if it, ok := logical[*pformat.IntType](lt); ok && !it.IsSigned {
				return func(v parquet.Value) (any, error) { return int64(uint32(v.Int32())), nil }, nil
			}
			return func(v parquet.Value) (any, error) { return int64(v.Int32()), nil }, nil
		}
		if it, ok := logical[*pformat.IntType](lt); ok && !it.IsSigned {
			return func(v parquet.Value) (any, error) {
				u := uint64(v.Int64())
				if u > math.MaxInt64 {
					return nil, fmt.Errorf("%d is beyond the int range", u)
				}
				return int64(u), nil
			}, nil
		}
		return func(v parquet.Value) (any, error) { return v.Int64(), nil }, nil
	case spi.TypeDate:
		return func(v parquet.Value) (any, error) {
			return time.Unix(int64(v.Int32())*86400, 0).UTC(), nil
		}, nil
	case spi.TypeTimestamp:
		if kind == parquet.Int96 {
			return func(v parquet.Value) (any, error) { return int96Time(v.Int96()), nil }, nil
		}
		unit := "micros"
		if ts, ok := logical[*pformat.TimestampType](lt); ok {
			unit = timeUnitName(ts.Unit)
		} else if ct := t.ConvertedType(); ct != nil && *ct == deprecated.TimestampMillis {
			unit = "millis"
		}
		switch unit {
		case "millis":
			return func(v parquet.Value) (any, error) { return time.UnixMilli(v.Int64()).UTC(), nil }, nil
		case "nanos":
			return func(v parquet.Value) (any, error) { return time.Unix(0, v.Int64()).UTC(), nil }, nil
		}
		return func(v parquet.Value) (any, error) { return time.UnixMicro(v.Int64()).UTC(), nil }, nil
	case spi.TypeDecimal:
		if !isLogical[*pformat.DecimalType](lt) {
			return func(v parquet.Value) (any, error) { return CanonicalDecimal(string(v.ByteArray())) }, nil
		}
		scale := fl.Scale
		switch kind {
		case parquet.Int32:
			return func(v parquet.Value) (any, error) { return scaledText(big.NewInt(int64(v.Int32())), scale), nil }, nil
		case parquet.Int64:
			return func(v parquet.Value) (any, error) { return scaledText(big.NewInt(v.Int64()), scale), nil }, nil
		}
		return func(v parquet.Value) (any, error) { return scaledText(fromTwos(v.ByteArray()), scale), nil }, nil
	case spi.TypeString:
		switch {
		case isLogical[*pformat.UUIDType](lt):
			return func(v parquet.Value) (any, error) { return uuidText(v.ByteArray()), nil }, nil
		case kind == parquet.Int32 || kind == parquet.Int64: // TIME
			unit := "millis"
			if tt, ok := logical[*pformat.TimeType](lt); ok {
				unit = timeUnitName(tt.Unit)
			} else if ct := t.ConvertedType(); ct != nil && *ct == deprecated.TimeMicros {
				unit = "micros"
			}
			return func(v parquet.Value) (any, error) {
				var d time.Duration
				switch unit {
				case "millis":
					d = time.Duration(v.Int32()) * time.Millisecond
				case "micros":
					d = time.Duration(v.Int64()) * time.Microsecond
				default:
					d = time.Duration(v.Int64())
				}
				return time.Unix(0, 0).UTC().Add(d).Format("15:04:05.000000"), nil
			}, nil
		}
		return func(v parquet.Value) (any, error) { return string(v.ByteArray()), nil }, nil
	case spi.TypeBytes:
		return func(v parquet.Value) (any, error) {
			return append(make([]byte, 0, len(v.ByteArray())), v.ByteArray()...), nil
		}, nil
	}
	return nil, fmt.Errorf("%w: column %q: unsupported type %s", ErrFormat, fl.Name, t)
}

func logical[T any](lt *pformat.LogicalType) (T, bool) {
	var zero T
	if lt == nil {
		return zero, false
	}
	v, ok := lt.Value.(T)
	return v, ok
}

func timeUnitName(u pformat.TimeUnit) string {
	switch u.Value.(type) {
	case *pformat.MilliSeconds:
		return "millis"
	case *pformat.NanoSeconds:
		return "nanos"
	}
	return "micros"
}

// int96Time converts a legacy INT96 timestamp (nanoseconds of the day, then
// the Julian day).
func int96Time(i deprecated.Int96) time.Time {
	nanos := int64(uint64(i[1])<<32 | uint64(i[0]))
	days := int64(i[2]) - 2440588
	return time.Unix(days*86400, nanos).UTC()
}

func uuidText(b []byte) string {
	if len(b) != 16 {
		return fmt.Sprintf("%x", b)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// scaledText is the canonical text of unscaled × 10^-scale.
func scaledText(unscaled *big.Int, scale int) string {
	neg := unscaled.Sign() < 0
	digits := new(big.Int).Abs(unscaled).String()
	if scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// fromTwos reads a big-endian two's complement integer.
func fromTwos(b []byte) *big.Int {
	x := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return x
}

// unscaled returns the decimal text d (canonical) as an integer at scale,
// refusing a value that does not fit precision digits or would be rounded.
func unscaled(d string, precision, scale int) (*big.Int, error) {
	c, err := CanonicalDecimal(d)
	if err != nil {
		return nil, err
	}
	ip, fp, _ := strings.Cut(c, ".")
	if len(fp) > scale {
		if strings.Trim(fp[scale:], "0") != "" {
			return nil, fmt.Errorf("%s has more than %d fractional digits", c, scale)
		}
		fp = fp[:scale]
	}
	fp += strings.Repeat("0", scale-len(fp))
	digits := strings.TrimLeft(strings.TrimPrefix(ip, "-")+fp, "0")
	if len(digits) > precision {
		return nil, fmt.Errorf("%s does not fit decimal(%d,%d)", c, precision, scale)
	}
	x, ok := new(big.Int).SetString(ip+fp, 10)
	if !ok {
		return nil, fmt.Errorf("%s is not a decimal", c)
	}
	return x, nil
}

// toTwos writes x as a big-endian two's complement integer of n bytes.
func toTwos(x *big.Int, n int) []byte {
	b := make([]byte, n)
	if x.Sign() >= 0 {
		return x.FillBytes(b)
	}
	y := new(big.Int).Add(x, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
	return y.FillBytes(b)
}

// decimalBytes is the FIXED_LEN_BYTE_ARRAY length of a decimal of precision p.
func decimalBytes(p int) int {
	return int(math.Ceil((float64(p)*math.Log2(10) + 1) / 8))
}

// parquetReader reads rows of chosen row groups.
type parquetReader struct {
	p      *ParquetFile
	schema spi.Schema
	cols   []int // file column of each schema field
	conv   []converter
	groups []int // row groups left to read
	rows   parquet.Rows
	rowNum int64 // number in the file of the next row (1-based)
	buf    []parquet.Row
	loc    []byte
}

// Reader returns a reader of the rows of row groups [first, last) as rows
// of schema, whose fields are found among the file's columns by name
// (exactly, else ignoring case). A column of another type than its field is
// an error, except int read as float or decimal, decimal read as string,
// and decimal text read as decimal.
func (p *ParquetFile) Reader(schema spi.Schema, first, last int) (Reader, error) {
	if err := CheckSchema(schema); err != nil {
		return nil, err
	}
	n := len(p.f.RowGroups())
	if first < 0 || last > n || first > last {
		return nil, fmt.Errorf("%w: %s: row groups [%d, %d) of %d", ErrFormat, p.name, first, last, n)
	}
	names := make([]string, len(p.schema))
	for i, f := range p.schema {
		names[i] = f.Name
	}
	cols, err := MapColumns(schema, names)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.name, err)
	}
	r := &parquetReader{p: p, schema: schema, cols: cols, buf: make([]parquet.Row, 0, 256)}
	for i, c := range cols {
		conv, err := p.converterFor(c, schema[i])
		if err != nil {
			return nil, err
		}
		r.conv = append(r.conv, conv)
	}
	for g := first; g < last; g++ {
		r.groups = append(r.groups, g)
	}
	return r, nil
}

// Read decodes the next rows into b. A value that cannot be converted (an
// unsigned 64-bit value beyond the int range) makes its row bad.
func (r *parquetReader) Read(b *spi.Batch, n int) (err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("%w: %s: corrupt Parquet data: %v", ErrFormat, r.p.name, x)
		}
	}()
	resetBatch(b)
	b.Raw = nil
	for len(b.Rows)+len(b.Bad) < n {
		if r.rows == nil {
			if len(r.groups) == 0 {
				break
			}
			g := r.groups[0]
			r.groups = r.groups[1:]
			r.rows = r.p.f.RowGroups()[g].Rows()
			r.rowNum = r.p.starts[g] + 1
		}
		want := min(n-len(b.Rows)-len(b.Bad), cap(r.buf))
		buf := r.buf[:want]
		got, err := r.rows.ReadRows(buf)
		for _, prow := range buf[:got] {
			r.row(b, prow)
		}
		if errors.Is(err, io.EOF) || (err == nil && got == 0) {
			_ = r.rows.Close()
			r.rows = nil
			continue
		}
		if err != nil {
			return fmt.Errorf("%w: %s: read Parquet rows: %v", ErrFormat, r.p.name, err)
		}
	}
	if len(b.Rows) == 0 && len(b.Bad) == 0 {
		return io.EOF
	}
	return nil
}

// row converts one Parquet row.
func (r *parquetReader) row(b *spi.Batch, prow parquet.Row) {
	r.loc = append(append(r.loc[:0], r.p.name...), '#')
	r.loc = strconv.AppendInt(r.loc, r.rowNum, 10)
	r.rowNum++
	row := nextRow(b, len(r.schema))
	for i := range r.schema {
		c := r.cols[i]
		if c >= len(prow) {
			b.Bad = append(b.Bad, &spi.RowError{Loc: string(r.loc), Reason: fmt.Sprintf("no value for column %q", r.schema[i].Name)})
			return
		}
		v := prow[c]
		if v.Column() != c {
			// Flat files give one value per column in column order; find it otherwise.
			v = parquet.Value{}
			for _, x := range prow {
				if x.Column() == c {
					v = x
					break
				}
			}
		}
		if v.IsNull() {
			row[i] = nil
			continue
		}
		x, err := r.conv[i](v)
		if err != nil {
			b.Bad = append(b.Bad, &spi.RowError{Loc: string(r.loc), Reason: fmt.Sprintf("field %q: %v", r.schema[i].Name, err)})
			return
		}
		row[i] = x
	}
	b.Rows = append(b.Rows, row)
	b.Locs = append(b.Locs, string(r.loc))
}

// parquetWriter writes rows to a Parquet file.
type parquetWriter struct {
	w      *parquet.Writer
	schema spi.Schema
	enc    []func(v any) (parquet.Value, error)
	rows   []parquet.Row
	n      int64
	inRG   int64
	perRG  int64
}

func newParquetWriter(w io.Writer, schema spi.Schema, o Options) (*parquetWriter, error) {
	fields := make([]parquet.Field, len(schema))
	pw := &parquetWriter{schema: schema, perRG: o.RowGroupRows}
	if pw.perRG <= 0 {
		pw.perRG = RowGroupRowsDefault
	}
	for i, f := range schema {
		node, enc, err := parquetColumn(f, o)
		if err != nil {
			return nil, fmt.Errorf("%w: field %q: %v", ErrFormat, f.Name, err)
		}
		fields[i] = &namedField{Node: parquet.Optional(node), name: f.Name}
		pw.enc = append(pw.enc, enc)
	}
	js, err := json.Marshal(schema)
	if err != nil {
		return nil, fmt.Errorf("encode schema: %w", err)
	}
	opts := []parquet.WriterOption{
		parquet.NewSchema("weir", orderedGroup(fields)),
		parquet.KeyValueMetadata(ParquetSchemaKey, string(js)),
		parquet.CreatedBy("weir", "", ""),
	}
	switch o.Compression {
	case "", Snappy:
		opts = append(opts, parquet.Compression(&parquet.Snappy))
	case Gzip:
		opts = append(opts, parquet.Compression(&parquet.Gzip))
	case Zstd:
		opts = append(opts, parquet.Compression(&parquet.Zstd))
	case None:
		opts = append(opts, parquet.Compression(&parquet.Uncompressed))
	}
	pw.w = parquet.NewWriter(w, opts...)
	return pw, nil
}

// parquetColumn returns the node of field f and the encoder of its values.
func parquetColumn(f spi.Field, o Options) (parquet.Node, func(any) (parquet.Value, error), error) {
	switch f.Type {
	case spi.TypeString:
		return parquet.String(), func(v any) (parquet.Value, error) {
			switch x := v.(type) {
			case string:
				return parquet.ByteArrayValue([]byte(x)), nil
			case []byte:
				return parquet.ByteArrayValue(x), nil
			}
			return parquet.Value{}, wrongType(&f, v)
		}, nil
	case spi.TypeInt:
		return parquet.Int(64), func(v any) (parquet.Value, error) {
			if n, ok := asInt(v); ok {
				return parquet.Int64Value(n), nil
			}
			return parquet.Value{}, wrongType(&f, v)
		}, nil
	case spi.TypeFloat:
		return parquet.Leaf(parquet.DoubleType), func(v any) (parquet.Value, error) {
			switch x := v.(type) {
			case float64:
				return parquet.DoubleValue(x), nil
			case float32:
				return parquet.DoubleValue(float64(x)), nil
			}
			if n, ok := asInt(v); ok {
				return parquet.DoubleValue(float64(n)), nil
			}
			return parquet.Value{}, wrongType(&f, v)
		}, nil
	case spi.TypeBool:
		return parquet.Leaf(parquet.BooleanType), func(v any) (parquet.Value, error) {
			if b, ok := v.(bool); ok {
				return parquet.BooleanValue(b), nil
			}
			return parquet.Value{}, wrongType(&f, v)
		}, nil
	case spi.TypeDate:
		return parquet.Date(), func(v any) (parquet.Value, error) {
			t, ok := v.(time.Time)
			if !ok {
				return parquet.Value{}, wrongType(&f, v)
			}
			y, m, d := t.Date()
			days := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
			if days < math.MinInt32 || days > math.MaxInt32 {
				return parquet.Value{}, fmt.Errorf("date %s is out of range", t.Format(DateLayoutDefault))
			}
			return parquet.Int32Value(int32(days)), nil
		}, nil
	case spi.TypeTimestamp:
		unit := o.TimestampUnit
		var pu parquet.TimeUnit = parquet.Microsecond
		switch unit {
		case "millis":
			pu = parquet.Millisecond
		case "nanos":
			pu = parquet.Nanosecond
		default:
			unit = "micros"
		}
		return parquet.Timestamp(pu), func(v any) (parquet.Value, error) {
			t, ok := v.(time.Time)
			if !ok {
				return parquet.Value{}, wrongType(&f, v)
			}
			switch unit {
			case "millis":
				if t.Nanosecond()%1e6 != 0 {
					return parquet.Value{}, fmt.Errorf("%s is finer than milliseconds (option timestamp_unit)", t.Format(time.RFC3339Nano))
				}
				return parquet.Int64Value(t.UnixMilli()), nil
			case "nanos":
				if t.Year() < 1678 || t.Year() > 2261 {
					return parquet.Value{}, fmt.Errorf("%s is out of the range of nanosecond timestamps", t.Format(time.RFC3339Nano))
				}
				return parquet.Int64Value(t.UnixNano()), nil
			}
			if t.Nanosecond()%1e3 != 0 {
				return parquet.Value{}, fmt.Errorf("%s is finer than microseconds (option timestamp_unit=nanos keeps it)", t.Format(time.RFC3339Nano))
			}
			return parquet.Int64Value(t.UnixMicro()), nil
		}, nil
	case spi.TypeBytes:
		return parquet.Leaf(parquet.ByteArrayType), func(v any) (parquet.Value, error) {
			switch x := v.(type) {
			case []byte:
				return parquet.ByteArrayValue(x), nil
			case string:
				return parquet.ByteArrayValue([]byte(x)), nil
			}
			return parquet.Value{}, wrongType(&f, v)
		}, nil
	case spi.TypeDecimal:
		text := func(v any) (string, error) {
			switch x := v.(type) {
			case string:
				return CanonicalDecimal(x)
			case float64:
				if math.IsNaN(x) || math.IsInf(x, 0) {
					return "", fmt.Errorf("%v is not a decimal", x)
				}
				return strconv.FormatFloat(x, 'f', -1, 64), nil
			}
			if n, ok := asInt(v); ok {
				return strconv.FormatInt(n, 10), nil
			}
			return "", wrongType(&f, v)
		}
		if f.Precision == 0 {
			return parquet.String(), func(v any) (parquet.Value, error) {
				s, err := text(v)
				if err != nil {
					return parquet.Value{}, err
				}
				return parquet.ByteArrayValue([]byte(s)), nil
			}, nil
		}
		p, s := f.Precision, f.Scale
		conv := func(v any) (*big.Int, error) {
			t, err := text(v)
			if err != nil {
				return nil, err
			}
			return unscaled(t, p, s)
		}
		switch {
		case p <= 9:
			return parquet.Decimal(s, p, parquet.Int32Type), func(v any) (parquet.Value, error) {
				x, err := conv(v)
				if err != nil {
					return parquet.Value{}, err
				}
				return parquet.Int32Value(int32(x.Int64())), nil
			}, nil
		case p <= 18:
			return parquet.Decimal(s, p, parquet.Int64Type), func(v any) (parquet.Value, error) {
				x, err := conv(v)
				if err != nil {
					return parquet.Value{}, err
				}
				return parquet.Int64Value(x.Int64()), nil
			}, nil
		}
		n := decimalBytes(p)
		return parquet.Decimal(s, p, parquet.FixedLenByteArrayType(n)), func(v any) (parquet.Value, error) {
			x, err := conv(v)
			if err != nil {
				return parquet.Value{}, err
			}
			return parquet.FixedLenByteArrayValue(toTwos(x, n)), nil
		}, nil
	}
	return nil, nil, fmt.Errorf("unknown type %q", f.Type)
}

// Write encodes rows.
func (pw *parquetWriter) Write(rows []spi.Row) error {
	for _, row := range rows {
		pw.n++
		if len(row) != len(pw.schema) {
			return fmt.Errorf("%w: row %d has %d values, the schema %d fields", ErrFormat, pw.n, len(row), len(pw.schema))
		}
		prow := make(parquet.Row, len(row))
		for i, v := range row {
			if v == nil {
				prow[i] = parquet.NullValue().Level(0, 0, i)
				continue
			}
			pv, err := pw.enc[i](v)
			if err != nil {
				return fmt.Errorf("%w: row %d, field %q: %v", ErrFormat, pw.n, pw.schema[i].Name, err)
			}
			prow[i] = pv.Level(0, 1, i)
		}
		pw.rows = append(pw.rows, prow)
		if len(pw.rows) >= 1024 {
			if err := pw.flushRows(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (pw *parquetWriter) flushRows() error {
	for len(pw.rows) > 0 {
		take := min(int64(len(pw.rows)), pw.perRG-pw.inRG)
		if _, err := pw.w.WriteRows(pw.rows[:take]); err != nil {
			return fmt.Errorf("write Parquet rows: %w", err)
		}
		pw.inRG += take
		pw.rows = pw.rows[take:]
		if pw.inRG >= pw.perRG {
			if err := pw.w.Flush(); err != nil {
				return fmt.Errorf("write Parquet row group: %w", err)
			}
			pw.inRG = 0
		}
	}
	pw.rows = pw.rows[:0:0]
	return nil
}

// Close writes the buffered rows and the footer.
func (pw *parquetWriter) Close() error {
	if err := pw.flushRows(); err != nil {
		return err
	}
	if err := pw.w.Close(); err != nil {
		return fmt.Errorf("write Parquet footer: %w", err)
	}
	return nil
}

// orderedGroup is a Parquet group whose columns keep their order
// (parquet.Group sorts them by name).
type orderedGroup []parquet.Field

func (g orderedGroup) ID() int                     { return 0 }
func (g orderedGroup) String() string              { return fmt.Sprintf("group(%d fields)", len(g)) }
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Fields() []parquet.Field     { return g }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) GoType() reflect.Type        { return reflect.TypeOf(map[string]any{}) }

// namedField names a node in its group.
type namedField struct {
	parquet.Node
	name string
}

func (f *namedField) Name() string { return f.name }

func (f *namedField) Value(base reflect.Value) reflect.Value {
	if base.Kind() == reflect.Map {
		return base.MapIndex(reflect.ValueOf(f.name))
	}
	return reflect.Value{}
}
