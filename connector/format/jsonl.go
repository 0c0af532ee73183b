package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/weirdata/weir/connector/spi"
)

// JSON Lines: one JSON object per line; lines holding only spaces are
// skipped. A row's fields are the object's keys of the same name (else of
// the same name ignoring case); a missing key or null is NULL, keys the
// schema does not name are ignored. A value of the wrong JSON type for its
// field makes the record bad, with two conveniences: a JSON string is read
// as the text of any type ("12", "2026-11-20"), and a number, bool, object
// or array read into a string field is its JSON text.
//
// Written: keys in schema order, NULL as null, int and decimal as JSON
// numbers (exact: readers here do not round them through float64), floats
// as numbers (NaN and infinities as the strings "NaN", "+Inf", "-Inf"),
// dates, timestamps (RFC 3339) and base64 bytes as strings. Invalid UTF-8 in
// a string is written as U+FFFD, the one change JSON forces on a value.

// jsonlReader decodes JSON Lines records.
type jsonlReader struct {
	sc     *scanner
	schema spi.Schema
	codec  *textCodec
	src    Source
	buf    batchBuf
	m      map[string]json.RawMessage
}

func newJSONLReader(r io.Reader, schema spi.Schema, o Options, src Source) *jsonlReader {
	sc := startScanner(r, o, src, 0, 0)
	sc.noFields = true
	return &jsonlReader{sc: sc, schema: schema, codec: newTextCodec(o), src: src, m: map[string]json.RawMessage{}}
}

// Read decodes the next records into b.
func (j *jsonlReader) Read(b *spi.Batch, n int) error {
	resetBatch(b)
	j.buf.arena = j.buf.arena[:0]
	for count := 0; count < n; {
		if !j.sc.next() {
			break
		}
		rec := &j.sc.rec
		if rec.bad == "" && isSpace(rec.raw) {
			continue
		}
		count++
		if rec.bad != "" {
			b.Bad = append(b.Bad, j.rowError(rec, rec.bad))
			continue
		}
		row := nextRow(b, len(j.schema))
		if why := j.decode(rec.raw, row); why != "" {
			b.Bad = append(b.Bad, j.rowError(rec, why))
			continue
		}
		b.Rows = append(b.Rows, row)
		j.buf.loc = location(j.buf.loc[:0], j.src.Name, rec.line, rec.offset)
		b.Locs = append(b.Locs, string(j.buf.loc))
		start := len(j.buf.arena)
		j.buf.arena = append(j.buf.arena, rec.raw...)
		b.Raw = append(b.Raw, j.buf.arena[start:len(j.buf.arena):len(j.buf.arena)])
	}
	if j.sc.err != nil {
		return fmt.Errorf("read %s: %w", j.src.Name, j.sc.err)
	}
	if len(b.Rows) == 0 && len(b.Bad) == 0 {
		return io.EOF
	}
	return nil
}

func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

func (j *jsonlReader) rowError(rec *record, why string) *spi.RowError {
	return &spi.RowError{Loc: string(location(nil, j.src.Name, rec.line, rec.offset)), Raw: slices.Clone(rec.raw), Reason: why}
}

// decode fills row from one JSON object, or says why it cannot.
func (j *jsonlReader) decode(line []byte, row spi.Row) string {
	if t := bytes.TrimLeft(line, " \t"); len(t) == 0 || t[0] != '{' {
		return "not a JSON object"
	}
	clear(j.m)
	if err := json.Unmarshal(line, &j.m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return "not a JSON object"
		}
		return "invalid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
	}
	for i := range j.schema {
		f := &j.schema[i]
		raw, ok := j.m[f.Name]
		if !ok {
			for k, v := range j.m {
				if strings.EqualFold(k, f.Name) {
					raw, ok = v, true
					break
				}
			}
		}
		if !ok || string(raw) == "null" {
			row[i] = nil
			continue
		}
		v, err := j.value(f.Type, raw)
		if err != nil {
			return fmt.Sprintf("field %q: %v", f.Name, err)
		}
		row[i] = v
	}
	return ""
}

