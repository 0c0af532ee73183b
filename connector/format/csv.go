package format

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/weirdata/weir/connector/spi"
)

// csvReader decodes CSV records into rows of a schema.
type csvReader struct {
	sc      *scanner
	o       Options
	src     Source
	schema  spi.Schema
	codec   *textCodec
	cols    []int // cols[i]: the record field holding schema field i
	width   int   // fields per record
	started bool
	buf     batchBuf
	strs    []string
}

func newCSVReader(r io.Reader, schema spi.Schema, o Options, src Source) (*csvReader, error) {
	c := &csvReader{
		sc:     startScanner(r, o, src, o.Delimiter, o.Quote),
		o:      o,
		src:    src,
		schema: schema,
		codec:  newTextCodec(o),
		strs:   make([]string, len(schema)),
	}
	if !o.Header {
		c.cols = make([]int, len(schema))
		for i := range c.cols {
			c.cols[i] = i
		}
		c.width = len(schema)
		c.started = true
	} else if src.Offset > 0 {
		if src.Header == nil {
			return nil, fmt.Errorf("%w: %s: a reader starting at byte %d needs the file's header", ErrFormat, src.Name, src.Offset)
		}
		if err := c.mapHeader(src.Header); err != nil {
			return nil, err
		}
		c.started = true
	}
	c.sc.width = c.width
	return c, nil
}

// mapHeader finds each schema field in the header.
func (c *csvReader) mapHeader(header []string) error {
	cols, err := MapColumns(c.schema, header)
	if err != nil {
		return fmt.Errorf("%s: %w", c.src.Name, err)
	}
	c.cols, c.width = cols, len(header)
	return nil
}

// MapColumns returns, for each field of schema, the index of its column in
// header: the column of the same name, else the first of the same name
// ignoring case.
func MapColumns(schema spi.Schema, header []string) ([]int, error) {
	cols := make([]int, len(schema))
	for i, f := range schema {
		j := slices.Index(header, f.Name)
		if j < 0 {
			j = slices.IndexFunc(header, func(h string) bool { return strings.EqualFold(h, f.Name) })
		}
		if j < 0 {
			return nil, fmt.Errorf("%w: field %q is not in the header (%s)", ErrFormat, f.Name, quoteList(header))
		}
		cols[i] = j
	}
	return cols, nil
}

func quoteList(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		if i == 20 {
			fmt.Fprintf(&b, "... %d more", len(names)-i)
			break
		}
		b.WriteString(quoteShort(n))
	}
	return b.String()
}

// readHeader reads the header record.
func (c *csvReader) readHeader() error {
	c.started = true
	if !c.sc.next() {
		if c.sc.err != nil {
			return fmt.Errorf("read %s: %w", c.src.Name, c.sc.err)
		}
		c.width = len(c.schema) // an empty file: no rows
		return nil
	}
	h, err := headerOf(&c.sc.rec, c.src.Name)
	if err != nil {
		return err
	}
	if err := c.mapHeader(h); err != nil {
		return err
	}
	c.sc.width = c.width
	return nil
}

func headerOf(rec *record, name string) ([]string, error) {
	if rec.bad != "" {
		return nil, fmt.Errorf("%w: %s: the header is bad: %s", ErrFormat, string(location(nil, name, rec.line, rec.offset)), rec.bad)
	}
	h := make([]string, len(rec.fields))
	for i, f := range rec.fields {
		h[i] = string(rec.data[f.start:f.end])
	}
	return h, nil
}

// ReadCSVHeader reads the header names from the start of a CSV input.
// An empty input has no header: nil, nil.
func ReadCSVHeader(r io.Reader, o Options, name string) ([]string, error) {
	o.MaxRecordBytes = min(o.MaxRecordBytes, 1<<20)
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = 1 << 20
	}
	s := newScanner(r, 0, 1, o.Delimiter, o.Quote, o.MaxRecordBytes)
	if !s.next() {
		if s.err != nil {
			return nil, fmt.Errorf("read %s: %w", name, s.err)
		}
		return nil, nil
	}
	return headerOf(&s.rec, name)
}

// Read decodes the next records into b.
func (c *csvReader) Read(b *spi.Batch, n int) error {
	resetBatch(b)
	if !c.started {
		if err := c.readHeader(); err != nil {
			return err
		}
	}
	c.buf.arena = c.buf.arena[:0]
	for count := 0; count < n; count++ {
		if !c.sc.next() {
			break
		}
		rec := &c.sc.rec
		if rec.bad != "" {
			b.Bad = append(b.Bad, c.rowError(rec, rec.bad))
			continue
		}
		if len(rec.fields) != c.width {
			b.Bad = append(b.Bad, c.rowError(rec, fmt.Sprintf("%d fields, expected %d", len(rec.fields), c.width)))
			continue
		}
		row := nextRow(b, len(c.schema))
		if why := c.decode(rec, row); why != "" {
			b.Bad = append(b.Bad, c.rowError(rec, why))
			continue
		}
		b.Rows = append(b.Rows, row)
		c.buf.loc = location(c.buf.loc[:0], c.src.Name, rec.line, rec.offset)
		b.Locs = append(b.Locs, string(c.buf.loc))
		start := len(c.buf.arena)
		c.buf.arena = append(c.buf.arena, rec.raw...)
		b.Raw = append(b.Raw, c.buf.arena[start:len(c.buf.arena):len(c.buf.arena)])
	}
	if c.sc.err != nil {
		return fmt.Errorf("read %s: %w", c.src.Name, c.sc.err)
	}
	if len(b.Rows) == 0 && len(b.Bad) == 0 {
		return io.EOF
	}
	return nil
}

