package format_test

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/connector/format"
	"github.com/weirdata/weir/connector/spi"
)

func openParquet(t testing.TB, data []byte) *format.ParquetFile {
	t.Helper()
	pf, err := format.OpenParquet(bytes.NewReader(data), int64(len(data)), "f.parquet")
	require.NoError(t, err)
	return pf
}

func readParquet(t testing.TB, pf *format.ParquetFile, schema spi.Schema, first, last int) result {
	t.Helper()
	r, err := pf.Reader(schema, first, last)
	require.NoError(t, err)
	return readAll(t, r, 5)
}

func TestParquetRoundTrip(t *testing.T) {
	rows := hardRows(t)
	rows[6][6] = rows[6][6].(time.Time).Add(999) // microseconds: the default unit (TestParquetWriteRefusesLoss has nanos)
	// Parquet keeps instants, not zones.
	schema := append(spi.Schema(nil), allTypes...)
	schema = append(schema,
		spi.Field{Name: "amount", Type: spi.TypeDecimal, Precision: 38, Scale: 4, Nullable: true},
		spi.Field{Name: "small", Type: spi.TypeDecimal, Precision: 9, Scale: 2, Nullable: true},
		spi.Field{Name: "mid", Type: spi.TypeDecimal, Precision: 18, Scale: 0, Nullable: true},
	)
	decs := [][3]any{
		{"1234567890123456789012345678901234.5678", "-1234567.89", "-999999999999999999"},
		{nil, nil, nil},
		{"-0.0001", "0.01", "0"},
		{"0.0000", "9999999.99", "1"}, // at their declared scales: read back so
	}
	for i := range rows {
		d := decs[i%len(decs)]
		rows[i] = append(append(spi.Row(nil), rows[i]...), d[0], d[1], d[2])
	}
	o := opts(t, "parquet", "row_group_rows", "4")
	data := write(t, schema, o, rows)
	pf := openParquet(t, data)
	require.Equal(t, schema, pf.Schema(), "types come back, decimals as text included (weir.schema metadata)")
	require.Len(t, pf.RowGroups(), 4)
	require.EqualValues(t, len(rows), pf.NumRows())

	res := readParquet(t, pf, schema, 0, 4)
	require.Empty(t, res.Bad)
	equalRows(t, rows, res.Rows, false)
	for _, r := range res.Rows {
		if ts, ok := r[6].(time.Time); ok {
			require.Equal(t, time.UTC, ts.Location())
		}
	}
	require.Equal(t, "f.parquet#1", res.Locs[0])

	// A row group range reads its rows, numbered in the file.
	res = readParquet(t, pf, schema, 1, 3)
	require.Len(t, res.Rows, 8)
	require.Equal(t, "f.parquet#5", res.Locs[0])
	equalRows(t, rows[4:12], res.Rows, false)

	// A subset of columns, any order, any case.
	res = readParquet(t, pf, spi.Schema{{Name: "NAME", Type: spi.TypeString}, {Name: "id", Type: spi.TypeFloat}}, 0, 1)
	require.Equal(t, spi.Row{"plain", 1.0}, res.Rows[0])
}

func TestParquetFileTypes(t *testing.T) {
	o := opts(t, "parquet")
	schema := spi.Schema{
		{Name: "z", Type: spi.TypeString}, {Name: "a", Type: spi.TypeInt}, {Name: "dec", Type: spi.TypeDecimal, Precision: 5, Scale: 2},
	}
	data := write(t, schema, o, []spi.Row{{"x", int64(1), "1.5"}})
	// The schema is written in field order, with the expected Parquet types.
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	cols := f.Root().Columns()
	require.Equal(t, "z", cols[0].Name())
	require.Equal(t, "a", cols[1].Name())
	require.Contains(t, cols[2].Type().String(), "DECIMAL(5,2)")
	res := readParquet(t, openParquet(t, data), schema, 0, 1)
	require.Equal(t, "1.50", res.Rows[0][2], "rescaled to the declared scale")

	ts := spi.Schema{{Name: "ts", Type: spi.TypeTimestamp}, {Name: "d", Type: spi.TypeDate}}
	data = write(t, ts, o, []spi.Row{{time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("", 3600)), day(1900, 1, 1)}})
	f, err = parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	require.Contains(t, f.Root().Columns()[0].Type().String(), "TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)")
	require.Contains(t, f.Root().Columns()[1].Type().String(), "DATE")
}

