package transform

import (
	"errors"
	"strings"
	"testing"
)

var tradeSource = []Field{
	{"trade_id", TypeInt}, {"symbol", TypeString}, {"price", TypeFloat}, {"quantity", TypeInt},
	{"business_date", TypeDate}, {"amount", TypeDecimal}, {"code", TypeString},
}

func compileOne(expr string, typ Type) error {
	_, err := Compile(Spec{
		Source: tradeSource,
		Fields: []FieldSpec{{Name: "x", Type: typ, Expr: expr}},
		Tables: map[string]map[string]string{"gender": {"F": "1"}},
		Params: map[string]string{"region": "EMEA"},
		Functions: []Function{
			{Name: "twice", Params: []string{"v"}, Expr: "v * 2"},
			{Name: "full_name", Params: []string{"first", "last"}, Expr: `concat(first, " ", last)`},
		},
	})
	return err
}

func onlyError(t *testing.T, err error) *CompileError {
	t.Helper()
	if err == nil {
		t.Fatal("compiled, want an error")
	}
	errs := CompileErrors(err)
	if len(errs) != 1 {
		t.Fatalf("want one CompileError, got %d: %v", len(errs), err)
	}
	return errs[0]
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		expr   string
		typ    Type
		line   int
		column int
		reason string
	}{
		// Unknown names.
		{"prise * 2", TypeFloat, 1, 1, `unknown source field "prise"; did you mean "price"?`},
		{"round(price *\n  quantiti, 2)", TypeFloat, 2, 3, `unknown source field "quantiti"; did you mean "quantity"?`},
		{"zzz", TypeString, 1, 1, `unknown source field "zzz"`},
		{`$env["no such"]`, TypeString, 1, 5, `unknown source field "no such"`},
		{"upper", TypeString, 1, 1, `unknown source field "upper" (upper is a function: call it with parentheses)`},
		{"frobnicate(price)", TypeFloat, 1, 1, `unknown function "frobnicate"`},
		{"uper(symbol)", TypeString, 1, 1, `unknown function "uper"; did you mean "upper"?`},
		{"filter(symbol, true)", TypeString, 1, 1, `unknown function "filter"`},
		{"params.nope", TypeString, 1, 8, `unknown parameter "nope" (known: region)`},
		{`translate("genre", code)`, TypeString, 1, 11, `unknown translation table "genre" (known: gender)`},
		{`translate(code, code)`, TypeString, 1, 11, `translate: the table must be a quoted name`},
		// Syntax.
		{"upper(symbol", TypeString, 1, 12, "unexpected token EOF"},
		{"price *", TypeFloat, 1, 7, "unexpected token EOF"},
		{"price ** * 2", TypeFloat, 1, 10, `unexpected token Operator("*")`},
		{`"unterminated`, TypeString, 1, 14, "literal not terminated"},
		// Types.
		{"upper(symbol)", TypeInt, 1, 1, "expression is string, field is int (use to_int)"},
		{"price * quantity", TypeInt, 1, 1, "expression is float, field is int (use round or to_int)"},
		{"price", TypeDecimal, 1, 1, "expression is float, field is decimal (use to_decimal)"},
		{"business_date", TypeTimestamp, 1, 1, "expression is date, field is timestamp (use to_timestamp)"},
		{"now()", TypeDate, 1, 1, "expression is timestamp, field is date (use to_date)"},
		{"symbol", TypeBool, 1, 1, "expression is string, field is bool (use to_bool)"},
		{"upper(price)", TypeString, 1, 1, "upper: argument 1 must be string, got float"},
		{"symbol * 2", TypeString, 1, 8, "invalid operation: string * int"},
		{"symbol + 1", TypeString, 1, 8, "invalid operation: string + int (use concat to join values as text)"},
		{"price > symbol", TypeBool, 1, 7, "invalid operation: float > string (mismatched types)"},
		{"quantity == 'x'", TypeBool, 1, 10, "invalid operation: int == string (mismatched types)"},
		{"price ? 1 : 2", TypeInt, 1, 1, "condition is float; it must be bool"},
		{"not symbol", TypeBool, 1, 5, "condition is string; it must be bool"},
		{"-symbol", TypeString, 1, 1, "invalid operation: -string"},
		{"round()", TypeFloat, 1, 1, "round takes 1 to 2 arguments, got 0"},
		{"upper(symbol, symbol)", TypeString, 1, 1, "upper takes 1 argument, got 2"},
		{"coalesce(symbol, price)", TypeString, 1, 1, "coalesce: arguments of different types: string and float"},
		{"business_date + 1", TypeDate, 1, 15, "invalid operation: date + int"},
		// Constants are computed, and checked, at compile time.
		{`to_int("x1")`, TypeInt, 1, 1, `to_int: "x1" is not an integer`},
		{"1 / 0", TypeFloat, 1, 3, "division by zero"},
		{`format_date(business_date, "%Q")`, TypeString, 1, 28, `format_date: layout "%Q": unknown directive %Q`},
		{`format_date(business_date, "%Y 1")`, TypeString, 1, 28, `literal text contains characters that read as date elements`},
		{`format_date(business_date, "%S%f")`, TypeString, 1, 28, `%f must follow a '.' or ','`},
		{`to_zone(now(), "Mars/Olympus")`, TypeTimestamp, 1, 16, `to_zone: unknown time zone "Mars/Olympus"`},
		{`symbol matches "("`, TypeBool, 1, 16, "matches: bad regular expression"},
		// User functions at the call.
		{"twice(symbol)", TypeString, 1, 1, "in function twice: invalid operation: string * int"},
		{"full_name(symbol)", TypeString, 1, 1, "full_name takes 2 arguments, got 1"},
		// Forms that are not supported.
		{"symbol.length", TypeString, 1, 8, `member access with . or [] is not supported`},
		{"{a: 1}", TypeString, 1, 1, "maps {...} are not supported"},
		{"symbol[0:2]", TypeString, 1, 7, "slices [a:b] are not supported (use substr)"},
		{"$env", TypeString, 1, 1, `$env can only be used as $env["field name"]`},
		{"let x = 1; x(2)", TypeInt, 1, 12, `"x" is a variable, not a function`},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			ce := onlyError(t, compileOne(c.expr, c.typ))
			if ce.Field != "x" || ce.Filter || ce.Function != "" {
				t.Errorf("error is about %q/%v/%q, want field x", ce.Field, ce.Filter, ce.Function)
			}
			if ce.Line != c.line || ce.Column != c.column || !strings.Contains(ce.Reason, c.reason) {
				t.Errorf("got (%d:%d) %q\nwant (%d:%d) %q", ce.Line, ce.Column, ce.Reason, c.line, c.column, c.reason)
			}
		})
	}
}

