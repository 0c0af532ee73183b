// Package transform compiles a mapping's field expressions and filter once
// per run, and applies them to rows on each of the run's threads.
//
// It imports only the standard library and the expression library
// (github.com/expr-lang/expr); it knows neither connectors nor the catalog.
// Its Type mirrors connector/spi's field types (same names, same Go values
// in rows) and the worker converts between the two.
//
// # Use
//
//	prog, err := transform.Compile(transform.Spec{
//		Source: []transform.Field{{Name: "symbol", Type: transform.TypeString}, ...},
//		Fields: []transform.FieldSpec{{Name: "sym", Type: transform.TypeString, Expr: "upper(symbol)"}, ...},
//		Filter: "quantity > 0",
//	})
//	// err joins one *CompileError per bad expression: transform.CompileErrors(err).
//	th := prog.NewThread() // one per pipeline thread
//	out := make([]any, len(prog.Output()))
//	for _, row := range batch {
//		keep, err := th.Apply(row, out) // err is a *RowError for a bad row
//		...
//	}
//
// A field whose expression is just a source field's name is copied without
// evaluating anything; a constant expression is computed once at compile
// time; other expressions run as compiled closures or, for the rarer forms,
// on expr's virtual machine, with no per-row allocation beyond the values
// produced (calls of more than three arguments aside).
//
// # Expressions
//
// The syntax is expr's (https://expr-lang.org): literals "text" or 'text',
// 42, 1.5, true, false, nil (NULL); arithmetic + - * / % **; comparisons
// == != < > <= >=; and, or, not (also && || !); cond ? a : b and
// if cond { a } else { b }; a ?? b (b when a is NULL); x in ["A", "B"];
// s contains t, s startsWith t, s endsWith t, s matches "regexp"; and
// let x = ...; expr to name a value. Source fields are referred to by name,
// or as $env["odd name"] when the name is not an identifier. The run's
// parameters are params.NAME (strings). Maps, member access, slices and
// expr's own built-in functions are not available: only the functions
// listed below and the mapping's user functions are.
//
// # Types
//
// Every expression has a type known at compile time: string, int, float,
// decimal, bool, date, timestamp, bytes (or duration, the difference of two
// timestamps). A field's expression must have the field's type, except
// that an int fits a float or decimal field, and any value fits a string
// field (written as to_string writes it: floats without exponent from
// 1e-6 to 1e21, decimals as they are, dates as YYYY-MM-DD, timestamps as
// RFC 3339 in their zone, bytes as lowercase hex). Anything else is a
// compile error with a hint: round(price) into an int field needs to_int,
// a timestamp into a date field needs to_date. Text compares byte by byte
// (no collation); dates and timestamps compare as instants.
//
// Arithmetic: int with int gives int (with overflow an error), except that
// / always divides exactly (float, or decimal); a float makes a float; a
// decimal makes a decimal (a float combined with a decimal is taken by its
// shortest written form, so that 0.1 is exactly 0.1); ** gives a float.
// Decimals are exact: +, - and * never round; / keeps 20 digits after the
// point, rounded half away from zero, then drops trailing zeros beyond the
// dividend's scale. Division by zero is an error for every type. date -
// date is the number of days; timestamp - timestamp is a duration.
//
// # NULL
//
// NULL (nil) goes in and out of every function: a function returns NULL
// when an argument it needs is NULL, except coalesce, nullif, is_null,
// concat (which skips NULLs, as PostgreSQL's does), sha256 and md5 of
// several values (a NULL hashes as empty text), translate with a default,
// greatest and least (which ignore NULLs). Arithmetic with NULL (and +
// on text) is NULL.
// Comparisons with NULL (<, contains, in...) are false, except that
// NULL == NULL is true and x != nil tests for a value. Where a condition is
// expected (the filter, ?:, and, or, not), NULL counts as false; note that
// not NULL is therefore true. A row for which the filter is not true is
// dropped.
//
// # Dates, times and zones
//
// Layouts are strftime patterns: %Y year, %y two-digit year, %m month
// (%-m without padding), %d day (%-d, %e space-padded), %H hour (00-23),
// %I hour (01-12, %-I), %p AM/PM, %M minute, %S second (%-M, %-S), %f
// microseconds (%3f milli, %6f micro, %9f nano; after a '.' or ','), %j
// day of the year, %b %h month abbreviation, %B month name, %a weekday
// abbreviation, %A weekday name, %z offset (+0100), %:z offset (+01:00),
// %Z zone abbreviation (formatting only; a zone without one gives its
// offset, as %z), %F = %Y-%m-%d, %T = %H:%M:%S,
// %% a percent sign. The name "rfc3339" stands for RFC 3339 with optional
// fractional seconds. When parsing, fractional seconds after %S are
// accepted even if the layout does not have %f, and %H, %-m, %-d accept
// one or two digits. Literal text in a layout may not contain digits or
// words Go reads as date elements ("Jan", "Mon", "PM", "MST"): such a
// layout is refused at compile time.
//
// Zones are IANA names ("Europe/Paris"), "UTC", or fixed offsets
// ("+05:30"). The mapping's zone (Spec.Location, UTC by default) is the
// zone of text parsed without an offset, of formatted timestamps, and of
// calendar questions about timestamps (to_date, days_between, year...),
// unless a function is given a zone. A local time skipped when clocks go
// forward is an error; one that happens twice when clocks go back is the
// earlier instant. now() and today() are fixed for the whole run
// (Spec.Now), so that a run can be replayed with the same result.
//
// # Functions
//
// The examples below hold with the mapping's zone Europe/Paris, now() at
// 2024-06-15 12:00:00 in Paris, a table gender with F -> 1 and M -> 2, and
// a parameter region = EMEA (they are run by a test). "fails:" shows the
// row error (or compile error, when the arguments are constants).
//
// Text (positions and lengths count characters, not bytes; case changes
// one character at a time, so ß has no upper case):
//
//	concat("a", 1, nil, true) == "a1true"
//	substr("Grüße", 3) == "üße"
//	substr("Grüße", 2, 3) == "rüß"
//	substr("hello", 0, 3) == "he"
//	truncate("Grüße", 3) == "Grü"
//	replace("a-b-c", "-", "+") == "a+b+c"
//	regexp_replace("tel: 06 12", "[^0-9]", "") == "0612"
//	upper("crème brûlée") == "CRÈME BRÛLÉE"
//	upper("ß") == "ß"
//	lower("ÀÉÎ") == "àéî"
//	trim("  a b  ") == "a b"
//	trim("xxaxx", "x") == "a"
//	ltrim("  a ") == "a "
//	rtrim(" a  ") == " a"
//	length("Grüße") == 5
//	lpad("7", 3, "0") == "007"
//	rpad("ab", 4) == "ab  "
//	split_part("a,b,c", ",", 2) == "b"
//	to_string(12.50) == "12.5"
//	to_string(to_date("2024-03-01")) == "2024-03-01"
//
// NULLs and codes:
//
//	coalesce(nil, "x", "y") == "x"
//	nullif("N/A", "N/A") == nil
//	nullif("x", "N/A") == "x"
//	is_null(nil) == true
//	translate("gender", "F") == "1"
//	translate("gender", "X", "?") == "?"
//	translate("gender", "X") fails: no entry for "X" in table "gender"
//	translate("gender", nil) == nil
//	params.region == "EMEA"
//	(nil ?? 5) == 5
//
// Numbers:
//
//	round(2.345, 2) == 2.35
//	round(1.005, 2) == 1.01
//	round(-2.5) == -3.0
//	round(1234, -2) == 1200
//	round(to_decimal("2.675"), 2) == to_decimal("2.68")
//	floor(-1.5) == -2.0
//	ceil(1.2) == 2.0
//	abs(-3) == 3
//	greatest(3, 7, nil, 5) == 7
//	least("b", "a") == "a"
//	7 / 2 == 3.5
//	7 % 3 == 1
//	to_decimal("0.1") + to_decimal("0.2") == to_decimal("0.3")
//	to_string(to_decimal("10.00") / 4) == "2.50"
//	to_string(to_decimal("1") / 3) == "0.33333333333333333333"
//	to_string(to_decimal("19.99") * 3) == "59.97"
//	to_int("42") == 42
//	to_int(-3.9) == -3
//	to_int("4x2") fails: "4x2" is not an integer
//	to_float("1e3") == 1000.0
//	to_decimal(2.5, 2) == to_decimal("2.50")
//	to_bool("yes") == true
//	1 / 0 fails: division by zero
//
// Dates and times:
//
//	parse_date("31/12/2024", "%d/%m/%Y") == to_date("2024-12-31")
//	parse_date("2024-02-30", "%Y-%m-%d") fails: day out of range
//	parse_timestamp("2024-03-10 14:30", "%Y-%m-%d %H:%M") == to_timestamp("2024-03-10T14:30:00+01:00")
//	parse_timestamp("2024-03-10 14:30", "%Y-%m-%d %H:%M", "UTC") == to_timestamp("2024-03-10T14:30:00Z")
//	parse_timestamp("2024-03-31 02:30", "%Y-%m-%d %H:%M") fails: does not exist in Europe/Paris
//	format_date(to_date("2024-03-05"), "%d %B %Y") == "05 March 2024"
//	format_timestamp(to_timestamp("2024-03-10T13:30:00Z"), "%Y-%m-%d %H:%M %z") == "2024-03-10 14:30 +0100"
//	format_timestamp(to_timestamp("2024-03-10T13:30:00Z"), "%H:%M", "America/New_York") == "09:30"
//	format_timestamp(to_timestamp("2024-03-10T13:30:00.25Z"), "rfc3339", "UTC") == "2024-03-10T13:30:00.25Z"
//	to_zone(to_timestamp("2024-03-10T13:30:00Z"), "Asia/Tokyo") == to_timestamp("2024-03-10T22:30:00+09:00")
//	format_timestamp(now(), "%F %T") == "2024-06-15 12:00:00"
//	today() == to_date("2024-06-15")
//	add_days(to_date("2024-02-28"), 2) == to_date("2024-03-01")
//	add_months(to_date("2024-01-31"), 1) == to_date("2024-02-29")
//	days_between(to_date("2024-01-01"), to_date("2024-03-01")) == 60
//	to_date("2024-03-01") - to_date("2024-01-01") == 60
//	age(to_date("2000-06-16")) == 23
//	age(to_date("2000-02-29"), to_date("2023-02-28")) == 22
//	year(to_date("2024-03-01")) == 2024
//	to_date(to_timestamp("2024-03-10T23:30:00Z")) == to_date("2024-03-11")
//	to_timestamp(to_date("2024-03-10")) == to_timestamp("2024-03-10T00:00:00+01:00")
//
// Hashes (lowercase hex of the text of the values, joined by "|" when
// there are several; bytes are hashed as they are):
//
//	sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
//	md5("abc") == "900150983cd24fb0d6963f7d28e17f72"
//	md5("a", 1) == md5("a|1")
//
// # User functions
//
// A Function is a named expression over its parameters, stored in the
// catalog and usable in any mapping: with full_name(first, last) defined as
// concat(first, " ", last), a field may be full_name(upper(last), first).
// Its body sees only its parameters (and params.NAME), may call built-ins
// and other user functions, and is checked on its own when compiled; a
// function that calls itself, directly or not, is refused. Calls are
// expanded in place, each argument computed once.
package transform
