package transform

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// fuzzSeeds are expressions of every kind, from the documentation and the
// tables of tests.
func fuzzSeeds() []string {
	seeds := []string{
		"upper(s)", "round(f * i, 2)", `format_date(day, "%Y-%m-%d")`, "d * 2 + 0.1",
		"let x = i; x + x", "i > 0 and s contains 'e'", "ns ?? 'x'", "code in ['F', 'M']",
		`translate("gender", code, "?")`, "params.region", `$env["s"]`, "1..3", "+f", "-d",
		`parse_timestamp(s, "%F %T", "Europe/Paris")`, "age(dob, day)", "sha256(s, i, bin)",
		"if b { 1 } else { 2 }", "b ? s : u", "not nb", "i / zero", "big + 1",
		`regexp_replace(u, "[a-z]", "")`, "coalesce(ni, neg, 0)", "greatest(day, nday)",
		"ts - ts", "day - dob", "add_months(ts, i)", "substr(u, neg, i)", "to_decimal(s)",
		"1 < i < 50", "s | upper() | lower()", "i in 1..50", "0 < f(i) < 2", "{a: 1}", "s[1:2]", "s.x", "#", "map(s, #)", "1 +", `"unterminated`, "((((", "a b c",
	}
	if src, err := os.ReadFile("doc.go"); err == nil {
		for _, line := range strings.Split(string(src), "\n") {
			if ex, ok := strings.CutPrefix(line, "//\t"); ok {
				ex, _, _ = strings.Cut(ex, " fails: ")
				seeds = append(seeds, ex)
			}
		}
	}
	return seeds
}

// FuzzCompile: any text compiles or gives CompileErrors, never a panic or
// an internal error; what compiles runs on testRow, with the same result
// on the closures and on the VM.
func FuzzCompile(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s, uint8(0))
	}
	types := []Type{TypeString, TypeInt, TypeFloat, TypeDecimal, TypeBool, TypeDate, TypeTimestamp, TypeBytes}
	f.Fuzz(func(t *testing.T, expr string, k uint8) {
		typ := types[int(k)%len(types)]
		spec := testSpec(FieldSpec{Name: "x", Type: typ, Expr: expr})
		spec.Functions = []Function{{Name: "f", Params: []string{"a"}, Expr: expr}}
		if k >= 128 {
			spec.Filter = expr
			spec.Fields[0].Expr = "s"
			spec.Fields[0].Type = TypeString
		}
		p, err := Compile(spec)
		if err != nil {
			errs := CompileErrors(err)
			if len(errs) == 0 {
				t.Fatalf("error without CompileError: %T %v", err, err)
			}
			for _, e := range errs {
				if strings.Contains(e.Reason, "internal") || e.Reason == "" {
					t.Fatalf("%q: %v", expr, e)
				}
				if e.Line < 0 || e.Column < 0 || (e.Line == 0) != (e.Column == 0) {
					t.Fatalf("%q: bad position %d:%d", expr, e.Line, e.Column)
				}
			}
			return
		}
		if len(p.Output()) != 1 {
			t.Fatalf("output %v", p.Output())
		}
		_, _, err = eval(t, spec, testRow())
		checkRowError(t, expr, err)
	})
}

func checkRowError(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var re *RowError
	if !errors.As(err, &re) {
		t.Fatalf("%q: want a *RowError, got %T %v", what, err, err)
	}
	if strings.Contains(re.Reason, "internal error") {
		t.Fatalf("%q: %v", what, re)
	}
}

// fuzzProgram uses most functions over every source field.
var fuzzFields = []FieldSpec{
	{"a", TypeString, "concat(upper(s), lower(u), trim(s), substr(u, i, neg), truncate(s, i % 5))"},
	{"b", TypeString, `replace(s, u, code) + lpad(u, i % 20, s) + split_part(s, u, (i % 3) + 1)`},
	{"c", TypeFloat, "round(f * i, neg % 4) + floor(f) - ceil(f / 3) + abs(f) + to_float(d)"},
	{"d", TypeDecimal, "round(d * i + d / 3 - d % 2, 2)"},
	{"e", TypeInt, "to_int(f) + i % 7 + length(u) + days_between(day, dob)"},
	{"f", TypeString, `format_timestamp(ts, "%F %T %z", "America/New_York") + format_date(add_days(day, i % 1000), "%d/%m/%Y")`},
	{"g", TypeDate, `parse_date(s, "%Y-%m-%d")`},
	{"h", TypeTimestamp, `parse_timestamp(u, "%Y-%m-%d %H:%M", "Europe/Paris")`},
	{"i", TypeInt, "age(dob, day) + year(ts) + month(day)"},
	{"j", TypeString, `translate("gender", code, s) + sha256(s, i, bin) + md5(bin)`},
	{"k", TypeBool, `b and s contains u or i > f and d >= 0 and day < to_date("2100-01-01")`},
	{"l", TypeString, `coalesce(ns, s) + to_string(nullif(i, neg)) + (b ? "y" : "n")`},
	{"m", TypeDecimal, "to_decimal(s)"},
	{"n", TypeInt, "to_int(s)"},
	{"o", TypeDate, "to_date(u)"},
	{"p", TypeBool, "to_bool(s)"},
	{"q", TypeTimestamp, "to_timestamp(s)"},
	{"r", TypeString, `regexp_replace(s, "[0-9]+", u)`},
	{"s", TypeInt, "i * neg + big - i"},
	{"t", TypeString, "s"},
	{"u", TypeFloat, "i"},
}

// FuzzApply: a fixed program over arbitrary row values (NULLs, wrong Go
// types, odd text) never panics, fails only with RowErrors and agrees
// between closures and VM.
func FuzzApply(f *testing.F) {
	f.Add("Hello", "Grüße", int64(42), int64(-7), 2.5, "12.345", true, int64(0), uint32(0), uint8(0), []byte("abc"))
	f.Add("2024-02-29", "2024-03-31 02:30", int64(1<<62), int64(3), math.NaN(), "1e5", false, int64(1e12), uint32(0xffff), uint8(3), []byte{})
	f.Add("", "", int64(math.MinInt64), int64(-1), math.Inf(1), "-0.000", false, int64(-1e15), uint32(0x5555), uint8(200), []byte(nil))
	f.Add("true", "F", int64(0), int64(0), -0.0, "abc", true, int64(86400*365*3000), uint32(1<<20), uint8(17), []byte("x"))
	f.Fuzz(func(t *testing.T, s, u string, i, neg int64, fl float64, dec string, b bool, secs int64, nulls uint32, wrong uint8, bin []byte) {
		ts := time.Unix(secs%(1<<40), 0).UTC()
		row := testRow()
		row[0], row[1], row[4], row[5], row[8], row[10], row[12], row[16], row[18], row[19] = s, u, i, neg, fl, dec, b, ts, bin, u
		row[14] = time.Date(ts.Year(), ts.Month(), ts.Day(), 0, 0, 0, 0, time.UTC)
		for k := range row {
			if nulls&(1<<k) != 0 {
				row[k] = nil
			}
		}
		if wrong >= 128 {
			row[int(wrong)%len(row)] = struct{ x int }{1}
		} else if wrong >= 64 {
			k := int(wrong) % len(row)
			row[k], row[(k+1)%len(row)] = row[(k+1)%len(row)], row[k]
		}
		spec := testSpec(fuzzFields...)
		spec.Filter = "i % 11 != 5 or is_null(s)"
		_, _, err := eval(t, spec, row)
		checkRowError(t, "row", err)
	})
}