// TestCompileAccepts: expressions that must compile (some once did not).
func TestCompileAccepts(t *testing.T) {
	for _, c := range []struct {
		expr string
		typ  Type
	}{
		{`symbol contains "%Y"`, TypeBool},
		{`symbol startsWith "Mon"`, TypeBool},
		{"quantity", TypeFloat},
		{"quantity", TypeDecimal},
		{"price", TypeString},
		{"business_date", TypeString},
		{"amount * price", TypeDecimal},
		{"nil", TypeDate},
		{"coalesce(quantity, 1.5)", TypeFloat},
		{"coalesce(amount, 0)", TypeDecimal},
		{"twice(price) + twice(quantity)", TypeFloat},
		{`full_name(upper(symbol), full_name(code, "x"))`, TypeString},
		{"let q = quantity * 2; q + q", TypeInt},
		{"quantity in 1..10", TypeBool},
		{`$env["price"] * 2`, TypeFloat},
		{"price ** 2", TypeFloat},
		{"+price", TypeFloat},
		{"params.region", TypeString},
	} {
		if err := compileOne(c.expr, c.typ); err != nil {
			t.Errorf("%s into %s: %v", c.expr, c.typ, err)
		}
	}
}

func TestCompileFilterErrors(t *testing.T) {
	for _, c := range []struct {
		filter       string
		line, column int
		reason       string
	}{
		{"price * 2", 1, 1, "the filter is float; it must be bool"},
		{"symbol", 1, 1, "the filter is string; it must be bool"},
		{"quantity > prise", 1, 12, `unknown source field "prise"; did you mean "price"?`},
		{"quantity >", 1, 10, "unexpected token EOF"},
	} {
		_, err := Compile(Spec{Source: tradeSource, Fields: []FieldSpec{{"id", TypeInt, "trade_id"}}, Filter: c.filter})
		ce := onlyError(t, err)
		if !ce.Filter || ce.Field != "" || ce.Line != c.line || ce.Column != c.column || !strings.Contains(ce.Reason, c.reason) {
			t.Errorf("%s: got %+v, want filter (%d:%d) %q", c.filter, ce, c.line, c.column, c.reason)
		}
		if !strings.HasPrefix(ce.Error(), "filter (") {
			t.Errorf("message %q does not name the filter", ce.Error())
		}
	}
}

