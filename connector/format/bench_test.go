package format_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/weirdata/weir/connector/format"
	"github.com/weirdata/weir/connector/spi"
)

// benchSchema is a 6-column trades file.
var benchSchema = spi.Schema{
	{Name: "id", Type: spi.TypeInt},
	{Name: "symbol", Type: spi.TypeString},
	{Name: "price", Type: spi.TypeDecimal},
	{Name: "qty", Type: spi.TypeFloat},
	{Name: "at", Type: spi.TypeTimestamp},
	{Name: "note", Type: spi.TypeString},
}

func benchCSV(b *testing.B, rows int) []byte {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	syms := []string{"AAPL", "MSFT", "GOOG", "AMZN", "NVDA"}
	notes := []string{"", "block trade", `said "urgent"`, "a,b", "odd lot"}
	var buf bytes.Buffer
	buf.WriteString("id,symbol,price,qty,at,note\n")
	t0 := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	w := csv.NewWriter(&buf)
	for i := range rows {
		_ = w.Write([]string{
			strconv.Itoa(i), syms[rng.IntN(len(syms))],
			fmt.Sprintf("%d.%02d", 100+rng.IntN(400), rng.IntN(100)),
			strconv.FormatFloat(float64(rng.IntN(100000))/10, 'g', -1, 64),
			t0.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano),
			notes[rng.IntN(len(notes))],
		})
	}
	w.Flush()
	return buf.Bytes()
}

// BenchmarkCSV measures rows per second of decoding a 6-column CSV into
// typed rows and encoding them back, and, as a baseline in the same run,
// encoding/csv reading the same file into strings (no types, no locations)
// and writing them back.
func BenchmarkCSV(b *testing.B) {
	const rows = 200_000
	data := benchCSV(b, rows)
	o, _ := format.ParseOptions("csv", nil)
	report := func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	}
	b.Run("weir/decode", func(b *testing.B) {
		for b.Loop() {
			r, _ := format.NewReader(bytes.NewReader(data), benchSchema, o, format.Source{Name: "t.csv"})
			var batch spi.Batch
			n := 0
			for {
				err := r.Read(&batch, 1024)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil || len(batch.Bad) > 0 {
					b.Fatal(err, batch.Bad)
				}
				n += len(batch.Rows)
			}
			if n != rows {
				b.Fatal(n)
			}
		}
		report(b)
	})
	b.Run("weir/decode+encode", func(b *testing.B) {
		for b.Loop() {
			r, _ := format.NewReader(bytes.NewReader(data), benchSchema, o, format.Source{Name: "t.csv"})
			w, _ := format.NewWriter(io.Discard, benchSchema, o)
			var batch spi.Batch
			for {
				err := r.Read(&batch, 1024)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				if err := w.Write(batch.Rows); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("encoding-csv/read+write-strings", func(b *testing.B) {
		for b.Loop() {
			r := csv.NewReader(bytes.NewReader(data))
			r.ReuseRecord = true
			w := csv.NewWriter(io.Discard)
			for {
				rec, err := r.Read()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				_ = w.Write(rec)
			}
			w.Flush()
		}
		report(b)
	})
}

// BenchmarkCSVBoundaries measures the planning pass that finds record
// boundaries in a CSV file to split it, against bytes.Count of its
// newlines (the least any scan must do).
func BenchmarkCSVBoundaries(b *testing.B) {
	data := benchCSV(b, 200_000)
	o, _ := format.ParseOptions("csv", nil)
	cuts := []int64{0, int64(len(data)) / 4, int64(len(data)) / 2, int64(len(data)) * 3 / 4}
	b.Run("boundaries", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := format.CSVBoundaries(bytes.NewReader(data), o, cuts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bytes.Count", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			_ = bytes.Count(data, []byte{'\n'})
		}
	})
}
