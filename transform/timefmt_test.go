package transform

import (
	"math/rand"
	"strings"
	"testing"
	"time"
)

func TestLayoutTranslation(t *testing.T) {
	for in, want := range map[string]string{
		"%Y-%m-%d":          "2006-01-02",
		"%d/%m/%y %H:%M:%S": "02/01/06 15:04:05",
		"%-d.%-m.%Y":        "2.1.2006",
		"%e %b %Y":          "_2 Jan 2006",
		"%A %B %j":          "Monday January 002",
		"%I:%M %p":          "03:04 PM",
		"%F %T.%3f%:z":      "2006-01-02 15:04:05.000-07:00",
		"%S,%9f":            "05,000000000",
		"%Y%m%dT%H%M%S%z":   "20060102T150405-0700",
		"100%%":             "",
		"rfc3339":           time.RFC3339Nano,
		"week of %Y":        "week of 2006",
		"at %H h":           "at 15 h",
		"day 5 %d":          "",
	} {
		l, err := compileLayout(in)
		if want == "" {
			if err == nil {
				t.Errorf("%q accepted as %q", in, l.goLayout)
			} else if !strings.Contains(err.Error(), "read as date elements") {
				t.Errorf("%q: %v", in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if l.goLayout != want {
			t.Errorf("%q -> %q, want %q", in, l.goLayout, want)
		}
	}
	for in, reason := range map[string]string{
		"":       "empty layout",
		"%Q":     "unknown directive %Q",
		"%Y-%":   "ends inside a directive",
		"%S%f":   "must follow a '.' or ','",
		"Mon %d": "read as date elements",
		"%d PM":  "read as date elements",
		"%H MST": "read as date elements",
		"%Y_%e":  "read as date elements",
	} {
		if _, err := compileLayout(in); err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("%q: %v, want %q", in, err, reason)
		}
	}
}

// TestLayoutFormatsLikeStrftime: the Go layout formats exactly as the
// directives say, for many instants and zones; text it formats parses back.
func TestLayoutFormatsLikeStrftime(t *testing.T) {
	layouts := []string{
		"%Y-%m-%d %H:%M:%S.%9f %z", "%d/%m/%Y %I:%M:%S %p %:z", "%a %e %b %y %-I", "%A %-d %B %Y, %j",
		"%F %T%z", "%Y%m%d%H%M%S.%6f%z", "[%Y] (%-m) {%-d} %-I.%-M.%-S %p %Z",
	}
	zones := []*time.Location{time.UTC, paris, mustZone("America/New_York"), mustZone("Asia/Kolkata"), mustZone("Australia/Lord_Howe"), time.FixedZone("", -(9*3600 + 30*60))}
	rng := rand.New(rand.NewSource(1))
	for _, src := range layouts {
		l, err := compileLayout(src)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		for k := 0; k < 300; k++ {
			ts := time.Unix(rng.Int63n(4102444800), rng.Int63n(1e9)).In(zones[k%len(zones)])
			if got, want := ts.Format(l.goLayout), l.strftime(ts); got != want {
				t.Fatalf("%q at %v: Go %q, strftime %q", src, ts, got, want)
			}
			if l.hasZoneName || !strings.Contains(src, "%z") && !strings.Contains(src, "%:z") {
				continue
			}
			back, err := parseTime(ts.Format(l.goLayout), l, time.UTC)
			if err != nil {
				t.Fatalf("%q: %v", src, err)
			}
			if strings.Contains(src, "%9f") && !back.Equal(ts) || !strings.Contains(src, "f") && !back.Equal(ts.Truncate(time.Second)) {
				t.Fatalf("%q: %v parsed back as %v", src, ts, back)
			}
		}
	}
}

func TestLocalTime(t *testing.T) {
	lordHowe := mustZone("Australia/Lord_Howe") // clocks move by 30 minutes
	sydney := mustZone("Australia/Sydney")
	ny := mustZone("America/New_York")
	for _, c := range []struct {
		loc      *time.Location
		y        int
		m        time.Month
		d, h, mi int
		want     time.Time // zero: does not exist
	}{
		{paris, 2024, 3, 31, 1, 59, utc(2024, 3, 31, 0, 59, 0)},
		{paris, 2024, 3, 31, 2, 0, time.Time{}},
		{paris, 2024, 3, 31, 2, 59, time.Time{}},
		{paris, 2024, 3, 31, 3, 0, utc(2024, 3, 31, 1, 0, 0)},
		{paris, 2024, 10, 27, 2, 30, utc(2024, 10, 27, 0, 30, 0)}, // twice: the earlier
		{paris, 2024, 10, 27, 3, 0, utc(2024, 10, 27, 2, 0, 0)},
		{ny, 2024, 3, 10, 2, 30, time.Time{}},
		{ny, 2024, 11, 3, 1, 30, utc(2024, 11, 3, 5, 30, 0)},
		{sydney, 2024, 10, 6, 2, 30, time.Time{}},
		{sydney, 2024, 4, 7, 2, 30, utc(2024, 4, 6, 15, 30, 0)},
		{lordHowe, 2024, 10, 6, 2, 15, time.Time{}},
		{lordHowe, 2024, 10, 6, 2, 30, utc(2024, 10, 5, 15, 30, 0)},
		{lordHowe, 2024, 4, 7, 1, 45, utc(2024, 4, 6, 14, 45, 0)},
		{time.FixedZone("X", 3600), 2024, 3, 31, 2, 30, utc(2024, 3, 31, 1, 30, 0)},
	} {
		got, err := localTime(c.y, c.m, c.d, c.h, c.mi, 0, 0, c.loc)
		if c.want.IsZero() {
			if err == nil || !strings.Contains(err.Error(), "does not exist") {
				t.Errorf("%s %d-%d-%d %d:%d: got %v %v, want an error", c.loc, c.y, c.m, c.d, c.h, c.mi, got, err)
			}
			continue
		}
		if err != nil || !got.Equal(c.want) {
			t.Errorf("%s %d-%d-%d %d:%d: got %v %v, want %v", c.loc, c.y, c.m, c.d, c.h, c.mi, got, err, c.want)
		}
	}
}

func TestLoadZone(t *testing.T) {
	for name, off := range map[string]int{"UTC": 0, "utc": 0, "Z": 0, "+05:30": 19800, "-0800": -28800, "+01": 3600} {
		l, err := loadZone(name)
		if err != nil {
			t.Errorf("%q: %v", name, err)
			continue
		}
		if _, o := time.Date(2024, 1, 1, 0, 0, 0, 0, l).Zone(); o != off {
			t.Errorf("%q: offset %d, want %d", name, o, off)
		}
	}
	for _, bad := range []string{"", "Mars/Olympus", "../../etc/passwd", "/etc/localtime", "Local", "+25:00", "+1:5", "+0530x", "+05:3", "Europe/../Europe/Paris"} {
		if _, err := loadZone(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
