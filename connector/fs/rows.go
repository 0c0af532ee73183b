package fs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/weirdata/weir/connector/format"
	"github.com/weirdata/weir/connector/spi"
)

// Rows from files (spi.RowSource).
//
// A dataset's Path selects files as ListFiles does; its Format (csv, jsonl,
// parquet) applies to all of them, or, when empty, the first file's
// extension decides. Compression is option "compression", else each file's
// extension (.gz, .zst). Options are those of connector/format.
//
// Schema (Describe): the declared schema for CSV and JSON Lines when given
// (for CSV with a header, every declared field must be in the first file's
// header); else the CSV header of the first file (every column a nullable
// string) or a schema inferred from the first InferRecords records of the
// first JSON Lines file. Parquet files describe themselves (the first
// file's schema; the declared one is ignored). No file and no declared
// schema is an error.
//
// Partitions: pieces (whole files, byte ranges, Parquet row groups) dealt
// to at most max partitions, the largest first to the least loaded. A text
// file larger than max(total/max, min_split_bytes) is split into byte
// ranges at record boundaries (see connector/format: CSV files are parsed
// once here to find true record starts, JSON Lines split at line starts);
// compressed files are read whole; Parquet files split by row groups. A
// single small file is a single partition.
//
// Watermarks: a file has no order to resume from, so incremental reads by
// a column are not supported (errors.ErrUnsupported): select new files by
// path (a business date in it) instead.

// InferRecords is how many JSON Lines records Describe reads to infer a schema.
const InferRecords = 1000

var (
	_ spi.RowSource = (*Conn)(nil)
	_ spi.RowTarget = (*Conn)(nil)
)

// fileSet is a dataset resolved to files.
type fileSet struct {
	o     format.Options // Format set
	files []spi.File
}

// options parses a dataset's options; the format may still be "".
func (c *Conn) options(op string, ds spi.Dataset) (format.Options, error) {
	o, err := format.ParseOptions(ds.Format, ds.Options)
	if err != nil {
		return o, c.fail(op, ds.Path, err)
	}
	if ds.Watermark != nil {
		return o, c.fail(op, ds.Path, fmt.Errorf("%w: files have no order to resume from, so an incremental read by column %q is not possible; select new files by path instead", errors.ErrUnsupported, ds.Watermark.Column))
	}
	return o, nil
}

// resolve lists a dataset's files and settles its format.
func (c *Conn) resolve(ctx context.Context, op string, ds spi.Dataset) (*fileSet, error) {
	o, err := c.options(op, ds)
	if err != nil {
		return nil, err
	}
	files, err := c.ListFiles(ctx, ds.Path)
	if err != nil {
		return nil, err
	}
	if o.Format == "" && len(files) > 0 {
		for _, file := range files {
			f, _ := format.Detect(file.Path)
			switch {
			case f == "":
				return nil, c.fail(op, file.Path, fmt.Errorf("%w: the file's extension names no format; set the dataset's format (csv, jsonl, parquet)", spi.ErrInvalid))
			case o.Format == "":
				if o, err = o.WithFormat(f); err != nil {
					return nil, c.fail(op, ds.Path, err)
				}
			case f != o.Format:
				return nil, c.fail(op, file.Path, fmt.Errorf("%w: a %s file among %s files (%s); set the dataset's format or narrow its path", spi.ErrInvalid, f, o.Format, files[0].Path))
			}
		}
	}
	for _, f := range files {
		if _, err := c.compression(o, f.Path); err != nil {
			return nil, err
		}
	}
	return &fileSet{o: o, files: files}, nil
}

// compression returns how a file is compressed.
func (c *Conn) compression(o format.Options, p string) (string, error) {
	_, ext := format.Detect(p)
	if o.Format == format.Parquet {
		if ext != format.None {
			return "", c.fail("read", p, fmt.Errorf("%w: a %s-compressed Parquet file cannot be read; Parquet compresses its own pages", spi.ErrInvalid, ext))
		}
		return format.None, nil
	}
	if o.CompressionSet {
		return o.Compression, nil
	}
	return ext, nil
}

