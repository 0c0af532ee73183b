package format_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/connector/format"
	"github.com/weirdata/weir/connector/spi"
)

// FuzzCSVRead: arbitrary bytes never panic the CSV reader; every record is
// either a row or a RowError with its location, raw record and reason; the
// records are the same read through tiny buffers or in two ranges cut
// anywhere; and the rows written back as CSV read back the same.
func FuzzCSVRead(f *testing.F) {
	for _, seed := range []string{
		"a,b,c\n1,2,3\n",
		"a,b,c\r\n\"x\ny\",\"q\"\"q\",\r\n",
		"1,\"unterminated\n2,3,4\n",
		"1,bare\"quote,3\n\n\n4,5,6",
		"\"a\"b,c,d\n",
		"\xEF\xBB\xBFx,y,z\n",
		",,\n\"\",\"\",\"\"\n",
		"\"\r\n\"\"\r,\"\n",
		"1,2\n3,4,5,6\n",
	} {
		f.Add([]byte(seed), uint8(0), uint16(7))
	}
	schema := spi.Schema{
		{Name: "a", Type: spi.TypeString},
		{Name: "b", Type: spi.TypeString},
		{Name: "c", Type: spi.TypeInt},
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8, cut uint16) {
		kv := map[string]string{"header": "false", "max_record_bytes": "64"}
		if mode&1 == 1 {
			kv["delimiter"] = ";"
		}
		if mode&2 == 2 {
			kv["null"] = `\N`
		}
		o, err := format.ParseOptions("csv", kv)
		require.NoError(t, err)

		read := func(off, line, end int64) ([]spi.Row, []string, []spi.RowError) {
			r, err := format.NewReader(bytes.NewReader(data[off:]), schema, o, format.Source{Name: "fz.csv", Offset: off, Line: line, End: end})
			require.NoError(t, err)
			var rows []spi.Row
			var locs []string
			var bad []spi.RowError
			var b spi.Batch
			for {
				err := r.Read(&b, 3)
				if errors.Is(err, io.EOF) {
					return rows, locs, bad
				}
				require.NoError(t, err, "an in-memory input never fails the read")
				for i, row := range b.Rows {
					rows = append(rows, append(spi.Row(nil), row...))
					locs = append(locs, b.Locs[i])
				}
				for _, e := range b.Bad {
					require.NotEmpty(t, e.Loc)
					require.NotEmpty(t, e.Reason)
					require.LessOrEqual(t, len(e.Raw), 64, "a bad record's raw bytes are bounded")
					bad = append(bad, *e)
				}
			}
		}
		rows, locs, bad := read(0, 1, 0)
		n, err := format.CountRecords(bytes.NewReader(data), o)
		require.NoError(t, err)
		require.EqualValues(t, n, len(rows)+len(bad), "every record is a row or a bad record")

		old := format.SetScanBufferSize(1 + int(cut%7))
		rows2, locs2, bad2 := read(0, 1, 0)
		format.SetScanBufferSize(old)
		require.Equal(t, rows, rows2, "tiny buffers")
		require.Equal(t, locs, locs2)
		require.Equal(t, bad, bad2)

		if len(data) > 0 {
			bs, err := format.CSVBoundaries(bytes.NewReader(data), o, []int64{0, int64(cut) % int64(len(data)+1)})
			require.NoError(t, err)
			var r1, r2 []spi.Row
			var l1 []string
			var b1 []spi.RowError
			if bs[1].Offset > 0 { // End 0 would mean no end
				r1, l1, b1 = read(0, 1, bs[1].Offset)
			}
			var l2 []string
			var b2 []spi.RowError
			if bs[1].Offset < int64(len(data)) {
				r2, l2, b2 = read(bs[1].Offset, bs[1].Line, 0)
			}
			require.Equal(t, rows, append(r1, r2...), "two ranges read the rows of the whole")
			require.Equal(t, locs, append(l1, l2...))
			require.Equal(t, bad, append(b1, b2...))
		}

		// What was read writes and reads back the same.
		var out bytes.Buffer
		w, err := format.NewWriter(&out, schema, o)
		require.NoError(t, err)
		require.NoError(t, w.Write(rows))
		require.NoError(t, w.Close())
		r, err := format.NewReader(bytes.NewReader(out.Bytes()), schema, o, format.Source{Name: "again.csv"})
		require.NoError(t, err)
		back := readAll(t, r, 100)
		require.Empty(t, back.Bad, "%q", out.String())
		if len(rows) == 0 {
			require.Empty(t, back.Rows)
		} else {
			require.Equal(t, rows, back.Rows)
		}
	})
}
