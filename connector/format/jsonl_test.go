package format_test

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/connector/format"
	"github.com/weirdata/weir/connector/spi"
)

func readJSONL(t testing.TB, data string, schema spi.Schema) result {
	t.Helper()
	r, err := format.NewReader(strings.NewReader(data), schema, opts(t, "jsonl"), format.Source{Name: "f.jsonl"})
	require.NoError(t, err)
	return readAll(t, r, 4)
}

func TestJSONLRoundTrip(t *testing.T) {
	rows := hardRows(t)
	// JSON cannot hold invalid UTF-8; everything else must come back as it went.
	rows = append(rows, spi.Row{int64(99), "tab\t\u2028 \x01 </script>", "1e-7", 1.0, true, nil, nil, nil})
	rows[len(rows)-1][2] = "0.0000001"
	o := opts(t, "jsonl")
	data := write(t, allTypes, o, rows)
	require.Equal(t, len(rows), bytes.Count(data, []byte("\n")), "one line per row: line breaks inside strings are escaped")
	res := readJSONL(t, string(data), allTypes)
	require.Empty(t, res.Bad)
	equalRows(t, rows, res.Rows, true)
	require.Equal(t, string(data), string(write(t, allTypes, o, res.Rows)))
	require.Contains(t, string(data), `"price":123456789012345678901234567890.123456789`, "decimals are exact JSON numbers")
	require.Contains(t, string(data), `"id":9223372036854775807`)
}

func TestJSONLValues(t *testing.T) {
	schema := spi.Schema{
		{Name: "n", Type: spi.TypeInt}, {Name: "s", Type: spi.TypeString}, {Name: "f", Type: spi.TypeFloat},
		{Name: "d", Type: spi.TypeDecimal}, {Name: "ts", Type: spi.TypeTimestamp}, {Name: "b", Type: spi.TypeBool},
	}
	res := readJSONL(t, `{"n":1,"s":"x","f":2,"d":1.50,"ts":"2026-11-20T09:30:00+01:00","b":true,"extra":[1]}
{"N":"12","s":{"a":[1,2]},"f":"NaN","d":"-3e2","ts":null}
  
{"s":12.5,"b":"no"}
`, schema)
	require.Empty(t, res.Bad)
	require.Equal(t, []string{"f.jsonl:1", "f.jsonl:2", "f.jsonl:4"}, res.Locs)
	r0 := res.Rows[0]
	require.Equal(t, int64(1), r0[0])
	require.Equal(t, "1.50", r0[3], "decimal text kept exactly")
	require.True(t, time.Date(2026, 11, 20, 8, 30, 0, 0, time.UTC).Equal(r0[4].(time.Time)))
	r1 := res.Rows[1]
	require.Equal(t, int64(12), r1[0], "keys match ignoring case; strings are read as text of any type")
	require.Equal(t, `{"a":[1,2]}`, r1[1], "nested values into a string field are their JSON text")
	require.True(t, math.IsNaN(r1[2].(float64)))
	require.Equal(t, "-300", r1[3])
	require.Nil(t, r1[4])
	require.Equal(t, spi.Row{nil, "12.5", nil, nil, nil, false}, res.Rows[2])

	res = readJSONL(t, `{"n":1.5}
{"n":"x"}
[1,2]
{"n":1,
{"n":99999999999999999999}
{"b":"maybe"}
{"ts":12}
null
{"n":2}
`, schema)
	require.Len(t, res.Rows, 1)
	require.Equal(t, "f.jsonl:9", res.Locs[0])
	var reasons []string
	for _, b := range res.Bad {
		reasons = append(reasons, b.Loc+" "+b.Reason)
	}
	require.Equal(t, []string{
		`f.jsonl:1 field "n": "1.5" is not an int`,
		`f.jsonl:2 field "n": "x" is not an int`,
		`f.jsonl:3 not a JSON object`,
		`f.jsonl:4 invalid JSON: unexpected end of JSON input`,
		`f.jsonl:5 field "n": "99999999999999999999" is not an int`,
		`f.jsonl:6 field "b": "maybe" is not a bool`,
		`f.jsonl:7 field "ts": a JSON number is not a timestamp`,
		`f.jsonl:8 not a JSON object`,
	}, reasons)
	require.Equal(t, `{"n":1,`, string(res.Bad[3].Raw))
}

