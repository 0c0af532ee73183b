package format_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/connector/format"
	"github.com/weirdata/weir/connector/spi"
)

var allTypes = spi.Schema{
	{Name: "id", Type: spi.TypeInt, Nullable: true},
	{Name: "name", Type: spi.TypeString, Nullable: true},
	{Name: "price", Type: spi.TypeDecimal, Nullable: true},
	{Name: "qty", Type: spi.TypeFloat, Nullable: true},
	{Name: "ok", Type: spi.TypeBool, Nullable: true},
	{Name: "day", Type: spi.TypeDate, Nullable: true},
	{Name: "at", Type: spi.TypeTimestamp, Nullable: true},
	{Name: "blob", Type: spi.TypeBytes, Nullable: true},
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// hardRows holds the values every round trip must keep.
func hardRows(t testing.TB) []spi.Row {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	big := strings.Repeat("0123456789abcdef\"\n,", (1<<20)/19+1) // > 1 MB, with quotes, newlines, commas
	return []spi.Row{
		{int64(1), "plain", "12.340", 1.5, true, day(2026, 11, 20), time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC), []byte("hi")},
		{nil, nil, nil, nil, nil, nil, nil, nil},
		{int64(math.MaxInt64), "", "-0.001", 0.1, false, day(1, 1, 1), time.Date(2026, 3, 29, 2, 30, 0, 123456000, time.FixedZone("", 5*3600+1800)), []byte{}},
		{int64(math.MinInt64), "a,b", "123456789012345678901234567890.123456789", -1e300, true, day(9999, 12, 31), time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.FixedZone("", -8*3600)), []byte{0, 1, 2, 0xff}},
		{int64(0), `he said "hi", then ""left""`, "0", 5e-324, false, day(1969, 12, 31), time.Date(2026, 11, 1, 1, 30, 0, 0, ny), []byte("\n,\"")},
		{int64(-1), "line1\nline2\r\nline3\rend", "1", math.Inf(1), true, day(2000, 2, 29), time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), nil},
		{int64(42), "Zürich 東京 🚀 \u00a0", "-99999999999999999999.99", math.Inf(-1), nil, day(2024, 2, 29), time.Date(2026, 7, 1, 12, 0, 0, 1, time.UTC), nil},
		{int64(7), `\N`, "0.000", math.NaN(), true, nil, nil, nil},
		{int64(8), "NULL", nil, 1e21, false, nil, nil, nil},
		{int64(9), "  spaced  ", "5", -0.0, true, nil, nil, nil},
		{int64(10), `"`, "7.0", 3.0, true, nil, nil, nil},
		{int64(11), big, "1.1", 2.5, false, nil, nil, nil},
		{int64(12), "tab\there;semi'single'", "2", 4.0, true, nil, nil, nil},
	}
}

func TestCSVRoundTrip(t *testing.T) {
	rows := hardRows(t)
	for _, tc := range []struct {
		name string
		kv   []string
	}{
		{"defaults", nil},
		{"semicolon and \\N", []string{"delimiter", ";", "null", `\N`}},
		{"tab, no header", []string{"delimiter", "\\t", "header", "false"}},
		{"single quote", []string{"quote", "'", "null", "NULL"}},
		{"pipe", []string{"delimiter", "|"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts(t, "csv", tc.kv...)
			data := write(t, allTypes, o, rows)
			res := readString(t, string(data), allTypes, o)
			require.Empty(t, res.Bad)
			equalRows(t, rows, res.Rows, true)
			// Writing what was read gives the same bytes.
			require.Equal(t, string(data), string(write(t, allTypes, o, res.Rows)))
		})
	}
}

