package fs_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirdata/weir/connector/fs"
	"github.com/weirdata/weir/connector/spi"
)

// writerOnly hides *os.File's ReadFrom, as wrapping a reader in a TeeReader does.
type writerOnly struct{ io.Writer }

// BenchmarkCopy compares the fs connector's copy path (Stage.Put: copy_file_range
// in 8 MiB chunks, a SHA-256 pass over the staged file, fsync) with a plain
// io.Copy between the same files, with and without fsync, and with the
// alternative of hashing through an io.TeeReader during the copy.
func BenchmarkCopy(b *testing.B) {
	sets := []struct {
		name  string
		files int
		size  int
	}{
		{"1x50MiB", 1, 50 << 20},
		{"200x64KiB", 200, 64 << 10},
	}
	for _, set := range sets {
		srcDir := b.TempDir()
		names := make([]string, set.files)
		for i := range names {
			names[i] = fmt.Sprintf("f%03d", i)
			data := make([]byte, set.size)
			_, _ = rand.Read(data)
			if err := os.WriteFile(filepath.Join(srcDir, names[i]), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		total := int64(set.files * set.size)
		ctx := context.Background()

		b.Run(set.name+"/stage.Put", func(b *testing.B) {
			dstDir := b.TempDir()
			src := open(b, srcDir)
			dst := open(b, dstDir)
			b.SetBytes(total)
			for b.Loop() {
				st, err := dst.(spi.FileTarget).Stage(ctx, "123", 1)
				if err != nil {
					b.Fatal(err)
				}
				for _, n := range names {
					r, err := src.(spi.FileSource).OpenFile(ctx, n)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := st.Put(ctx, n, r, nil); err != nil {
						b.Fatal(err)
					}
					r.Close()
				}
				if err := st.Discard(); err != nil {
					b.Fatal(err)
				}
			}
		})
		plain := func(sync, tee bool) func(b *testing.B) {
			return func(b *testing.B) {
				dstDir := b.TempDir()
				buf := make([]byte, 1<<20)
				b.SetBytes(total)
				for b.Loop() {
					for _, n := range names {
						r, err := os.Open(filepath.Join(srcDir, n))
						if err != nil {
							b.Fatal(err)
						}
						w, err := os.Create(filepath.Join(dstDir, n))
						if err != nil {
							b.Fatal(err)
						}
						if tee {
							h := sha256.New()
							_, err = io.CopyBuffer(writerOnly{w}, io.TeeReader(r, h), buf)
							_ = h.Sum(nil)
						} else {
							_, err = io.Copy(w, r)
						}
						if err != nil {
							b.Fatal(err)
						}
						if sync {
							if err := w.Sync(); err != nil {
								b.Fatal(err)
							}
						}
						w.Close()
						r.Close()
					}
				}
			}
		}
		b.Run(set.name+"/io.Copy", plain(false, false))
		b.Run(set.name+"/io.Copy+fsync", plain(true, false))
		b.Run(set.name+"/tee-sha256+fsync", plain(true, true))
	}
}

func open(b *testing.B, dir string) spi.Conn {
	b.Helper()
	c, err := fs.Open(context.Background(), spi.System{Name: "bench", Kind: fs.Kind, Settings: map[string]string{"root": dir}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkRowsCSV measures a CSV-to-CSV row transfer through the
// connector, as the worker drives it: Partitions, then one goroutine per
// partition reading batches and writing them to the load, then Commit; for
// a 6-column file of 500,000 rows split over two threads. The byte copy of
// the same file (BenchmarkCopy's path) is the floor it is compared with.
func BenchmarkRowsCSV(b *testing.B) {
	const rows = 500_000
	dir := b.TempDir()
	var buf strings.Builder
	buf.WriteString("id,symbol,price,qty,at,note\n")
	t0 := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	for i := range rows {
		fmt.Fprintf(&buf, "%d,SYM%d,%d.%02d,%d,%s,%s\n", i, i%50, 100+i%400, i%100, i%1000,
			t0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), []string{"", "block", `"a,b"`}[i%3])
	}
	if err := os.WriteFile(filepath.Join(dir, "trades.csv"), []byte(buf.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	schema := spi.Schema{
		{Name: "id", Type: spi.TypeInt}, {Name: "symbol", Type: spi.TypeString}, {Name: "price", Type: spi.TypeDecimal},
		{Name: "qty", Type: spi.TypeFloat}, {Name: "at", Type: spi.TypeTimestamp}, {Name: "note", Type: spi.TypeString},
	}
	c := open(b, dir).(*fs.Conn)
	ctx := context.Background()
	src := spi.Dataset{Path: "trades.csv", Schema: schema, Options: map[string]string{"min_split_bytes": "1048576"}}
	b.SetBytes(int64(buf.Len()))
	run := 0
	for b.Loop() {
		run++
		parts, err := c.Partitions(ctx, src, 2)
		if err != nil || len(parts) != 2 {
			b.Fatal(err, len(parts))
		}
		l, err := c.Begin(ctx, spi.LoadSpec{RunID: strconv.Itoa(run), Attempt: 1, Schema: schema,
			Dataset: spi.Dataset{Path: "out", Format: "csv"}, Mode: spi.ModeTruncateInsert})
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, len(parts))
		for th, p := range parts {
			wg.Go(func() {
				errs[th] = c.Read(ctx, src, p, 1024, func(bt spi.Batch) error { return l.Write(ctx, th, bt) })
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
		cm, err := l.Commit(ctx)
		if err != nil || cm.Rows != rows {
			b.Fatal(err, cm.Rows)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
