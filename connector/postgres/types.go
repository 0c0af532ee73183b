package postgres

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/weirdata/weir/connector/spi"
)

// fieldType maps a PostgreSQL type (the base type, as a row description
// reports it) to a field type, and tells whether rows carry it in a binary
// form this package decodes; every other type is read as its text output.
func fieldType(oid uint32) (t spi.FieldType, native bool) {
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID:
		return spi.TypeInt, true
	case pgtype.Float4OID, pgtype.Float8OID:
		return spi.TypeFloat, true
	case pgtype.NumericOID:
		return spi.TypeDecimal, true
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.QCharOID,
		pgtype.UUIDOID, pgtype.JSONOID, pgtype.JSONBOID:
		return spi.TypeString, true
	case pgtype.BoolOID:
		return spi.TypeBool, true
	case pgtype.DateOID:
		return spi.TypeDate, true
	case pgtype.TimestampOID, pgtype.TimestamptzOID:
		return spi.TypeTimestamp, true
	case pgtype.ByteaOID:
		return spi.TypeBytes, true
	}
	return spi.TypeString, false
}

// decoder turns one binary value (never NULL) into a Row value, taking the
// bytes of strings from a.
type decoder func(a *arena, b []byte) (any, error)

// arena hands out strings and byte slices carved from shared chunks, so that
// the strings of a batch cost one allocation per chunk instead of one each.
// Bytes handed out are never written again: a chunk is only appended to,
// and a new one replaces it when full.
type arena struct{ buf []byte }

const (
	arenaChunk = 64 << 10
	arenaMax   = arenaChunk / 8 // larger values get their own allocation
)

func (a *arena) take(b []byte) []byte {
	if len(b) > arenaMax {
		return append([]byte(nil), b...)
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, arenaChunk)
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[start:len(a.buf):len(a.buf)]
}

func (a *arena) string(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > arenaMax {
		return string(b)
	}
	out := a.take(b)
	return unsafe.String(&out[0], len(out))
}

// decoderFor returns the decoder of a type fieldType calls native; text
// output (of types read through ::text) decodes as a string.
func decoderFor(oid uint32) decoder {
	switch oid {
	case pgtype.Int2OID:
		return decodeInt2
	case pgtype.Int4OID:
		return decodeInt4
	case pgtype.Int8OID:
		return decodeInt8
	case pgtype.OIDOID:
		return decodeOID
	case pgtype.Float4OID:
		return decodeFloat4
	case pgtype.Float8OID:
		return decodeFloat8
	case pgtype.NumericOID:
		return decodeNumericValue
	case pgtype.UUIDOID:
		return decodeUUID
	case pgtype.JSONBOID:
		return decodeJSONB
	case pgtype.BoolOID:
		return decodeBool
	case pgtype.DateOID:
		return decodeDate
	case pgtype.TimestampOID, pgtype.TimestamptzOID:
		return decodeTimestamp
	case pgtype.ByteaOID:
		return decodeBytea
	}
	return decodeText
}

var errSize = errors.New("value of unexpected size")

func decodeText(a *arena, b []byte) (any, error) { return a.string(b), nil }

func decodeInt2(_ *arena, b []byte) (any, error) {
	if len(b) != 2 {
		return nil, errSize
	}
	return int64(int16(binary.BigEndian.Uint16(b))), nil
}

func decodeInt4(_ *arena, b []byte) (any, error) {
	if len(b) != 4 {
		return nil, errSize
	}
	return int64(int32(binary.BigEndian.Uint32(b))), nil
}

