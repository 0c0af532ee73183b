package format

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/weirdata/weir/connector/spi"
)

// textCodec converts values to and from their text in CSV fields and JSON
// strings. It caches fixed zones, so it is used by one goroutine.
type textCodec struct {
	dateLayout string
	tsLayout   string // "" = flexible ISO 8601 / RFC 3339
	tsHasZone  bool   // tsLayout carries an offset or a zone name
	loc        *time.Location
	zones      map[int]*time.Location
}

func newTextCodec(o Options) *textCodec {
	loc := o.Location
	if loc == nil {
		loc = time.UTC
	}
	dl := o.DateLayout
	if dl == "" {
		dl = DateLayoutDefault
	}
	return &textCodec{
		dateLayout: dl,
		tsLayout:   o.TimestampLayout,
		tsHasZone:  layoutHasZone(o.TimestampLayout),
		loc:        loc,
		zones:      map[int]*time.Location{},
	}
}

// layoutHasZone reports whether a Go layout writes an offset or a zone.
func layoutHasZone(l string) bool {
	return strings.Contains(l, "Z07") || strings.Contains(l, "-07") || strings.Contains(l, "MST")
}

// parse converts the text s of a field of type t into its Go value. The
// error is a reason, without location.
func (c *textCodec) parse(t spi.FieldType, s string) (any, error) {
	if t == spi.TypeString {
		return s, nil
	}
	if t == spi.TypeBytes {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%s is not base64 bytes", quoteShort(s))
		}
		return b, nil
	}
	v := strings.TrimSpace(s)
	switch t {
	case spi.TypeInt:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return nil, fmt.Errorf("%s is out of the int range", quoteShort(s))
			}
			return nil, fmt.Errorf("%s is not an int", quoteShort(s))
		}
		return n, nil
	case spi.TypeFloat:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil && !(isRangeErr(err) && !math.IsInf(f, 0)) { // underflow to 0 is fine
			return nil, fmt.Errorf("%s is not a float", quoteShort(s))
		}
		return f, nil
	case spi.TypeDecimal:
		d, err := CanonicalDecimal(v)
		if err != nil {
			return nil, fmt.Errorf("%s is not a decimal", quoteShort(s))
		}
		return d, nil
	case spi.TypeBool:
		b, ok := parseBool(v)
		if !ok {
			return nil, fmt.Errorf("%s is not a bool", quoteShort(s))
		}
		return b, nil
	case spi.TypeDate:
		tm, err := time.Parse(c.dateLayout, v)
		if err != nil {
			return nil, fmt.Errorf("%s is not a date in layout %s", quoteShort(s), c.dateLayout)
		}
		y, m, d := tm.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
	case spi.TypeTimestamp:
		if c.tsLayout == "" {
			tm, ok := c.parseISO(v)
			if !ok {
				return nil, fmt.Errorf("%s is not an ISO 8601 timestamp", quoteShort(s))
			}
			return tm, nil
		}
		tm, err := time.ParseInLocation(c.tsLayout, v, c.loc)
		if err != nil {
			return nil, fmt.Errorf("%s is not a timestamp in layout %s", quoteShort(s), c.tsLayout)
		}
		return tm, nil
	}
	return nil, fmt.Errorf("unknown type %q", t)
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// parseBool reads the spellings of a boolean.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "t", "1", "yes", "y":
		return true, true
	case "false", "f", "0", "no", "n":
		return false, true
	}
	return false, false
}

