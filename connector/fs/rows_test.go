package fs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/connector/format"
	"github.com/weirdata/weir/connector/fs"
	"github.com/weirdata/weir/connector/spi"
)

var trades = spi.Schema{
	{Name: "id", Type: spi.TypeInt, Nullable: true},
	{Name: "sym", Type: spi.TypeString, Nullable: true},
	{Name: "px", Type: spi.TypeDecimal, Nullable: true},
	{Name: "note", Type: spi.TypeString, Nullable: true},
}

// tradesCSV returns a CSV of n rows numbered from first, with quoted line
// breaks, and a bad row every badEvery rows (0: none).
func tradesCSV(first, n, badEvery int) string {
	var b strings.Builder
	b.WriteString("id,sym,px,note\n")
	for i := first; i < first+n; i++ {
		switch {
		case badEvery > 0 && i%badEvery == 0:
			fmt.Fprintf(&b, "%d,BAD,not-a-number,x\n", i)
		case i%3 == 0:
			fmt.Fprintf(&b, "%d,AAPL,%d.25,\"multi\nline, \"\"quoted\"\"\"\n", i, i)
		default:
			fmt.Fprintf(&b, "%d,MSFT,-%d.5,\n", i, i)
		}
	}
	return b.String()
}

// collected is what reading partitions produced.
type collected struct {
	rows map[int64]spi.Row
	locs map[string]bool
	bad  []spi.RowError
	n    int
}

func readParts(t *testing.T, c *fs.Conn, ds spi.Dataset, parts []spi.Partition) collected {
	t.Helper()
	got := collected{rows: map[int64]spi.Row{}, locs: map[string]bool{}}
	for _, p := range parts {
		err := c.Read(context.Background(), ds, p, 100, func(b spi.Batch) error {
			require.Len(t, b.Locs, len(b.Rows))
			if b.Raw != nil {
				require.Len(t, b.Raw, len(b.Rows))
			}
			for i, r := range b.Rows {
				id := r[0].(int64)
				_, dup := got.rows[id]
				require.False(t, dup, "row %d read twice", id)
				got.rows[id] = slices.Clone(r)
				require.False(t, got.locs[b.Locs[i]], "location %s twice", b.Locs[i])
				got.locs[b.Locs[i]] = true
				got.n++
			}
			for _, e := range b.Bad {
				got.bad = append(got.bad, *e)
			}
			return nil
		})
		require.NoError(t, err, p.Desc)
	}
	return got
}

