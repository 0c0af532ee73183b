package format

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// A record's rules, the same for the CSV reader, the JSON Lines reader and
// the scan that finds where a file may be split (CSVBoundaries), so that a
// file read in byte ranges yields exactly the records of a whole read:
//
//   - A record is a line, or several when a quoted field holds line breaks.
//     It ends with "\n" (a "\r" before it is dropped) or at the end of the
//     input.
//   - A line that is empty (or only "\r") is no record, unless the record
//     width is one field: then it is one empty field.
//   - A quote opens a quoted field only as the field's first byte; inside
//     it a doubled quote is a quote, and the closing quote must be followed
//     by the delimiter or the end of the record. A quote elsewhere in an
//     unquoted field, or another byte after a closing quote, makes the
//     record bad; it ends at the first "\n" at or after that byte.
//   - A quoted field still open at the end of the input makes the record
//     bad; it then ends at the first "\n" after its start, and reading goes
//     on with the next line.
//   - A record longer than MaxRecordBytes (counted up to its final "\n") is
//     bad, and ends at the first "\n" after its start as well.
//   - A UTF-8 byte order mark at offset 0 is skipped.
//
// Everything depends on the bytes from the record's start on only, never on
// how the input arrives in reads, which the tests check by reading through
// tiny buffers.

// scanBufferSize is the initial read buffer of a scanner; it grows up to
// MaxRecordBytes+1 for longer records. Tests lower it.
var scanBufferSize = 256 << 10

// maxBadRaw bounds the raw bytes kept of a record that is too long.
const maxBadRaw = 4 << 10

// field is one field of a record: data[start:end].
type field struct {
	start, end int
	quoted     bool
}

// record is what a scanner read last. Its slices are valid until the next call.
type record struct {
	offset int64  // absolute offset of the record's first byte
	line   int64  // line number of the record's first byte
	raw    []byte // the record's bytes without its terminator
	data   []byte // field bytes
	fields []field
	bad    string // why the record is bad, "" when it is fine
}

// scanner splits its input into records.
type scanner struct {
	r        io.Reader
	buf      []byte
	pos, end int   // unread bytes are buf[pos:end]
	base     int64 // absolute offset of buf[0]
	eof      bool
	err      error // a read error other than EOF

	delim, quote byte // quote 0: no quoting (JSON Lines, or CSV without quotes)
	maxRec       int
	width        int   // fields per record, for empty lines; 0 = unknown
	limit        int64 // records starting at or after this absolute offset are not read; <0 none
	noFields     bool  // find records only
	line         int64 // line number at buf[pos]; 0 when unknown, and then not counted

	rec     record
	scratch []byte
}

type status int

const (
	stOK status = iota
	stBad
	stUnterminated
	stNeedMore
	stTooLong
)

// newScanner reads records from r, whose first byte is at absolute offset
// off and on line line (1 when off is 0; counted on from there).
func newScanner(r io.Reader, off, line int64, delim, quote byte, maxRec int) *scanner {
	if maxRec <= 0 {
		maxRec = MaxRecordBytesDefault
	}
	size := scanBufferSize
	if size > maxRec+1 {
		size = maxRec + 1
	}
	s := &scanner{r: r, buf: make([]byte, size), base: off, delim: delim, quote: quote, maxRec: maxRec, limit: -1, line: line}
	if off == 0 {
		for s.end < len(bom) && !s.eof && s.err == nil {
			s.fill() // reads until the buffer is full or the input ends
		}
		if bytes.HasPrefix(s.buf[:s.end], bom) {
			s.pos = len(bom)
		}
	}
	return s
}

var bom = []byte{0xEF, 0xBB, 0xBF}

// offset returns the absolute offset of the next unread byte.
func (s *scanner) offset() int64 { return s.base + int64(s.pos) }

// fill moves the unread bytes to the front of the buffer, growing it when
// it is full, and reads until it is full or the input ends.
func (s *scanner) fill() {
	if s.eof || s.err != nil {
		return
	}
	if s.pos > 0 {
		n := copy(s.buf, s.buf[s.pos:s.end])
		s.base += int64(s.pos)
		s.pos, s.end = 0, n
	}
	if s.end == len(s.buf) {
		size := 2 * len(s.buf)
		if size > s.maxRec+1 {
			size = s.maxRec + 1
		}
		if size <= len(s.buf) {
			return // a full window: the caller decides
		}
		nb := make([]byte, size)
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	n, err := io.ReadFull(s.r, s.buf[s.end:])
	s.end += n
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		s.eof = true
	default:
		s.err = err
	}
}

