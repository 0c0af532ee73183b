package fs_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	iofs "io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/connector/fs"
	"github.com/weirdata/weir/connector/spi"
)

// files lists the regular files under dir (slash paths), staging and all.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	}))
	sort.Strings(out)
	return out
}

func tradeRows(first, n int) []spi.Row {
	rows := make([]spi.Row, n)
	for i := range rows {
		id := first + i
		rows[i] = spi.Row{int64(id), fmt.Sprintf("S%d,\"x\"\n", id%7), fmt.Sprintf("%d.%02d", id, id%100), nil}
		if id%5 == 0 {
			rows[i][3] = "Zürich"
		}
	}
	return rows
}

// load writes rows with threads threads (round robin in batches of 100).
func load(t *testing.T, c *fs.Conn, spec spi.LoadSpec, rows []spi.Row, threads int) spi.Load {
	t.Helper()
	l, err := c.Begin(context.Background(), spec)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for th := range threads {
		wg.Go(func() {
			for i := th * 100; i < len(rows); i += threads * 100 {
				require.NoError(t, l.Write(context.Background(), th, spi.Batch{Rows: rows[i:min(i+100, len(rows))]}))
			}
		})
	}
	wg.Wait()
	return l
}

func readBack(t *testing.T, c *fs.Conn, ds spi.Dataset) map[int64]spi.Row {
	t.Helper()
	parts, err := c.Partitions(context.Background(), ds, 4)
	require.NoError(t, err)
	got := readParts(t, c, ds, parts)
	require.Empty(t, got.bad)
	return got.rows
}

func TestLoadCommitExactlyOnce(t *testing.T) {
	root := t.TempDir()
	c := openFS(t, root)
	ctx := context.Background()
	target := spi.Dataset{Path: "out/trades", Format: "csv", Options: map[string]string{"compression": "gzip"}}
	require.NoError(t, c.Check(ctx, target, trades))
	require.Empty(t, files(t, root), "Check leaves nothing behind")

	rows := tradeRows(0, 5000)
	spec := spi.LoadSpec{RunID: "202611200000000000000001", Attempt: 1, Mapping: "m", Dataset: target, Schema: trades, Mode: spi.ModeTruncateInsert, Watermark: "w1"}
	l := load(t, c, spec, rows, 3)
	require.Empty(t, under(files(t, root), "out/"), "nothing visible before the commit")
	ok, err := c.Committed(ctx, spec.RunID)
	require.NoError(t, err)
	require.False(t, ok)

	cm, err := l.Commit(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 5000, cm.Rows)
	require.Len(t, cm.Files, 3)
	var sum int64
	for i, f := range cm.Files {
		require.Equal(t, fmt.Sprintf("out/trades/part-%d.csv.gz", i), f.Path)
		data, err := os.ReadFile(filepath.Join(root, f.Path))
		require.NoError(t, err)
		h := sha256.Sum256(data)
		require.Equal(t, hex.EncodeToString(h[:]), f.SHA256, "the checksum is of the delivered bytes")
		require.EqualValues(t, len(data), f.Size)
		require.Equal(t, []byte{0x1f, 0x8b}, data[:2], "gzip")
		sum += f.Rows
	}
	require.EqualValues(t, 5000, sum)
	require.Equal(t, []string{".weir-commits/" + spec.RunID, "out/trades/part-0.csv.gz", "out/trades/part-1.csv.gz", "out/trades/part-2.csv.gz"}, files(t, root),
		"the parts and the marker; no staging, no intent file")
	ok, err = c.Committed(ctx, spec.RunID)
	require.NoError(t, err)
	require.True(t, ok)
	wm, found, err := c.LastWatermark(ctx, "m")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "w1", wm)

	// Every row once, every value kept.
	got := readBack(t, c, spi.Dataset{Path: "out/trades", Schema: trades})
	require.Len(t, got, 5000)
	for _, r := range rows {
		require.Equal(t, r, got[r[0].(int64)])
	}

	// A second attempt of the same run cannot commit, and changes nothing.
	before := snapshot(t, root)
	spec.Attempt = 2
	l2 := load(t, c, spec, tradeRows(0, 10), 1)
	_, err = l2.Commit(ctx)
	require.ErrorIs(t, err, spi.ErrAlreadyCommitted)
	require.NoError(t, l2.Abort(ctx))
	require.Equal(t, before, snapshot(t, root))
}