func TestDescribe(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{
		"csv/a.csv":      "id,sym,px,note\n1,X,1.5,\n",
		"csv/b.csv":      "id,sym,px,note\n2,Y,2.5,n\n",
		"bad/h.csv":      "id,id\n1,2\n",
		"j/x.jsonl":      `{"id":1,"px":1.5,"at":"2026-11-20T00:00:00Z"}` + "\n",
		"odd/file.bin":   "x",
		"empty/e.csv":    "",
		"noheader/n.csv": "1,2\n",
		"mixed/a.csv":    "id\n1\n",
		"mixed/b.jsonl":  "{}\n",
	})
	c := openFS(t, root)
	ctx := context.Background()

	s, err := c.Describe(ctx, spi.Dataset{Path: "csv", Format: "csv"})
	require.NoError(t, err)
	require.Equal(t, spi.Schema{
		{Name: "id", Type: spi.TypeString, Nullable: true}, {Name: "sym", Type: spi.TypeString, Nullable: true},
		{Name: "px", Type: spi.TypeString, Nullable: true}, {Name: "note", Type: spi.TypeString, Nullable: true},
	}, s, "a CSV header gives string columns")

	s, err = c.Describe(ctx, spi.Dataset{Path: "csv/*.csv", Schema: trades})
	require.NoError(t, err, "format from the extension, the declared schema checked against the header")
	require.Equal(t, trades, s)

	_, err = c.Describe(ctx, spi.Dataset{Path: "csv", Format: "csv", Schema: spi.Schema{{Name: "qty", Type: spi.TypeInt}}})
	require.ErrorIs(t, err, spi.ErrInvalid)
	require.ErrorContains(t, err, `csv/a.csv: invalid format: field "qty" is not in the header ("id", "sym", "px", "note")`)

	_, err = c.Describe(ctx, spi.Dataset{Path: "bad", Format: "csv"})
	require.ErrorContains(t, err, `field "id" appears twice`)

	s, err = c.Describe(ctx, spi.Dataset{Path: "j"})
	require.NoError(t, err)
	require.Equal(t, spi.Schema{
		{Name: "id", Type: spi.TypeInt, Nullable: true}, {Name: "px", Type: spi.TypeFloat, Nullable: true},
		{Name: "at", Type: spi.TypeTimestamp, Nullable: true},
	}, s, "JSON Lines types are inferred")

	_, err = c.Describe(ctx, spi.Dataset{Path: "odd"})
	require.ErrorContains(t, err, "odd/file.bin: invalid: the file's extension names no format")
	_, err = c.Describe(ctx, spi.Dataset{Path: "mixed"})
	require.ErrorContains(t, err, "mixed/b.jsonl: invalid: a jsonl file among csv files (mixed/a.csv)")
	_, err = c.Describe(ctx, spi.Dataset{Path: "empty", Format: "csv"})
	require.ErrorContains(t, err, "the file is empty")
	_, err = c.Describe(ctx, spi.Dataset{Path: "noheader", Format: "csv", Options: map[string]string{"header": "false"}})
	require.ErrorContains(t, err, "a CSV dataset without a header needs a declared schema")
	_, err = c.Describe(ctx, spi.Dataset{Path: "csv/*.none", Format: "csv"})
	require.ErrorContains(t, err, "no file matches")
	s, err = c.Describe(ctx, spi.Dataset{Path: "csv/*.none", Format: "csv", Schema: trades})
	require.NoError(t, err)
	require.Equal(t, trades, s)
	_, err = c.Describe(ctx, spi.Dataset{Path: "csv", Format: "csv", Options: map[string]string{"delimter": ";"}})
	require.ErrorContains(t, err, `unknown option "delimter"`)

	ds := spi.Dataset{Path: "csv", Format: "csv", Watermark: &spi.Watermark{Column: "id"}}
	_, err = c.Describe(ctx, ds)
	require.ErrorIs(t, err, errors.ErrUnsupported)
	_, err = c.MaxWatermark(ctx, spi.Dataset{Path: "csv"}, "id")
	require.ErrorIs(t, err, errors.ErrUnsupported)
	require.ErrorContains(t, err, "select new files by path")
}

func TestReadManyFiles(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{}
	id := 0
	for i, n := range []int{1, 300, 20, 5000, 7, 900, 40, 2500, 3, 60} {
		files[fmt.Sprintf("day/f%02d.csv", i)] = tradesCSV(id, n, 0)
		id += n
	}
	tree(t, root, files)
	c := openFS(t, root)
	ds := spi.Dataset{Path: "day", Format: "csv", Schema: trades, Options: map[string]string{"min_split_bytes": "20000"}}

	parts, err := c.Partitions(context.Background(), ds, 3)
	require.NoError(t, err)
	require.Len(t, parts, 3)
	var sizes []int64
	for _, p := range parts {
		sizes = append(sizes, p.EstBytes)
	}
	slices.Sort(sizes)
	require.Less(t, float64(sizes[2]), 1.3*float64(sizes[0]), "balanced by size (the largest file split): %v", sizes)

	got := readParts(t, c, ds, parts)
	require.Equal(t, id, got.n, "every row once")
	require.Empty(t, got.bad)
	require.Equal(t, spi.Row{int64(3), "AAPL", "3.25", "multi\nline, \"quoted\""}, got.rows[3])
	require.Equal(t, spi.Row{int64(2), "MSFT", "-2.5", nil}, got.rows[2])
	require.True(t, got.locs["day/f01.csv:2"], "locations are file and line")

	// A single small file is a single partition.
	parts, err = c.Partitions(context.Background(), spi.Dataset{Path: "day/f03.csv", Schema: trades}, 16)
	require.NoError(t, err)
	require.Len(t, parts, 1)
	require.Equal(t, "day/f03.csv", parts[0].Desc)

	// No file: one empty partition.
	parts, err = c.Partitions(context.Background(), spi.Dataset{Path: "day/*.xyz", Format: "csv", Schema: trades}, 4)
	require.NoError(t, err)
	require.Len(t, parts, 1)
	require.Empty(t, readParts(t, c, spi.Dataset{Path: "day/*.xyz", Format: "csv", Schema: trades}, parts).rows)
}