func TestCSVLayoutsAndZones(t *testing.T) {
	o := opts(t, "csv", "date_format", "02/01/2006", "timestamp_format", "2006-01-02 15:04:05.000", "timezone", "Europe/Paris", "header", "false")
	schema := spi.Schema{{Name: "d", Type: spi.TypeDate}, {Name: "ts", Type: spi.TypeTimestamp}}
	paris, _ := time.LoadLocation("Europe/Paris")
	in := []spi.Row{{day(2026, 11, 20), time.Date(2026, 7, 1, 10, 0, 0, 250e6, time.UTC)}}
	data := write(t, schema, o, in)
	require.Equal(t, "20/11/2026,2026-07-01 12:00:00.250\n", string(data), "written in Paris time, which has no offset in the layout")
	res := readString(t, string(data), schema, o)
	require.Empty(t, res.Bad)
	equalRows(t, in, res.Rows, false)
	require.Equal(t, paris, res.Rows[0][1].(time.Time).Location())

	// The default reader takes ISO 8601 forms, with the zone option for the ones without offset.
	o = opts(t, "csv", "header", "false", "timezone", "Asia/Tokyo")
	schema = spi.Schema{{Name: "ts", Type: spi.TypeTimestamp}}
	res = readString(t, "2026-11-20T09:30:00Z\n2026-11-20 09:30:00.5+01:00\n2026-11-20 09:30\n2026-11-20\n2026-11-20T09:30:00-0330\n2026-11-20T09:30:00+05\n", schema, o)
	require.Empty(t, res.Bad)
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	want := []time.Time{
		time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC),
		time.Date(2026, 11, 20, 8, 30, 0, 5e8, time.UTC),
		time.Date(2026, 11, 20, 9, 30, 0, 0, tokyo),
		time.Date(2026, 11, 20, 0, 0, 0, 0, tokyo),
		time.Date(2026, 11, 20, 13, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 20, 4, 30, 0, 0, time.UTC),
	}
	for i, w := range want {
		require.True(t, w.Equal(res.Rows[i][0].(time.Time)), "row %d: %v", i, res.Rows[i][0])
	}
}

func TestCSVMalformed(t *testing.T) {
	schema := spi.Schema{{Name: "id", Type: spi.TypeInt}, {Name: "name", Type: spi.TypeString}, {Name: "day", Type: spi.TypeDate}}
	data := "id,name,day\n" + // line 1
		"1,ok,2026-11-20\n" + // 2
		"2,\"broken\"quote,2026-11-20\n" + // 3: text after the closing quote
		"3,bare\"quote,2026-11-20\n" + // 4: a quote inside an unquoted field
		"4,too,many,fields\n" + // 5
		"5,few\n" + // 6
		"6,bad date,2026-02-30\n" + // 7
		"x7,bad int,2026-11-20\n" + // 8
		"8,\"multi\nline\",2026-11-21\n" + // 9-10: fine
		"9,after,2026-11-22\r\n" + // 11
		"10,\"never closed,2026-11-20\n" + // 12: unterminated: cut at its first line
		"11,resumes,2026-11-23\n" // 13
	res := readString(t, data, schema, opts(t, "csv"))
	var ids []int64
	for _, r := range res.Rows {
		ids = append(ids, r[0].(int64))
	}
	require.Equal(t, []int64{1, 8, 9, 11}, ids)
	require.Equal(t, []string{"f.csv:2", "f.csv:9", "f.csv:11", "f.csv:13"}, res.Locs)
	require.Equal(t, "8,\"multi\nline\",2026-11-21", res.Raw[1])
	require.Equal(t, "9,after,2026-11-22", res.Raw[2], "the \\r\\n is not part of the record")
	require.Equal(t, "multi\nline", res.Rows[1][1])

	type bad struct{ loc, raw, reason string }
	var got []bad
	for _, e := range res.Bad {
		got = append(got, bad{e.Loc, string(e.Raw), e.Reason})
	}
	require.Equal(t, []bad{
		{"f.csv:3", "2,\"broken\"quote,2026-11-20", `unexpected "q" after the closing quote of field 2`},
		{"f.csv:4", "3,bare\"quote,2026-11-20", "bare quote in unquoted field 2"},
		{"f.csv:5", "4,too,many,fields", "4 fields, expected 3"},
		{"f.csv:6", "5,few", "2 fields, expected 3"},
		{"f.csv:7", "6,bad date,2026-02-30", `field "day" (column 3): "2026-02-30" is not a date in layout 2006-01-02`},
		{"f.csv:8", "x7,bad int,2026-11-20", `field "id" (column 1): "x7" is not an int`},
		{"f.csv:12", "10,\"never closed,2026-11-20", "unterminated quoted field (the record is cut at the end of its first line)"},
	}, got)
}

