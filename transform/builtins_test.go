package transform

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func utc(y int, m time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, m, d, h, mi, s, 0, time.UTC)
}

func day(y int, m time.Month, d int) time.Time { return utc(y, m, d, 0, 0, 0) }

// builtinCase computes expr over testRow (see helpers_test.go) into a
// field of type typ: want is the row value, or err a part of the error.
type builtinCase struct {
	expr string
	typ  Type
	want any
	err  string
}

func runBuiltinCases(t *testing.T, cases []builtinCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			got, err := evalOne(t, c.expr, c.typ)
			if c.err != "" {
				if err == nil {
					t.Fatalf("got %#v, want an error with %q", got, c.err)
				}
				var re *RowError
				if !errors.As(err, &re) {
					t.Fatalf("want a *RowError, got %T: %v", err, err)
				}
				if !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %q does not contain %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !sameValue(got, c.want) {
				t.Fatalf("got %#v (%T), want %#v (%T)", got, got, c.want, c.want)
			}
		})
	}
}

func TestStringBuiltins(t *testing.T) {
	runBuiltinCases(t, []builtinCase{
		{`concat(s, " ", u)`, TypeString, "Hello Grüße", ""},
		{`concat(s, ns, i, f, b)`, TypeString, "Hello422.5true", ""},
		{`concat(ns, ns)`, TypeString, "", ""},
		{`concat(day, "|", ts, "|", d, "|", bin)`, TypeString, "2024-02-29|2024-03-10T13:30:00Z|12.345|616263", ""},
		{`concat(s, s, s, s, s)`, TypeString, "HelloHelloHelloHelloHello", ""},
		{`substr(u, 3)`, TypeString, "üße", ""},
		{`substr(u, 2, 2)`, TypeString, "rü", ""},
		{`substr(u, -1, 3)`, TypeString, "G", ""},
		{`substr(u, 10)`, TypeString, "", ""},
		{`substr(ns, 1)`, TypeString, nil, ""},
		{`substr(u, ni)`, TypeString, nil, ""},
		{`substr(u, 1, neg)`, TypeString, nil, "negative length -7"},
		{`truncate(u, 4)`, TypeString, "Grüß", ""},
		{`truncate(u, 0)`, TypeString, "", ""},
		{`truncate(u, 100)`, TypeString, "Grüße", ""},
		{`truncate(ns, 2)`, TypeString, nil, ""},
		{`truncate(u, neg)`, TypeString, nil, "truncate: negative length"},
		{`replace(u, "ü", "ue")`, TypeString, "Grueße", ""},
		{`replace(s, "", "x")`, TypeString, "Hello", ""},
		{`replace(s, "l", ns)`, TypeString, nil, ""},
		{`regexp_replace(s, "l+", "L")`, TypeString, "HeLo", ""},
		{`regexp_replace(s, "(H)(e)", "$2$1")`, TypeString, "eHllo", ""},
		{`regexp_replace(s, code, "_")`, TypeString, "Hello", ""},
		{`regexp_replace(s, concat("(", s), "_")`, TypeString, nil, "bad regular expression"},
		{`upper(u)`, TypeString, "GRÜßE", ""},
		{`upper(ns)`, TypeString, nil, ""},
		{`lower(u)`, TypeString, "grüße", ""},
		{`trim(concat("  ", u, "\t\n"))`, TypeString, "Grüße", ""},
		{`trim(concat("\u00a0", u, "\u3000"))`, TypeString, "Grüße", ""},
		{`trim(u, "Ge")`, TypeString, "rüß", ""},
		{`ltrim(concat("  ", s, " "))`, TypeString, "Hello ", ""},
		{`rtrim(concat("  ", s, " "))`, TypeString, "  Hello", ""},
		{`ltrim(s, "H")`, TypeString, "ello", ""},
		{`rtrim(s, "lo")`, TypeString, "He", ""},
		{`trim(ns)`, TypeString, nil, ""},
		{`length(u)`, TypeInt, int64(5), ""},
		{`length(empty)`, TypeInt, int64(0), ""},
		{`length(bin)`, TypeInt, int64(3), ""},
		{`length(ns)`, TypeInt, nil, ""},
		{`lpad(u, 8, "*")`, TypeString, "***Grüße", ""},
		{`lpad(u, 8, "ab")`, TypeString, "abaGrüße", ""},
		{`lpad(u, 3)`, TypeString, "Grü", ""},
		{`rpad(u, 7)`, TypeString, "Grüße  ", ""},
		{`rpad(u, 7, "")`, TypeString, "Grüße", ""},
		{`lpad(u, i * 1000000)`, TypeString, nil, "too large"},
		{`split_part("a;b;;c", ";", 4)`, TypeString, "c", ""},
		{`split_part(concat(s, "::", u), "::", 2)`, TypeString, "Grüße", ""},
		{`split_part(s, ",", 1)`, TypeString, "Hello", ""},
		{`split_part(s, ",", 2)`, TypeString, "", ""},
		{`split_part(s, ",", zero)`, TypeString, nil, "numbered from 1"},
		{`to_string(i)`, TypeString, "42", ""},
		{`to_string(f)`, TypeString, "2.5", ""},
		{`to_string(f * 1e30)`, TypeString, "2.5e+30", ""},
		{`to_string(d)`, TypeString, "12.345", ""},
		{`to_string(b)`, TypeString, "true", ""},
		{`to_string(day)`, TypeString, "2024-02-29", ""},
		{`to_string(ts)`, TypeString, "2024-03-10T13:30:00Z", ""},
		{`to_string(bin)`, TypeString, "616263", ""},
		{`to_string(ns)`, TypeString, nil, ""},
		{`s + " " + u`, TypeString, "Hello Grüße", ""},
		{`s + ns`, TypeString, nil, ""},
		{`s contains "ell"`, TypeBool, true, ""},
		{`ns contains "ell"`, TypeBool, false, ""},
		{`u startsWith "Gr"`, TypeBool, true, ""},
		{`u endsWith "ße"`, TypeBool, true, ""},
		{`s matches "^H.*o$"`, TypeBool, true, ""},
		{`ns matches "x"`, TypeBool, false, ""},
		{`code in ["F", "M"]`, TypeBool, true, ""},
		{`code not in ["F", "M"]`, TypeBool, false, ""},
		{`ns in ["F", nil]`, TypeBool, false, ""},
		{`code in [s, u]`, TypeBool, false, ""},
		{`i in [41, 42.0]`, TypeBool, true, ""},
		{`i in 1..50`, TypeBool, true, ""},
		{`i in 43..50`, TypeBool, false, ""},
		{`neg in -10..0`, TypeBool, true, ""},
		{`1 < i < 50`, TypeBool, true, ""},
		{`1 < i + 10 < 50`, TypeBool, false, ""},
		{`s | upper()`, TypeString, "HELLO", ""},
		{`u | lower() | truncate(3)`, TypeString, "grü", ""},
	})
}

