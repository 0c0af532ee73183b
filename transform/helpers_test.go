package transform

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	paris   = mustZone("Europe/Paris")
	testNow = time.Date(2024, 6, 15, 10, 0, 0, 0, time.UTC) // 12:00 in Paris
)

func mustZone(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// testSource is the schema of testRow, which the built-in tables use so
// that their expressions are computed per row, not folded at compile time.
var testSource = []Field{
	{"s", TypeString},      // "Hello"
	{"u", TypeString},      // "Grüße"
	{"empty", TypeString},  // ""
	{"ns", TypeString},     // NULL
	{"i", TypeInt},         // 42
	{"neg", TypeInt},       // -7
	{"zero", TypeInt},      // 0
	{"ni", TypeInt},        // NULL
	{"f", TypeFloat},       // 2.5
	{"nf", TypeFloat},      // NULL
	{"d", TypeDecimal},     // "12.345"
	{"nd", TypeDecimal},    // NULL
	{"b", TypeBool},        // true
	{"nb", TypeBool},       // NULL
	{"day", TypeDate},      // 2024-02-29
	{"nday", TypeDate},     // NULL
	{"ts", TypeTimestamp},  // 2024-03-10T13:30:00Z
	{"nts", TypeTimestamp}, // NULL
	{"bin", TypeBytes},     // "abc"
	{"code", TypeString},   // "F"
	{"big", TypeInt},       // MaxInt64
	{"dob", TypeDate},      // 2000-02-29
}

func testRow() []any {
	return []any{
		"Hello", "Grüße", "", nil,
		int64(42), int64(-7), int64(0), nil,
		2.5, nil,
		"12.345", nil,
		true, nil,
		time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), nil,
		time.Date(2024, 3, 10, 13, 30, 0, 0, time.UTC), nil,
		[]byte("abc"), "F", int64(1<<63 - 1),
		time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC),
	}
}

func testSpec(fields ...FieldSpec) Spec {
	return Spec{
		Source:   testSource,
		Fields:   fields,
		Location: paris,
		Now:      testNow,
		Tables:   map[string]map[string]string{"gender": {"F": "1", "M": "2"}},
		Params:   map[string]string{"region": "EMEA", "limit": "10"},
	}
}

// eval computes expr as a field of type typ over testRow, with the closure
// evaluator and with the VM, and requires both to agree.
func eval(t *testing.T, spec Spec, row []any) (out []any, keep bool, err error) {
	t.Helper()
	var results [2]struct {
		out  []any
		keep bool
		err  error
	}
	for k, vmOnly := range []bool{false, true} {
		p, cerr := compile(spec, vmOnly)
		if cerr != nil {
			return nil, false, cerr
		}
		th := p.NewThread()
		o := make([]any, len(p.Output()))
		kp, aerr := th.Apply(row, o)
		results[k].out, results[k].keep, results[k].err = o, kp, aerr
	}
	a, b := results[0], results[1]
	// With values of the wrong Go type (a connector's bug), the two may
	// fail in different places.
	sameReason := rowTypesOK(spec.Source, row)
	if (a.err == nil) != (b.err == nil) || (a.err != nil && sameReason && a.err.Error() != b.err.Error()) {
		t.Fatalf("closures and VM disagree on the error:\n closures: %v\n VM:       %v", a.err, b.err)
	}
	if a.keep != b.keep || (a.err == nil && !sameValues(a.out, b.out)) {
		t.Fatalf("closures and VM disagree:\n closures: %v %#v\n VM:       %v %#v", a.keep, a.out, b.keep, b.out)
	}
	return a.out, a.keep, a.err
}

// sameValues compares row values, times by instant and zone.
func sameValues(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameValue(a[i], b[i]) {
			return false
		}
	}
	return true
}

func sameValue(a, b any) bool {
	ta, ok1 := a.(time.Time)
	tb, ok2 := b.(time.Time)
	if ok1 || ok2 {
		return ok1 && ok2 && ta.Equal(tb) && ta.Location().String() == tb.Location().String()
	}
	return reflect.DeepEqual(a, b)
}

// evalOne computes a single field expression over testRow.
func evalOne(t *testing.T, expr string, typ Type) (any, error) {
	t.Helper()
	out, _, err := eval(t, testSpec(FieldSpec{Name: "x", Type: typ, Expr: expr}), testRow())
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func requireRowError(t *testing.T, err error, field, reason string) *RowError {
	t.Helper()
	var re *RowError
	if !errors.As(err, &re) {
		t.Fatalf("want a *RowError, got %T %v", err, err)
	}
	if re.Field != field {
		t.Fatalf("RowError field %q, want %q (%v)", re.Field, field, re)
	}
	if !strings.Contains(re.Reason, reason) {
		t.Fatalf("RowError reason %q does not contain %q", re.Reason, reason)
	}
	return re
}

// rowTypesOK tells whether every value of row has its field's Go type.
func rowTypesOK(src []Field, row []any) bool {
	for i, f := range src {
		if row[i] == nil {
			continue
		}
		if _, err := inConverter(f)(row[i]); err != nil {
			return false
		}
		if f.Type == TypeDecimal {
			continue
		}
	}
	return true
}