// value converts one JSON value to a field's type.
func (j *jsonlReader) value(t spi.FieldType, raw json.RawMessage) (any, error) {
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		if t == spi.TypeString {
			return s, nil
		}
		if strings.TrimSpace(s) == "" && t != spi.TypeBytes {
			return nil, nil
		}
		return j.codec.parse(t, s)
	case 't', 'f':
		switch t {
		case spi.TypeBool:
			return raw[0] == 't', nil
		case spi.TypeString:
			return string(raw), nil
		}
	case '{', '[':
		if t == spi.TypeString {
			return string(raw), nil
		}
	default: // a number
		s := string(raw)
		switch t {
		case spi.TypeString:
			return s, nil
		case spi.TypeInt:
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s is not an int", quoteShort(s))
			}
			return n, nil
		case spi.TypeFloat:
			f, err := strconv.ParseFloat(s, 64)
			if err != nil && !(isRangeErr(err) && !math.IsInf(f, 0)) {
				return nil, fmt.Errorf("%s is out of the float range", quoteShort(s))
			}
			return f, nil
		case spi.TypeDecimal:
			return CanonicalDecimal(s)
		}
	}
	return nil, fmt.Errorf("a JSON %s is not a %s", jsonKind(raw), t)
}

func jsonKind(raw []byte) string {
	switch raw[0] {
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case '{':
		return "object"
	case '[':
		return "array"
	case 'n':
		return "null"
	}
	return "number"
}

// InferJSONL reads up to max records of a JSON Lines input and returns
// their schema: the keys in order of first appearance, each typed by its
// values: int when every number is an integer in the int64 range, float when
// some number is not, bool, timestamp when every string is an RFC 3339
// timestamp, string for strings, objects, arrays and mixed types; a key
// that is always null is a string. Every field is nullable. Bad records
// are passed over; an input without a good record is an error.
func InferJSONL(r io.Reader, o Options, name string, max int) (spi.Schema, error) {
	sc := newScanner(r, 0, 1, 0, 0, o.MaxRecordBytes)
	sc.noFields = true
	var names []string
	kinds := map[string]map[string]bool{}
	good := 0
	var firstBad string
	for n := 0; n < max && sc.next(); {
		rec := &sc.rec
		if rec.bad == "" && isSpace(rec.raw) {
			continue
		}
		n++
		obj, err := orderedObject(rec.raw)
		if rec.bad != "" || err != nil {
			if firstBad == "" {
				why := rec.bad
				if why == "" {
					why = err.Error()
				}
				firstBad = string(location(nil, name, rec.line, rec.offset)) + ": " + why
			}
			continue
		}
		good++
		for _, kv := range obj {
			k, ok := kinds[kv.key]
			if !ok {
				k = map[string]bool{}
				kinds[kv.key] = k
				names = append(names, kv.key)
			}
			k[inferKind(kv.raw)] = true
		}
	}
	if sc.err != nil {
		return nil, fmt.Errorf("read %s: %w", name, sc.err)
	}
	if good == 0 {
		if firstBad != "" {
			return nil, fmt.Errorf("%w: %s: no JSON object to infer a schema from; first bad record %s", ErrFormat, name, firstBad)
		}
		return nil, fmt.Errorf("%w: %s: no JSON object to infer a schema from (the input is empty); declare the schema", ErrFormat, name)
	}
	schema := make(spi.Schema, 0, len(names))
	for _, n := range names {
		k := kinds[n]
		delete(k, "null")
		t := spi.TypeString
		switch {
		case len(k) == 1 && k["int"]:
			t = spi.TypeInt
		case len(k) >= 1 && len(k) <= 2 && (k["float"] || k["int"]) && !k["string"] && !k["bool"] && !k["timestamp"] && !k["other"]:
			t = spi.TypeFloat
		case len(k) == 1 && k["bool"]:
			t = spi.TypeBool
		case len(k) == 1 && k["timestamp"]:
			t = spi.TypeTimestamp
		}
		schema = append(schema, spi.Field{Name: n, Type: t, Nullable: true})
	}
	return schema, nil
}