func TestCSVHeaderMapping(t *testing.T) {
	schema := spi.Schema{{Name: "b", Type: spi.TypeInt}, {Name: "A", Type: spi.TypeString}}
	res := readString(t, "a,x,B\nhello,skip,2\n", schema, opts(t, "csv"))
	require.Empty(t, res.Bad)
	require.Equal(t, []spi.Row{{int64(2), "hello"}}, res.Rows, "found by name, any case; extra columns skipped")

	_, err := format.NewReader(strings.NewReader("a,x\n1,2\n"), schema, opts(t, "csv"), format.Source{Name: "f.csv"})
	require.NoError(t, err)
	r, _ := format.NewReader(strings.NewReader("a,x\n1,2\n"), schema, opts(t, "csv"), format.Source{Name: "f.csv"})
	var b spi.Batch
	err = r.Read(&b, 10)
	require.ErrorIs(t, err, spi.ErrInvalid)
	require.Contains(t, err.Error(), `f.csv: invalid format: field "b" is not in the header ("a", "x")`)

	// A byte order mark before the header is skipped; an empty file has no rows.
	res = readString(t, "\xEF\xBB\xBFb,A\n1,x\n", schema, opts(t, "csv"))
	require.Equal(t, []spi.Row{{int64(1), "x"}}, res.Rows)
	res = readString(t, "", schema, opts(t, "csv"))
	require.Empty(t, res.Rows)

	h, err := format.ReadCSVHeader(strings.NewReader("\"a,1\";b\n"), opts(t, "csv", "delimiter", ";"), "f.csv")
	require.NoError(t, err)
	require.Equal(t, []string{"a,1", "b"}, h)
}

func TestCSVEmptyLinesAndNulls(t *testing.T) {
	// With several columns an empty line is no record; with one it is an empty field (NULL).
	two := spi.Schema{{Name: "a", Type: spi.TypeString}, {Name: "b", Type: spi.TypeInt}}
	res := readString(t, "a,b\n\nx,1\r\n\r\n,\n\"\",\n", two, opts(t, "csv"))
	require.Empty(t, res.Bad)
	require.Equal(t, []spi.Row{{"x", int64(1)}, {nil, nil}, {"", nil}}, res.Rows)
	require.Equal(t, []string{"f.csv:3", "f.csv:5", "f.csv:6"}, res.Locs)

	one := spi.Schema{{Name: "a", Type: spi.TypeString}}
	rows := []spi.Row{{"x"}, {nil}, {""}, {nil}}
	data := write(t, one, opts(t, "csv"), rows)
	require.Equal(t, "a\nx\n\n\"\"\n\n", string(data))
	res = readString(t, string(data), one, opts(t, "csv"))
	require.Equal(t, rows, res.Rows)

	// A value equal to the null text is quoted so it stays a value, whatever its type.
	o := opts(t, "csv", "null", "0", "header", "false")
	ints := spi.Schema{{Name: "n", Type: spi.TypeInt}, {Name: "s", Type: spi.TypeString}}
	data = write(t, ints, o, []spi.Row{{int64(0), "0"}, {nil, nil}})
	require.Equal(t, "\"0\",\"0\"\n0,0\n", string(data))
	res = readString(t, string(data), ints, o)
	require.Equal(t, []spi.Row{{int64(0), "0"}, {nil, nil}}, res.Rows)
}

func TestCSVTooLong(t *testing.T) {
	o := opts(t, "csv", "header", "false", "max_record_bytes", "100")
	schema := spi.Schema{{Name: "a", Type: spi.TypeString}, {Name: "b", Type: spi.TypeString}}
	long := strings.Repeat("x", 150)
	data := "1,ok\n" + "2," + long + "\n" + "3,\"open\n" + strings.Repeat("y,z\n", 30) + "4,end\n" + "5,\"open at the end\n6,x\n"
	res := readString(t, data, schema, o)
	require.Len(t, res.Bad, 3)
	require.Equal(t, "f.csv:2", res.Bad[0].Loc)
	require.Contains(t, res.Bad[0].Reason, "longer than max_record_bytes (100)")
	require.Equal(t, ("2," + long)[:100], string(res.Bad[0].Raw), "cut to max_record_bytes")
	require.Equal(t, "f.csv:3", res.Bad[1].Loc)
	require.Equal(t, "3,\"open", string(res.Bad[1].Raw))
	require.Contains(t, res.Bad[1].Reason, "longer than max_record_bytes (100)", "no closing quote within the bound")
	require.Equal(t, "f.csv:35", res.Bad[2].Loc)
	require.Equal(t, "unterminated quoted field (the record is cut at the end of its first line)", res.Bad[2].Reason)
	// After the open quote, the following lines are records again.
	require.Len(t, res.Rows, 33)
	require.Equal(t, spi.Row{"1", "ok"}, res.Rows[0])
	require.Equal(t, spi.Row{"y", "z"}, res.Rows[1])
	require.Equal(t, "f.csv:4", res.Locs[1])
	require.Equal(t, spi.Row{"4", "end"}, res.Rows[31])
	require.Equal(t, spi.Row{"6", "x"}, res.Rows[32])
}