// Describe returns the dataset's schema.
func (c *Conn) Describe(ctx context.Context, ds spi.Dataset) (spi.Schema, error) {
	key, err := json.Marshal(ds)
	if err != nil {
		return nil, fmt.Errorf("describe: %w", err)
	}
	c.mu.Lock()
	s, ok := c.described[string(key)]
	c.mu.Unlock()
	if ok {
		return slices.Clone(s), nil
	}
	s, err = c.describe(ctx, ds)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.described == nil {
		c.described = map[string]spi.Schema{}
	}
	c.described[string(key)] = s
	c.mu.Unlock()
	return slices.Clone(s), nil
}

func (c *Conn) describe(ctx context.Context, ds spi.Dataset) (spi.Schema, error) {
	fs, err := c.resolve(ctx, "describe", ds)
	if err != nil {
		return nil, err
	}
	o := fs.o
	declared := len(ds.Schema) > 0 && o.Format != format.Parquet
	if declared {
		if err := format.CheckSchema(ds.Schema); err != nil {
			return nil, c.fail("describe", ds.Path, fmt.Errorf("declared schema: %w", err))
		}
	}
	if len(fs.files) == 0 {
		if declared {
			return slices.Clone(ds.Schema), nil
		}
		return nil, c.fail("describe", ds.Path, fmt.Errorf("%w: no file matches, so there is nothing to take a schema from; declare the dataset's schema", spi.ErrInvalid))
	}
	first := fs.files[0]
	switch o.Format {
	case format.Parquet:
		var s spi.Schema
		err := c.withParquet(first, func(pf *format.ParquetFile) error {
			s = pf.Schema()
			return nil
		})
		return s, err
	case format.CSV:
		if !o.Header {
			if declared {
				return slices.Clone(ds.Schema), nil
			}
			return nil, c.fail("describe", ds.Path, fmt.Errorf("%w: a CSV dataset without a header needs a declared schema", spi.ErrInvalid))
		}
		h, err := c.header(first.Path, o)
		if err != nil {
			return nil, err
		}
		if declared {
			if _, err := format.MapColumns(ds.Schema, h); err != nil {
				return nil, c.fail("describe", first.Path, err)
			}
			return slices.Clone(ds.Schema), nil
		}
		if h == nil {
			return nil, c.fail("describe", first.Path, fmt.Errorf("%w: the file is empty, so it has no header to take a schema from; declare the dataset's schema", spi.ErrInvalid))
		}
		s := make(spi.Schema, len(h))
		for i, n := range h {
			s[i] = spi.Field{Name: n, Type: spi.TypeString, Nullable: true}
		}
		if err := format.CheckSchema(s); err != nil {
			return nil, c.fail("describe", first.Path, fmt.Errorf("header: %w", err))
		}
		return s, nil
	case format.JSONL:
		if declared {
			return slices.Clone(ds.Schema), nil
		}
		var s spi.Schema
		err := c.withText(first.Path, o, func(r io.Reader) error {
			var err error
			s, err = format.InferJSONL(r, o, first.Path, InferRecords)
			return err
		})
		return s, err
	}
	return nil, c.fail("describe", ds.Path, fmt.Errorf("%w: unknown format %q", spi.ErrInvalid, o.Format))
}