func TestCompileFunctionErrors(t *testing.T) {
	compileFns := func(fns []Function, expr string) error {
		_, err := Compile(Spec{Source: tradeSource, Fields: []FieldSpec{{"x", TypeString, expr}}, Functions: fns})
		return err
	}
	t.Run("recursion", func(t *testing.T) {
		err := compileFns([]Function{
			{Name: "a", Params: []string{"x"}, Expr: "concat(x, b(x))"},
			{Name: "b", Params: []string{"x"}, Expr: "upper(a(x))"},
			{Name: "self", Params: []string{"x"}, Expr: "self(x)"},
			{Name: "fine", Params: []string{"x"}, Expr: "lower(x)"},
		}, "fine(symbol)")
		errs := CompileErrors(err)
		if len(errs) != 3 {
			t.Fatalf("want 3 errors, got %v", err)
		}
		want := map[string]*CompileError{
			"a":    {Function: "a", Line: 1, Column: 11, Reason: "recursive function: a -> b -> a"},
			"b":    {Function: "b", Line: 1, Column: 7, Reason: "recursive function: a -> b -> a"},
			"self": {Function: "self", Line: 1, Column: 1, Reason: "recursive function: self -> self"},
		}
		for _, e := range errs {
			w := want[e.Function]
			if w == nil || *w != *e {
				t.Errorf("got %+v, want %+v", e, w)
			}
		}
	})
	t.Run("a call of a recursive function", func(t *testing.T) {
		err := compileFns([]Function{{Name: "self", Params: []string{"x"}, Expr: "self(x)"}}, "self(symbol)")
		errs := CompileErrors(err)
		if len(errs) != 2 || errs[1].Field != "x" || errs[1].Reason != `function "self" is not valid (see its own error)` {
			t.Fatalf("got %v", err)
		}
	})
	for _, c := range []struct {
		fn           Function
		line, column int
		reason       string
	}{
		{Function{Name: "f", Params: []string{"a"}, Expr: "a + b"}, 1, 5, `unknown name "b" (a function sees only its parameters)`},
		{Function{Name: "f", Params: []string{"a"}, Expr: "a + symbol"}, 1, 5, `unknown name "symbol" (a function sees only its parameters)`},
		{Function{Name: "f", Params: []string{"a"}, Expr: "upper(a"}, 1, 7, "unexpected token EOF"},
		{Function{Name: "f", Params: []string{"a"}, Expr: "upper(1)"}, 1, 1, "upper: argument 1 must be string, got int"},
		{Function{Name: "f", Params: []string{"a"}, Expr: "nope(a)"}, 1, 1, `unknown function "nope"`},
		{Function{Name: "upper", Params: []string{"a"}, Expr: "a"}, 0, 0, "a built-in function has this name"},
		{Function{Name: "f-g", Params: []string{"a"}, Expr: "a"}, 0, 0, `name "f-g" is not an identifier`},
		{Function{Name: "f", Params: []string{"a", "a"}, Expr: "a"}, 0, 0, `parameter "a" appears twice`},
		{Function{Name: "f", Params: []string{"params"}, Expr: "1"}, 0, 0, `parameter name "params" is reserved`},
		{Function{Name: "f", Params: []string{"a"}, Expr: " "}, 0, 0, "empty expression"},
	} {
		t.Run(c.fn.Expr, func(t *testing.T) {
			ce := onlyError(t, compileFns([]Function{c.fn}, "symbol"))
			if ce.Function != c.fn.Name || ce.Field != "" || ce.Line != c.line || ce.Column != c.column || !strings.Contains(ce.Reason, c.reason) {
				t.Errorf("got %+v, want function %s (%d:%d) %q", ce, c.fn.Name, c.line, c.column, c.reason)
			}
		})
	}
}