// next reads the next record into s.rec. It returns false at the end of the
// input, at the limit, or on a read error (s.err).
func (s *scanner) next() bool {
	for {
		if s.err != nil {
			return false
		}
		if s.limit >= 0 && s.offset() >= s.limit {
			return false
		}
		if s.pos == s.end {
			if s.eof {
				return false
			}
			s.fill()
			continue
		}
		start := s.pos
		w := s.buf[start:s.windowEnd(start)]
		i := bytes.IndexByte(w, '\n')
		line := w
		if i >= 0 {
			line = w[:i]
		}
		var st status
		if s.quote == 0 || bytes.IndexByte(line, s.quote) < 0 {
			st = s.plain(start, i)
		} else {
			st = s.quoted(start)
		}
		switch st {
		case stNeedMore:
			s.fill()
			if s.err != nil {
				return false
			}
			continue
		case stTooLong:
			s.tooLong(start)
		case stUnterminated:
			s.resync(start, "unterminated quoted field (the record is cut at the end of its first line)")
		}
		if s.rec.raw == nil { // an empty line that is no record
			continue
		}
		return true
	}
}

// windowEnd is the end of the bytes a record starting at start may span:
// the record and its "\n".
func (s *scanner) windowEnd(start int) int {
	if s.end-start > s.maxRec+1 {
		return start + s.maxRec + 1
	}
	return s.end
}

// atEOF tells whether the input ends within the window of a record at start.
func (s *scanner) atEOF(start int) bool { return s.eof && s.end-start <= s.maxRec }

// undetermined is the status of a record whose end is not in the buffer.
func (s *scanner) undetermined(start int) status {
	if s.end-start > s.maxRec {
		return stTooLong
	}
	return stNeedMore
}

// begin starts s.rec for a record at start.
func (s *scanner) begin(start int) {
	s.rec = record{offset: s.base + int64(start), line: s.line, data: nil, fields: s.rec.fields[:0], raw: nil}
	s.scratch = s.scratch[:0]
}

// finish sets the record's raw bytes buf[start:end] (end before the "\n",
// a final "\r" dropped) and moves on to next.
func (s *scanner) finish(start, end, next int) {
	if next > end && s.line > 0 {
		s.line += int64(bytes.Count(s.buf[start:next], nl))
	}
	s.finishLines(start, end, next)
}

// finishLines is finish when the lines were counted.
func (s *scanner) finishLines(start, end, next int) {
	if end > start && s.buf[end-1] == '\r' {
		end--
	}
	s.rec.raw = s.buf[start:end]
	s.pos = next
}

var nl = []byte{'\n'}

// plain reads a record whose first line holds no quote: the line itself,
// whose "\n" is at start+i (i < 0: not in the buffer).
func (s *scanner) plain(start, i int) status {
	end, next := start+i, start+i+1
	if i < 0 {
		if !s.atEOF(start) {
			return s.undetermined(start)
		}
		end, next = s.end, s.end
	}
	s.begin(start)
	if i >= 0 && s.line > 0 {
		s.line++
	}
	line := s.buf[start:end]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	s.finishLines(start, end, next)
	if len(line) == 0 && s.width != 1 {
		s.rec.raw = nil // no record
		return stOK
	}
	s.rec.data = line
	if !s.noFields {
		f := 0
		for {
			j := bytes.IndexByte(line[f:], s.delim)
			if j < 0 {
				s.rec.fields = append(s.rec.fields, field{start: f, end: len(line)})
				break
			}
			s.rec.fields = append(s.rec.fields, field{start: f, end: f + j})
			f += j + 1
		}
	}
	return stOK
}