func TestCSVWriteErrors(t *testing.T) {
	schema := spi.Schema{{Name: "n", Type: spi.TypeInt}}
	w, err := format.NewWriter(&strings.Builder{}, schema, opts(t, "csv"))
	require.NoError(t, err)
	err = w.Write([]spi.Row{{int64(1)}, {"two"}})
	require.ErrorIs(t, err, spi.ErrInvalid)
	require.Contains(t, err.Error(), `row 2, field "n": want a int value, got string`)

	o := opts(t, "csv", "quote", "none")
	w, _ = format.NewWriter(&strings.Builder{}, spi.Schema{{Name: "s", Type: spi.TypeString}}, o)
	require.ErrorContains(t, w.Write([]spi.Row{{"a,b"}}), "quoting is off")
}

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		format string
		kv     map[string]string
		err    string
	}{
		{"xml", nil, `unknown format "xml"`},
		{"csv", map[string]string{"delimeter": ","}, `unknown option "delimeter"`},
		{"csv", map[string]string{"delimiter": ",,"}, "want one ASCII character"},
		{"csv", map[string]string{"delimiter": "\""}, "quote and delimiter are both"},
		{"csv", map[string]string{"null": "a,b"}, "null \"a,b\" cannot hold"},
		{"csv", map[string]string{"compression": "lzma"}, "want none, gzip or zstd"},
		{"csv", map[string]string{"compression": "snappy"}, "snappy compresses Parquet pages only"},
		{"csv", map[string]string{"timezone": "Mars/Olympus"}, "not a known time zone"},
		{"csv", map[string]string{"header": "maybe"}, "want true or false"},
		{"csv", map[string]string{"max_record_bytes": "-1"}, "want a positive number"},
	} {
		_, err := format.ParseOptions(tc.format, tc.kv)
		require.ErrorIs(t, err, spi.ErrInvalid, "%v", tc.kv)
		require.ErrorContains(t, err, tc.err)
	}
	o, err := format.ParseOptions("csv", map[string]string{"delimiter": "tab", "quote": "none", "header": "no", "compression": "gz"})
	require.NoError(t, err)
	require.Equal(t, byte('\t'), o.Delimiter)
	require.Equal(t, byte(0), o.Quote)
	require.False(t, o.Header)
	require.Equal(t, format.Gzip, o.Compression)
	require.True(t, o.CompressionSet)
}

func TestCanonicalDecimal(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0", "-0": "0", "+12.340": "12.340", "012.5": "12.5", ".5": "0.5", "5.": "5", "-0.00": "0.00",
		"1.5e2": "150", "1.25E-3": "0.00125", "-12e0": "-12", "123456789012345678901234567890.000000001": "123456789012345678901234567890.000000001",
		"1e3": "1000", "-.1": "-0.1", "00": "0",
	} {
		got, err := format.CanonicalDecimal(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "-", ".", "1.2.3", "abc", "1e", "NaN", "Inf", " 1", "1e99999", "0x10", "1_000"} {
		_, err := format.CanonicalDecimal(in)
		require.Error(t, err, "%q", in)
	}
}

func TestTextValues(t *testing.T) {
	o := opts(t, "csv", "header", "false")
	schema := spi.Schema{{Name: "b", Type: spi.TypeBool}, {Name: "f", Type: spi.TypeFloat}, {Name: "i", Type: spi.TypeInt}}
	res := readString(t, "yes, 1.5 , +7\nF,-inf,-0\n", schema, o)
	require.Empty(t, res.Bad)
	require.Equal(t, []spi.Row{{true, 1.5, int64(7)}, {false, math.Inf(-1), int64(0)}}, res.Rows)
	res = readString(t, "maybe,1,1\n1,1e999,1\n1,1,9223372036854775808\n", schema, o)
	require.Len(t, res.Bad, 3)
	require.Contains(t, res.Bad[0].Reason, `"maybe" is not a bool`)
	require.Contains(t, res.Bad[1].Reason, `"1e999" is not a float`)
	require.Contains(t, res.Bad[2].Reason, "out of the int range")
}

func ExampleNewReader() {
	o, _ := format.ParseOptions("csv", nil)
	schema := spi.Schema{{Name: "sym", Type: spi.TypeString}, {Name: "px", Type: spi.TypeDecimal}}
	r, _ := format.NewReader(strings.NewReader("sym,px\nAAPL,189.50\nMSFT,oops\n"), schema, o, format.Source{Name: "t.csv"})
	var b spi.Batch
	_ = r.Read(&b, 100)
	fmt.Println(b.Rows[0], b.Locs[0], b.Bad[0])
	// Output: [AAPL 189.50] t.csv:2 t.csv:3: field "px" (column 2): "oops" is not a decimal
}
