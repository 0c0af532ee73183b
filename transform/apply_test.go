package transform

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func tradeRow(id int64, symbol any, price any, qty any, date any, amount any, code any) []any {
	return []any{id, symbol, price, qty, date, amount, code}
}

func mustCompile(t *testing.T, spec Spec) *Program {
	t.Helper()
	p, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestApplyRowErrors(t *testing.T) {
	d := day(2024, 3, 1)
	cases := []struct {
		name   string
		spec   Spec
		row    []any
		field  string
		filter bool
		reason string
	}{
		{
			name:   "bad date",
			spec:   Spec{Source: tradeSource, Fields: []FieldSpec{{"id", TypeInt, "trade_id"}, {"d", TypeDate, `parse_date(code, "%Y-%m-%d")`}}},
			row:    tradeRow(1, "A", 1.0, int64(1), d, "1", "2024-13-01"),
			field:  "d",
			reason: `parse_date: "2024-13-01" does not match layout "%Y-%m-%d": month out of range (at 1:1)`,
		},
		{
			name:   "division by zero",
			spec:   Spec{Source: tradeSource, Fields: []FieldSpec{{"avg", TypeFloat, "round(price / quantity, 2)"}}},
			row:    tradeRow(1, "A", 10.0, int64(0), d, "1", "x"),
			field:  "avg",
			reason: "division by zero (at 1:13)",
		},
		{
			name:   "integer overflow",
			spec:   Spec{Source: tradeSource, Fields: []FieldSpec{{"n", TypeInt, "trade_id * quantity"}}},
			row:    tradeRow(1<<62, "A", 10.0, int64(4), d, "1", "x"),
			field:  "n",
			reason: "integer overflow (at 1:10)",
		},
		{
			name:   "on the VM",
			spec:   Spec{Source: tradeSource, Fields: []FieldSpec{{"q", TypeFloat, "+price / (quantity - 1)"}}},
			row:    tradeRow(1, "A", 10.0, int64(1), d, "1", "x"),
			field:  "q",
			reason: "division by zero (at 1:8)",
		},
		{
			name:   "a result that does not fit",
			spec:   Spec{Source: tradeSource, Fields: []FieldSpec{{"q", TypeInt, `quantity ?? "none"`}}},
			row:    tradeRow(1, "A", 10.0, nil, d, "1", "x"),
			field:  "q",
			reason: `result "none" is string; the field is int`,
		},
		{
			name:   "inside a user function",
			spec:   Spec{Source: tradeSource, Fields: []FieldSpec{{"r", TypeFloat, "ratio(price, quantity)"}}, Functions: []Function{{Name: "ratio", Params: []string{"a", "b"}, Expr: "a / b"}}},
			row:    tradeRow(1, "A", 10.0, int64(0), d, "1", "x"),
			field:  "r",
			reason: "in function ratio: division by zero (at 1:1)",
		},
		{
			name:   "translation without entry",
			spec:   Spec{Source: tradeSource, Fields: []FieldSpec{{"g", TypeString, `translate("gender", code)`}}, Tables: map[string]map[string]string{"gender": {"F": "1"}}},
			row:    tradeRow(1, "A", 10.0, int64(0), d, "1", "Q"),
			field:  "g",
			reason: `translate: no entry for "Q" in table "gender" (at 1:1)`,
		},
		{
			name:   "filter",
			spec:   Spec{Source: tradeSource, Fields: []FieldSpec{{"id", TypeInt, "trade_id"}}, Filter: "100 / quantity > 1"},
			row:    tradeRow(1, "A", 10.0, int64(0), d, "1", "x"),
			filter: true,
			reason: "division by zero (at 1:5)",
		},
		{
			name:   "a source value that is not a decimal",
			spec:   Spec{Source: tradeSource, Fields: []FieldSpec{{"a", TypeDecimal, "amount * 2"}}},
			row:    tradeRow(1, "A", 10.0, int64(0), d, "12,5", "x"),
			reason: `source field "amount": bad decimal "12,5"`,
		},
		{
			name:   "a source value of the wrong Go type",
			spec:   Spec{Source: tradeSource, Fields: []FieldSpec{{"d", TypeString, `format_date(business_date, "%Y")`}}},
			row:    tradeRow(1, "A", 10.0, int64(0), "2024-03-01", "1", "x"),
			reason: `source field "business_date": a date field holds string`,
		},
		{
			name:   "a copy into another type",
			spec:   Spec{Source: tradeSource, Fields: []FieldSpec{{"p", TypeFloat, "quantity"}}},
			row:    tradeRow(1, "A", 10.0, "12", d, "1", "x"),
			field:  "p",
			reason: "an int field holds string",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, keep, err := eval(t, c.spec, c.row)
			if err == nil {
				t.Fatalf("no error: keep %v, out %v", keep, out)
			}
			var re *RowError
			if !errors.As(err, &re) {
				t.Fatalf("want *RowError, got %T %v", err, err)
			}
			if re.Field != c.field || re.Filter != c.filter || re.Reason != c.reason {
				t.Fatalf("got %+v\nwant field %q filter %v reason %q", re, c.field, c.filter, c.reason)
			}
			if keep {
				t.Fatal("a failed row is kept")
			}
		})
	}
}