// snapshot maps each file under dir to its content's hash.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range files(t, dir) {
		data, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		h := sha256.Sum256(data)
		out[f] = hex.EncodeToString(h[:])
	}
	return out
}

func under(all []string, prefix string) []string {
	var out []string
	for _, f := range all {
		if strings.HasPrefix(f, prefix) {
			out = append(out, f)
		}
	}
	return out
}

// TestLoadRetryAfterCrash: an attempt that died after renaming its parts
// into place but before its marker left an intent file; the next attempt,
// with fewer threads, removes the parts it does not replace, so the target
// holds the rows exactly once.
func TestLoadRetryAfterCrash(t *testing.T) {
	root := t.TempDir()
	c := openFS(t, root)
	ctx := context.Background()
	target := spi.Dataset{Path: "out", Format: "jsonl"}
	rows := tradeRows(0, 1000)
	runID := "202611200000000000000002"
	// What attempt 1 left: four parts delivered, its intent, no marker.
	dead := map[string]string{}
	var intent []map[string]any
	for i := range 4 {
		p := fmt.Sprintf("out/part-%d.jsonl", i)
		dead[p] = `{"id":` + fmt.Sprint(i) + "}\n"
		intent = append(intent, map[string]any{"path": p})
	}
	js, _ := json.Marshal(map[string]any{"run_id": runID, "attempt": 1, "path": "out", "files": intent})
	dead[".weir-commits/"+runID+".pending"] = string(js)
	dead[".weir-staging/"+runID+"/1/part-3.jsonl"] = "half"
	tree(t, root, dead)
	ok, err := c.Committed(ctx, runID)
	require.NoError(t, err)
	require.False(t, ok, "an intent is no commit")

	l := load(t, c, spi.LoadSpec{RunID: runID, Attempt: 2, Dataset: target, Schema: trades, Mode: spi.ModeAppend}, rows, 2)
	cm, err := l.Commit(ctx)
	require.NoError(t, err)
	require.Len(t, cm.Files, 2)
	require.Equal(t, []string{".weir-commits/" + runID, "out/part-" + runID + "-0.jsonl", "out/part-" + runID + "-1.jsonl"}, files(t, root))
	got := readBack(t, c, spi.Dataset{Path: "out", Schema: trades})
	require.Len(t, got, 1000)

	// An intent of a live attempt (same or later) stops a commit, changing nothing.
	run3 := "202611200000000000000003"
	tree(t, root, map[string]string{".weir-commits/" + run3 + ".pending": `{"run_id":"` + run3 + `","attempt":5,"files":[]}`})
	before := snapshot(t, root)
	l = load(t, c, spi.LoadSpec{RunID: run3, Attempt: 4, Dataset: target, Schema: trades}, rows[:10], 1)
	_, err = l.Commit(ctx)
	require.ErrorContains(t, err, "attempt 5 of run "+run3+" is committing")
	require.NoError(t, l.Abort(ctx))
	require.Equal(t, before, snapshot(t, root))
}

func TestLoadModes(t *testing.T) {
	root := t.TempDir()
	c := openFS(t, root)
	ctx := context.Background()
	tree(t, root, map[string]string{"out/part-7.csv": "old\n", "out/part-5-1.csv.gz": "old", "out/keep.txt": "mine"})
	ds := spi.Dataset{Path: "out", Format: "csv"}

	l := load(t, c, spi.LoadSpec{RunID: "11", Attempt: 1, Dataset: ds, Schema: trades, Mode: spi.ModeAppend}, tradeRows(0, 10), 1)
	_, err := l.Commit(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"out/keep.txt", "out/part-11-0.csv", "out/part-5-1.csv.gz", "out/part-7.csv"}, under(files(t, root), "out/"), "append keeps earlier files")

	l = load(t, c, spi.LoadSpec{RunID: "12", Attempt: 1, Dataset: ds, Schema: trades, Mode: spi.ModeTruncateInsert}, tradeRows(0, 10), 1)
	_, err = l.Commit(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"out/keep.txt", "out/part-0.csv"}, under(files(t, root), "out/"), "truncate_insert removes other parts, nothing else")

	_, err = c.Begin(ctx, spi.LoadSpec{RunID: "13", Dataset: ds, Schema: trades, Mode: spi.ModeUpsert, Key: []string{"id"}})
	require.ErrorIs(t, err, spi.ErrInvalid)
	require.ErrorContains(t, err, "upsert needs a keyed table")

	// An empty load delivers a part with the header only.
	l, err = c.Begin(ctx, spi.LoadSpec{RunID: "14", Attempt: 1, Dataset: spi.Dataset{Path: "empty", Format: "csv"}, Schema: trades})
	require.NoError(t, err)
	cm, err := l.Commit(ctx)
	require.NoError(t, err)
	require.Zero(t, cm.Rows)
	data, err := os.ReadFile(filepath.Join(root, "empty/part-0.csv"))
	require.NoError(t, err)
	require.Equal(t, "id,sym,px,note\n", string(data))
}

