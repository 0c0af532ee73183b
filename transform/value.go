package transform

import (
	"encoding/hex"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"sync/atomic"
	"time"
)

// Inside expressions, values have these Go types:
//
//	string    string
//	int       int64 (source values) or int (literals, arithmetic)
//	float     float64
//	decimal   decimal (exact)
//	bool      bool
//	date      date (a calendar day)
//	timestamp time.Time
//	bytes     []byte
//	duration  time.Duration (timestamp - timestamp, ts + duration)
//
// Apply converts source values in and results out (decimal <-> canonical
// string, date <-> time.Time at 00:00 UTC).

// date is a calendar day: 00:00 UTC of that day. It holds a pointer only,
// so that putting it in an interface does not allocate; the days of
// 1900-2199 are interned, so that making one does not allocate either.
type date struct{ p *time.Time }

func (d date) time() time.Time { return *d.p }

const (
	internFirstDay = -25567 // 1900-01-01, in days since 1970-01-01
	internDays     = 109574 // to 2199-12-31
)

var internedDates [internDays]atomic.Pointer[time.Time]

// makeDate is the date of t, which must be 00:00 UTC.
func makeDate(t time.Time) date {
	i := t.Unix()/86400 - internFirstDay
	if i >= 0 && i < internDays && t.Unix()%86400 == 0 {
		if p := internedDates[i].Load(); p != nil {
			return date{p}
		}
	}
	p := new(time.Time)
	*p = t
	if i >= 0 && i < internDays && t.Unix()%86400 == 0 {
		internedDates[i].CompareAndSwap(nil, p)
		return date{internedDates[i].Load()}
	}
	return date{p}
}

func dateOf(y int, m time.Month, d int) date {
	return makeDate(time.Date(y, m, d, 0, 0, 0, 0, time.UTC))
}

// dateIn is the calendar day of t in t's own location.
func dateIn(t time.Time) date {
	y, m, d := t.Date()
	return dateOf(y, m, d)
}

func (d date) String() string { return d.time().Format("2006-01-02") }

var (
	typString    = reflect.TypeOf("")
	typInt       = reflect.TypeOf(0)
	typInt64     = reflect.TypeOf(int64(0))
	typFloat     = reflect.TypeOf(float64(0))
	typDecimal   = reflect.TypeOf(decimal{})
	typBool      = reflect.TypeOf(false)
	typDate      = reflect.TypeOf(date{})
	typTimestamp = reflect.TypeOf(time.Time{})
	typBytes     = reflect.TypeOf([]byte(nil))
	typDuration  = reflect.TypeOf(time.Duration(0))
	typAny       = reflect.TypeOf((*any)(nil)).Elem()
	typLayout    = reflect.TypeOf((*layout)(nil))
	typLocation  = reflect.TypeOf((*time.Location)(nil))
	typRegexp    = reflect.TypeOf((*compiledRegexp)(nil))
)

// class is a set of expression value kinds, used by the type rules.
type class uint32

const (
	cString class = 1 << iota
	cInt
	cFloat
	cDecimal
	cBool
	cDate
	cTimestamp
	cBytes
	cDuration
	cArray
	cNull  // the nil literal
	cAny   // not known before run time
	cOther // anything else (maps, layouts...)

	cNumber = cInt | cFloat | cDecimal
	cTime   = cDate | cTimestamp
)

func classOf(t reflect.Type) class {
	if t == nil {
		return cNull
	}
	switch t {
	case typString:
		return cString
	case typFloat:
		return cFloat
	case typDecimal:
		return cDecimal
	case typBool:
		return cBool
	case typDate:
		return cDate
	case typTimestamp:
		return cTimestamp
	case typBytes:
		return cBytes
	case typDuration:
		return cDuration
	}
	switch t.Kind() {
	case reflect.Interface:
		return cAny
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return cInt
	case reflect.Float32:
		return cFloat
	case reflect.Slice, reflect.Array:
		return cArray
	}
	return cOther
}

// classType is the expression type of a class holding a single kind.
func classType(c class) reflect.Type {
	switch c {
	case cString:
		return typString
	case cInt:
		return typInt
	case cFloat:
		return typFloat
	case cDecimal:
		return typDecimal
	case cBool:
		return typBool
	case cDate:
		return typDate
	case cTimestamp:
		return typTimestamp
	case cBytes:
		return typBytes
	case cDuration:
		return typDuration
	}
	return typAny
}

// typeName names an expression type the way users know it.
func typeName(t reflect.Type) string {
	switch c := classOf(t); c {
	case cString:
		return "string"
	case cInt:
		return "int"
	case cFloat:
		return "float"
	case cDecimal:
		return "decimal"
	case cBool:
		return "bool"
	case cDate:
		return "date"
	case cTimestamp:
		return "timestamp"
	case cBytes:
		return "bytes"
	case cDuration:
		return "duration"
	case cArray:
		return "array"
	case cNull:
		return "null"
	case cAny:
		return "any"
	}
	switch t {
	case typLayout:
		return "layout"
	case typLocation:
		return "zone"
	case typRegexp:
		return "regexp"
	}
	if t.Kind() == reflect.Map {
		return "map"
	}
	return t.String()
}

// valueName names the type of a run-time value the way users know it.
func valueName(v any) string {
	if v == nil {
		return "null"
	}
	return typeName(reflect.TypeOf(v))
}

// fieldClass is the class of the expression values of a field type.
func fieldClass(t Type) class {
	switch t {
	case TypeString:
		return cString
	case TypeInt:
		return cInt
	case TypeFloat:
		return cFloat
	case TypeDecimal:
		return cDecimal
	case TypeBool:
		return cBool
	case TypeDate:
		return cDate
	case TypeTimestamp:
		return cTimestamp
	case TypeBytes:
		return cBytes
	}
	return 0
}

// fieldExprType is the Go type expressions see for a source field.
func fieldExprType(t Type) reflect.Type {
	if t == TypeInt {
		return typInt64
	}
	return classType(fieldClass(t))
}

// asInt returns v as an int64 when v is an integer.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint:
		if uint64(x) <= math.MaxInt64 {
			return int64(x), true
		}
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// asFloat returns v as a float64 when v is a float or an integer.
func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	}
	if i, ok := asInt(v); ok {
		return float64(i), true
	}
	return 0, false
}

// formatFloat writes a float without exponent for ordinary magnitudes, as
// JavaScript does: 1e-7 and 1e21 switch to exponent notation.
func formatFloat(f float64) string {
	a := math.Abs(f)
	if a == 0 || (a >= 1e-6 && a < 1e21) {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// toText is the canonical text of a value: what to_string, concat and an
// implicit conversion to a string field produce. NULL has no text (ok false).
func toText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return formatFloat(x), true
	case decimal:
		return x.String(), true
	case date:
		return x.String(), true
	case time.Time:
		return x.Format(time.RFC3339Nano), true
	case []byte:
		return hex.EncodeToString(x), true
	case time.Duration:
		return x.String(), true
	}
	if i, ok := asInt(v); ok {
		return strconv.FormatInt(i, 10), true
	}
	return fmt.Sprint(v), true
}
