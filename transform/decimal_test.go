package transform

import (
	"math"
	"strings"
	"testing"
)

func dec(t *testing.T, s string) decimal {
	t.Helper()
	d, err := parseDecimal(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestParseDecimal(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0", "-0": "0", "007": "7", "-12.340": "-12.340", "+1.5": "1.5", ".5": "0.5", "5.": "5",
		" 42 ": "42", "1e3": "1000", "1.25E-2": "0.0125", "-1.5e1": "-15", "0.000": "0.000",
		"123456789012345678901234567890.000000000000000000001": "123456789012345678901234567890.000000000000000000001",
	} {
		d, err := parseDecimal(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if d.String() != want {
			t.Errorf("%q: got %s, want %s", in, d, want)
		}
	}
	for _, bad := range []string{"", " ", "-", ".", "1.2.3", "1,5", "abc", "1e", "1e+", "0x10", "1_000", "--1", "1e5000", "1e-5000", "NaN", "Inf", strings.Repeat("9", 2001)} {
		if d, err := parseDecimal(bad); err == nil {
			t.Errorf("%q parsed as %s", bad, d)
		}
	}
}

func TestDecimalArithmetic(t *testing.T) {
	type op func(a, b decimal) (decimal, error)
	ops := map[string]op{"+": decimal.add, "-": decimal.sub, "*": decimal.mul, "/": decimal.quo, "%": decimal.rem}
	for _, c := range []struct{ a, op, b, want string }{
		{"0.1", "+", "0.2", "0.3"},
		{"1.10", "+", "2.205", "3.305"},
		{"-1.5", "+", "1.5", "0.0"},
		{"1", "-", "0.001", "0.999"},
		{"19.99", "*", "3", "59.97"},
		{"-0.5", "*", "0.5", "-0.25"},
		{"1.20", "*", "1.5", "1.800"},
		{"1", "/", "3", "0.33333333333333333333"},
		{"2", "/", "3", "0.66666666666666666667"},
		{"-2", "/", "3", "-0.66666666666666666667"},
		{"2", "/", "-3", "-0.66666666666666666667"},
		{"10.00", "/", "4", "2.50"},
		{"1", "/", "0.5", "2"},
		{"7.5", "/", "2.5", "3.0"},
		{"1", "/", "8", "0.125"},
		{"7", "/", "7", "1"},
		{"1", "/", "0.00000000000000000000001", "100000000000000000000000"},
		{"7.5", "%", "2", "1.5"},
		{"-7.5", "%", "2", "-1.5"},
		{"7", "%", "-2.5", "2.0"},
	} {
		got, err := ops[c.op](dec(t, c.a), dec(t, c.b))
		if err != nil {
			t.Errorf("%s %s %s: %v", c.a, c.op, c.b, err)
			continue
		}
		if got.String() != c.want {
			t.Errorf("%s %s %s = %s, want %s", c.a, c.op, c.b, got, c.want)
		}
	}
	if _, err := dec(t, "1").quo(dec(t, "0.00")); err != errDivisionByZero {
		t.Errorf("1/0: %v", err)
	}
	if _, err := dec(t, "1").rem(dec(t, "0")); err != errDivisionByZero {
		t.Errorf("1%%0: %v", err)
	}
	big := dec(t, "9"+strings.Repeat("9", 1500))
	if _, err := big.mul(big); err == nil {
		t.Error("a product of 3000 digits is accepted")
	}
}

func TestDecimalRoundingAndConversions(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"2.345", 2, "2.35"}, {"-2.345", 2, "-2.35"}, {"2.344", 2, "2.34"}, {"2.5", 0, "3"}, {"-2.5", 0, "-3"},
		{"1250", -2, "1300"}, {"-1250", -2, "-1300"}, {"1249.99", -2, "1200"}, {"0.5", 3, "0.500"}, {"99.995", 2, "100.00"},
	} {
		if got := dec(t, c.in).round(c.n).String(); got != c.want {
			t.Errorf("round(%s, %d) = %s, want %s", c.in, c.n, got, c.want)
		}
	}
	for in, want := range map[string][2]string{"1.5": {"1", "2"}, "-1.5": {"-2", "-1"}, "3": {"3", "3"}, "-0.001": {"-1", "0"}} {
		d := dec(t, in)
		if d.floor().String() != want[0] || d.ceil().String() != want[1] {
			t.Errorf("floor/ceil(%s) = %s/%s, want %v", in, d.floor(), d.ceil(), want)
		}
	}
	if c := dec(t, "1.50").cmp(dec(t, "1.5")); c != 0 {
		t.Errorf("1.50 vs 1.5: %d", c)
	}
	if c := dec(t, "-2").cmp(dec(t, "1.999")); c != -1 {
		t.Errorf("-2 vs 1.999: %d", c)
	}
	if i, err := dec(t, "-12.9").toInt(); err != nil || i != -12 {
		t.Errorf("toInt(-12.9) = %d %v", i, err)
	}
	if _, err := dec(t, "9223372036854775808").toInt(); err == nil {
		t.Error("2^63 fits an int")
	}
	for f, want := range map[float64]string{0.1: "0.1", 1e-7: "0.0000001", 1e21: "1000000000000000000000", -2.5: "-2.5", 123456.789: "123456.789"} {
		d, err := decFromFloat(f)
		if err != nil || d.String() != want {
			t.Errorf("decFromFloat(%v) = %s %v, want %s", f, d, err, want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := decFromFloat(f); err == nil {
			t.Errorf("decFromFloat(%v) accepted", f)
		}
	}
}