func TestCompileSpecErrors(t *testing.T) {
	for _, c := range []struct {
		spec   Spec
		field  string
		reason string
	}{
		{Spec{Source: []Field{{"a", TypeInt}, {"a", TypeInt}}}, "", `source field "a" appears twice`},
		{Spec{Source: []Field{{"a", "money"}}}, "", `source field "a" has unknown type "money"`},
		{Spec{Source: []Field{{"", TypeInt}}}, "", "source field 1 has no name"},
		{Spec{Source: tradeSource, Fields: []FieldSpec{{"x", TypeInt, "1"}, {"x", TypeInt, "2"}}}, "x", "target field appears twice"},
		{Spec{Source: tradeSource, Fields: []FieldSpec{{"x", "money", "1"}}}, "x", `unknown type "money"`},
		{Spec{Source: tradeSource, Fields: []FieldSpec{{"x", TypeInt, "  "}}}, "x", "empty expression"},
		{Spec{Source: tradeSource, Fields: []FieldSpec{{"", TypeInt, "1"}}}, "", "target field 1 has no name"},
	} {
		ce := onlyError(t, func() error { _, err := Compile(c.spec); return err }())
		if ce.Field != c.field || ce.Line != 0 || !strings.Contains(ce.Reason, c.reason) {
			t.Errorf("got %+v, want field %q %q", ce, c.field, c.reason)
		}
	}
}

// TestCompileErrorsJoined: every bad expression is reported, in order,
// and nothing is compiled.
func TestCompileErrorsJoined(t *testing.T) {
	p, err := Compile(Spec{
		Source: tradeSource,
		Fields: []FieldSpec{
			{"a", TypeString, "upper(symbol)"},
			{"b", TypeInt, "prise"},
			{"c", TypeString, "upper(symbol"},
			{"d", TypeInt, "symbol"},
		},
		Filter: "price",
	})
	if p != nil {
		t.Fatal("a program was returned with errors")
	}
	errs := CompileErrors(err)
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		`filter (1:1): the filter is float; it must be bool`,
		`field "b" (1:1): unknown source field "prise"; did you mean "price"?`,
		`field "c" (1:12): unexpected token EOF`,
		`field "d" (1:1): expression is string, field is int (use to_int)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, e := range errs {
		if !errors.Is(err, e) {
			t.Errorf("%v is not in the joined error", e)
		}
	}
}

func TestProgramOutput(t *testing.T) {
	p, err := Compile(Spec{Source: tradeSource, Fields: []FieldSpec{
		{"id", TypeInt, "trade_id"}, {"sym", TypeString, "upper(symbol)"}, {"n", TypeFloat, "price * quantity"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Field{{"id", TypeInt}, {"sym", TypeString}, {"n", TypeFloat}}
	got := p.Output()
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	got[0].Name = "changed"
	if p.Output()[0].Name != "id" {
		t.Fatal("Output shares its slice with the program")
	}
	if len(p.Source()) != len(tradeSource) {
		t.Fatal("Source is wrong")
	}
}