func TestApplyFilter(t *testing.T) {
	d := day(2024, 3, 1)
	spec := Spec{
		Source: tradeSource,
		Fields: []FieldSpec{{"id", TypeInt, "trade_id"}},
		Filter: `quantity > to_int(params.min) and symbol != "X"`,
		Params: map[string]string{"min": "10"},
	}
	for _, c := range []struct {
		row  []any
		keep bool
	}{
		{tradeRow(1, "A", 1.0, int64(11), d, "1", "x"), true},
		{tradeRow(2, "A", 1.0, int64(10), d, "1", "x"), false},
		{tradeRow(3, "X", 1.0, int64(50), d, "1", "x"), false},
		{tradeRow(4, "A", 1.0, nil, d, "1", "x"), false},
		{tradeRow(5, nil, 1.0, int64(50), d, "1", "x"), true},
	} {
		out, keep, err := eval(t, spec, c.row)
		if err != nil {
			t.Fatal(err)
		}
		if keep != c.keep {
			t.Errorf("row %v: keep %v, want %v", c.row[0], keep, c.keep)
		}
		if keep && out[0] != c.row[0] {
			t.Errorf("row %v: out %v", c.row[0], out)
		}
	}
	t.Run("NULL drops", func(t *testing.T) {
		spec := Spec{Source: []Field{{"ok", TypeBool}}, Fields: []FieldSpec{{"ok", TypeBool, "ok"}}, Filter: "ok"}
		for _, c := range []struct {
			v    any
			keep bool
		}{{true, true}, {false, false}, {nil, false}} {
			_, keep, err := eval(t, spec, []any{c.v})
			if err != nil || keep != c.keep {
				t.Errorf("%v: keep %v err %v", c.v, keep, err)
			}
		}
	})
	t.Run("constant", func(t *testing.T) {
		for filter, keep := range map[string]bool{"true": true, "false": false, "1 > 2": false, "nil": false} {
			_, k, err := eval(t, Spec{Source: tradeSource, Fields: []FieldSpec{{"id", TypeInt, "trade_id"}}, Filter: filter}, tradeRow(1, "A", 1.0, int64(1), d, "1", "x"))
			if err != nil || k != keep {
				t.Errorf("filter %s: keep %v err %v", filter, k, err)
			}
		}
	})
}

