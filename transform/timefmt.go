package transform

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	_ "time/tzdata" // zones work on hosts without a zoneinfo database
)

// layout is a compiled date/time layout: strftime directives translated to
// a Go layout.
type layout struct {
	src      string
	goLayout string
	// hasOffset: the text carries its own UTC offset (%z, %:z, rfc3339).
	hasOffset bool
	// hasZoneName: %Z, which can be formatted but not parsed reliably.
	hasZoneName bool
	// dirs is the layout as directives and literals, for the check that the
	// Go layout means the same.
	dirs []string
}

// The strftime directives and their Go layout equivalents.
var directives = map[string]string{
	"Y": "2006", "y": "06",
	"m": "01", "-m": "1",
	"d": "02", "-d": "2", "e": "_2",
	"H": "15", "I": "03", "-I": "3",
	"M": "04", "-M": "4",
	"S": "05", "-S": "5",
	"p": "PM",
	"b": "Jan", "h": "Jan", "B": "January",
	"a": "Mon", "A": "Monday",
	"j": "002",
	"z": "-0700", ":z": "-07:00",
	"Z": "MST",
	"f": "000000", "3f": "000", "6f": "000000", "9f": "000000000",
	"F": "2006-01-02", "T": "15:04:05",
	"%": "%",
}

// layoutRFC3339 is the one named layout: RFC 3339 with optional fractional
// seconds ("2024-03-10T14:30:00.5+01:00", "2024-03-10T13:30:00Z").
const layoutRFC3339 = "rfc3339"

// cache remembers compiled layouts and loaded zones given as text at run
// time; it stops growing at cacheMax entries, so that text read from data
// cannot exhaust memory.
type cache struct {
	m sync.Map
	n atomic.Int64
}

const cacheMax = 4096

func (c *cache) load(key string) (any, bool) { return c.m.Load(key) }

func (c *cache) store(key string, v any) {
	if len(key) <= 200 && c.n.Add(1) <= cacheMax {
		c.m.Store(key, v)
	}
}

var layoutCache cache // string -> *layout or error

// compileLayout translates a strftime layout, caching the result.
func compileLayout(s string) (*layout, error) {
	if v, ok := layoutCache.load(s); ok {
		if l, ok := v.(*layout); ok {
			return l, nil
		}
		return nil, v.(error)
	}
	l, err := translateLayout(s)
	if err != nil {
		layoutCache.store(s, err)
	} else {
		layoutCache.store(s, l)
	}
	return l, err
}

func translateLayout(s string) (*layout, error) {
	if s == layoutRFC3339 {
		return &layout{src: s, goLayout: time.RFC3339Nano, hasOffset: true}, nil
	}
	if s == "" {
		return nil, fmt.Errorf("empty layout")
	}
	l := &layout{src: s}
	var b strings.Builder
	lit := 0 // start of the pending literal
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i > lit {
			l.dirs = append(l.dirs, "="+s[lit:i])
			b.WriteString(s[lit:i])
		}
		j := i + 1
		if j < len(s) && (s[j] == '-' || s[j] == ':' || s[j] == '3' || s[j] == '6' || s[j] == '9') {
			j++
		}
		if j >= len(s) {
			return nil, fmt.Errorf("layout %q ends inside a directive", s)
		}
		d := s[i+1 : j+1]
		g, ok := directives[d]
		if !ok {
			return nil, fmt.Errorf("layout %q: unknown directive %%%s", s, d)
		}
		switch d {
		case "z", ":z":
			l.hasOffset = true
		case "Z":
			l.hasZoneName = true
		case "f", "3f", "6f", "9f":
			prev := b.String()
			if len(prev) == 0 || (prev[len(prev)-1] != '.' && prev[len(prev)-1] != ',') {
				return nil, fmt.Errorf("layout %q: %%%s must follow a '.' or ','", s, d)
			}
		}
		if d == "%" {
			l.dirs = append(l.dirs, "=%")
		} else {
			l.dirs = append(l.dirs, d)
		}
		b.WriteString(g)
		i = j
		lit = j + 1
	}
	if lit < len(s) {
		l.dirs = append(l.dirs, "="+s[lit:])
		b.WriteString(s[lit:])
	}
	l.goLayout = b.String()
	// Go layouts have no escapes: literal text such as "1" or "Jan" would
	// silently become a date element. Format two reference instants both
	// ways; any difference means the literal text is not literal to Go.
	for _, ref := range layoutRefs {
		if ref.Format(l.goLayout) != l.strftime(ref) {
			return nil, fmt.Errorf("layout %q: its literal text contains characters that read as date elements (digits, \"Jan\", \"Mon\", \"PM\", \"MST\"...); such text cannot be used in a layout", s)
		}
	}
	return l, nil
}