// header reads the CSV header of a file (nil for an empty file), caching it.
func (c *Conn) header(p string, o format.Options) ([]string, error) {
	key := p + "\x00" + string(o.Delimiter) + string(o.Quote) + o.Compression
	c.mu.Lock()
	h, ok := c.headers[key]
	c.mu.Unlock()
	if ok {
		return h, nil
	}
	err := c.withText(p, o, func(r io.Reader) error {
		var err error
		h, err = format.ReadCSVHeader(r, o, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.headers == nil {
		c.headers = map[string][]string{}
	}
	c.headers[key] = h
	c.mu.Unlock()
	return h, nil
}

// withText calls fn with the decompressed content of a text file.
func (c *Conn) withText(p string, o format.Options, fn func(io.Reader) error) error {
	comp, err := c.compression(o, p)
	if err != nil {
		return err
	}
	f, err := c.root.Open(p)
	if err != nil {
		return c.fail("read", p, err)
	}
	defer f.Close()
	zr, err := format.NewDecompressor(f, comp)
	if err != nil {
		return c.fail("read", p, err)
	}
	defer zr.Close()
	if err := fn(zr); err != nil {
		return c.fail("read", p, err)
	}
	return nil
}

// withParquet calls fn with an open Parquet file.
func (c *Conn) withParquet(file spi.File, fn func(*format.ParquetFile) error) error {
	f, err := c.root.Open(file.Path)
	if err != nil {
		return c.fail("read", file.Path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return c.fail("read", file.Path, err)
	}
	pf, err := format.OpenParquet(f, fi.Size(), file.Path)
	if err != nil {
		return c.fail("read", file.Path, err)
	}
	if err := fn(pf); err != nil {
		return c.fail("read", file.Path, err)
	}
	return nil
}

// Piece units.
const (
	unitFile      = "file"       // the whole file
	unitBytes     = "bytes"      // records starting in [Start, End) of an uncompressed text file
	unitRowGroups = "row_groups" // Parquet row groups [Start, End)
)

// piece is a part of one file; a partition's Spec["pieces"] is their JSON.
type piece struct {
	Path  string `json:"path"`
	Unit  string `json:"unit"`
	Start int64  `json:"start,omitempty"`
	End   int64  `json:"end,omitempty"`
	// Line is the line number at Start when known (CSV ranges, whole files).
	Line  int64 `json:"line,omitempty"`
	Bytes int64 `json:"-"`
	Rows  int64 `json:"-"`
}

// SpecPieces is the key of a partition's Spec holding its pieces (JSON).
const SpecPieces = "pieces"

// Partitions splits the dataset into at most max partitions of balanced size.
func (c *Conn) Partitions(ctx context.Context, ds spi.Dataset, maxParts int) ([]spi.Partition, error) {
	maxParts = max(maxParts, 1)
	fs, err := c.resolve(ctx, "partition", ds)
	if err != nil {
		return nil, err
	}
	o := fs.o
	var total int64
	for _, f := range fs.files {
		total += f.Size
	}
	chunk := max((total+int64(maxParts)-1)/int64(maxParts), o.MinSplitBytes)
	var pieces []piece
	for _, f := range fs.files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ps, err := c.filePieces(ctx, f, o, chunk)
		if err != nil {
			return nil, err
		}
		pieces = append(pieces, ps...)
	}
	return deal(pieces, maxParts), nil
}

// filePieces cuts one file into pieces of about chunk bytes where it can.
func (c *Conn) filePieces(ctx context.Context, f spi.File, o format.Options, chunk int64) ([]piece, error) {
	if o.Format == format.Parquet {
		var out []piece
		err := c.withParquet(f, func(pf *format.ParquetFile) error {
			for i, rg := range pf.RowGroups() {
				out = append(out, piece{Path: f.Path, Unit: unitRowGroups, Start: int64(i), End: int64(i + 1), Bytes: rg.Bytes, Rows: rg.Rows})
			}
			return nil
		})
		return out, err
	}
	whole := []piece{{Path: f.Path, Unit: unitFile, Line: 1, Bytes: f.Size}}
	comp, err := c.compression(o, f.Path)
	if err != nil {
		return nil, err
	}
	if comp != format.None || o.Split == format.SplitNone || f.Size <= chunk {
		return whole, nil
	}
	k := (f.Size + chunk - 1) / chunk
	cuts := make([]int64, k)
	for i := range cuts {
		cuts[i] = int64(i) * f.Size / k
	}
	file, err := c.root.Open(f.Path)
	if err != nil {
		return nil, c.fail("partition", f.Path, err)
	}
	defer file.Close()
	starts := make([]piece, 0, k)
	var records int64 // CSV: the file's records, counted by the scan
	if o.Format == format.CSV && o.Split == format.SplitAuto {
		bs, err := format.CSVBoundaries(ctxReader{ctx, file}, o, append(cuts, f.Size))
		if err != nil {
			return nil, c.fail("partition", f.Path, err)
		}
		records = bs[len(bs)-1].Records
		for _, b := range bs[:len(bs)-1] {
			starts = append(starts, piece{Start: b.Offset, Line: b.Line, Rows: b.Records})
		}
	} else {
		for _, cut := range cuts {
			s, err := format.AlignStart(file, cut)
			if err != nil {
				return nil, c.fail("partition", f.Path, err)
			}
			p := piece{Start: s}
			if s == 0 {
				p.Line = 1
			}
			starts = append(starts, p)
		}
	}
	var out []piece
	for i, s := range starts {
		end := f.Size
		if i+1 < len(starts) {
			end = starts[i+1].Start
		}
		if s.Start >= end {
			continue
		}
		p := piece{Path: f.Path, Unit: unitBytes, Start: s.Start, End: end, Line: s.Line, Bytes: end - s.Start}
		switch {
		case records == 0:
		case i+1 < len(starts):
			p.Rows = starts[i+1].Rows - s.Rows
		default:
			p.Rows = records - s.Rows
		}
		out = append(out, p)
	}
	return out, nil
}

// deal assigns pieces to at most max partitions, largest first to the least
// loaded, then orders each partition's pieces and merges adjacent ones.
func deal(pieces []piece, maxParts int) []spi.Partition {
	n := min(maxParts, len(pieces))
	if n == 0 {
		return []spi.Partition{{Seq: 0, Desc: "no files", Spec: map[string]string{SpecPieces: "[]"}}}
	}
	order := slices.Clone(pieces)
	slices.SortStableFunc(order, func(a, b piece) int { return cmp.Compare(b.Bytes, a.Bytes) })
	bins := make([][]piece, n)
	load := make([]int64, n)
	for _, p := range order {
		i := 0
		for j := 1; j < n; j++ {
			if load[j] < load[i] {
				i = j
			}
		}
		bins[i] = append(bins[i], p)
		load[i] += max(p.Bytes, 1)
	}
	for i := range bins {
		slices.SortFunc(bins[i], func(a, b piece) int {
			return cmp.Or(strings.Compare(a.Path, b.Path), cmp.Compare(a.Start, b.Start))
		})
		merged := bins[i][:1]
		for _, p := range bins[i][1:] {
			last := &merged[len(merged)-1]
			if p.Path == last.Path && p.Unit == last.Unit && p.Unit != unitFile && p.Start == last.End {
				last.End, last.Bytes, last.Rows = p.End, last.Bytes+p.Bytes, last.Rows+p.Rows
				continue
			}
			merged = append(merged, p)
		}
		bins[i] = merged
	}
	slices.SortFunc(bins, func(a, b []piece) int {
		return cmp.Or(strings.Compare(a[0].Path, b[0].Path), cmp.Compare(a[0].Start, b[0].Start))
	})
	out := make([]spi.Partition, n)
	for i, bin := range bins {
		js, _ := json.Marshal(bin)
		p := spi.Partition{Seq: i, Desc: describePieces(bin), Spec: map[string]string{SpecPieces: string(js)}}
		for _, pc := range bin {
			p.EstBytes += pc.Bytes
			p.EstRows += pc.Rows
		}
		out[i] = p
	}
	return out
}

// describePieces says what a partition holds, for people.
func describePieces(ps []piece) string {
	one := func(p piece) string {
		switch p.Unit {
		case unitBytes:
			return fmt.Sprintf("%s bytes %d-%d", p.Path, p.Start, p.End)
		case unitRowGroups:
			return fmt.Sprintf("%s row groups %d-%d", p.Path, p.Start, p.End-1)
		}
		return p.Path
	}
	if len(ps) == 1 {
		return one(ps[0])
	}
	if len(ps) <= 3 {
		parts := make([]string, len(ps))
		for i, p := range ps {
			parts[i] = one(p)
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprintf("%s, %s and %d more", one(ps[0]), one(ps[1]), len(ps)-2)
}

// Read reads one partition's pieces in order, emitting batches of at most
// batchSize records (rows and bad records together). The batch and its rows
// are reused after emit returns.
func (c *Conn) Read(ctx context.Context, ds spi.Dataset, p spi.Partition, batchSize int, emit func(spi.Batch) error) error {
	if batchSize < 1 {
		batchSize = 1
	}
	schema, err := c.Describe(ctx, ds)
	if err != nil {
		return err
	}
	o, err := c.options("read", ds)
	if err != nil {
		return err
	}
	var pieces []piece
	if err := json.Unmarshal([]byte(p.Spec[SpecPieces]), &pieces); err != nil {
		return c.fail("read", ds.Path, fmt.Errorf("%w: partition %d: bad spec: %v", spi.ErrInvalid, p.Seq, err))
	}
	var b spi.Batch
	for _, pc := range pieces {
		if err := ctx.Err(); err != nil {
			return err
		}
		po := o
		if po.Format == "" {
			f, _ := format.Detect(pc.Path)
			if po, err = po.WithFormat(f); err != nil || f == "" {
				return c.fail("read", pc.Path, fmt.Errorf("%w: the file's extension names no format", spi.ErrInvalid))
			}
		}
		if err := c.readPiece(ctx, pc, po, schema, batchSize, &b, emit); err != nil {
			return err
		}
	}
	return nil
}

// readPiece reads one piece.
func (c *Conn) readPiece(ctx context.Context, pc piece, o format.Options, schema spi.Schema, n int, b *spi.Batch, emit func(spi.Batch) error) error {
	p, err := spi.CleanPath(pc.Path)
	if err != nil || reservedPath(p) {
		return c.fail("read", pc.Path, fmt.Errorf("%w: a piece names a bad path", spi.ErrInvalid))
	}
	f, err := c.root.Open(p)
	if err != nil {
		return c.fail("read", p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return c.fail("read", p, err)
	}
	var r format.Reader
	switch pc.Unit {
	case unitRowGroups:
		pf, err := format.OpenParquet(f, fi.Size(), p)
		if err != nil {
			return c.fail("read", p, err)
		}
		if r, err = pf.Reader(schema, int(pc.Start), int(pc.End)); err != nil {
			return c.fail("read", p, err)
		}
	case unitFile:
		if o.Format == format.Parquet {
			pf, err := format.OpenParquet(f, fi.Size(), p)
			if err != nil {
				return c.fail("read", p, err)
			}
			if r, err = pf.Reader(schema, 0, len(pf.RowGroups())); err != nil {
				return c.fail("read", p, err)
			}
			break
		}
		comp, err := c.compression(o, p)
		if err != nil {
			return err
		}
		zr, err := format.NewDecompressor(f, comp)
		if err != nil {
			return c.fail("read", p, err)
		}
		defer zr.Close()
		if r, err = format.NewReader(ctxReader{ctx, zr}, schema, o, format.Source{Name: p, Line: 1}); err != nil {
			return c.fail("read", p, err)
		}
	case unitBytes:
		if comp, err := c.compression(o, p); err != nil || comp != format.None || o.Format == format.Parquet {
			return c.fail("read", p, fmt.Errorf("%w: a byte range of a compressed or Parquet file", spi.ErrInvalid))
		}
		start, err := format.AlignStart(f, pc.Start)
		if err != nil {
			return c.fail("read", p, err)
		}
		if start >= pc.End {
			return nil
		}
		src := format.Source{Name: p, Offset: start, End: pc.End}
		if start == pc.Start {
			src.Line = pc.Line
		}
		if start == 0 {
			src.Line = 1
		}
		if o.Format == format.CSV && o.Header && start > 0 {
			if src.Header, err = c.header(p, o); err != nil {
				return err
			}
		}
		sec := io.NewSectionReader(f, start, fi.Size()-start)
		if r, err = format.NewReader(ctxReader{ctx, sec}, schema, o, src); err != nil {
			return c.fail("read", p, err)
		}
	default:
		return c.fail("read", p, fmt.Errorf("%w: unknown piece unit %q", spi.ErrInvalid, pc.Unit))
	}
	for {
		err := r.Read(b, n)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return c.fail("read", p, err)
		}
		if err := emit(*b); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// MaxWatermark is not supported for files: see the note on watermarks.
func (c *Conn) MaxWatermark(_ context.Context, ds spi.Dataset, column string) (string, error) {
	return "", c.fail("watermark", ds.Path, fmt.Errorf("%w: files have no order to resume from, so there is no watermark of column %q; select new files by path instead", errors.ErrUnsupported, column))
}

// connCache holds what a Conn learnt of its datasets during its run.
type connCache struct {
	mu        sync.Mutex
	described map[string]spi.Schema // by the dataset's JSON
	headers   map[string][]string   // CSV headers by file and options
}