// quoteShort quotes s for an error message, cut to 64 bytes.
func quoteShort(s string) string {
	if len(s) > 64 {
		cut := 64
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}

// parseISO reads YYYY-MM-DD, then optionally [T or space]hh:mm[:ss[.f]]
// and an offset (Z, ±hh, ±hhmm, ±hh:mm). Without an offset the time is in
// the codec's zone.
func (c *textCodec) parseISO(s string) (time.Time, bool) {
	num := func(i, n int) (int, bool) {
		if i+n > len(s) {
			return 0, false
		}
		v := 0
		for _, ch := range []byte(s[i : i+n]) {
			if ch < '0' || ch > '9' {
				return 0, false
			}
			v = v*10 + int(ch-'0')
		}
		return v, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 2)
	d, ok3 := num(8, 2)
	if !ok1 || !ok2 || !ok3 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	var h, mi, sec, nsec int
	i := 10
	if i < len(s) && (s[i] == 'T' || s[i] == 't' || s[i] == ' ') {
		var ok4, ok5 bool
		h, ok4 = num(i+1, 2)
		mi, ok5 = num(i+4, 2)
		if !ok4 || !ok5 || s[i+3] != ':' {
			return time.Time{}, false
		}
		i += 6
		if i < len(s) && s[i] == ':' {
			var ok bool
			if sec, ok = num(i+1, 2); !ok {
				return time.Time{}, false
			}
			i += 3
			if i < len(s) && (s[i] == '.' || s[i] == ',') {
				j := i + 1
				scale := 100000000
				for j < len(s) && s[j] >= '0' && s[j] <= '9' {
					if scale > 0 {
						nsec += int(s[j]-'0') * scale
						scale /= 10
					}
					j++
				}
				if j == i+1 {
					return time.Time{}, false
				}
				i = j
			}
		}
	}
	loc := c.loc
	if i < len(s) {
		switch s[i] {
		case 'Z', 'z':
			loc = time.UTC
			i++
		case '+', '-':
			sign := 1
			if s[i] == '-' {
				sign = -1
			}
			oh, ok := num(i+1, 2)
			if !ok || oh > 23 {
				return time.Time{}, false
			}
			i += 3
			om := 0
			if i < len(s) {
				if s[i] == ':' {
					i++
				}
				if om, ok = num(i, 2); !ok || om > 59 {
					return time.Time{}, false
				}
				i += 2
			}
			loc = c.zone(sign * (oh*3600 + om*60))
		default:
			return time.Time{}, false
		}
	}
	if i != len(s) || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, nsec, loc)
	if t.Day() != d {
		return time.Time{}, false // February 30th
	}
	return t, true
}

// zone returns a cached fixed zone of offset seconds east of UTC.
func (c *textCodec) zone(off int) *time.Location {
	if off == 0 {
		return time.UTC
	}
	if l, ok := c.zones[off]; ok {
		return l
	}
	l := time.FixedZone("", off)
	if len(c.zones) < 256 {
		c.zones[off] = l
	}
	return l
}

// appendText appends the text of v, a value of field f, to dst. NULL (nil)
// is the caller's business.
func (c *textCodec) appendText(dst []byte, f *spi.Field, v any) ([]byte, error) {
	switch f.Type {
	case spi.TypeString:
		switch x := v.(type) {
		case string:
			return append(dst, x...), nil
		case []byte:
			return append(dst, x...), nil
		}
	case spi.TypeInt:
		if n, ok := asInt(v); ok {
			return strconv.AppendInt(dst, n, 10), nil
		}
	case spi.TypeFloat:
		switch x := v.(type) {
		case float64:
			return appendFloat(dst, x), nil
		case float32:
			return appendFloat(dst, float64(x)), nil
		}
		if n, ok := asInt(v); ok {
			return strconv.AppendInt(dst, n, 10), nil
		}
	case spi.TypeDecimal:
		switch x := v.(type) {
		case string:
			if isCanonicalDecimal(x) {
				return append(dst, x...), nil
			}
			d, err := CanonicalDecimal(x)
			if err != nil {
				return dst, fmt.Errorf("%s is not a decimal", quoteShort(x))
			}
			return append(dst, d...), nil
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return dst, fmt.Errorf("%v is not a decimal", x)
			}
			return strconv.AppendFloat(dst, x, 'f', -1, 64), nil
		}
		if n, ok := asInt(v); ok {
			return strconv.AppendInt(dst, n, 10), nil
		}
	case spi.TypeBool:
		if b, ok := v.(bool); ok {
			return strconv.AppendBool(dst, b), nil
		}
	case spi.TypeDate:
		if t, ok := v.(time.Time); ok {
			return t.AppendFormat(dst, c.dateLayout), nil
		}
	case spi.TypeTimestamp:
		if t, ok := v.(time.Time); ok {
			switch {
			case c.tsLayout == "":
				return t.AppendFormat(dst, TimestampLayoutWrite), nil
			case c.tsHasZone:
				return t.AppendFormat(dst, c.tsLayout), nil
			default:
				return t.In(c.loc).AppendFormat(dst, c.tsLayout), nil
			}
		}
	case spi.TypeBytes:
		switch x := v.(type) {
		case []byte:
			return base64.StdEncoding.AppendEncode(dst, x), nil
		case string:
			return base64.StdEncoding.AppendEncode(dst, []byte(x)), nil
		}
	default:
		return dst, fmt.Errorf("unknown type %q", f.Type)
	}
	return dst, wrongType(f, v)
}

