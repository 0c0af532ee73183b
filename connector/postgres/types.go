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

// appendValue appends v, a Row value of type t, as one field of a binary
// COPY tuple (length word and data) in stageType(t).
func appendValue(buf []byte, t spi.FieldType, v any) ([]byte, error) {
	if v == nil {
		return binary.BigEndian.AppendUint32(buf, math.MaxUint32), nil // -1: NULL
	}
	switch t {
	case spi.TypeString:
		switch x := v.(type) {
		case string:
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(x)))
			return append(buf, x...), nil
		case []byte:
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(x)))
			return append(buf, x...), nil
		}
	case spi.TypeInt:
		var n int64
		switch x := v.(type) {
		case int64:
			n = x
		case int:
			n = int64(x)
		case int32:
			n = int64(x)
		case int16:
			n = int64(x)
		case int8:
			n = int64(x)
		case uint32:
			n = int64(x)
		case uint16:
			n = int64(x)
		case uint8:
			n = int64(x)
		case uint64:
			if x > math.MaxInt64 {
				return nil, fmt.Errorf("%d is out of the int range", x)
			}
			n = int64(x)
		default:
			return nil, typeErr(t, v)
		}
		buf = binary.BigEndian.AppendUint32(buf, 8)
		return binary.BigEndian.AppendUint64(buf, uint64(n)), nil
	case spi.TypeFloat:
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case float32:
			f = float64(x)
		default:
			return nil, typeErr(t, v)
		}
		buf = binary.BigEndian.AppendUint32(buf, 8)
		return binary.BigEndian.AppendUint64(buf, math.Float64bits(f)), nil
	case spi.TypeDecimal:
		x, ok := v.(string)
		if !ok {
			return nil, typeErr(t, v)
		}
		at := len(buf)
		buf = append(buf, 0, 0, 0, 0)
		buf, err := appendNumeric(buf, x)
		if err != nil {
			return nil, err
		}
		binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
		return buf, nil
	case spi.TypeBool:
		x, ok := v.(bool)
		if !ok {
			return nil, typeErr(t, v)
		}
		buf = binary.BigEndian.AppendUint32(buf, 1)
		if x {
			return append(buf, 1), nil
		}
		return append(buf, 0), nil
	case spi.TypeDate:
		x, ok := v.(time.Time)
		if !ok {
			return nil, typeErr(t, v)
		}
		y, m, d := x.Date()
		days := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix()/86400 - pgEpochDays
		buf = binary.BigEndian.AppendUint32(buf, 4)
		return binary.BigEndian.AppendUint32(buf, uint32(int32(days))), nil
	case spi.TypeTimestamp:
		x, ok := v.(time.Time)
		if !ok {
			return nil, typeErr(t, v)
		}
		x = x.Round(time.Microsecond)
		us := (x.Unix()-pgEpochUnix)*1e6 + int64(x.Nanosecond()/1000)
		buf = binary.BigEndian.AppendUint32(buf, 8)
		return binary.BigEndian.AppendUint64(buf, uint64(us)), nil
	case spi.TypeBytes:
		switch x := v.(type) {
		case []byte:
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(x)))
			return append(buf, x...), nil
		case string:
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(x)))
			return append(buf, x...), nil
		}
	}
	return nil, typeErr(t, v)
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