var layoutRefs = []time.Time{
	time.Date(2019, 11, 23, 19, 37, 48, 123456789, time.FixedZone("XST", 5*3600+30*60)),
	time.Date(2021, 3, 4, 8, 9, 10, 500000000, time.FixedZone("YST", -3*3600)),
}

// strftime formats t by the directives, independently of Go's layouts.
func (l *layout) strftime(t time.Time) string {
	var b strings.Builder
	pad := func(n, w int) {
		s := strconv.Itoa(n)
		for i := len(s); i < w; i++ {
			b.WriteByte('0')
		}
		b.WriteString(s)
	}
	for _, d := range l.dirs {
		if d[0] == '=' {
			b.WriteString(d[1:])
			continue
		}
		h12 := t.Hour() % 12
		if h12 == 0 {
			h12 = 12
		}
		switch d {
		case "Y":
			pad(t.Year(), 4)
		case "y":
			pad(t.Year()%100, 2)
		case "m":
			pad(int(t.Month()), 2)
		case "-m":
			pad(int(t.Month()), 1)
		case "d":
			pad(t.Day(), 2)
		case "-d":
			pad(t.Day(), 1)
		case "e":
			if t.Day() < 10 {
				b.WriteByte(' ')
			}
			pad(t.Day(), 1)
		case "H":
			pad(t.Hour(), 2)
		case "I":
			pad(h12, 2)
		case "-I":
			pad(h12, 1)
		case "M":
			pad(t.Minute(), 2)
		case "-M":
			pad(t.Minute(), 1)
		case "S":
			pad(t.Second(), 2)
		case "-S":
			pad(t.Second(), 1)
		case "p":
			if t.Hour() < 12 {
				b.WriteString("AM")
			} else {
				b.WriteString("PM")
			}
		case "b", "h":
			b.WriteString(t.Month().String()[:3])
		case "B":
			b.WriteString(t.Month().String())
		case "a":
			b.WriteString(t.Weekday().String()[:3])
		case "A":
			b.WriteString(t.Weekday().String())
		case "j":
			pad(t.YearDay(), 3)
		case "z", ":z", "Z":
			name, off := t.Zone()
			if d == "Z" && name != "" {
				b.WriteString(name)
				break
			}
			sign := byte('+')
			if off < 0 {
				sign, off = '-', -off
			}
			b.WriteByte(sign)
			pad(off/3600, 2)
			if d == ":z" {
				b.WriteByte(':')
			}
			pad(off%3600/60, 2)
		case "f", "6f":
			pad(t.Nanosecond()/1000, 6)
		case "3f":
			pad(t.Nanosecond()/1000000, 3)
		case "9f":
			pad(t.Nanosecond(), 9)
		case "F":
			pad(t.Year(), 4)
			b.WriteByte('-')
			pad(int(t.Month()), 2)
			b.WriteByte('-')
			pad(t.Day(), 2)
		case "T":
			pad(t.Hour(), 2)
			b.WriteByte(':')
			pad(t.Minute(), 2)
			b.WriteByte(':')
			pad(t.Second(), 2)
		}
	}
	return b.String()
}

// offsetRE is a fixed offset: +05, +0530, +05:30.
var offsetRE = regexp.MustCompile(`^[+-](\d\d)(?::?(\d\d))?$`)

var zoneCache cache // string -> *time.Location or error