func TestNullAndCodeBuiltins(t *testing.T) {
	runBuiltinCases(t, []builtinCase{
		{`coalesce(ns, s)`, TypeString, "Hello", ""},
		{`coalesce(ns, ns)`, TypeString, nil, ""},
		{`coalesce(ni, f)`, TypeFloat, 2.5, ""},
		{`coalesce(ni, 0)`, TypeInt, int64(0), ""},
		{`coalesce(nd, 0)`, TypeDecimal, "0", ""},
		{`coalesce(nday, day)`, TypeDate, day(2024, 2, 29), ""},
		{`nullif(s, "Hello")`, TypeString, nil, ""},
		{`nullif(s, "x")`, TypeString, "Hello", ""},
		{`nullif(ns, "x")`, TypeString, nil, ""},
		{`nullif(i, 42.0)`, TypeInt, nil, ""},
		{`nullif(d, 12.345)`, TypeDecimal, nil, ""},
		{`is_null(ns)`, TypeBool, true, ""},
		{`is_null(s)`, TypeBool, false, ""},
		{`is_null(nday)`, TypeBool, true, ""},
		{`ns == nil`, TypeBool, true, ""},
		{`s != nil`, TypeBool, true, ""},
		{`ns ?? "default"`, TypeString, "default", ""},
		{`s ?? "default"`, TypeString, "Hello", ""},
		{`translate("gender", code)`, TypeString, "1", ""},
		{`translate("gender", lower(code))`, TypeString, nil, `no entry for "f" in table "gender"`},
		{`translate("gender", s, "?")`, TypeString, "?", ""},
		{`translate("gender", s, ns)`, TypeString, nil, ""},
		{`translate("gender", ns)`, TypeString, nil, ""},
		{`b ? "yes" : "no"`, TypeString, "yes", ""},
		{`nb ? "yes" : "no"`, TypeString, "no", ""},
		{`not nb`, TypeBool, true, ""},
		{`nb or b`, TypeBool, true, ""},
		{`nb and b`, TypeBool, false, ""},
		{`if i > 40 { "big" } else { "small" }`, TypeString, "big", ""},
		{`ni > 40 ? "big" : "small"`, TypeString, "small", ""},
		{`let x = upper(s); x + x`, TypeString, "HELLOHELLO", ""},
		{`params.region`, TypeString, "EMEA", ""},
		{`to_int(params.limit) * i`, TypeInt, int64(420), ""},
		{`$env["s"]`, TypeString, "Hello", ""},
	})
}