func wrongType(f *spi.Field, v any) error {
	return fmt.Errorf("want a %s value, got %T", f.Type, v)
}

func appendFloat(dst []byte, f float64) []byte {
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// asInt converts the Go integer types to int64.
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
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	case uint:
		if uint64(x) <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// CanonicalDecimal returns the canonical text of the decimal number s:
// an optional "-", the integer digits without leading zeros ("0" when
// none), and the fractional digits as given, trailing zeros kept (they are
// the scale): "+012.340" is "12.340", ".5" is "0.5", "1.5e2" is "150",
// "-0.00" is "0.00". Spaces, an empty string, NaN, infinities and
// exponents beyond ±1000 are refused.
func CanonicalDecimal(s string) (string, error) {
	if isCanonicalDecimal(s) {
		return s, nil
	}
	i, neg := 0, false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	intStart := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intDigits := s[intStart:i]
	var fracDigits string
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		fracDigits = s[fs:i]
	}
	if intDigits == "" && fracDigits == "" {
		return "", fmt.Errorf("%w: %s is not a decimal", ErrFormat, quoteShort(s))
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		es := i
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		ds := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == ds || i-ds > 4 {
			return "", fmt.Errorf("%w: %s is not a decimal", ErrFormat, quoteShort(s))
		}
		e, _ := strconv.Atoi(s[es:i])
		if e > 1000 || e < -1000 {
			return "", fmt.Errorf("%w: %s has an exponent beyond ±1000", ErrFormat, quoteShort(s))
		}
		exp = e
	}
	if i != len(s) {
		return "", fmt.Errorf("%w: %s is not a decimal", ErrFormat, quoteShort(s))
	}
	// Move the point by exp.
	digits := intDigits + fracDigits
	point := len(intDigits) + exp
	scale := len(fracDigits) - exp
	if scale < 0 {
		scale = 0
	}
	var ip, fp string
	switch {
	case point <= 0:
		ip, fp = "", strings.Repeat("0", -point)+digits
	case point >= len(digits):
		ip, fp = digits+strings.Repeat("0", point-len(digits)), ""
	default:
		ip, fp = digits[:point], digits[point:]
	}
	if len(fp) < scale {
		fp += strings.Repeat("0", scale-len(fp))
	} else if len(fp) > scale {
		fp = fp[:scale] // only zeros are dropped: scale counts the given digits
	}
	ip = strings.TrimLeft(ip, "0")
	if ip == "" {
		ip = "0"
	}
	var b strings.Builder
	b.Grow(len(ip) + len(fp) + 2)
	if neg && strings.Trim(ip+fp, "0") != "" {
		b.WriteByte('-')
	}
	b.WriteString(ip)
	if fp != "" {
		b.WriteByte('.')
		b.WriteString(fp)
	}
	return b.String(), nil
}

// isCanonicalDecimal reports whether s is already canonical.
func isCanonicalDecimal(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	is := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n := i - is
	if n == 0 || (n > 1 && s[is] == '0') {
		return false
	}
	zero := n == 1 && s[is] == '0'
	if i < len(s) {
		if s[i] != '.' {
			return false
		}
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if s[i] != '0' {
				zero = false
			}
			i++
		}
		if i == fs || i != len(s) {
			return false
		}
	}
	return !(zero && s[0] == '-')
}