func decodeInt8(_ *arena, b []byte) (any, error) {
	if len(b) != 8 {
		return nil, errSize
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

func decodeOID(_ *arena, b []byte) (any, error) {
	if len(b) != 4 {
		return nil, errSize
	}
	return int64(binary.BigEndian.Uint32(b)), nil
}

func decodeFloat4(_ *arena, b []byte) (any, error) {
	if len(b) != 4 {
		return nil, errSize
	}
	return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
}

func decodeFloat8(_ *arena, b []byte) (any, error) {
	if len(b) != 8 {
		return nil, errSize
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
}

func decodeBool(_ *arena, b []byte) (any, error) {
	if len(b) != 1 {
		return nil, errSize
	}
	return b[0] != 0, nil
}

func decodeBytea(a *arena, b []byte) (any, error) {
	if len(b) == 0 {
		return []byte{}, nil
	}
	return a.take(b), nil
}

func decodeUUID(a *arena, b []byte) (any, error) {
	if len(b) != 16 {
		return nil, errSize
	}
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:16])
	return a.string(s[:]), nil
}

func decodeJSONB(a *arena, b []byte) (any, error) {
	if len(b) == 0 || b[0] != 1 {
		return nil, errors.New("unknown jsonb format version")
	}
	return a.string(b[1:]), nil
}

// PostgreSQL counts dates and timestamps from 2000-01-01.
const (
	pgEpochUnix = 946684800 // seconds from 1970-01-01 to 2000-01-01
	pgEpochDays = 10957     // days from 1970-01-01 to 2000-01-01
)

func decodeDate(_ *arena, b []byte) (any, error) {
	if len(b) != 4 {
		return nil, errSize
	}
	d := int32(binary.BigEndian.Uint32(b))
	if d == math.MaxInt32 || d == math.MinInt32 {
		return nil, errors.New("infinite date has no calendar value")
	}
	return time.Unix((int64(d)+pgEpochDays)*86400, 0).UTC(), nil
}

func decodeTimestamp(_ *arena, b []byte) (any, error) {
	if len(b) != 8 {
		return nil, errSize
	}
	us := int64(binary.BigEndian.Uint64(b))
	if us == math.MaxInt64 || us == math.MinInt64 {
		return nil, errors.New("infinite timestamp has no calendar value")
	}
	sec, rem := us/1e6, us%1e6
	if rem < 0 {
		sec--
		rem += 1e6
	}
	return time.Unix(sec+pgEpochUnix, rem*1000).UTC(), nil
}

func decodeNumericValue(a *arena, b []byte) (any, error) {
	s, err := decodeNumeric(a, b)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// decodeNumeric turns a binary numeric into its canonical text: no
// exponent, exactly dscale fraction digits, as PostgreSQL prints it.
func decodeNumeric(a *arena, b []byte) (string, error) {
	if len(b) < 8 {
		return "", errSize
	}
	ndigits := int(int16(binary.BigEndian.Uint16(b[0:])))
	weight := int(int16(binary.BigEndian.Uint16(b[2:])))
	sign := binary.BigEndian.Uint16(b[4:])
	dscale := int(int16(binary.BigEndian.Uint16(b[6:])))
	if ndigits < 0 || dscale < 0 || len(b) != 8+2*ndigits {
		return "", errSize
	}
	switch sign {
	case 0x0000, 0x4000:
	case 0xC000:
		return "", errors.New("numeric NaN has no decimal value")
	case 0xD000, 0xF000:
		return "", errors.New("numeric infinity has no decimal value")
	default:
		return "", errors.New("numeric of unknown sign")
	}
	digit := func(i int) int {
		if i < 0 || i >= ndigits {
			return 0
		}
		return int(binary.BigEndian.Uint16(b[8+2*i:]))
	}
	var stack [64]byte
	out := stack[:0]
	nonzero := false
	if sign == 0x4000 {
		out = append(out, '-')
	}
	if weight < 0 {
		out = append(out, '0')
	} else {
		for i := 0; i <= weight; i++ {
			d := digit(i)
			nonzero = nonzero || d != 0
			if i == 0 {
				out = strconv.AppendInt(out, int64(d), 10)
				continue
			}
			out = append(out, byte('0'+d/1000), byte('0'+d/100%10), byte('0'+d/10%10), byte('0'+d%10))
		}
	}
	if dscale > 0 {
		out = append(out, '.')
		for i, n := weight+1, 0; n < dscale; i++ {
			d := digit(i)
			nonzero = nonzero || d != 0
			for _, c := range [4]byte{byte('0' + d/1000), byte('0' + d/100%10), byte('0' + d/10%10), byte('0' + d%10)} {
				if n < dscale {
					out = append(out, c)
					n++
				}
			}
		}
	}
	if sign == 0x4000 && !nonzero {
		out = out[1:] // no negative zero
	}
	if a == nil {
		return string(out), nil
	}
	return a.string(out), nil
}

// appendNumeric appends the binary numeric of a decimal string ("-12.340",
// "+5", ".5"; an exponent is accepted too) without its length word.
func appendNumeric(buf []byte, s string) ([]byte, error) {
	neg := false
	t := s
	if t != "" && (t[0] == '-' || t[0] == '+') {
		neg = t[0] == '-'
		t = t[1:]
	}
	exp := 0
	if i := strings.IndexAny(t, "eE"); i >= 0 {
		e, err := strconv.Atoi(t[i+1:])
		if err != nil || e > 100000 || e < -100000 {
			return nil, fmt.Errorf("%q is not a decimal", s)
		}
		exp = e
		t = t[:i]
	}
	intPart, frac, _ := strings.Cut(t, ".")
	if intPart == "" && frac == "" || !allDigits(intPart) || !allDigits(frac) {
		return nil, fmt.Errorf("%q is not a decimal", s)
	}
	// Move the point by the exponent.
	digits := intPart + frac
	point := len(intPart) + exp // digits before the point
	dscale := len(frac) - exp
	if dscale < 0 {
		dscale = 0
	}
	if point < 0 {
		digits = strings.Repeat("0", -point) + digits
		point = 0
	}
	if point > len(digits) {
		digits += strings.Repeat("0", point-len(digits))
	}
	if dscale > 0x3FFF {
		return nil, fmt.Errorf("%q has too many fraction digits", s)
	}
	// Pad to whole base-10000 groups on both sides of the point.
	lead := (4 - point%4) % 4
	digits = strings.Repeat("0", lead) + digits
	point += lead
	if r := (len(digits) - point) % 4; r != 0 {
		digits += strings.Repeat("0", 4-r)
	}
	groups := make([]int16, 0, len(digits)/4)
	for i := 0; i < len(digits); i += 4 {
		g := int16((digits[i]-'0'))*1000 + int16(digits[i+1]-'0')*100 + int16(digits[i+2]-'0')*10 + int16(digits[i+3]-'0')
		groups = append(groups, g)
	}
	weight := point/4 - 1
	for len(groups) > 0 && groups[0] == 0 {
		groups = groups[1:]
		weight--
	}
	for len(groups) > 0 && groups[len(groups)-1] == 0 {
		groups = groups[:len(groups)-1]
	}
	sign := uint16(0)
	if len(groups) == 0 {
		weight = 0
	} else if neg {
		sign = 0x4000
	}
	if len(groups) > math.MaxInt16 || weight > math.MaxInt16 || weight < math.MinInt16 {
		return nil, fmt.Errorf("%q is out of the numeric range", s)
	}
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(groups)))
	buf = binary.BigEndian.AppendUint16(buf, uint16(int16(weight)))
	buf = binary.BigEndian.AppendUint16(buf, sign)
	buf = binary.BigEndian.AppendUint16(buf, uint16(dscale))
	for _, g := range groups {
		buf = binary.BigEndian.AppendUint16(buf, uint16(g))
	}
	return buf, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// stageType is the staging column type that holds a field's values in
// binary COPY: the field type's natural PostgreSQL type.
func stageType(t spi.FieldType) string {
	switch t {
	case spi.TypeInt:
		return "bigint"
	case spi.TypeFloat:
		return "double precision"
	case spi.TypeDecimal:
		return "numeric"
	case spi.TypeBool:
		return "boolean"
	case spi.TypeDate:
		return "date"
	case spi.TypeTimestamp:
		return "timestamp with time zone"
	case spi.TypeBytes:
		return "bytea"
	}
	return "text"
}

// stageOID is the OID of stageType(t).
func stageOID(t spi.FieldType) uint32 {
	switch t {
	case spi.TypeInt:
		return pgtype.Int8OID
	case spi.TypeFloat:
		return pgtype.Float8OID
	case spi.TypeDecimal:
		return pgtype.NumericOID
	case spi.TypeBool:
		return pgtype.BoolOID
	case spi.TypeDate:
		return pgtype.DateOID
	case spi.TypeTimestamp:
		return pgtype.TimestamptzOID
	case spi.TypeBytes:
		return pgtype.ByteaOID
	}
	return pgtype.TextOID
}

// encoder appends one non-NULL Row value as a field of a binary COPY tuple:
// its length word and its data in one PostgreSQL type's binary format.
type encoder func(buf []byte, v any) ([]byte, error)

// encoderFor returns the encoder of values of field type f into columns of
// type oid (a base type), nil when this package has no binary path between
// them (the load then stages the values in f's natural type and casts).
// Range and length checks of the column (int4, varchar(n), numeric(p,s))
// are the server's, when it receives the value.
func encoderFor(f spi.FieldType, oid uint32) encoder {
	switch f {
	case spi.TypeInt:
		switch oid {
		case pgtype.Int8OID:
			return func(buf []byte, v any) ([]byte, error) {
				n, err := asInt(v)
				return appendWord64(buf, uint64(n)), err
			}
		case pgtype.Int4OID:
			return func(buf []byte, v any) ([]byte, error) {
				n, err := asInt(v)
				if err == nil && (n < math.MinInt32 || n > math.MaxInt32) {
					err = fmt.Errorf("%d is out of range for integer", n)
				}
				return appendWord32(buf, uint32(int32(n))), err
			}
		case pgtype.Int2OID:
			return func(buf []byte, v any) ([]byte, error) {
				n, err := asInt(v)
				if err == nil && (n < math.MinInt16 || n > math.MaxInt16) {
					err = fmt.Errorf("%d is out of range for smallint", n)
				}
				buf = binary.BigEndian.AppendUint32(buf, 2)
				return binary.BigEndian.AppendUint16(buf, uint16(int16(n))), err
			}
		case pgtype.Float8OID:
			return func(buf []byte, v any) ([]byte, error) {
				n, err := asInt(v)
				return appendWord64(buf, math.Float64bits(float64(n))), err
			}
		case pgtype.NumericOID:
			return func(buf []byte, v any) ([]byte, error) {
				n, err := asInt(v)
				if err != nil {
					return nil, err
				}
				var d [24]byte
				return appendNumericField(buf, string(strconv.AppendInt(d[:0], n, 10)))
			}
		}
	case spi.TypeFloat:
		switch oid {
		case pgtype.Float8OID:
			return func(buf []byte, v any) ([]byte, error) {
				f, err := asFloat(v)
				return appendWord64(buf, math.Float64bits(f)), err
			}
		case pgtype.Float4OID:
			return func(buf []byte, v any) ([]byte, error) {
				f, err := asFloat(v)
				return appendFloat4(buf, f, err)
			}
		}
	case spi.TypeDecimal:
		switch oid {
		case pgtype.NumericOID:
			return func(buf []byte, v any) ([]byte, error) {
				s, ok := v.(string)
				if !ok {
					return nil, typeErr(spi.TypeDecimal, v)
				}
				return appendNumericField(buf, s)
			}
		case pgtype.Float8OID:
			return func(buf []byte, v any) ([]byte, error) {
				f, err := decimalFloat(v)
				return appendWord64(buf, math.Float64bits(f)), err
			}
		case pgtype.Float4OID:
			return func(buf []byte, v any) ([]byte, error) {
				f, err := decimalFloat(v)
				return appendFloat4(buf, f, err)
			}
		}
	case spi.TypeString:
		switch oid {
		case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.JSONOID:
			return appendText
		case pgtype.JSONBOID:
			return func(buf []byte, v any) ([]byte, error) {
				s, ok := v.(string)
				if !ok {
					return nil, typeErr(spi.TypeString, v)
				}
				buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)+1))
				return append(append(buf, 1), s...), nil // jsonb format version 1
			}
		case pgtype.UUIDOID:
			return appendUUID
		}
	case spi.TypeBool:
		if oid == pgtype.BoolOID {
			return func(buf []byte, v any) ([]byte, error) {
				b, ok := v.(bool)
				if !ok {
					return nil, typeErr(spi.TypeBool, v)
				}
				buf = binary.BigEndian.AppendUint32(buf, 1)
				if b {
					return append(buf, 1), nil
				}
				return append(buf, 0), nil
			}
		}
	case spi.TypeDate:
		switch oid {
		case pgtype.DateOID:
			return func(buf []byte, v any) ([]byte, error) {
				days, err := dateDays(v)
				return appendWord32(buf, uint32(int32(days))), err
			}
		case pgtype.TimestampOID, pgtype.TimestamptzOID:
			return func(buf []byte, v any) ([]byte, error) {
				days, err := dateDays(v)
				return appendWord64(buf, uint64(days*86400_000_000)), err
			}
		}
	case spi.TypeTimestamp:
		// timestamp without time zone takes the instant's UTC wall time.
		if oid == pgtype.TimestampOID || oid == pgtype.TimestamptzOID {
			return func(buf []byte, v any) ([]byte, error) {
				t, ok := v.(time.Time)
				if !ok {
					return nil, typeErr(spi.TypeTimestamp, v)
				}
				t = t.Round(time.Microsecond)
				return appendWord64(buf, uint64((t.Unix()-pgEpochUnix)*1e6+int64(t.Nanosecond()/1000))), nil
			}
		}
	case spi.TypeBytes:
		if oid == pgtype.ByteaOID {
			return appendText
		}
	}
	return nil
}