func TestNumberBuiltins(t *testing.T) {
	runBuiltinCases(t, []builtinCase{
		{`i + 1`, TypeInt, int64(43), ""},
		{`i + ni`, TypeInt, nil, ""},
		{`i - neg`, TypeInt, int64(49), ""},
		{`i * neg`, TypeInt, int64(-294), ""},
		{`i / 4`, TypeFloat, 10.5, ""},
		{`i % 5`, TypeInt, int64(2), ""},
		{`neg % 5`, TypeInt, int64(-2), ""},
		{`i ** 2`, TypeFloat, 1764.0, ""},
		{`-i`, TypeInt, int64(-42), ""},
		{`-ni`, TypeInt, nil, ""},
		{`i + f`, TypeFloat, 44.5, ""},
		{`f * 2`, TypeFloat, 5.0, ""},
		{`f * nf`, TypeFloat, nil, ""},
		{`i / zero`, TypeFloat, nil, "division by zero"},
		{`f / zero`, TypeFloat, nil, "division by zero"},
		{`i % zero`, TypeInt, nil, "division by zero"},
		{`big + 1`, TypeInt, nil, "integer overflow"},
		{`big * 2`, TypeInt, nil, "integer overflow"},
		{`-big - 2`, TypeInt, nil, "integer overflow"},
		{`d + 1`, TypeDecimal, "13.345", ""},
		{`d * 2`, TypeDecimal, "24.690", ""},
		{`d * 0.1`, TypeDecimal, "1.2345", ""},
		{`d - d`, TypeDecimal, "0.000", ""},
		{`d / 3`, TypeDecimal, "4.115", ""},
		{`d / 7`, TypeDecimal, "1.76357142857142857143", ""},
		{`d / zero`, TypeDecimal, nil, "division by zero"},
		{`d % 5`, TypeDecimal, "2.345", ""},
		{`-d`, TypeDecimal, "-12.345", ""},
		{`d + nd`, TypeDecimal, nil, ""},
		{`d > 12.3`, TypeBool, true, ""},
		{`d == 12.345`, TypeBool, true, ""},
		{`d == to_decimal("12.3450")`, TypeBool, true, ""},
		{`i > 41.5`, TypeBool, true, ""},
		{`ni > 0`, TypeBool, false, ""},
		{`ni < 0`, TypeBool, false, ""},
		{`ni == nil`, TypeBool, true, ""},
		{`ni != 0`, TypeBool, true, ""},
		{`i == 42.0`, TypeBool, true, ""},
		{`0 < i and i < 100`, TypeBool, true, ""},
		{`round(f)`, TypeFloat, 3.0, ""},
		{`round(-f)`, TypeFloat, -3.0, ""},
		{`round(f * 0.402, 2)`, TypeFloat, 1.01, ""},
		{`round(1.005 + zero, 2)`, TypeFloat, 1.01, ""},
		{`round(2.675 + zero, 2)`, TypeFloat, 2.68, ""},
		{`round(0.285 + zero, 2)`, TypeFloat, 0.29, ""},
		{`round(f * 1e20, 2)`, TypeFloat, 2.5e20, ""},
		{`round(i, -1)`, TypeInt, int64(40), ""},
		{`round(neg, -1)`, TypeInt, int64(-10), ""},
		{`round(i, 2)`, TypeInt, int64(42), ""},
		{`round(d, 2)`, TypeDecimal, "12.35", ""},
		{`round(-d, 2)`, TypeDecimal, "-12.35", ""},
		{`round(d, 5)`, TypeDecimal, "12.34500", ""},
		{`round(d, -1)`, TypeDecimal, "10", ""},
		{`round(nf, 2)`, TypeFloat, nil, ""},
		{`round(f, ni)`, TypeFloat, nil, ""},
		{`floor(-f)`, TypeFloat, -3.0, ""},
		{`ceil(f)`, TypeFloat, 3.0, ""},
		{`floor(d)`, TypeDecimal, "12", ""},
		{`ceil(d)`, TypeDecimal, "13", ""},
		{`floor(-d)`, TypeDecimal, "-13", ""},
		{`ceil(-d)`, TypeDecimal, "-12", ""},
		{`floor(i)`, TypeInt, int64(42), ""},
		{`abs(neg)`, TypeInt, int64(7), ""},
		{`abs(-f)`, TypeFloat, 2.5, ""},
		{`abs(-d)`, TypeDecimal, "12.345", ""},
		{`abs(-big - 1)`, TypeInt, nil, "integer overflow"},
		{`greatest(i, neg, ni)`, TypeInt, int64(42), ""},
		{`least(f, i)`, TypeFloat, 2.5, ""},
		{`greatest(ni, ni)`, TypeInt, nil, ""},
		{`greatest(day, to_date("2025-01-01"))`, TypeDate, day(2025, 1, 1), ""},
		{`to_int(f)`, TypeInt, int64(2), ""},
		{`to_int(-f)`, TypeInt, int64(-2), ""},
		{`to_int(d)`, TypeInt, int64(12), ""},
		{`to_int(" 17 ")`, TypeInt, int64(17), ""},
		{`to_int(s)`, TypeInt, nil, `"Hello" is not an integer`},
		{`to_int(concat("99999999999999999999", empty))`, TypeInt, nil, "does not fit an int"},
		{`to_int(f * 1e300)`, TypeInt, nil, "does not fit an int"},
		{`to_int(b)`, TypeInt, int64(1), ""},
		{`to_int(ns)`, TypeInt, nil, ""},
		{`to_float(i)`, TypeFloat, 42.0, ""},
		{`to_float(d)`, TypeFloat, 12.345, ""},
		{`to_float(" -1.5e2 ")`, TypeFloat, -150.0, ""},
		{`to_float(s)`, TypeFloat, nil, `"Hello" is not a number`},
		{`to_decimal(i)`, TypeDecimal, "42", ""},
		{`to_decimal(f)`, TypeDecimal, "2.5", ""},
		{`to_decimal(0.1 + zero)`, TypeDecimal, "0.1", ""},
		{`to_decimal("-0001.2300")`, TypeDecimal, "-1.2300", ""},
		{`to_decimal("1.5e3")`, TypeDecimal, "1500", ""},
		{`to_decimal(f, 3)`, TypeDecimal, "2.500", ""},
		{`to_decimal(d, 1)`, TypeDecimal, "12.3", ""},
		{`to_decimal(s)`, TypeDecimal, nil, `bad decimal "Hello"`},
		{`to_decimal(f / zero)`, TypeDecimal, nil, "division by zero"},
		{`to_decimal("123456789012345678901234567890.123456789") + 1`, TypeDecimal, "123456789012345678901234567891.123456789", ""},
		{`to_bool("Y")`, TypeBool, true, ""},
		{`to_bool(" false ")`, TypeBool, false, ""},
		{`to_bool(zero)`, TypeBool, false, ""},
		{`to_bool(i)`, TypeBool, nil, "cannot convert 42"},
		{`to_bool(s)`, TypeBool, nil, `"Hello" is not a boolean`},
		{`i`, TypeFloat, 42.0, ""},
		{`i`, TypeDecimal, "42", ""},
		{`i`, TypeString, "42", ""},
		{`d`, TypeString, "12.345", ""},
	})
}