// loadZone loads an IANA zone ("Europe/Paris", "UTC") or a fixed offset
// ("+05:30", "-0800"), caching the result.
func loadZone(name string) (*time.Location, error) {
	if v, ok := zoneCache.load(name); ok {
		if l, ok := v.(*time.Location); ok {
			return l, nil
		}
		return nil, v.(error)
	}
	loc, err := parseZone(name)
	if err != nil {
		zoneCache.store(name, err)
	} else {
		zoneCache.store(name, loc)
	}
	return loc, err
}

func parseZone(name string) (*time.Location, error) {
	if name == "" {
		return nil, fmt.Errorf("empty time zone")
	}
	if name[0] == '+' || name[0] == '-' {
		if m := offsetRE.FindStringSubmatch(name); m != nil {
			h, _ := strconv.Atoi(m[1])
			mi := 0
			if m[2] != "" {
				mi, _ = strconv.Atoi(m[2])
			}
			if h <= 23 && mi <= 59 {
				off := h*3600 + mi*60
				if name[0] == '-' {
					off = -off
				}
				return time.FixedZone(name, off), nil
			}
		}
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	if strings.EqualFold(name, "utc") || name == "Z" {
		return time.UTC, nil
	}
	// LoadLocation reads files named by the zone: refuse anything that is
	// not a plain zone name.
	if strings.Contains(name, "..") || strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\\x00") || name == "Local" {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return loc, nil
}

// localTime is the instant at wall clock (y, mo, d, h, mi, s, ns) in loc.
// A wall clock that does not exist there (skipped when clocks go forward)
// is an error; one that exists twice (when clocks go back) is the earlier
// instant.
func localTime(y int, mo time.Month, d, h, mi, s, ns int, loc *time.Location) (time.Time, error) {
	t := time.Date(y, mo, d, h, mi, s, ns, loc)
	if loc == time.UTC {
		return t, nil
	}
	wall := time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	// Candidate offsets: the zone's offsets around that day.
	var best time.Time
	found := false
	seen := [3]int{}
	for i, probe := range []time.Time{t, t.Add(-26 * time.Hour), t.Add(26 * time.Hour)} {
		_, off := probe.Zone()
		seen[i] = off
		dup := false
		for k := 0; k < i; k++ {
			if seen[k] == off {
				dup = true
			}
		}
		if dup {
			continue
		}
		c := wall.Add(-time.Duration(off) * time.Second).In(loc)
		if sameWall(c, wall) && (!found || c.Before(best)) {
			best, found = c, true
		}
	}
	if !found {
		return time.Time{}, fmt.Errorf("local time %s does not exist in %s (clocks go forward then)", wall.Format("2006-01-02 15:04:05"), loc)
	}
	return best, nil
}

func sameWall(a, b time.Time) bool {
	y1, m1, d1 := a.Date()
	y2, m2, d2 := b.Date()
	h1, i1, s1 := a.Clock()
	h2, i2, s2 := b.Clock()
	return y1 == y2 && m1 == m2 && d1 == d2 && h1 == h2 && i1 == i2 && s1 == s2 && a.Nanosecond() == b.Nanosecond()
}

// parseTime parses s by l. Text without an offset is a wall clock in loc.
func parseTime(s string, l *layout, loc *time.Location) (time.Time, error) {
	if l.hasZoneName {
		return time.Time{}, fmt.Errorf("layout %q has %%Z, which cannot be parsed; use %%z", l.src)
	}
	if l.hasOffset {
		t, err := time.ParseInLocation(l.goLayout, s, loc)
		if err != nil {
			return time.Time{}, parseError(s, l, err)
		}
		return t, nil
	}
	u, err := time.Parse(l.goLayout, s)
	if err != nil {
		return time.Time{}, parseError(s, l, err)
	}
	h, mi, sec := u.Clock()
	return localTime(u.Year(), u.Month(), u.Day(), h, mi, sec, u.Nanosecond(), loc)
}

func parseError(s string, l *layout, err error) error {
	reason := err.Error()
	if pe, ok := err.(*time.ParseError); ok {
		switch {
		case pe.Message != "":
			reason = strings.TrimPrefix(pe.Message, ": ")
		case pe.ValueElem != "":
			reason = fmt.Sprintf("cannot read %q", pe.ValueElem)
		}
	}
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return fmt.Errorf("%q does not match layout %q: %s", s, l.src, reason)
}
