package sqlite

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/connector/sqlrow"
)

// column is how a column is read and written.
type column struct {
	typ spi.FieldType
	// precision and scale of a decimal, from its declared type (0 when none).
	precision, scale int
	// textAffinity: the declared type gives TEXT affinity, so a decimal is
	// kept as text (NUMERIC affinity turns it into a number).
	textAffinity bool
	// untyped: no declared type; the field type was taken from a value.
	untyped bool
}

// declared classifies a declared column type (see the package comment).
func declared(decl string) column {
	u := strings.ToUpper(decl)
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(u, s) {
				return true
			}
		}
		return false
	}
	text := !has("INT") && has("CHAR", "CLOB", "TEXT")
	switch {
	case strings.TrimSpace(u) == "":
		return column{untyped: true}
	case has("BOOL"):
		return column{typ: spi.TypeBool}
	case has("DATETIME", "TIMESTAMP"):
		return column{typ: spi.TypeTimestamp, textAffinity: text}
	case has("DATE"):
		return column{typ: spi.TypeDate, textAffinity: text}
	case has("DEC", "NUMERIC", "NUMBER", "MONEY"):
		col := column{typ: spi.TypeDecimal, textAffinity: text}
		if m := precisionScale.FindStringSubmatch(u); m != nil {
			col.precision, _ = strconv.Atoi(m[1])
			col.scale, _ = strconv.Atoi(m[2])
		}
		return col
	case has("INT"):
		return column{typ: spi.TypeInt}
	case has("CHAR", "CLOB", "TEXT", "JSON", "UUID", "TIME"):
		return column{typ: spi.TypeString, textAffinity: text}
	case has("BLOB"):
		return column{typ: spi.TypeBytes}
	case has("REAL", "FLOA", "DOUB"):
		return column{typ: spi.TypeFloat}
	}
	return column{typ: spi.TypeString}
}

var precisionScale = regexp.MustCompile(`\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)`)

// valueType is the field type of an untyped column, from one of its values.
func valueType(v any) spi.FieldType {
	switch v.(type) {
	case int64:
		return spi.TypeInt
	case float64:
		return spi.TypeFloat
	case []byte:
		return spi.TypeBytes
	}
	return spi.TypeString
}

// Text forms of dates and timestamps.
const (
	dateLayout      = "2006-01-02"
	timestampLayout = "2006-01-02 15:04:05.999999999"
)

// timeLayouts are the forms read back: SQLite's time values with a space
// or a "T", with or without fraction, seconds and zone.
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseTime reads a time value stored as text; without a zone it is UTC.
func parseTime(s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO-8601 date or time", s)
}

// decode turns a scanned SQLite value into the value of field type ft.
func decode(ft spi.FieldType, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch ft {
	case spi.TypeInt:
		switch x := v.(type) {
		case int64:
			return x, nil
		case float64:
			if x == math.Trunc(x) && x >= -(1<<63) && x < 1<<63 {
				return int64(x), nil
			}
		case string:
			if i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
				return i, nil
			}
		}
	case spi.TypeFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
				return f, nil
			}
		}
	case spi.TypeDecimal:
		switch x := v.(type) {
		case int64:
			return strconv.FormatInt(x, 10), nil
		case float64:
			return sqlrow.DecimalFromFloat(x)
		case string:
			return sqlrow.Decimal(strings.TrimSpace(x))
		}
	case spi.TypeBool:
		switch x := v.(type) {
		case int64:
			if x == 0 || x == 1 {
				return x == 1, nil
			}
		case float64:
			if x == 0 || x == 1 {
				return x == 1, nil
			}
		case string:
			switch strings.ToLower(strings.TrimSpace(x)) {
			case "0", "false":
				return false, nil
			case "1", "true":
				return true, nil
			}
		}
	case spi.TypeString:
		switch x := v.(type) {
		case string:
			return x, nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64), nil
		case []byte:
			return string(x), nil
		case time.Time:
			return x.Format(timestampLayout), nil
		}
	case spi.TypeBytes:
		switch x := v.(type) {
		case []byte:
			if x == nil {
				return []byte{}, nil // the driver reads an empty blob as a nil slice
			}
			return x, nil
		case string:
			return []byte(x), nil
		}
	case spi.TypeDate:
		t, err := decodeTime(v)
		if err != nil {
			return nil, err
		}
		y, m, d := t.Date()
		if !t.Equal(time.Date(y, m, d, 0, 0, 0, 0, t.Location())) {
			return nil, fmt.Errorf("%v is not a date (it has a time of day)", v)
		}
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
	case spi.TypeTimestamp:
		return decodeTime(v)
	}
	return nil, fmt.Errorf("%s %s is not a %s", storageClass(v), shorten(v), ft)
}

func decodeTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time: // the driver parses columns declared DATE, DATETIME, TIMESTAMP
		return x, nil
	case string:
		return parseTime(strings.TrimSpace(x))
	case int64:
		return time.Unix(x, 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%s %s is not a time (REAL times are ambiguous)", storageClass(v), shorten(v))
}

func storageClass(v any) string {
	switch v.(type) {
	case int64:
		return "INTEGER"
	case float64:
		return "REAL"
	case []byte:
		return "BLOB"
	}
	return "TEXT"
}

func shorten(v any) string {
	s := fmt.Sprint(v)
	if b, ok := v.([]byte); ok {
		s = fmt.Sprintf("x'%x'", b)
	}
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}

// encoder returns the function binding values of field type ft into a
// column col (Check has verified that it can take them).
func encoder(col column, ft spi.FieldType) sqlrow.Encoder {
	return func(v any) (any, error) {
		switch x := v.(type) {
		case int64:
			if ft == spi.TypeInt {
				return x, nil
			}
		case bool:
			if ft == spi.TypeBool {
				if x {
					return int64(1), nil
				}
				return int64(0), nil
			}
		case float64:
			if ft == spi.TypeFloat {
				if math.IsNaN(x) {
					return nil, errors.New("SQLite cannot store NaN (it would store NULL)")
				}
				if col.typ == spi.TypeDecimal && col.textAffinity {
					// SQLite would turn the REAL into text of 15 digits.
					return sqlrow.DecimalFromFloat(x)
				}
				return x, nil
			}
		case string:
			switch ft {
			case spi.TypeString:
				if col.typ == spi.TypeBytes {
					return []byte(x), nil
				}
				return x, nil
			case spi.TypeDecimal:
				d, err := sqlrow.Decimal(x)
				if err != nil {
					return nil, err
				}
				if !col.textAffinity && !col.untyped {
					return numericDecimal(d)
				}
				return d, nil
			}
		case []byte:
			if ft == spi.TypeBytes {
				if x == nil {
					return []byte{}, nil
				}
				return x, nil
			}
		case time.Time:
			switch {
			case ft == spi.TypeDate && col.typ == spi.TypeDate:
				return x.UTC().Format(dateLayout), nil
			case ft == spi.TypeDate || ft == spi.TypeTimestamp:
				return x.UTC().Format(timestampLayout), nil
			}
		}
		return nil, fmt.Errorf("%T is not a value of a %s field", v, ft)
	}
}

// numericDecimal binds a canonical decimal for a column of NUMERIC
// affinity, refusing one SQLite would not keep exactly: an integer beyond
// 64 bits or a fraction beyond 15 significant digits.
func numericDecimal(d string) (any, error) {
	if i, err := strconv.ParseInt(d, 10, 64); err == nil {
		return i, nil
	}
	intPart, frac, _ := strings.Cut(strings.TrimPrefix(d, "-"), ".")
	digits := len(strings.TrimLeft(intPart+strings.TrimRight(frac, "0"), "0"))
	if digits > 15 {
		return nil, fmt.Errorf("decimal %s has %d significant digits; a column of NUMERIC affinity keeps 15 (declare it TEXT DECIMAL(p,s) for exact decimals)", d, digits)
	}
	return d, nil
}

// watermarkArg parses a watermark's text into the value compared with col.
func watermarkArg(col column, s string) (any, error) {
	switch col.typ {
	case spi.TypeInt:
		return strconv.ParseInt(s, 10, 64)
	case spi.TypeFloat:
		return strconv.ParseFloat(s, 64)
	case spi.TypeDecimal:
		if col.textAffinity {
			return nil, errors.New("a decimal kept as text compares as text, not as a number, so it cannot be a watermark")
		}
		return sqlrow.Decimal(s)
	case spi.TypeString, spi.TypeDate, spi.TypeTimestamp:
		return s, nil
	}
	return nil, fmt.Errorf("a %s column cannot be a watermark", col.typ)
}