func TestInferJSONL(t *testing.T) {
	data := `{"id":1,"px":1.5,"name":"a","ok":true,"at":"2026-11-20T09:30:00Z","tags":["x"],"none":null}
{"id":2,"px":2,"name":null,"ok":false,"at":"2026-11-21T00:00:00+02:00","mixed":1}
not json
{"id":3,"mixed":"x","late":5}
`
	s, err := format.InferJSONL(strings.NewReader(data), opts(t, "jsonl"), "f.jsonl", 1000)
	require.NoError(t, err)
	require.Equal(t, spi.Schema{
		{Name: "id", Type: spi.TypeInt, Nullable: true},
		{Name: "px", Type: spi.TypeFloat, Nullable: true},
		{Name: "name", Type: spi.TypeString, Nullable: true},
		{Name: "ok", Type: spi.TypeBool, Nullable: true},
		{Name: "at", Type: spi.TypeTimestamp, Nullable: true},
		{Name: "tags", Type: spi.TypeString, Nullable: true},
		{Name: "none", Type: spi.TypeString, Nullable: true},
		{Name: "mixed", Type: spi.TypeString, Nullable: true},
		{Name: "late", Type: spi.TypeInt, Nullable: true},
	}, s)
	res := readJSONL(t, data, s)
	require.Len(t, res.Rows, 3)
	require.Len(t, res.Bad, 1)
	require.Equal(t, `["x"]`, res.Rows[0][5])
	require.Equal(t, "1", res.Rows[1][7])

	_, err = format.InferJSONL(strings.NewReader("\n\n"), opts(t, "jsonl"), "e.jsonl", 10)
	require.ErrorIs(t, err, spi.ErrInvalid)
	require.ErrorContains(t, err, "declare the schema")
	_, err = format.InferJSONL(strings.NewReader("oops\n"), opts(t, "jsonl"), "e.jsonl", 10)
	require.ErrorContains(t, err, "first bad record e.jsonl:1")
}

func TestJSONLSplitAnywhere(t *testing.T) {
	var b strings.Builder
	for i := range 2000 {
		b.WriteString(`{"n":` + strings.Repeat(" ", i%7) + string(rune('0'+i%10)) + `,"s":"line\nbreak"}` + "\n")
		if i%100 == 0 {
			b.WriteString("{broken\n\n")
		}
	}
	data := []byte(b.String())
	schema := spi.Schema{{Name: "n", Type: spi.TypeInt}, {Name: "s", Type: spi.TypeString}}
	o := opts(t, "jsonl")
	rd := func(off, end int64) digest {
		line := int64(0)
		if off == 0 {
			line = 1
		}
		r, err := format.NewReader(bytes.NewReader(data[off:]), schema, o, format.Source{Name: "j", Offset: off, Line: line, End: end})
		require.NoError(t, err)
		return digestAll(t, r, 64)
	}
	// A range whose lines are unknown locates its records by byte offset, all of them.
	start, err := format.AlignStart(bytes.NewReader(data), 5000)
	require.NoError(t, err)
	r, err := format.NewReader(bytes.NewReader(data[start:]), schema, o, format.Source{Name: "j", Offset: start})
	require.NoError(t, err)
	res := readAll(t, r, 1000)
	require.NotEmpty(t, res.Locs)
	for _, l := range res.Locs {
		require.Contains(t, l, "j@")
	}
	require.Equal(t, fmt.Sprintf("j@%d", start), res.Locs[0])
	// Locations differ (byte offsets where lines are unknown), so compare with a whole read by offsets.
	whole := rd(0, 0)
	require.Len(t, whole.Sums, 2000)
	for cut := int64(1); cut < int64(len(data)); cut += 997 {
		start, err := format.AlignStart(bytes.NewReader(data), cut)
		require.NoError(t, err)
		a := rd(0, start)
		var rest digest
		if start < int64(len(data)) {
			rest = rd(start, 0)
		}
		require.Equal(t, len(whole.Sums), len(a.Sums)+len(rest.Sums), "cut at %d", cut)
		require.Equal(t, len(whole.Bad), len(a.Bad)+len(rest.Bad), "cut at %d", cut)
		require.Equal(t, whole.Sums[:len(a.Sums)], a.Sums)
	}
}