func TestApplyCopiesConversionsConstants(t *testing.T) {
	d := day(2024, 3, 1)
	spec := Spec{
		Source: tradeSource,
		Fields: []FieldSpec{
			{"id", TypeInt, "trade_id"},
			{"id_f", TypeFloat, "trade_id"},
			{"id_d", TypeDecimal, "trade_id"},
			{"id_s", TypeString, "trade_id"},
			{"amount", TypeDecimal, "amount"},
			{"day", TypeDate, "business_date"},
			{"day_s", TypeString, "business_date"},
			{"k", TypeString, `concat("v", 2)`},
			{"none", TypeTimestamp, "nil"},
			{"when", TypeDate, `to_date("2024-01-31")`},
			{"name", TypeString, `$env["symbol"]`},
		},
	}
	out, keep, err := eval(t, spec, tradeRow(7, "AAPL", 1.5, int64(3), d, "-0.50", "x"))
	if err != nil || !keep {
		t.Fatal(keep, err)
	}
	want := []any{int64(7), 7.0, "7", "7", "-0.50", d, "2024-03-01", "v2", nil, day(2024, 1, 31), "AAPL"}
	if !sameValues(out, want) {
		t.Fatalf("got  %#v\nwant %#v", out, want)
	}
	out, _, err = eval(t, spec, tradeRow(8, nil, nil, nil, nil, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	want = []any{int64(8), 8.0, "8", "8", nil, nil, nil, "v2", nil, day(2024, 1, 31), nil}
	if !sameValues(out, want) {
		t.Fatalf("NULLs: got %#v\nwant %#v", out, want)
	}
}

func TestApplyLengths(t *testing.T) {
	p := mustCompile(t, Spec{Source: tradeSource, Fields: []FieldSpec{{"id", TypeInt, "trade_id"}}})
	th := p.NewThread()
	if _, err := th.Apply([]any{int64(1)}, make([]any, 1)); err == nil || !strings.Contains(err.Error(), "row has 1 values, source has 7 fields") {
		t.Fatalf("short row: %v", err)
	}
	if _, err := th.Apply(tradeRow(1, "A", 1.0, int64(1), nil, nil, nil), make([]any, 2)); err == nil || !strings.Contains(err.Error(), "output has 2 slots, mapping has 1 fields") {
		t.Fatalf("long out: %v", err)
	}
}

func TestApplyUserFunctions(t *testing.T) {
	spec := Spec{
		Source: []Field{{"first", TypeString}, {"last", TypeString}, {"n", TypeInt}},
		Fields: []FieldSpec{
			{"full", TypeString, "full_name(first, last)"},
			{"shout", TypeString, "full_name(upper(last), first)"},
			{"nested", TypeString, `initials(first, last) + "/" + to_string(twice(n + 1))`},
			{"shadow", TypeString, `let first = "x"; full_name(first, last)`},
		},
		Functions: []Function{
			{Name: "full_name", Params: []string{"first", "last"}, Expr: `concat(first, " ", last)`},
			{Name: "initials", Params: []string{"a", "b"}, Expr: `let x = substr(a, 1, 1); concat(x, substr(b, 1, 1))`},
			{Name: "twice", Params: []string{"v"}, Expr: "v + v"},
		},
	}
	out, _, err := eval(t, spec, []any{"Ada", "Lovelace", int64(4)})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"Ada Lovelace", "LOVELACE Ada", "AL/10", "x Lovelace"}
	if !sameValues(out, want) {
		t.Fatalf("got %#v, want %#v", out, want)
	}
}

// TestApplyDSTEdges: the same instant through zones around clock changes.
func TestApplyDSTEdges(t *testing.T) {
	spec := Spec{
		Source: []Field{{"ts", TypeTimestamp}, {"s", TypeString}},
		Fields: []FieldSpec{
			{"paris", TypeString, `format_timestamp(ts, "%F %T %Z")`},
			{"ny", TypeString, `format_timestamp(ts, "%F %T %Z", "America/New_York")`},
			{"parsed", TypeTimestamp, `parse_timestamp(s, "%F %T")`},
			{"next_day", TypeTimestamp, `add_days(to_zone(ts, "Europe/Paris"), 1)`},
			{"paris_day", TypeDate, `to_date(ts)`},
		},
		Location: paris,
	}
	for _, c := range []struct {
		ts     time.Time
		s      string
		want   []any
		reason string
	}{
		// Before and after the spring change in Paris (02:00 -> 03:00 on 31 March).
		{utc(2024, 3, 31, 0, 59, 59), "2024-03-31 01:59:59", []any{"2024-03-31 01:59:59 CET", "2024-03-30 20:59:59 EDT",
			utc(2024, 3, 31, 0, 59, 59).In(paris), time.Date(2024, 4, 1, 1, 59, 59, 0, paris), day(2024, 3, 31)}, ""},
		{utc(2024, 3, 31, 1, 0, 0), "2024-03-31 03:00:00", []any{"2024-03-31 03:00:00 CEST", "2024-03-30 21:00:00 EDT",
			utc(2024, 3, 31, 1, 0, 0).In(paris), time.Date(2024, 4, 1, 3, 0, 0, 0, paris), day(2024, 3, 31)}, ""},
		{utc(2024, 3, 31, 1, 0, 0), "2024-03-31 02:00:00", nil, "local time 2024-03-31 02:00:00 does not exist in Europe/Paris"},
		// The autumn change (03:00 -> 02:00 on 27 October): 02:30 happens twice.
		{utc(2024, 10, 27, 1, 30, 0), "2024-10-27 02:30:00", []any{"2024-10-27 02:30:00 CET", "2024-10-26 21:30:00 EDT",
			utc(2024, 10, 27, 0, 30, 0).In(paris), time.Date(2024, 10, 28, 2, 30, 0, 0, paris), day(2024, 10, 27)}, ""},
		// Midnight UTC is already the next day in Paris.
		{utc(2024, 12, 31, 23, 30, 0), "2025-01-01 00:30:00", []any{"2025-01-01 00:30:00 CET", "2024-12-31 18:30:00 EST",
			utc(2024, 12, 31, 23, 30, 0).In(paris), time.Date(2025, 1, 2, 0, 30, 0, 0, paris), day(2025, 1, 1)}, ""},
	} {
		out, _, err := eval(t, spec, []any{c.ts, c.s})
		if c.reason != "" {
			requireRowError(t, err, "parsed", c.reason)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !sameValues(out, c.want) {
			t.Errorf("%v %s:\n got  %v\n want %v", c.ts, c.s, out, c.want)
		}
	}
}

// TestApplyConcurrentThreads: threads of one program do not share state
// (run with -race).
func TestApplyConcurrentThreads(t *testing.T) {
	p := mustCompile(t, Spec{
		Source: tradeSource,
		Fields: []FieldSpec{
			{"sym", TypeString, "upper(symbol)"},
			{"n", TypeDecimal, "round(amount * quantity, 2)"},
			{"d", TypeString, `format_date(add_days(business_date, quantity), "%F")`},
			{"v", TypeString, `let k = concat(symbol, "-", quantity); k + "/" + k`},
			{"r", TypeInt, "+quantity"},
		},
		Filter: "quantity % 7 != 0",
	})
	const threads, rows = 4, 2000
	var wg sync.WaitGroup
	errs := make(chan error, threads)
	for g := 0; g < threads; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			th := p.NewThread()
			out := make([]any, 5)
			for i := 0; i < rows; i++ {
				q := int64(i + g)
				sym := fmt.Sprintf("s%d", g)
				keep, err := th.Apply(tradeRow(int64(i), sym, 1.0, q, day(2024, 1, 1), "0.125", "x"), out)
				if err != nil {
					errs <- err
					return
				}
				if keep != (q%7 != 0) {
					errs <- fmt.Errorf("thread %d row %d: keep %v", g, i, keep)
					return
				}
				if !keep {
					continue
				}
				k := fmt.Sprintf("%s-%d", sym, q)
				want := []any{strings.ToUpper(sym), roundDec(q), day(2024, 1, 1).AddDate(0, 0, int(q)).Format("2006-01-02"), k + "/" + k, q}
				if !sameValues(out, want) {
					errs <- fmt.Errorf("thread %d row %d: got %v want %v", g, i, out, want)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func roundDec(q int64) string {
	d, _ := parseDecimal("0.125")
	m, _ := d.mul(decFromInt(q))
	return m.round(2).String()
}

// TestApplyAllocations: evaluating (as opposed to producing new values)
// allocates nothing, on closures and on the VM: no per-row maps, argument
// slices or boxed dates.
func TestApplyAllocations(t *testing.T) {
	spec := Spec{
		Source: tradeSource,
		Fields: []FieldSpec{
			{"id", TypeInt, "trade_id"},
			{"odd", TypeBool, "quantity % 2 == 1 and symbol startsWith 'A'"},
			{"nul", TypeBool, "is_null(price) or price > 100.5"},
			{"days", TypeInt, `days_between(add_days(business_date, 1), to_date("2024-03-10"))`},
			{"amount", TypeDecimal, "amount"},
		},
		Filter: `quantity > 0 and symbol != "X" and business_date < to_date("2030-01-01")`,
	}
	row := tradeRow(1, "AAPL", 99.0, int64(3), day(2024, 3, 1), "1.5", "x")
	for _, vmOnly := range []bool{false, true} {
		p, err := compile(spec, vmOnly)
		if err != nil {
			t.Fatal(err)
		}
		th := p.NewThread()
		out := make([]any, len(p.Output()))
		if keep, err := th.Apply(row, out); !keep || err != nil {
			t.Fatal(keep, err)
		}
		if out[1] != true || out[2] != false || out[3] != int64(8) {
			t.Fatalf("out %v", out)
		}
		if n := testing.AllocsPerRun(200, func() { th.Apply(row, out) }); n != 0 {
			t.Errorf("vmOnly=%v: %v allocations per row", vmOnly, n)
		}
	}
}