// quoted reads a record with quotes, field by field, into s.scratch.
func (s *scanner) quoted(start int) status {
	s.begin(start)
	wEnd := s.windowEnd(start)
	eof := s.atEOF(start)
	buf := s.buf
	i := start
	n := 0 // fields so far
	add := func(from int, quoted bool) {
		s.rec.fields = append(s.rec.fields, field{start: from, end: len(s.scratch), quoted: quoted})
		n++
	}
	for {
		// At the start of a field.
		if i >= wEnd {
			if !eof {
				return s.undetermined(start)
			}
			add(len(s.scratch), false)
			return s.done(start, i, i)
		}
		if buf[i] == s.quote {
			i++
			from := len(s.scratch)
			for {
				k := bytes.IndexByte(buf[i:wEnd], s.quote)
				if k < 0 {
					if !eof {
						return s.undetermined(start)
					}
					return stUnterminated
				}
				s.scratch = append(s.scratch, buf[i:i+k]...)
				i += k + 1
				if i >= wEnd {
					if !eof {
						return s.undetermined(start)
					}
					add(from, true)
					return s.done(start, i, i)
				}
				switch c := buf[i]; {
				case c == s.quote:
					s.scratch = append(s.scratch, c)
					i++
					continue
				case c == s.delim:
					add(from, true)
					i++
				case c == '\n':
					add(from, true)
					return s.done(start, i, i+1)
				case c == '\r' && i+1 < wEnd && buf[i+1] == '\n':
					add(from, true)
					return s.done(start, i, i+2)
				case c == '\r' && i+1 >= wEnd:
					if !eof {
						return s.undetermined(start)
					}
					add(from, true)
					return s.done(start, i, i+1)
				default:
					return s.bad(start, i, fmt.Sprintf("unexpected %s after the closing quote of field %d", quoteByte(c), n+1))
				}
				break
			}
			continue
		}
		// An unquoted field.
		j := i
		for j < wEnd {
			c := buf[j]
			if c == s.delim || c == '\n' || c == s.quote {
				break
			}
			j++
		}
		if j >= wEnd {
			if !eof {
				return s.undetermined(start)
			}
			e := j
			if e > i && buf[e-1] == '\r' {
				e--
			}
			from := len(s.scratch)
			s.scratch = append(s.scratch, buf[i:e]...)
			add(from, false)
			return s.done(start, j, j)
		}
		switch buf[j] {
		case s.quote:
			return s.bad(start, j, fmt.Sprintf("bare quote in unquoted field %d", n+1))
		case s.delim:
			from := len(s.scratch)
			s.scratch = append(s.scratch, buf[i:j]...)
			add(from, false)
			i = j + 1
		default: // '\n'
			e := j
			if e > i && buf[e-1] == '\r' {
				e--
			}
			from := len(s.scratch)
			s.scratch = append(s.scratch, buf[i:e]...)
			add(from, false)
			return s.done(start, j, j+1)
		}
	}
}

// done completes a good quoted record.
func (s *scanner) done(start, end, next int) status {
	s.rec.data = s.scratch
	s.finish(start, end, next)
	return stOK
}

// bad completes a bad record: from start to the first "\n" at or after p.
func (s *scanner) bad(start, p int, why string) status {
	wEnd := s.windowEnd(start)
	k := bytes.IndexByte(s.buf[p:wEnd], '\n')
	if k < 0 {
		if !s.atEOF(start) {
			return s.undetermined(start)
		}
		s.rec.bad = why
		s.finish(start, wEnd, wEnd)
		return stBad
	}
	s.rec.bad = why
	s.finish(start, p+k, p+k+1)
	return stBad
}

// resync makes the record at start bad and ends it at the first "\n" after
// its start, which is in the buffer (the input ended).
func (s *scanner) resync(start int, why string) {
	s.begin(start)
	s.rec.bad = why
	k := bytes.IndexByte(s.buf[start:s.end], '\n')
	if k < 0 {
		s.finish(start, s.end, s.end)
		return
	}
	s.finish(start, start+k, start+k+1)
}

// tooLong makes the record at start bad, keeping the first bytes of its
// first line (at most maxBadRaw, and at most MaxRecordBytes: the buffer
// holds more than that, so what is kept does not depend on reads), and
// skips to the first "\n" after its start, reading on if needed.
func (s *scanner) tooLong(start int) {
	why := fmt.Sprintf("record longer than max_record_bytes (%d) (an unterminated quoted field?); its first line is skipped", s.maxRec)
	s.begin(start)
	s.rec.bad = why
	line := s.buf[start:s.end]
	k := bytes.IndexByte(line, '\n')
	if k >= 0 {
		line = line[:k]
	}
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if keep := min(maxBadRaw, s.maxRec); len(line) > keep {
		line = line[:keep]
	}
	s.scratch = append(s.scratch[:0], line...)
	if k >= 0 {
		s.pos = start + k + 1
	} else {
		s.pos = s.end
		for {
			s.fill()
			if s.err != nil {
				break
			}
			if i := bytes.IndexByte(s.buf[s.pos:s.end], '\n'); i >= 0 {
				s.pos += i + 1
				break
			}
			s.pos = s.end
			if s.eof {
				break
			}
		}
	}
	if s.line > 0 {
		s.line++
	}
	s.rec.raw = s.scratch
	s.rec.data = nil
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", string(rune(c)))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}