type keyValue struct {
	key string
	raw json.RawMessage
}

// orderedObject parses one JSON object keeping its keys' order.
func orderedObject(line []byte) ([]keyValue, error) {
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	tok, err := d.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var out []keyValue
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		if i := slices.IndexFunc(out, func(kv keyValue) bool { return kv.key == key }); i >= 0 {
			out[i].raw = raw // the last of duplicate keys wins, as in decoding
			continue
		}
		out = append(out, keyValue{key, raw})
	}
	if _, err := d.Token(); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: data after the object")
	}
	return out, nil
}

func inferKind(raw json.RawMessage) string {
	switch raw[0] {
	case 'n':
		return "null"
	case 't', 'f':
		return "bool"
	case '{', '[':
		return "other"
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if _, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return "timestamp"
			}
		}
		return "string"
	}
	if _, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return "int"
	}
	return "float"
}

// jsonlWriter encodes rows as JSON Lines.
type jsonlWriter struct {
	w      io.Writer
	schema spi.Schema
	codec  *textCodec
	keys   [][]byte // `"name":`
	buf    []byte
	tmp    []byte
	rows   int64
}

func newJSONLWriter(w io.Writer, schema spi.Schema, o Options) *jsonlWriter {
	j := &jsonlWriter{w: w, schema: schema, codec: newTextCodec(o), buf: make([]byte, 0, csvFlushBytes+4096)}
	for _, f := range schema {
		k := appendJSONString(nil, f.Name)
		j.keys = append(j.keys, append(k, ':'))
	}
	return j
}

// Write encodes rows.
func (j *jsonlWriter) Write(rows []spi.Row) error {
	for _, row := range rows {
		j.rows++
		if len(row) != len(j.schema) {
			return fmt.Errorf("%w: row %d has %d values, the schema %d fields", ErrFormat, j.rows, len(row), len(j.schema))
		}
		j.buf = append(j.buf, '{')
		for i := range j.schema {
			if i > 0 {
				j.buf = append(j.buf, ',')
			}
			j.buf = append(j.buf, j.keys[i]...)
			var err error
			if j.buf, err = j.value(j.buf, &j.schema[i], row[i]); err != nil {
				return fmt.Errorf("%w: row %d, field %q: %v", ErrFormat, j.rows, j.schema[i].Name, err)
			}
		}
		j.buf = append(j.buf, '}', '\n')
		if len(j.buf) >= csvFlushBytes {
			if err := j.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (j *jsonlWriter) value(dst []byte, f *spi.Field, v any) ([]byte, error) {
	if v == nil {
		return append(dst, "null"...), nil
	}
	switch f.Type {
	case spi.TypeInt, spi.TypeDecimal, spi.TypeBool:
		return j.codec.appendText(dst, f, v)
	case spi.TypeFloat:
		x, ok := v.(float64)
		if !ok {
			if y, ok32 := v.(float32); ok32 {
				x, ok = float64(y), true
			}
		}
		if ok && (math.IsNaN(x) || math.IsInf(x, 0)) {
			if math.IsNaN(x) {
				return append(dst, `"NaN"`...), nil
			}
			if x > 0 {
				return append(dst, `"+Inf"`...), nil
			}
			return append(dst, `"-Inf"`...), nil
		}
		return j.codec.appendText(dst, f, v)
	case spi.TypeString:
		switch x := v.(type) {
		case string:
			return appendJSONString(dst, x), nil
		case []byte:
			return appendJSONString(dst, string(x)), nil
		}
		return dst, wrongType(f, v)
	}
	// date, timestamp, bytes: their text as a JSON string
	var err error
	j.tmp, err = j.codec.appendText(j.tmp[:0], f, v)
	if err != nil {
		return dst, err
	}
	return appendJSONString(dst, string(j.tmp)), nil
}

func (j *jsonlWriter) flush() error {
	if len(j.buf) == 0 {
		return nil
	}
	_, err := j.w.Write(j.buf)
	j.buf = j.buf[:0]
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// Close writes out what is buffered.
func (j *jsonlWriter) Close() error { return j.flush() }

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
