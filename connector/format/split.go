package format

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Splitting a text file into byte ranges.
//
// A range [start, end) holds the records whose first byte lies in it; its
// last record may run past end, and the next range begins after it. Where a
// record starts depends on the format:
//
//   - JSON Lines (and CSV under option split=lines): every "\n" ends a
//     record, since JSON strings cannot hold a raw line break. A range's
//     reader finds its first record with AlignStart, without looking at
//     anything before it.
//   - CSV: a quoted field may hold line breaks, and whether a given "\n" is
//     inside quotes cannot be told by looking near it (scanning backwards
//     or forwards from an arbitrary offset can be fooled either way). So
//     the file is parsed once from its first byte with the reader's own
//     rules (CSVBoundaries), and the cuts are moved to true record starts,
//     with their line numbers. The pass runs at plan time (1.3 GB/s on a
//     file in the page cache, BenchmarkCSVBoundaries, against 9 GB/s for
//     merely counting its newlines); it is what makes one big CSV file
//     usable by every thread whatever its quoting. Option split=lines
//     skips it for files known to hold no quoted line breaks.

// Boundary is a record start found by CSVBoundaries.
type Boundary struct {
	// Offset is the first record start at or after the cut; the input's
	// size when no record starts there.
	Offset int64
	// Line is the line number at Offset.
	Line int64
	// Records counts the records (good or bad) before Offset.
	Records int64
}

// CSVBoundaries parses a whole uncompressed CSV input from its first byte
// and returns, for each cut (byte offsets in ascending order), the first
// record start at or after it. A cut at 0 stays at 0, the input's start.
func CSVBoundaries(r io.Reader, o Options, cuts []int64) ([]Boundary, error) {
	for i := 1; i < len(cuts); i++ {
		if cuts[i] < cuts[i-1] {
			return nil, fmt.Errorf("%w: cuts out of order: %d after %d", ErrFormat, cuts[i], cuts[i-1])
		}
	}
	out := make([]Boundary, len(cuts))
	s := newScanner(r, 0, 1, o.Delimiter, o.Quote, o.MaxRecordBytes)
	s.noFields = true
	i := 0
	for i < len(cuts) && cuts[i] <= 0 {
		out[i] = Boundary{Offset: 0, Line: 1}
		i++
	}
	var records int64
	for i < len(cuts) && s.next() {
		start := s.rec.offset
		for i < len(cuts) && cuts[i] <= start {
			out[i] = Boundary{Offset: start, Line: s.rec.line, Records: records}
			i++
		}
		records++
	}
	if s.err != nil {
		return nil, fmt.Errorf("scan for record boundaries: %w", s.err)
	}
	if i < len(cuts) {
		for s.next() { // the rest, to find the end
			records++
		}
		if s.err != nil {
			return nil, fmt.Errorf("scan for record boundaries: %w", s.err)
		}
		for ; i < len(cuts); i++ {
			out[i] = Boundary{Offset: s.offset(), Line: s.line, Records: records}
		}
	}
	return out, nil
}

// CountRecords parses a whole CSV input and counts its records, good and bad.
func CountRecords(r io.Reader, o Options) (int64, error) {
	s := newScanner(r, 0, 1, o.Delimiter, o.Quote, o.MaxRecordBytes)
	s.noFields = true
	var n int64
	for s.next() {
		n++
	}
	if s.err != nil {
		return n, fmt.Errorf("count records: %w", s.err)
	}
	return n, nil
}

// AlignStart returns the first line start at or after off in ra: off itself
// when it is 0 or follows a "\n", else the byte after the next "\n"; the
// input's size when there is none.
func AlignStart(ra io.ReaderAt, off int64) (int64, error) {
	if off <= 0 {
		return 0, nil
	}
	buf := make([]byte, 64<<10)
	pos := off - 1
	for {
		n, err := ra.ReadAt(buf, pos)
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return pos + int64(i) + 1, nil
		}
		pos += int64(n)
		if errors.Is(err, io.EOF) {
			return pos, nil
		}
		if err != nil {
			return 0, fmt.Errorf("find a line start: %w", err)
		}
	}
}