// TestSplitLargeCSV: one big CSV with quoted line breaks and bad rows,
// split into N byte ranges for random N and split sizes, reads every row
// and every bad record exactly once, with true line numbers.
func TestSplitLargeCSV(t *testing.T) {
	root := t.TempDir()
	n, rounds := 60000, 4
	if testing.Short() || raceEnabled {
		n, rounds = 15000, 2
	}
	data := tradesCSV(0, n, 997)
	tree(t, root, map[string]string{"big.csv": data})
	c := openFS(t, root)
	ctx := context.Background()

	whole := spi.Dataset{Path: "big.csv", Schema: trades, Options: map[string]string{"split": "none"}}
	parts, err := c.Partitions(ctx, whole, 8)
	require.NoError(t, err)
	require.Len(t, parts, 1)
	want := readParts(t, c, whole, parts)
	require.Equal(t, n-n/997-1, want.n)
	require.Len(t, want.bad, n/997+1)

	rng := rand.New(rand.NewPCG(7, 7))
	for round := range rounds {
		maxParts := 2 + rng.IntN(15)
		minSplit := 1 + rng.IntN(len(data)/maxParts)
		ds := spi.Dataset{Path: "big.csv", Schema: trades, Options: map[string]string{"min_split_bytes": fmt.Sprint(minSplit)}}
		parts, err := c.Partitions(ctx, ds, maxParts)
		require.NoError(t, err)
		require.LessOrEqual(t, len(parts), maxParts)
		require.Greater(t, len(parts), 1, "round %d: a big file uses several threads", round)
		var est int64
		for _, p := range parts {
			est += p.EstRows
			require.Contains(t, p.Desc, "big.csv bytes ")
		}
		require.InDelta(t, n+1, est, float64(len(parts)), "the scan counts records (header included)")
		got := readParts(t, c, ds, parts)
		require.Equal(t, want.rows, got.rows, "round %d: %d partitions", round, len(parts))
		require.Equal(t, want.locs, got.locs, "same line numbers")
		slices.SortFunc(got.bad, func(a, b spi.RowError) int { return strings.Compare(a.Loc, b.Loc) })
		slices.SortFunc(want.bad, func(a, b spi.RowError) int { return strings.Compare(a.Loc, b.Loc) })
		require.Equal(t, want.bad, got.bad)
	}
}

func TestSplitJSONLAndCompressed(t *testing.T) {
	root := t.TempDir()
	var jl strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&jl, `{"id":%d,"sym":"S\nT","px":%d.5}`+"\n", i, i)
	}
	csvData := tradesCSV(0, 20000, 0)
	var gz, zs bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(csvData))
	zw.Close()
	ze, _ := zstd.NewWriter(&zs)
	ze.Write([]byte(jl.String()))
	ze.Close()
	tree(t, root, map[string]string{"j/a.jsonl": jl.String(), "z/a.csv.gz": gz.String(), "z/b.jsonl.zst": zs.String()})
	c := openFS(t, root)
	ctx := context.Background()

	ds := spi.Dataset{Path: "j", Schema: trades[:3], Options: map[string]string{"min_split_bytes": "10000"}}
	parts, err := c.Partitions(ctx, ds, 5)
	require.NoError(t, err)
	require.Len(t, parts, 5)
	got := readParts(t, c, ds, parts)
	require.Equal(t, 20000, got.n)
	require.Equal(t, spi.Row{int64(7), "S\nT", "7.5"}, got.rows[7])
	require.True(t, got.locs["j/a.jsonl:1"], "the first range knows its lines")
	offsets := 0
	for l := range got.locs {
		if strings.Contains(l, "@") {
			offsets++
		}
	}
	require.Greater(t, offsets, 0, "later ranges give byte offsets")

	// Compressed files are read whole, by extension.
	parts, err = c.Partitions(ctx, spi.Dataset{Path: "z/a.csv.gz", Schema: trades, Options: map[string]string{"min_split_bytes": "1000"}}, 8)
	require.NoError(t, err)
	require.Len(t, parts, 1)
	got = readParts(t, c, spi.Dataset{Path: "z/a.csv.gz", Schema: trades}, parts)
	require.Equal(t, 20000, got.n)
	require.True(t, got.locs["z/a.csv.gz:5"])

	ds = spi.Dataset{Path: "z/b.jsonl.zst", Schema: trades[:3]}
	parts, err = c.Partitions(ctx, ds, 8)
	require.NoError(t, err)
	require.Len(t, parts, 1)
	require.Equal(t, 20000, readParts(t, c, ds, parts).n)
}