func appendWord32(buf []byte, w uint32) []byte {
	buf = binary.BigEndian.AppendUint32(buf, 4)
	return binary.BigEndian.AppendUint32(buf, w)
}

func appendWord64(buf []byte, w uint64) []byte {
	buf = binary.BigEndian.AppendUint32(buf, 8)
	return binary.BigEndian.AppendUint64(buf, w)
}

func appendFloat4(buf []byte, f float64, err error) ([]byte, error) {
	if err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) && math.Abs(f) > math.MaxFloat32 {
		err = fmt.Errorf("%g is out of range for real", f)
	}
	return appendWord32(buf, math.Float32bits(float32(f))), err
}

// appendText appends a string or []byte as is: text, varchar, bpchar, name,
// json and bytea share this binary form.
func appendText(buf []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(x)))
		return append(buf, x...), nil
	case []byte:
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(x)))
		return append(buf, x...), nil
	}
	return nil, fmt.Errorf("value of Go type %T is not a string or bytes", v)
}

// appendUUID appends a UUID given as text: 32 hex digits, with or without
// hyphens and braces.
func appendUUID(buf []byte, v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		return nil, typeErr(spi.TypeString, v)
	}
	var digits [32]byte
	n := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '-' || (c == '{' && i == 0) || (c == '}' && i == len(s)-1):
		case n < 32:
			digits[n] = c
			n++
		default:
			n = 33
		}
	}
	var u [16]byte
	if _, err := hex.Decode(u[:], digits[:]); n != 32 || err != nil {
		return nil, fmt.Errorf("%q is not a uuid", s)
	}
	buf = binary.BigEndian.AppendUint32(buf, 16)
	return append(buf, u[:]...), nil
}