func (c *csvReader) rowError(rec *record, why string) *spi.RowError {
	return &spi.RowError{
		Loc:    string(location(nil, c.src.Name, rec.line, rec.offset)),
		Raw:    slices.Clone(rec.raw),
		Reason: why,
	}
}

// decode fills row from a record, or says why it cannot.
func (c *csvReader) decode(rec *record, row spi.Row) string {
	var all string // the record's field bytes as one string, made once
	haveAll := false
	for i := range c.schema {
		f := &c.schema[i]
		fld := rec.fields[c.cols[i]]
		raw := rec.data[fld.start:fld.end]
		if !fld.quoted && string(raw) == c.o.Null {
			row[i] = nil
			continue
		}
		if f.Type != spi.TypeString && f.Type != spi.TypeBytes && isBlank(raw) {
			row[i] = nil // an empty number, date ... is NULL whatever the null text
			continue
		}
		if !haveAll {
			all, haveAll = string(rec.data), true
		}
		text := all[fld.start:fld.end]
		if f.Type == spi.TypeString {
			row[i] = text
			continue
		}
		v, err := c.codec.parse(f.Type, text)
		if err != nil {
			return fmt.Sprintf("field %q (column %d): %v", f.Name, c.cols[i]+1, err)
		}
		row[i] = v
	}
	return ""
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// csvWriter encodes rows as CSV.
type csvWriter struct {
	w       io.Writer
	o       Options
	schema  spi.Schema
	codec   *textCodec
	buf     []byte
	tmp     []byte
	special [256]bool
	rows    int64
	first   bool // nothing written yet: a leading byte order mark must be quoted
}

// csvFlushBytes is how much a writer buffers before writing out.
const csvFlushBytes = 256 << 10

func newCSVWriter(w io.Writer, schema spi.Schema, o Options) (*csvWriter, error) {
	c := &csvWriter{w: w, o: o, schema: schema, codec: newTextCodec(o), buf: make([]byte, 0, csvFlushBytes+4096), first: true}
	c.special['\n'], c.special['\r'], c.special[o.Delimiter] = true, true, true
	if o.Quote != 0 {
		c.special[o.Quote] = true
	}
	if o.Header {
		for i, f := range schema {
			if i > 0 {
				c.buf = append(c.buf, o.Delimiter)
			}
			var err error
			if c.buf, err = c.field(c.buf, []byte(f.Name), true); err != nil {
				return nil, fmt.Errorf("header field %q: %w", f.Name, err)
			}
			c.first = false
		}
		c.buf = append(c.buf, '\n')
	}
	return c, nil
}

// needsQuote tells whether a field's text must be quoted: when it holds
// the delimiter, the quote or a line break, when it equals the null text
// (so that it does not read back as NULL), or when it is the first field of
// the file and starts with a byte order mark.
func (c *csvWriter) needsQuote(text []byte, isHeader bool) bool {
	if (!isHeader && string(text) == c.o.Null) || (c.first && bytes.HasPrefix(text, bom)) {
		return true
	}
	for _, b := range text {
		if c.special[b] {
			return true
		}
	}
	return false
}

// field appends the text of one field, quoted when needed.
func (c *csvWriter) field(dst, text []byte, isHeader bool) ([]byte, error) {
	if !c.needsQuote(text, isHeader) {
		return append(dst, text...), nil
	}
	return c.quoted(dst, text)
}

// quoted appends text quoted, its quotes doubled.
func (c *csvWriter) quoted(dst, text []byte) ([]byte, error) {
	if c.o.Quote == 0 {
		return dst, fmt.Errorf("%w: %s holds the delimiter, a line break or the null text, and quoting is off", ErrFormat, quoteShort(string(text)))
	}
	dst = append(dst, c.o.Quote)
	for {
		i := bytes.IndexByte(text, c.o.Quote)
		if i < 0 {
			break
		}
		dst = append(dst, text[:i+1]...)
		dst = append(dst, c.o.Quote)
		text = text[i+1:]
	}
	dst = append(dst, text...)
	return append(dst, c.o.Quote), nil
}

// Write encodes rows.
func (c *csvWriter) Write(rows []spi.Row) error {
	for _, row := range rows {
		c.rows++
		if len(row) != len(c.schema) {
			return fmt.Errorf("%w: row %d has %d values, the schema %d fields", ErrFormat, c.rows, len(row), len(c.schema))
		}
		for i := range c.schema {
			if i > 0 {
				c.buf = append(c.buf, c.o.Delimiter)
			}
			v := row[i]
			if v == nil {
				c.buf = append(c.buf, c.o.Null...)
				continue
			}
			start := len(c.buf)
			var err error
			c.buf, err = c.codec.appendText(c.buf, &c.schema[i], v)
			if err != nil {
				return fmt.Errorf("%w: row %d, field %q: %v", ErrFormat, c.rows, c.schema[i].Name, err)
			}
			if c.needsQuote(c.buf[start:], false) {
				c.tmp = append(c.tmp[:0], c.buf[start:]...)
				if c.buf, err = c.quoted(c.buf[:start], c.tmp); err != nil {
					return fmt.Errorf("row %d, field %q: %w", c.rows, c.schema[i].Name, err)
				}
			}
			c.first = false
		}
		c.first = false
		c.buf = append(c.buf, '\n')
		if len(c.buf) >= csvFlushBytes {
			if err := c.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *csvWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.w.Write(c.buf)
	c.buf = c.buf[:0]
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// Close writes out what is buffered.
func (c *csvWriter) Close() error { return c.flush() }
