package format_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/connector/format"
	"github.com/weirdata/weir/connector/spi"
)

var splitSchema = spi.Schema{
	{Name: "id", Type: spi.TypeInt},
	{Name: "text", Type: spi.TypeString},
	{Name: "px", Type: spi.TypeDecimal},
	{Name: "day", Type: spi.TypeDate},
}

// genCSV writes about size bytes of CSV with a header, quoted fields holding
// line breaks, delimiters and quotes, CRLF and LF endings, empty lines, and
// bad records of every kind.
func genCSV(rng *rand.Rand, size int) []byte {
	var b bytes.Buffer
	b.WriteString("id,text,px,day\n")
	words := []string{"plain", "a,b", `say "hi"`, "two\nlines", "crlf\r\ninside", "", "Zürich", `""`, "\n", "x\ny\nz"}
	for i := 1; b.Len() < size; i++ {
		eol := "\n"
		if rng.IntN(5) == 0 {
			eol = "\r\n"
		}
		w := words[rng.IntN(len(words))]
		text := w
		if strings.ContainsAny(w, ",\"\r\n") || w == "" {
			text = `"` + strings.ReplaceAll(w, `"`, `""`) + `"`
		}
		switch rng.IntN(60) {
		case 0:
			fmt.Fprintf(&b, "%d,\"broken\"x,1.5,2026-11-20%s", i, eol) // text after a closing quote
		case 1:
			fmt.Fprintf(&b, "%d,bare\"quote,1.5,2026-11-20%s", i, eol)
		case 2:
			fmt.Fprintf(&b, "%d,%s,1.5%s", i, text, eol) // a field short
		case 3:
			fmt.Fprintf(&b, "%d,%s,oops,2026-11-20%s", i, text, eol) // not a decimal
		case 4:
			fmt.Fprintf(&b, "%d,%s,1,2026-13-01%s", i, text, eol) // not a date
		case 5:
			b.WriteString(eol) // an empty line
		case 6:
			fmt.Fprintf(&b, "%d,\"never closed,1,2026-11-20%s", i, eol) // cut at its first line
		default:
			fmt.Fprintf(&b, "%d,%s,%d.%02d,2026-11-%02d%s", i, text, rng.IntN(1000)-500, rng.IntN(100), 1+rng.IntN(28), eol)
		}
	}
	return b.Bytes()
}

// readRange reads the records of data starting in [b.Offset, end).
func readRange(t testing.TB, data []byte, o format.Options, off, line, end int64, header []string) digest {
	t.Helper()
	r, err := format.NewReader(bytes.NewReader(data[off:]), splitSchema, o,
		format.Source{Name: "big.csv", Offset: off, Line: line, End: end, Header: header})
	require.NoError(t, err)
	return digestAll(t, r, 1000)
}

func concat(parts []digest) digest {
	var all digest
	for _, p := range parts {
		all.Sums = append(all.Sums, p.Sums...)
		all.Bad = append(all.Bad, p.Bad...)
	}
	return all
}

// splitRead cuts data at cuts (moved to record starts) and reads each range.
func splitRead(t testing.TB, data []byte, o format.Options, cuts []int64) digest {
	t.Helper()
	header, err := format.ReadCSVHeader(bytes.NewReader(data), o, "big.csv")
	require.NoError(t, err)
	cuts = append([]int64{0}, cuts...)
	slices.Sort(cuts)
	bs, err := format.CSVBoundaries(bytes.NewReader(data), o, cuts)
	require.NoError(t, err)
	var parts []digest
	for i, b := range bs {
		end := int64(len(data))
		if i+1 < len(bs) {
			end = bs[i+1].Offset
		}
		if b.Offset >= end {
			continue
		}
		parts = append(parts, readRange(t, data, o, b.Offset, b.Line, end, header))
	}
	return concat(parts)
}

// TestCSVSplitProperty: a 50 MB CSV with quoted line breaks and bad records,
// cut at random offsets into N ranges moved to record boundaries, reads
// exactly the rows and bad records of the whole file, with the same lines.
func TestCSVSplitProperty(t *testing.T) {
	size := 50 << 20
	rounds := 4
	if testing.Short() || raceEnabled {
		size, rounds = 4<<20, 3
	}
	rng := rand.New(rand.NewPCG(3, 3))
	data := genCSV(rng, size)
	o := opts(t, "csv", "max_record_bytes", "4096")
	whole := readRange(t, data, o, 0, 1, 0, nil)
	require.Greater(t, len(whole.Sums), size/60)
	require.NotEmpty(t, whole.Bad)
	kinds := map[string]bool{}
	for _, b := range whole.Bad {
		kinds[strings.SplitN(b.Reason, " ", 2)[0]] = true
	}
	require.Len(t, kinds, 6, "every kind of bad record is in the file: %v", kinds)
	n, err := format.CountRecords(bytes.NewReader(data), o)
	require.NoError(t, err)
	require.EqualValues(t, len(whole.Sums)+len(whole.Bad)+1, n, "every record is a row or a bad record (and the header)")

	for round := range rounds {
		parts := 2 + rng.IntN(30)
		cuts := make([]int64, parts-1)
		for i := range cuts {
			cuts[i] = rng.Int64N(int64(len(data)) + 10)
		}
		if round == 0 { // cuts on every kind of byte near a quoted line break
			i := bytes.Index(data, []byte("two\nlines"))
			cuts = append(cuts, int64(i), int64(i+3), int64(i+4), int64(i-1))
		}
		t.Run(fmt.Sprintf("%d_parts", parts), func(t *testing.T) {
			requireSameDigest(t, whole, splitRead(t, data, o, cuts))
		})
	}
}

// TestScanDoesNotDependOnReads reads the same input through buffers of
// every small size: the records, bad ones included, are the same.
func TestScanDoesNotDependOnReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	data := genCSV(rng, 40<<10)
	o := opts(t, "csv", "max_record_bytes", "48")
	want := readRange(t, data, o, 0, 1, 0, nil)
	defer format.SetScanBufferSize(format.SetScanBufferSize(1))
	for _, size := range []int{1, 2, 3, 5, 8, 13, 47, 48, 49, 50, 64, 100, 4096} {
		format.SetScanBufferSize(size)
		requireSameDigest(t, want, readRange(t, data, o, 0, 1, 0, nil))
		got := splitRead(t, data, o, []int64{100, 5000, 5001, 20000})
		requireSameDigest(t, want, got)
	}
}

func TestAlignStart(t *testing.T) {
	data := []byte("ab\ncd\n\nef")
	for off, want := range map[int64]int64{0: 0, 1: 3, 2: 3, 3: 3, 4: 6, 6: 6, 7: 7, 8: 9, 9: 9} {
		got, err := format.AlignStart(bytes.NewReader(data), off)
		require.NoError(t, err)
		require.Equal(t, want, got, "offset %d", off)
	}
}