func TestParquetWriteRefusesLoss(t *testing.T) {
	o := opts(t, "parquet")
	for _, tc := range []struct {
		field spi.Field
		v     any
		err   string
	}{
		{spi.Field{Name: "ts", Type: spi.TypeTimestamp}, time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC), "finer than microseconds"},
		{spi.Field{Name: "d", Type: spi.TypeDecimal, Precision: 5, Scale: 2}, "1.005", "more than 2 fractional digits"},
		{spi.Field{Name: "d", Type: spi.TypeDecimal, Precision: 5, Scale: 2}, "1234.5", "does not fit decimal(5,2)"},
		{spi.Field{Name: "n", Type: spi.TypeInt}, "12", "want a int value, got string"},
	} {
		var buf bytes.Buffer
		w, err := format.NewWriter(&buf, spi.Schema{tc.field}, o)
		require.NoError(t, err)
		err = w.Write([]spi.Row{{tc.v}})
		require.ErrorIs(t, err, spi.ErrInvalid)
		require.ErrorContains(t, err, `row 1, field "`+tc.field.Name+`"`)
		require.ErrorContains(t, err, tc.err)
	}
	// Nanoseconds are kept when asked.
	o = opts(t, "parquet", "timestamp_unit", "nanos")
	in := []spi.Row{{time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC)}}
	s := spi.Schema{{Name: "ts", Type: spi.TypeTimestamp}}
	res := readParquet(t, openParquet(t, write(t, s, o, in)), s, 0, 1)
	equalRows(t, in, res.Rows, false)
}

// TestParquetForeign reads a file written by parquet-go from Go structs,
// as another producer would, with types Weir does not write.
func TestParquetForeign(t *testing.T) {
	type rec struct {
		U8   uint8     `parquet:"u8"`
		U64  uint64    `parquet:"u64"`
		I32  int32     `parquet:"i32,optional"`
		F32  float32   `parquet:"f32"`
		Ms   time.Time `parquet:"ms,timestamp(millisecond)"`
		Enum string    `parquet:"enum,enum"`
		JS   string    `parquet:"js,json"`
		Raw  []byte    `parquet:"raw"`
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[rec](&buf)
	_, err := w.Write([]rec{
		{U8: 255, U64: 7, I32: -5, F32: 1.5, Ms: time.UnixMilli(1700000000123).UTC(), Enum: "A", JS: `{"a":1}`, Raw: []byte{9}},
		{U8: 0, U64: math.MaxUint64, F32: -2, Ms: time.UnixMilli(0).UTC()},
	})
	require.NoError(t, err)
	require.NoError(t, w.Close())
	pf := openParquet(t, buf.Bytes())
	types := map[string]spi.FieldType{}
	for _, f := range pf.Schema() {
		types[f.Name] = f.Type
	}
	require.Equal(t, map[string]spi.FieldType{
		"u8": spi.TypeInt, "u64": spi.TypeInt, "i32": spi.TypeInt, "f32": spi.TypeFloat, "ms": spi.TypeTimestamp,
		"enum": spi.TypeString, "js": spi.TypeString, "raw": spi.TypeBytes,
	}, types)
	res := readParquet(t, pf, pf.Schema(), 0, 1)
	require.Len(t, res.Rows, 1)
	require.Len(t, res.Bad, 1, "a uint64 beyond the int range makes its row bad")
	require.Equal(t, "f.parquet#2", res.Bad[0].Loc)
	require.Contains(t, res.Bad[0].Reason, `field "u64": 18446744073709551615 is beyond the int range`)
	got := map[string]any{}
	for i, f := range pf.Schema() {
		got[f.Name] = res.Rows[0][i]
	}
	require.Equal(t, int64(255), got["u8"])
	require.Equal(t, float64(1.5), got["f32"])
	require.True(t, time.UnixMilli(1700000000123).Equal(got["ms"].(time.Time)))
	require.Equal(t, []byte{9}, got["raw"])

	// Wrong types and missing columns are refused precisely.
	_, err = pf.Reader(spi.Schema{{Name: "enum", Type: spi.TypeDate}}, 0, 1)
	require.ErrorContains(t, err, `column "enum" holds string values, the schema wants date`)
	_, err = pf.Reader(spi.Schema{{Name: "nope", Type: spi.TypeDate}}, 0, 1)
	require.ErrorContains(t, err, `field "nope" is not in the header`)

	_, err = format.OpenParquet(strings.NewReader("not parquet at all"), 18, "x.parquet")
	require.ErrorIs(t, err, spi.ErrInvalid)
	require.ErrorContains(t, err, "x.parquet: not a readable Parquet file")
}

func TestParquetEmptyAndCompression(t *testing.T) {
	s := spi.Schema{{Name: "a", Type: spi.TypeString}}
	for _, c := range []string{"none", "snappy", "gzip", "zstd"} {
		o := opts(t, "parquet", "compression", c)
		data := write(t, s, o, []spi.Row{{strings.Repeat("z", 10000)}})
		res := readParquet(t, openParquet(t, data), s, 0, 1)
		require.Equal(t, []spi.Row{{strings.Repeat("z", 10000)}}, res.Rows, c)
	}
	data := write(t, s, opts(t, "parquet"), nil)
	pf := openParquet(t, data)
	require.Equal(t, s[0].Name, pf.Schema()[0].Name)
	require.Zero(t, pf.NumRows())
	js, _ := json.Marshal(s)
	require.NotEmpty(t, js)
}