func TestDateBuiltins(t *testing.T) {
	runBuiltinCases(t, []builtinCase{
		{`parse_date("29.02.2024", "%d.%m.%Y")`, TypeDate, day(2024, 2, 29), ""},
		{`parse_date(concat("2024-", to_string(i - 39), "-5"), "%Y-%-m-%-d")`, TypeDate, day(2024, 3, 5), ""},
		{`parse_date(concat(s, "2024"), "%Y")`, TypeDate, nil, `"Hello2024" does not match layout "%Y"`},
		{`parse_date(ns, "%Y")`, TypeDate, nil, ""},
		{`parse_date("2024-13-01", concat("%Y-%m-", "%d", empty))`, TypeDate, nil, "month out of range"},
		{`parse_date("2024-03-10T23:30:00Z", "rfc3339")`, TypeDate, day(2024, 3, 11), ""},
		{`parse_date("2024-03-10T23:30:00Z", "rfc3339", "UTC")`, TypeDate, day(2024, 3, 10), ""},
		{`parse_date("5 Mar 24", "%e %b %y")`, TypeDate, day(2024, 3, 5), ""},
		{`parse_date("Tuesday 5 March 2024", "%A %-d %B %Y")`, TypeDate, day(2024, 3, 5), ""},
		{`parse_date("2024-065", "%Y-%j")`, TypeDate, day(2024, 3, 5), ""},
		{`parse_timestamp("2024-03-10 14:30:15.250", "%Y-%m-%d %H:%M:%S.%3f")`, TypeTimestamp, time.Date(2024, 3, 10, 14, 30, 15, 250e6, paris), ""},
		{`parse_timestamp("2024-03-10 14:30:15.25", "%F %T")`, TypeTimestamp, time.Date(2024, 3, 10, 14, 30, 15, 250e6, paris), ""},
		{`parse_timestamp("03/10/2024 02:30 PM", "%m/%d/%Y %I:%M %p", "America/New_York")`, TypeTimestamp, time.Date(2024, 3, 10, 14, 30, 0, 0, mustZone("America/New_York")), ""},
		{`parse_timestamp("2024-03-10 14:30 +0530", "%Y-%m-%d %H:%M %z")`, TypeTimestamp, time.Date(2024, 3, 10, 9, 0, 0, 0, time.UTC).In(time.FixedZone("", 5*3600+1800)), ""},
		{`parse_timestamp("2024-03-10 14:30:00", "%F %T", "+05:30")`, TypeTimestamp, time.Date(2024, 3, 10, 14, 30, 0, 0, time.FixedZone("+05:30", 5*3600+1800)), ""},
		{`parse_timestamp(concat("2024-03-31 02:", to_string(i - 12)), "%Y-%m-%d %H:%M")`, TypeTimestamp, nil, "local time 2024-03-31 02:30:00 does not exist in Europe/Paris"},
		{`parse_timestamp("2024-10-27 02:30", concat("%Y-%m-%d", " %H:%M"))`, TypeTimestamp, time.Date(2024, 10, 27, 0, 30, 0, 0, time.UTC).In(paris), ""},
		{`parse_timestamp("2024-11-03 01:30", "%Y-%m-%d %H:%M", "America/New_York")`, TypeTimestamp, time.Date(2024, 11, 3, 5, 30, 0, 0, time.UTC).In(mustZone("America/New_York")), ""},
		{`parse_timestamp(concat("2024-03-10 14:30 CET", empty), "%Y-%m-%d %H:%M %Z")`, TypeTimestamp, nil, "cannot be parsed"},
		{`parse_timestamp("x", "%Y", code)`, TypeTimestamp, nil, `unknown time zone "F"`},
		{`format_date(day, "%d/%m/%Y")`, TypeString, "29/02/2024", ""},
		{`format_date(day, "%a %e %b %y, day %j")`, TypeString, "Thu 29 Feb 24, day 060", ""},
		{`format_date(nday, "%Y")`, TypeString, nil, ""},
		{`format_timestamp(ts, "%Y-%m-%dT%H:%M:%S%:z")`, TypeString, "2024-03-10T14:30:00+01:00", ""},
		{`format_timestamp(ts, "%I:%M %p %Z", "America/New_York")`, TypeString, "09:30 AM EDT", ""},
		{`format_timestamp(ts, "%H:%M", "Asia/Kolkata")`, TypeString, "19:00", ""},
		{`format_timestamp(ts, "%S.%6f")`, TypeString, "00.000000", ""},
		{`format_timestamp(ts, "rfc3339", "UTC")`, TypeString, "2024-03-10T13:30:00Z", ""},
		{`format_timestamp(ts, "%%%Y")`, TypeString, "%2024", ""},
		{`format_timestamp(nts, "%Y")`, TypeString, nil, ""},
		{`to_zone(ts, "Asia/Tokyo")`, TypeTimestamp, time.Date(2024, 3, 10, 22, 30, 0, 0, mustZone("Asia/Tokyo")), ""},
		{`to_zone(nts, "Asia/Tokyo")`, TypeTimestamp, nil, ""},
		{`add_days(day, 1)`, TypeDate, day(2024, 3, 1), ""},
		{`add_days(day, -366)`, TypeDate, day(2023, 2, 28), ""},
		{`add_days(to_zone(ts, "Europe/Paris"), 21)`, TypeTimestamp, time.Date(2024, 3, 31, 14, 30, 0, 0, paris), ""},
		{`add_days(day, ni)`, TypeDate, nil, ""},
		{`add_months(day, 12)`, TypeDate, day(2025, 2, 28), ""},
		{`add_months(day, -1)`, TypeDate, day(2024, 1, 29), ""},
		{`add_months(to_date("2024-03-31"), neg + 6)`, TypeDate, day(2024, 2, 29), ""},
		{`add_months(to_date("2024-01-15"), -13)`, TypeDate, day(2022, 12, 15), ""},
		{`add_months(ts, 1)`, TypeTimestamp, utc(2024, 4, 10, 13, 30, 0), ""},
		{`days_between(dob, day)`, TypeInt, int64(8766), ""},
		{`days_between(day, ts)`, TypeInt, int64(10), ""},
		{`day - dob`, TypeInt, int64(8766), ""},
		{`day - nday`, TypeInt, nil, ""},
		{`to_string(ts - to_timestamp("2024-03-10T12:00:00Z"))`, TypeString, "1h30m0s", ""},
		{`ts + (ts - to_timestamp("2024-03-10T12:00:00Z"))`, TypeTimestamp, utc(2024, 3, 10, 15, 0, 0), ""},
		{`age(dob)`, TypeInt, int64(24), ""},
		{`age(dob, to_date("2024-02-28"))`, TypeInt, int64(23), ""},
		{`age(dob, day)`, TypeInt, int64(24), ""},
		{`age(dob, to_date("2023-03-01"))`, TypeInt, int64(23), ""},
		{`age(nday)`, TypeInt, nil, ""},
		{`year(day) * 10000 + month(day) * 100 + day(day)`, TypeInt, int64(20240229), ""},
		{`day(to_timestamp("2024-03-10T23:30:00Z"))`, TypeInt, int64(11), ""},
		{`to_date(ts)`, TypeDate, day(2024, 3, 10), ""},
		{`to_date(to_timestamp("2024-03-10T23:30:00Z"), "UTC")`, TypeDate, day(2024, 3, 10), ""},
		{`to_date(" 2024-12-31 ")`, TypeDate, day(2024, 12, 31), ""},
		{`to_date(s)`, TypeDate, nil, `"Hello" is not a date`},
		{`to_timestamp(day)`, TypeTimestamp, time.Date(2024, 2, 29, 0, 0, 0, 0, paris), ""},
		{`to_timestamp(day, "UTC")`, TypeTimestamp, day(2024, 2, 29), ""},
		{`to_timestamp("2024-07-01 08:00")`, TypeTimestamp, time.Date(2024, 7, 1, 8, 0, 0, 0, paris), ""},
		{`to_timestamp("2024-07-01T08:00:00.5-04:00")`, TypeTimestamp, time.Date(2024, 7, 1, 12, 0, 0, 5e8, time.UTC).In(time.FixedZone("", -4*3600)), ""},
		{`to_timestamp(ts, "Asia/Tokyo")`, TypeTimestamp, time.Date(2024, 3, 10, 22, 30, 0, 0, mustZone("Asia/Tokyo")), ""},
		{`to_timestamp(s)`, TypeTimestamp, nil, `"Hello" is not a timestamp`},
		{`ts > to_timestamp("2024-03-10T14:00:00+01:00")`, TypeBool, true, ""},
		{`ts == to_timestamp("2024-03-10T14:30:00+01:00")`, TypeBool, true, ""},
		{`day < to_date("2024-03-01")`, TypeBool, true, ""},
		{`nday < day`, TypeBool, false, ""},
		{`now()`, TypeTimestamp, testNow.In(paris), ""},
		{`today()`, TypeDate, day(2024, 6, 15), ""},
		{`ts`, TypeString, "2024-03-10T13:30:00Z", ""},
		{`day`, TypeString, "2024-02-29", ""},
	})
}

func TestHashBuiltins(t *testing.T) {
	sha := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	md := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	runBuiltinCases(t, []builtinCase{
		{`sha256(s)`, TypeString, "185f8db32271fe25f561a6fc938b2e264306ec304eda518007d1764826381969", ""},
		{`md5(u)`, TypeString, md("Grüße"), ""},
		{`md5(bin)`, TypeString, "900150983cd24fb0d6963f7d28e17f72", ""},
		{`sha256(s, i, ns)`, TypeString, sha("Hello|42|"), ""},
		{`sha256(ns)`, TypeString, nil, ""},
		{`md5(i, day, d)`, TypeString, md("42|2024-02-29|12.345"), ""},
		{`sha256(bin, s)`, TypeString, sha("abc|Hello"), ""},
	})
}