func TestLastWatermark(t *testing.T) {
	root := t.TempDir()
	c := openFS(t, root)
	ctx := context.Background()
	_, found, err := c.LastWatermark(ctx, "m")
	require.NoError(t, err)
	require.False(t, found)
	for i, wm := range []string{"2026-11-01", "", "2026-11-03", "2026-11-02"} {
		mapping := "m"
		if i == 3 {
			mapping = "other"
		}
		l := load(t, c, spi.LoadSpec{RunID: fmt.Sprint(100 + i), Attempt: 1, Mapping: mapping, Watermark: wm,
			Dataset: spi.Dataset{Path: "o", Format: "csv"}, Schema: trades, Mode: spi.ModeAppend}, tradeRows(i, 1), 1)
		_, err := l.Commit(ctx)
		require.NoError(t, err)
		time.Sleep(time.Millisecond)
	}
	wm, found, err := c.LastWatermark(ctx, "m")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "2026-11-03", wm, "the last commit with a watermark of this mapping")
	wm, _, _ = c.LastWatermark(ctx, "other")
	require.Equal(t, "2026-11-02", wm)
	// Commit markers are never data.
	list, err := c.ListFiles(ctx, "")
	require.NoError(t, err)
	for _, f := range list {
		require.NotContains(t, f.Path, ".weir-commits")
	}
}

func TestCheckTarget(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{"file": "x"})
	c := openFS(t, root)
	ctx := context.Background()
	for _, tc := range []struct {
		ds     spi.Dataset
		schema spi.Schema
		err    string
	}{
		{spi.Dataset{Path: "o"}, trades, "a file target needs a format"},
		{spi.Dataset{Path: "o", Format: "xls"}, trades, `unknown format "xls"`},
		{spi.Dataset{Path: "file/sub", Format: "csv"}, trades, "not a directory"},
		{spi.Dataset{Path: "../o", Format: "csv"}, trades, "escapes"},
		{spi.Dataset{Path: ".weir-commits", Format: "csv"}, trades, "Weir's staging area"},
		{spi.Dataset{Path: "o", Format: "csv"}, spi.Schema{{Name: "a", Type: spi.TypeInt}, {Name: "a", Type: spi.TypeString}}, `field "a" appears twice`},
		{spi.Dataset{Path: "o", Format: "csv", Options: map[string]string{"quote": "none"}}, spi.Schema{{Name: "a,b", Type: spi.TypeInt}}, "quoting is off"},
		{spi.Dataset{Path: "o", Format: "parquet"}, spi.Schema{{Name: "d", Type: spi.TypeDecimal, Precision: 3, Scale: 5}}, "decimal precision 3 and scale 5"},
	} {
		err := c.Check(ctx, tc.ds, tc.schema)
		require.ErrorContains(t, err, tc.err, "%+v", tc.ds)
	}
	require.NoError(t, c.Check(ctx, spi.Dataset{Path: "new/deep/dir", Format: "parquet"}, trades))
	require.Equal(t, []string{"file"}, files(t, root), "Check creates nothing")
}

