package format_test

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/connector/format"
	"github.com/weirdata/weir/connector/spi"
)

func opts(t testing.TB, f string, kv ...string) format.Options {
	t.Helper()
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	o, err := format.ParseOptions(f, m)
	require.NoError(t, err)
	return o
}

// result is everything a reader produced.
type result struct {
	Rows []spi.Row
	Locs []string
	Raw  []string
	Bad  []spi.RowError
}

// readAll reads r to the end, copying what each batch holds.
func readAll(t testing.TB, r format.Reader, n int) result {
	t.Helper()
	var res result
	var b spi.Batch
	for {
		err := r.Read(&b, n)
		if errors.Is(err, io.EOF) {
			require.Empty(t, b.Rows)
			require.Empty(t, b.Bad)
			return res
		}
		require.NoError(t, err)
		require.LessOrEqual(t, len(b.Rows)+len(b.Bad), n)
		require.Len(t, b.Locs, len(b.Rows))
		for i, row := range b.Rows {
			res.Rows = append(res.Rows, append(spi.Row(nil), row...))
			res.Locs = append(res.Locs, b.Locs[i])
			if b.Raw != nil {
				res.Raw = append(res.Raw, string(b.Raw[i]))
			}
		}
		for _, e := range b.Bad {
			res.Bad = append(res.Bad, *e)
		}
	}
}

// digest is a compact record of what a reader produced: one hash per row
// (its location, raw record and values) and the bad records whole.
type digest struct {
	Sums []uint64
	Bad  []spi.RowError
}

func digestAll(t testing.TB, r format.Reader, n int) digest {
	t.Helper()
	var d digest
	var b spi.Batch
	var buf []byte
	for {
		err := r.Read(&b, n)
		if errors.Is(err, io.EOF) {
			return d
		}
		require.NoError(t, err)
		for i, row := range b.Rows {
			h := fnv.New64a()
			buf = append(buf[:0], b.Locs[i]...)
			buf = append(buf, 0)
			buf = append(buf, b.Raw[i]...)
			for _, v := range row {
				buf = append(buf, 0)
				switch x := v.(type) {
				case nil:
					buf = append(buf, "<nil>"...)
				case string:
					buf = append(buf, x...)
				case int64:
					buf = strconv.AppendInt(buf, x, 10)
				case time.Time:
					buf = x.AppendFormat(buf, time.RFC3339Nano)
				default:
					buf = fmt.Append(buf, v)
				}
			}
			h.Write(buf)
			d.Sums = append(d.Sums, h.Sum64())
		}
		for _, e := range b.Bad {
			d.Bad = append(d.Bad, *e)
		}
	}
}

func requireSameDigest(t testing.TB, want, got digest) {
	t.Helper()
	for i := range min(len(want.Sums), len(got.Sums)) {
		if want.Sums[i] != got.Sums[i] {
			t.Fatalf("row %d differs (rows: want %d, got %d)", i, len(want.Sums), len(got.Sums))
		}
	}
	require.Equal(t, len(want.Sums), len(got.Sums), "rows: none twice, none lost")
	require.Equal(t, want.Bad, got.Bad, "bad records")
}

func readString(t testing.TB, data string, schema spi.Schema, o format.Options) result {
	t.Helper()
	r, err := format.NewReader(strings.NewReader(data), schema, o, format.Source{Name: "f.csv"})
	require.NoError(t, err)
	return readAll(t, r, 3)
}

func write(t testing.TB, schema spi.Schema, o format.Options, rows []spi.Row) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := format.NewWriter(&buf, schema, o)
	require.NoError(t, err)
	for len(rows) > 0 { // several calls
		n := min(len(rows), 7)
		require.NoError(t, w.Write(rows[:n]))
		rows = rows[n:]
	}
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// equalRows compares rows value by value: times as instants (and dates
// as days), NaN equal to NaN.
func equalRows(t testing.TB, want, got []spi.Row, zoneKept bool) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Len(t, got[i], len(want[i]), "row %d", i)
		for j := range want[i] {
			w, g := want[i][j], got[i][j]
			switch wv := w.(type) {
			case time.Time:
				gv, ok := g.(time.Time)
				require.True(t, ok, "row %d col %d: got %T %v", i, j, g, g)
				require.True(t, wv.Equal(gv), "row %d col %d: want %v got %v", i, j, wv, gv)
				if zoneKept {
					_, wo := wv.Zone()
					_, gop := gv.Zone()
					require.Equal(t, wo, gop, "row %d col %d: zone offset", i, j)
				}
			case float64:
				gv, ok := g.(float64)
				require.True(t, ok, "row %d col %d: got %T", i, j, g)
				if math.IsNaN(wv) {
					require.True(t, math.IsNaN(gv))
				} else {
					require.Equal(t, wv, gv, "row %d col %d", i, j)
				}
			default:
				require.Equal(t, w, g, "row %d col %d", i, j)
			}
		}
	}
}