func TestReadParquetByRowGroups(t *testing.T) {
	root := t.TempDir()
	o, err := format.ParseOptions("parquet", map[string]string{"row_group_rows": "1000"})
	require.NoError(t, err)
	var buf bytes.Buffer
	w, err := format.NewWriter(&buf, trades, o)
	require.NoError(t, err)
	for i := range 10500 {
		require.NoError(t, w.Write([]spi.Row{{int64(i), "S", fmt.Sprintf("%d.5", i), nil}}))
	}
	require.NoError(t, w.Close())
	tree(t, root, map[string]string{"p/a.parquet": buf.String(), "p/b.parquet": buf.String()})
	c := openFS(t, root)
	ds := spi.Dataset{Path: "p/a.parquet"}
	s, err := c.Describe(context.Background(), ds)
	require.NoError(t, err)
	require.Equal(t, trades, s)
	parts, err := c.Partitions(context.Background(), ds, 4)
	require.NoError(t, err)
	require.Len(t, parts, 4)
	var rows int64
	for _, p := range parts {
		rows += p.EstRows
		require.Contains(t, p.Desc, "row groups")
	}
	require.EqualValues(t, 10500, rows)
	got := readParts(t, c, ds, parts)
	require.Equal(t, 10500, got.n)
	require.True(t, got.locs["p/a.parquet#10500"])

	// Two files: the same rows twice, told apart by location.
	parts, err = c.Partitions(context.Background(), spi.Dataset{Path: "p"}, 3)
	require.NoError(t, err)
	total := 0
	for _, p := range parts {
		require.NoError(t, c.Read(context.Background(), spi.Dataset{Path: "p"}, p, 500, func(b spi.Batch) error {
			total += len(b.Rows)
			return nil
		}))
	}
	require.Equal(t, 21000, total)

	tree(t, root, map[string]string{"p/c.parquet.gz": "x"})
	_, err = c.Describe(context.Background(), spi.Dataset{Path: "p/c.parquet.gz", Format: "parquet"})
	require.ErrorContains(t, err, "a gzip-compressed Parquet file cannot be read")
}

func TestReadStopsWhenCanceled(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{"a.csv": tradesCSV(0, 5000, 0)})
	c := openFS(t, root)
	ds := spi.Dataset{Path: "a.csv", Schema: trades}
	parts, err := c.Partitions(context.Background(), ds, 1)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	batches := 0
	err = c.Read(ctx, ds, parts[0], 10, func(spi.Batch) error {
		batches++
		cancel()
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, batches)

	// A spec that points outside the root is refused.
	bad := spi.Partition{Spec: map[string]string{fs.SpecPieces: `[{"path":"../x.csv","unit":"file"}]`}}
	err = c.Read(context.Background(), ds, bad, 10, func(spi.Batch) error { return nil })
	require.ErrorIs(t, err, spi.ErrInvalid)
	require.JSONEq(t, `[{"path":"a.csv","unit":"file","line":1}]`, parts[0].Spec[fs.SpecPieces])
}