// TestFileRoundTrips moves rows file to file through the connector in every
// format and compression: CSV in, then each target, read back, every value.
func TestFileRoundTrips(t *testing.T) {
	root := t.TempDir()
	c := openFS(t, root)
	ctx := context.Background()
	ny, _ := time.LoadLocation("America/New_York")
	schema := spi.Schema{
		{Name: "id", Type: spi.TypeInt, Nullable: true}, {Name: "s", Type: spi.TypeString, Nullable: true},
		{Name: "d", Type: spi.TypeDecimal, Precision: 30, Scale: 6, Nullable: true}, {Name: "f", Type: spi.TypeFloat, Nullable: true},
		{Name: "ts", Type: spi.TypeTimestamp, Nullable: true}, {Name: "day", Type: spi.TypeDate, Nullable: true},
		{Name: "ok", Type: spi.TypeBool, Nullable: true},
	}
	big := strings.Repeat("é\"\n,", 1<<18) // 1.25 MB
	rows := []spi.Row{
		{int64(1), "plain", "1.500000", 1.5, time.Date(2026, 11, 20, 9, 30, 0, 123456000, ny), time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), true},
		{int64(2), nil, nil, nil, nil, nil, nil},
		{int64(math.MinInt64), "", "-123456789012345678901234.000001", -1e-300, time.Date(1901, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{int64(math.MaxInt64), big, "0.000000", math.MaxFloat64, time.Date(2262, 4, 1, 0, 0, 0, 0, time.FixedZone("", -9*3600)), nil, nil},
		{int64(5), "日本語, \"quotes\"\r\nand lines", "42.000000", 0.0, nil, nil, true},
	}
	l := load(t, c, spi.LoadSpec{RunID: "1", Attempt: 1, Dataset: spi.Dataset{Path: "src", Format: "csv"}, Schema: schema}, rows, 1)
	_, err := l.Commit(ctx)
	require.NoError(t, err)
	check := func(name string, ds spi.Dataset, zoneKept bool) {
		got := readBack(t, c, ds)
		require.Len(t, got, len(rows), name)
		for _, want := range rows {
			g := got[want[0].(int64)]
			for j := range want {
				if wt, ok := want[j].(time.Time); ok {
					gt, _ := g[j].(time.Time)
					require.True(t, wt.Equal(gt), "%s: %v != %v", name, wt, gt)
					if zoneKept {
						_, wo := wt.Zone()
						_, gof := gt.Zone()
						require.Equal(t, wo, gof, name)
					}
					continue
				}
				require.Equal(t, want[j], g[j], "%s: row %v field %s", name, want[0], schema[j].Name)
			}
		}
	}
	check("csv", spi.Dataset{Path: "src", Schema: schema}, true)
	for i, tc := range []struct {
		format, compression string
	}{{"csv", "gzip"}, {"csv", "zstd"}, {"jsonl", "none"}, {"jsonl", "zstd"}, {"parquet", "zstd"}, {"parquet", ""}} {
		src := spi.Dataset{Path: "src", Schema: schema}
		parts, err := c.Partitions(ctx, src, 2)
		require.NoError(t, err)
		opts := map[string]string{}
		if tc.compression != "" {
			opts["compression"] = tc.compression
		}
		out := spi.Dataset{Path: fmt.Sprintf("out%d", i), Format: tc.format, Options: opts}
		require.NoError(t, c.Check(ctx, out, schema))
		ld, err := c.Begin(ctx, spi.LoadSpec{RunID: fmt.Sprint(10 + i), Attempt: 1, Dataset: out, Schema: schema})
		require.NoError(t, err)
		for th, p := range parts {
			require.NoError(t, c.Read(ctx, src, p, 2, func(b spi.Batch) error { return ld.Write(ctx, th, b) }))
		}
		cm, err := ld.Commit(ctx)
		require.NoError(t, err)
		require.EqualValues(t, len(rows), cm.Rows)
		name := tc.format + "/" + tc.compression
		back := spi.Dataset{Path: out.Path, Schema: schema}
		if tc.format == "parquet" {
			back.Schema = nil // Parquet describes itself
			got, err := c.Describe(ctx, back)
			require.NoError(t, err)
			require.Equal(t, schema, got, "the schema comes back from the file")
		}
		check(name, back, tc.format != "parquet")
	}
}

func TestLoadAbortAfterFailedCommit(t *testing.T) {
	root := t.TempDir()
	c := openFS(t, root)
	ctx := context.Background()
	// The target directory's place is taken by a file: the rename fails after the intent.
	ld := load(t, c, spi.LoadSpec{RunID: "77", Attempt: 1, Dataset: spi.Dataset{Path: "out/x", Format: "csv"}, Schema: trades}, tradeRows(0, 10), 2)
	tree(t, root, map[string]string{"out": "a file"})
	_, err := ld.Commit(ctx)
	require.Error(t, err)
	ok, err2 := c.Committed(ctx, "77")
	require.NoError(t, err2)
	require.False(t, ok)
	require.NoError(t, ld.Abort(ctx))
	require.Equal(t, []string{"out"}, files(t, root), "nothing staged, no intent, no marker")
	err = ld.Write(ctx, 0, spi.Batch{Rows: tradeRows(0, 1)})
	require.Error(t, err, "a finished load takes no more rows")
	require.True(t, errors.Is(err, spi.ErrInvalid))
}