func appendNumericField(buf []byte, s string) ([]byte, error) {
	at := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	buf, err := appendNumeric(buf, s)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	return buf, nil
}

// asInt returns an int field's value; Go's other integer types are taken too.
func asInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, fmt.Errorf("%d is out of the int range", x)
		}
		return int64(x), nil
	}
	return 0, typeErr(spi.TypeInt, v)
}

func asFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	}
	return 0, typeErr(spi.TypeFloat, v)
}

func decimalFloat(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, typeErr(spi.TypeDecimal, v)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a decimal", s)
	}
	return f, nil
}

// dateDays returns a date's days from 2000-01-01.
func dateDays(v any) (int64, error) {
	t, ok := v.(time.Time)
	if !ok {
		return 0, typeErr(spi.TypeDate, v)
	}
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix()/86400 - pgEpochDays, nil
}

func typeErr(t spi.FieldType, v any) error {
	return fmt.Errorf("value of Go type %T is not a %s", v, t)
}

// compatible reports whether a column read as field type col can take
// values of field type f.
func compatible(f, col spi.FieldType) bool {
	switch f {
	case spi.TypeInt:
		return col == spi.TypeInt || col == spi.TypeDecimal || col == spi.TypeFloat
	case spi.TypeFloat, spi.TypeDecimal:
		return col == spi.TypeDecimal || col == spi.TypeFloat
	case spi.TypeDate:
		return col == spi.TypeDate || col == spi.TypeTimestamp
	}
	return f == col
}
