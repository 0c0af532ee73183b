package transform

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// fnDef is a built-in function: its arity, its type rule (checked at
// compile time against the argument types) and its implementation.
type fnDef struct {
	name     string
	min, max int // max < 0: any number of arguments from min
	// params are the classes each argument may have (the last one repeats
	// for variadic functions); NULL and not-yet-known types always pass.
	params []class
	// ret computes the result type from the argument types; nil means the
	// fixed type retType.
	ret     func(args []reflect.Type) (reflect.Type, error)
	retType reflect.Type
	call    func(e *env, v argv) (any, error)
	// layoutArg, zoneArg, regexpArg: the index of an argument that is a
	// layout, a zone or a regular expression, compiled once when constant.
	layoutArg, zoneArg, regexpArg int
	// internal functions stand for operators and are named in errors by op.
	op string
}

// argv holds a call's arguments by value, so that a call with up to three
// arguments allocates nothing (a slice passed through a function value
// would escape to the heap).
type argv struct {
	n    int
	a    [3]any
	more []any
}

func (v *argv) args() []any {
	if v.more != nil {
		return v.more
	}
	return v.a[:v.n]
}

func argvOf(args []any) argv {
	if len(args) <= len(argv{}.a) {
		var v argv
		v.n = copy(v.a[:], args)
		return v
	}
	return argv{n: len(args), more: args}
}

// Types of the functions the VM calls without building an argument slice
// (expr's OpCallTyped).
var typedFuncTypes = []reflect.Type{
	reflect.TypeOf(func() any { return nil }),
	reflect.TypeOf(func(any) any { return nil }),
	reflect.TypeOf(func(any, any) any { return nil }),
}

// typed is f as a function of n arguments for OpCallTyped; an error is
// raised as a panic, which the VM recovers and returns with its position.
func (f *fnDef) typed(e *env, n int) any {
	switch n {
	case 0:
		return func() any {
			v, err := f.call(e, argv{})
			if err != nil {
				panic(err)
			}
			return v
		}
	case 1:
		return func(a any) any {
			v, err := f.call(e, argv{n: 1, a: [3]any{a}})
			if err != nil {
				panic(err)
			}
			return v
		}
	}
	return func(a, b any) any {
		v, err := f.call(e, argv{n: 2, a: [3]any{a, b}})
		if err != nil {
			panic(err)
		}
		return v
	}
}

// env is what built-ins see of the program: tables, zone, the run's now.
type env struct {
	loc    *time.Location
	now    time.Time
	tables map[string]map[string]string
}

const (
	cLayout class = 1 << (iota + 16)
	cZone
	cRegexp
)

func argClass(t reflect.Type) class {
	switch t {
	case typLayout:
		return cLayout
	case typLocation:
		return cZone
	case typRegexp:
		return cRegexp
	}
	return classOf(t)
}

func className(c class) string {
	var names []string
	for _, p := range []struct {
		c    class
		name string
	}{
		{cString, "string"}, {cInt, "int"}, {cFloat, "float"}, {cDecimal, "decimal"},
		{cBool, "bool"}, {cDate, "date"}, {cTimestamp, "timestamp"}, {cBytes, "bytes"},
		{cDuration, "duration"}, {cArray, "array"},
	} {
		if c&p.c != 0 {
			names = append(names, p.name)
		}
	}
	if len(names) == 0 {
		return "any value"
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

const anyClass = ^class(0)

// checkArgs applies a function's arity and parameter classes.
func (f *fnDef) checkArgs(args []reflect.Type) error {
	n := len(args)
	if n < f.min || (f.max >= 0 && n > f.max) {
		want := ""
		switch {
		case f.max < 0:
			want = fmt.Sprintf("at least %d", f.min)
		case f.min == f.max:
			want = strconv.Itoa(f.min)
		default:
			want = fmt.Sprintf("%d to %d", f.min, f.max)
		}
		s := "s"
		if want == "1" {
			s = ""
		}
		return fmt.Errorf("%s takes %s argument%s, got %d", f.name, want, s, n)
	}
	for i, t := range args {
		p := anyClass
		if len(f.params) > 0 {
			p = f.params[min(i, len(f.params)-1)]
		}
		c := argClass(t)
		if c&(cAny|cNull) != 0 || c&p != 0 {
			continue
		}
		if p&cString != 0 && c&(cLayout|cZone|cRegexp) != 0 {
			continue
		}
		return f.argError(i, p, args)
	}
	return nil
}

// argError says why argument i does not fit; operators say it as operators.
func (f *fnDef) argError(i int, p class, args []reflect.Type) error {
	switch {
	case f.name == fnTruth:
		return fmt.Errorf("condition is %s; it must be bool", typeName(args[0]))
	case f.op != "" && len(args) == 1:
		return fmt.Errorf("invalid operation: %s%s", f.op, typeName(args[0]))
	case f.op != "" && len(args) == 2:
		return fmt.Errorf("invalid operation: %s %s %s", typeName(args[0]), f.op, typeName(args[1]))
	}
	return fmt.Errorf("%s: argument %d must be %s, got %s", f.name, i+1, className(p), typeName(args[i]))
}

func (f *fnDef) check(args []reflect.Type) (reflect.Type, error) {
	if err := f.checkArgs(args); err != nil {
		return nil, err
	}
	if f.ret != nil {
		return f.ret(args)
	}
	return f.retType, nil
}

// sameAsArg returns the type of argument i (int for any integer).
func sameAsArg(i int) func([]reflect.Type) (reflect.Type, error) {
	return func(args []reflect.Type) (reflect.Type, error) {
		if i >= len(args) {
			return typAny, nil
		}
		c := classOf(args[i])
		if c == cNull {
			return typAny, nil
		}
		return classType(c), nil
	}
}

// commonType is the type of a value that may come from any of args:
// coalesce, greatest, nullif. int mixes with float (float); a decimal with
// any number is a decimal.
func commonType(name string, args []reflect.Type) (reflect.Type, error) {
	var seen class
	var first reflect.Type
	for _, t := range args {
		c := classOf(t)
		if c == cNull {
			continue
		}
		if c == cAny {
			return typAny, nil
		}
		if seen == 0 {
			first = t
		}
		seen |= c
	}
	switch {
	case seen == 0:
		return typAny, nil
	case seen&(seen-1) == 0:
		return classType(seen), nil
	case seen == cInt|cFloat:
		return typFloat, nil
	case seen&^cNumber == 0:
		return typDecimal, nil
	}
	for _, t := range args {
		if c := classOf(t); c != cNull && c != classOf(first) {
			return nil, fmt.Errorf("%s: arguments of different types: %s and %s", name, typeName(first), typeName(t))
		}
	}
	return nil, fmt.Errorf("%s: arguments of different types", name)
}

// Errors of built-ins and operators (wrapped with the function name).
var (
	errDivisionByZero = errors.New("division by zero")
	errIntOverflow    = errors.New("integer overflow")
)

func typeErr(fn string, i int, want string, v any) error {
	return fmt.Errorf("%s: argument %d must be %s, got %s", fn, i+1, want, valueName(v))
}

func argString(fn string, args []any, i int) (string, error) {
	s, ok := args[i].(string)
	if !ok {
		return "", typeErr(fn, i, "string", args[i])
	}
	return s, nil
}

func argInt(fn string, args []any, i int) (int64, error) {
	n, ok := asInt(args[i])
	if !ok {
		return 0, typeErr(fn, i, "int", args[i])
	}
	return n, nil
}

func argLayout(fn string, args []any, i int) (*layout, error) {
	switch x := args[i].(type) {
	case *layout:
		return x, nil
	case string:
		l, err := compileLayout(x)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		return l, nil
	}
	return nil, typeErr(fn, i, "string", args[i])
}

// argZone reads an optional zone argument, e's location when absent.
func (e *env) argZone(fn string, args []any, i int) (*time.Location, error) {
	if i >= len(args) {
		return e.loc, nil
	}
	switch x := args[i].(type) {
	case *time.Location:
		return x, nil
	case string:
		l, err := loadZone(x)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		return l, nil
	}
	return nil, typeErr(fn, i, "string", args[i])
}

type compiledRegexp struct{ re *regexp.Regexp }

func argRegexp(fn string, args []any, i int) (*regexp.Regexp, error) {
	switch x := args[i].(type) {
	case *compiledRegexp:
		return x.re, nil
	case string:
		re, err := compileRegexp(x)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		return re.re, nil
	}
	return nil, typeErr(fn, i, "string", args[i])
}

var regexpCache cache // string -> *compiledRegexp or error

func compileRegexp(s string) (*compiledRegexp, error) {
	if v, ok := regexpCache.load(s); ok {
		if re, ok := v.(*compiledRegexp); ok {
			return re, nil
		}
		return nil, v.(error)
	}
	re, err := regexp.Compile(s)
	if err != nil {
		err = fmt.Errorf("bad regular expression %q: %s", s, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		regexpCache.store(s, err)
		return nil, err
	}
	c := &compiledRegexp{re}
	regexpCache.store(s, c)
	return c, nil
}

// anyNil tells whether one of the first n arguments (all when n < 0) is NULL.
func anyNil(args []any, n int) bool {
	if n < 0 || n > len(args) {
		n = len(args)
	}
	for _, a := range args[:n] {
		if a == nil {
			return true
		}
	}
	return false
}

// asTime reads a date or a timestamp; a date is 00:00 of its day in loc.
func asTimestamp(v any, loc *time.Location) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, true
	case date:
		y, m, d := x.time().Date()
		t, err := localTime(y, m, d, 0, 0, 0, 0, loc)
		if err != nil {
			// Midnight skipped by a clock change: the day starts later.
			t = time.Date(y, m, d, 0, 0, 0, 0, loc)
		}
		return t, true
	}
	return time.Time{}, false
}

// asDate reads a date, or the calendar day of a timestamp in loc.
func asDate(v any, loc *time.Location) (date, bool) {
	switch x := v.(type) {
	case date:
		return x, true
	case time.Time:
		return dateIn(x.In(loc)), true
	}
	return date{}, false
}

func runeTrunc(s string, n int64) string {
	if n <= 0 {
		return ""
	}
	if int64(len(s)) <= n {
		return s
	}
	i := 0
	for k := int64(0); k < n && i < len(s); k++ {
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
	}
	return s[:i]
}

func pad(fn string, args []any, left bool) (any, error) {
	if anyNil(args, -1) {
		return nil, nil
	}
	s, err := argString(fn, args, 0)
	if err != nil {
		return nil, err
	}
	n, err := argInt(fn, args, 1)
	if err != nil {
		return nil, err
	}
	p := " "
	if len(args) > 2 {
		if p, err = argString(fn, args, 2); err != nil {
			return nil, err
		}
	}
	if n > 1<<20 {
		return nil, fmt.Errorf("%s: length %d is too large", fn, n)
	}
	have := int64(utf8.RuneCountInString(s))
	if have >= n {
		return runeTrunc(s, n), nil
	}
	if p == "" {
		return s, nil
	}
	fill := make([]rune, 0, n-have)
	pr := []rune(p)
	for i := 0; int64(len(fill)) < n-have; i++ {
		fill = append(fill, pr[i%len(pr)])
	}
	if left {
		return string(fill) + s, nil
	}
	return s + string(fill), nil
}

// roundFloat rounds half away from zero as the number is written (its
// shortest decimal form): round(1.005, 2) = 1.01 although 1.005 is stored
// as 1.00499999999999989...
func roundFloat(x float64, n int) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	if n >= 0 && n <= 15 {
		p := math.Pow10(n)
		v := x * p
		if math.Abs(v) < 1<<52 {
			r := math.Round(v)
			// Far from a half: the scaled value decides alone.
			if d := math.Abs(v - math.Trunc(v)); math.Abs(d-0.5) > 1e-6 {
				return r / p
			}
		}
	}
	d, err := decFromFloat(x)
	if err != nil {
		return x
	}
	return d.round(n).toFloat()
}

func roundInt(i int64, n int) (int64, error) {
	if n >= 0 {
		return i, nil
	}
	if n < -18 {
		return 0, nil
	}
	p := int64(math.Pow10(-n))
	q, r := i/p, i%p
	if r < 0 {
		r = -r
	}
	if 2*r >= p {
		if i < 0 {
			q--
		} else {
			q++
		}
	}
	if q > math.MaxInt64/p || q < math.MinInt64/p {
		return 0, errIntOverflow
	}
	return q * p, nil
}

func toInt(fn string, v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case float64:
		if math.IsNaN(x) || x >= 1<<63 || x < -(1<<63) {
			return nil, fmt.Errorf("%s: %v does not fit an int", fn, x)
		}
		return int64(x), nil
	case decimal:
		return x.toInt()
	case string:
		s := strings.TrimSpace(x)
		i, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return nil, fmt.Errorf("%s: %q does not fit an int", fn, x)
			}
			return nil, fmt.Errorf("%s: %q is not an integer", fn, x)
		}
		return i, nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	}
	if i, ok := asInt(v); ok {
		return i, nil
	}
	return nil, fmt.Errorf("%s: cannot convert %s to int", fn, valueName(v))
}

func toFloat(fn string, v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case float64:
		return x, nil
	case decimal:
		return x.toFloat(), nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a number", fn, x)
		}
		return f, nil
	}
	if f, ok := asFloat(v); ok {
		return f, nil
	}
	return nil, fmt.Errorf("%s: cannot convert %s to float", fn, valueName(v))
}

func toDecimal(fn string, v any) (decimal, bool, error) {
	switch x := v.(type) {
	case nil:
		return decimal{}, false, nil
	case decimal:
		return x, true, nil
	case float64:
		d, err := decFromFloat(x)
		if err != nil {
			return decimal{}, false, fmt.Errorf("%s: %w", fn, err)
		}
		return d, true, nil
	case string:
		d, err := parseDecimal(x)
		if err != nil {
			return decimal{}, false, fmt.Errorf("%s: %w", fn, err)
		}
		return d, true, nil
	}
	if i, ok := asInt(v); ok {
		return decFromInt(i), true, nil
	}
	return decimal{}, false, fmt.Errorf("%s: cannot convert %s to decimal", fn, valueName(v))
}

func hashOf(h hash.Hash, args []any) (any, error) {
	if len(args) == 1 && args[0] == nil {
		return nil, nil
	}
	for i, a := range args {
		if i > 0 {
			h.Write([]byte{'|'})
		}
		switch x := a.(type) {
		case nil:
		case []byte:
			h.Write(x)
		case string:
			h.Write([]byte(x))
		default:
			s, _ := toText(x)
			h.Write([]byte(s))
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// addMonths adds n months, keeping the day when it exists and else
// taking the month's last day: Jan 31 + 1 month = Feb 28 (29).
func addMonths(t time.Time, n int64) (time.Time, error) {
	if n > 120000 || n < -120000 {
		return time.Time{}, fmt.Errorf("add_months: %d months is out of range", n)
	}
	y, m, d := t.Date()
	total := int64(y)*12 + int64(m-1) + n
	ny, nm := int(total/12), time.Month(total%12+1)
	if total%12 < 0 {
		ny, nm = int((total-11)/12), time.Month((total%12+12)%12+1)
	}
	last := time.Date(ny, nm+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if d > last {
		d = last
	}
	h, mi, s := t.Clock()
	return time.Date(ny, nm, d, h, mi, s, t.Nanosecond(), t.Location()), nil
}

func daysBetween(a, b date) int64 {
	return (b.time().Unix() - a.time().Unix()) / 86400
}

// age is the whole years from dob to at: one more on each birthday; a
// 29 February birthday comes on 1 March in other years.
func age(dob, at date) int64 {
	y1, m1, d1 := dob.time().Date()
	y2, m2, d2 := at.time().Date()
	a := int64(y2 - y1)
	if m2 < m1 || (m2 == m1 && d2 < d1) {
		a--
	}
	return a
}

// builtins returns the built-in functions bound to e.
func builtins(e *env) []*fnDef {
	str := []class{cString}
	num := cNumber
	fns := []*fnDef{
		// Strings.
		{name: "concat", min: 1, max: -1, retType: typString, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			var b strings.Builder
			for _, a := range args {
				if s, ok := toText(a); ok {
					b.WriteString(s)
				}
			}
			return b.String(), nil
		}},
		{name: "substr", min: 2, max: 3, params: []class{cString, cInt, cInt}, retType: typString, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			if anyNil(args, -1) {
				return nil, nil
			}
			s, err := argString("substr", args, 0)
			if err != nil {
				return nil, err
			}
			start, err := argInt("substr", args, 1)
			if err != nil {
				return nil, err
			}
			end := int64(math.MaxInt64)
			if len(args) > 2 {
				n, err := argInt("substr", args, 2)
				if err != nil {
					return nil, err
				}
				if n < 0 {
					return nil, fmt.Errorf("substr: negative length %d", n)
				}
				if start < math.MaxInt64-n {
					end = start + n
				}
			}
			// Characters numbered from 1; the window [start, end) may begin
			// before the string (PostgreSQL's rule).
			var b strings.Builder
			pos := int64(1)
			for _, r := range s {
				if pos >= end {
					break
				}
				if pos >= start {
					b.WriteRune(r)
				}
				pos++
			}
			return b.String(), nil
		}},
		{name: "truncate", min: 2, max: 2, params: []class{cString, cInt}, retType: typString, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			if anyNil(args, -1) {
				return nil, nil
			}
			s, err := argString("truncate", args, 0)
			if err != nil {
				return nil, err
			}
			n, err := argInt("truncate", args, 1)
			if err != nil {
				return nil, err
			}
			if n < 0 {
				return nil, fmt.Errorf("truncate: negative length %d", n)
			}
			return runeTrunc(s, n), nil
		}},
		{name: "replace", min: 3, max: 3, params: str, retType: typString, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			if anyNil(args, -1) {
				return nil, nil
			}
			var s [3]string
			for i := range s {
				var err error
				if s[i], err = argString("replace", args, i); err != nil {
					return nil, err
				}
			}
			if s[1] == "" {
				return s[0], nil
			}
			return strings.ReplaceAll(s[0], s[1], s[2]), nil
		}},
		{name: "regexp_replace", min: 3, max: 3, params: str, retType: typString, regexpArg: 1, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			if anyNil(args, -1) {
				return nil, nil
			}
			s, err := argString("regexp_replace", args, 0)
			if err != nil {
				return nil, err
			}
			re, err := argRegexp("regexp_replace", args, 1)
			if err != nil {
				return nil, err
			}
			r, err := argString("regexp_replace", args, 2)
			if err != nil {
				return nil, err
			}
			return re.ReplaceAllString(s, r), nil
		}},
		{name: "upper", min: 1, max: 1, params: str, retType: typString, call: stringFn("upper", strings.ToUpper)},
		{name: "lower", min: 1, max: 1, params: str, retType: typString, call: stringFn("lower", strings.ToLower)},
		{name: "trim", min: 1, max: 2, params: str, retType: typString, call: trimFn("trim", strings.TrimSpace, strings.Trim)},
		{name: "ltrim", min: 1, max: 2, params: str, retType: typString, call: trimFn("ltrim", func(s string) string { return strings.TrimLeftFunc(s, unicode.IsSpace) }, strings.TrimLeft)},
		{name: "rtrim", min: 1, max: 2, params: str, retType: typString, call: trimFn("rtrim", func(s string) string { return strings.TrimRightFunc(s, unicode.IsSpace) }, strings.TrimRight)},
		{name: "length", min: 1, max: 1, params: []class{cString | cBytes}, retType: typInt, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			switch x := args[0].(type) {
			case nil:
				return nil, nil
			case string:
				return int64(utf8.RuneCountInString(x)), nil
			case []byte:
				return int64(len(x)), nil
			}
			return nil, typeErr("length", 0, "string or bytes", args[0])
		}},
		{name: "lpad", min: 2, max: 3, params: []class{cString, cInt, cString}, retType: typString, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			return pad("lpad", args, true)
		}},
		{name: "rpad", min: 2, max: 3, params: []class{cString, cInt, cString}, retType: typString, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			return pad("rpad", args, false)
		}},
		{name: "split_part", min: 3, max: 3, params: []class{cString, cString, cInt}, retType: typString, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			if anyNil(args, -1) {
				return nil, nil
			}
			s, err := argString("split_part", args, 0)
			if err != nil {
				return nil, err
			}
			sep, err := argString("split_part", args, 1)
			if err != nil {
				return nil, err
			}
			n, err := argInt("split_part", args, 2)
			if err != nil {
				return nil, err
			}
			if n < 1 {
				return nil, fmt.Errorf("split_part: part %d; parts are numbered from 1", n)
			}
			if sep == "" {
				if n == 1 {
					return s, nil
				}
				return "", nil
			}
			for k := int64(1); ; k++ {
				i := strings.Index(s, sep)
				if k == n {
					if i < 0 {
						return s, nil
					}
					return s[:i], nil
				}
				if i < 0 {
					return "", nil
				}
				s = s[i+len(sep):]
			}
		}},

		// NULLs.
		{name: "coalesce", min: 1, max: -1, ret: func(a []reflect.Type) (reflect.Type, error) { return commonType("coalesce", a) }, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			for _, a := range args {
				if a != nil {
					return a, nil
				}
			}
			return nil, nil
		}},
		{name: "nullif", min: 2, max: 2, ret: func(a []reflect.Type) (reflect.Type, error) {
			if _, err := commonType("nullif", a); err != nil {
				return nil, err
			}
			return sameAsArg(0)(a)
		}, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			if args[0] == nil {
				return nil, nil
			}
			eq, err := equal(args[0], args[1])
			if err != nil {
				return nil, fmt.Errorf("nullif: %w", err)
			}
			if eq {
				return nil, nil
			}
			return args[0], nil
		}},
		{name: "is_null", min: 1, max: 1, retType: typBool, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			return args[0] == nil, nil
		}},

		// Code translation tables.
		{name: "translate", min: 2, max: 3, params: []class{cString, anyClass, cString}, retType: typString, call: func(e *env, v argv) (any, error) {
			args := v.args()
			name, err := argString("translate", args, 0)
			if err != nil {
				return nil, err
			}
			table, ok := e.tables[name]
			if !ok {
				return nil, fmt.Errorf("translate: unknown table %q", name)
			}
			if args[1] == nil {
				return nil, nil
			}
			key, _ := toText(args[1])
			if v, ok := table[key]; ok {
				return v, nil
			}
			if len(args) > 2 {
				return args[2], nil
			}
			if len(key) > 64 {
				key = key[:64] + "..."
			}
			return nil, fmt.Errorf("translate: no entry for %q in table %q", key, name)
		}},

		// Dates and times.
		{name: "parse_date", min: 2, max: 3, params: str, retType: typDate, layoutArg: 1, zoneArg: 2, call: func(e *env, v argv) (any, error) {
			args := v.args()
			if anyNil(args, 2) {
				return nil, nil
			}
			s, err := argString("parse_date", args, 0)
			if err != nil {
				return nil, err
			}
			l, err := argLayout("parse_date", args, 1)
			if err != nil {
				return nil, err
			}
			loc, err := e.argZone("parse_date", args, 2)
			if err != nil {
				return nil, err
			}
			t, err := parseTime(s, l, loc)
			if err != nil {
				return nil, fmt.Errorf("parse_date: %w", err)
			}
			return dateIn(t.In(loc)), nil
		}},
		{name: "parse_timestamp", min: 2, max: 3, params: str, retType: typTimestamp, layoutArg: 1, zoneArg: 2, call: func(e *env, v argv) (any, error) {
			args := v.args()
			if anyNil(args, 2) {
				return nil, nil
			}
			s, err := argString("parse_timestamp", args, 0)
			if err != nil {
				return nil, err
			}
			l, err := argLayout("parse_timestamp", args, 1)
			if err != nil {
				return nil, err
			}
			loc, err := e.argZone("parse_timestamp", args, 2)
			if err != nil {
				return nil, err
			}
			t, err := parseTime(s, l, loc)
			if err != nil {
				return nil, fmt.Errorf("parse_timestamp: %w", err)
			}
			return t, nil
		}},
		{name: "format_date", min: 2, max: 2, params: []class{cDate, cString}, retType: typString, layoutArg: 1, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			if args[0] == nil {
				return nil, nil
			}
			d, ok := args[0].(date)
			if !ok {
				return nil, typeErr("format_date", 0, "date", args[0])
			}
			l, err := argLayout("format_date", args, 1)
			if err != nil {
				return nil, err
			}
			return d.time().Format(l.goLayout), nil
		}},
		{name: "format_timestamp", min: 2, max: 3, params: []class{cTimestamp, cString, cString}, retType: typString, layoutArg: 1, zoneArg: 2, call: func(e *env, v argv) (any, error) {
			args := v.args()
			if args[0] == nil {
				return nil, nil
			}
			t, ok := args[0].(time.Time)
			if !ok {
				return nil, typeErr("format_timestamp", 0, "timestamp", args[0])
			}
			l, err := argLayout("format_timestamp", args, 1)
			if err != nil {
				return nil, err
			}
			loc, err := e.argZone("format_timestamp", args, 2)
			if err != nil {
				return nil, err
			}
			return t.In(loc).Format(l.goLayout), nil
		}},
		{name: "to_zone", min: 2, max: 2, params: []class{cTimestamp, cString}, retType: typTimestamp, zoneArg: 1, call: func(e *env, v argv) (any, error) {
			args := v.args()
			if args[0] == nil {
				return nil, nil
			}
			t, ok := args[0].(time.Time)
			if !ok {
				return nil, typeErr("to_zone", 0, "timestamp", args[0])
			}
			loc, err := e.argZone("to_zone", args, 1)
			if err != nil {
				return nil, err
			}
			return t.In(loc), nil
		}},
		{name: "now", min: 0, max: 0, retType: typTimestamp, call: func(e *env, _ argv) (any, error) { return e.now, nil }},
		{name: "today", min: 0, max: 0, retType: typDate, call: func(e *env, _ argv) (any, error) { return dateIn(e.now.In(e.loc)), nil }},
		{name: "add_days", min: 2, max: 2, params: []class{cTime, cInt}, ret: sameAsArg(0), call: func(_ *env, v argv) (any, error) {
			args := v.args()
			if anyNil(args, -1) {
				return nil, nil
			}
			n, err := argInt("add_days", args, 1)
			if err != nil {
				return nil, err
			}
			if n > 1e7 || n < -1e7 {
				return nil, fmt.Errorf("add_days: %d days is out of range", n)
			}
			switch x := args[0].(type) {
			case date:
				return makeDate(x.time().AddDate(0, 0, int(n))), nil
			case time.Time:
				return x.AddDate(0, 0, int(n)), nil
			}
			return nil, typeErr("add_days", 0, "date or timestamp", args[0])
		}},
		{name: "add_months", min: 2, max: 2, params: []class{cTime, cInt}, ret: sameAsArg(0), call: func(_ *env, v argv) (any, error) {
			args := v.args()
			if anyNil(args, -1) {
				return nil, nil
			}
			n, err := argInt("add_months", args, 1)
			if err != nil {
				return nil, err
			}
			switch x := args[0].(type) {
			case date:
				t, err := addMonths(x.time(), n)
				return makeDate(t), err
			case time.Time:
				return addMonths(x, n)
			}
			return nil, typeErr("add_months", 0, "date or timestamp", args[0])
		}},
		{name: "days_between", min: 2, max: 2, params: []class{cTime, cTime}, retType: typInt, call: func(e *env, v argv) (any, error) {
			args := v.args()
			if anyNil(args, -1) {
				return nil, nil
			}
			a, ok1 := asDate(args[0], e.loc)
			b, ok2 := asDate(args[1], e.loc)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("days_between: arguments must be dates or timestamps, got %s and %s", valueName(args[0]), valueName(args[1]))
			}
			return daysBetween(a, b), nil
		}},
		{name: "age", min: 1, max: 2, params: []class{cTime, cTime}, retType: typInt, call: func(e *env, v argv) (any, error) {
			args := v.args()
			if anyNil(args, -1) {
				return nil, nil
			}
			dob, ok := asDate(args[0], e.loc)
			if !ok {
				return nil, typeErr("age", 0, "date or timestamp", args[0])
			}
			at := dateIn(e.now.In(e.loc))
			if len(args) > 1 {
				if at, ok = asDate(args[1], e.loc); !ok {
					return nil, typeErr("age", 1, "date or timestamp", args[1])
				}
			}
			return age(dob, at), nil
		}},
		{name: "year", min: 1, max: 1, params: []class{cTime}, retType: typInt, call: datePart("year", func(d date) int { return d.time().Year() })},
		{name: "month", min: 1, max: 1, params: []class{cTime}, retType: typInt, call: datePart("month", func(d date) int { return int(d.time().Month()) })},
		{name: "day", min: 1, max: 1, params: []class{cTime}, retType: typInt, call: datePart("day", func(d date) int { return d.time().Day() })},
		{name: "to_date", min: 1, max: 2, params: []class{cString | cTime, cString}, retType: typDate, zoneArg: 1, call: func(e *env, v argv) (any, error) {
			args := v.args()
			if args[0] == nil {
				return nil, nil
			}
			loc, err := e.argZone("to_date", args, 1)
			if err != nil {
				return nil, err
			}
			switch x := args[0].(type) {
			case string:
				t, err := time.Parse("2006-01-02", strings.TrimSpace(x))
				if err != nil {
					return nil, fmt.Errorf("to_date: %q is not a date (YYYY-MM-DD)", x)
				}
				return makeDate(t), nil
			}
			if d, ok := asDate(args[0], loc); ok {
				return d, nil
			}
			return nil, typeErr("to_date", 0, "string, date or timestamp", args[0])
		}},
		{name: "to_timestamp", min: 1, max: 2, params: []class{cString | cTime, cString}, retType: typTimestamp, zoneArg: 1, call: func(e *env, v argv) (any, error) {
			args := v.args()
			if args[0] == nil {
				return nil, nil
			}
			loc, err := e.argZone("to_timestamp", args, 1)
			if err != nil {
				return nil, err
			}
			switch x := args[0].(type) {
			case string:
				return textTimestamp(x, loc)
			case time.Time:
				if len(args) > 1 {
					return x.In(loc), nil
				}
				return x, nil
			}
			if t, ok := asTimestamp(args[0], loc); ok {
				return t, nil
			}
			return nil, typeErr("to_timestamp", 0, "string, date or timestamp", args[0])
		}},

		// Numbers.
		{name: "round", min: 1, max: 2, params: []class{num, cInt}, ret: sameAsArg(0), call: func(_ *env, v argv) (any, error) {
			args := v.args()
			if anyNil(args, -1) {
				return nil, nil
			}
			n := int64(0)
			if len(args) > 1 {
				var err error
				if n, err = argInt("round", args, 1); err != nil {
					return nil, err
				}
				if n > maxDecimalScale || n < -maxDecimalScale {
					return nil, fmt.Errorf("round: %d digits is out of range", n)
				}
			}
			switch x := args[0].(type) {
			case float64:
				return roundFloat(x, int(n)), nil
			case decimal:
				return x.round(int(n)), nil
			}
			if i, ok := asInt(args[0]); ok {
				return roundInt(i, int(n))
			}
			return nil, typeErr("round", 0, "a number", args[0])
		}},
		{name: "floor", min: 1, max: 1, params: []class{num}, ret: sameAsArg(0), call: mathFn("floor", math.Floor, decimal.floor)},
		{name: "ceil", min: 1, max: 1, params: []class{num}, ret: sameAsArg(0), call: mathFn("ceil", math.Ceil, decimal.ceil)},
		{name: "abs", min: 1, max: 1, params: []class{num}, ret: sameAsArg(0), call: func(_ *env, v argv) (any, error) {
			args := v.args()
			switch x := args[0].(type) {
			case nil:
				return nil, nil
			case float64:
				return math.Abs(x), nil
			case decimal:
				return x.abs(), nil
			}
			if i, ok := asInt(args[0]); ok {
				if i == math.MinInt64 {
					return nil, fmt.Errorf("abs: %w", errIntOverflow)
				}
				if i < 0 {
					i = -i
				}
				return i, nil
			}
			return nil, typeErr("abs", 0, "a number", args[0])
		}},
		{name: "greatest", min: 1, max: -1, ret: func(a []reflect.Type) (reflect.Type, error) { return orderedCommon("greatest", a) }, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			return extreme("greatest", args, 1)
		}},
		{name: "least", min: 1, max: -1, ret: func(a []reflect.Type) (reflect.Type, error) { return orderedCommon("least", a) }, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			return extreme("least", args, -1)
		}},

		// Conversions.
		{name: "to_int", min: 1, max: 1, params: []class{num | cString | cBool}, retType: typInt, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			return toInt("to_int", args[0])
		}},
		{name: "to_float", min: 1, max: 1, params: []class{num | cString}, retType: typFloat, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			return toFloat("to_float", args[0])
		}},
		{name: "to_decimal", min: 1, max: 2, params: []class{num | cString, cInt}, retType: typDecimal, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			d, ok, err := toDecimal("to_decimal", args[0])
			if err != nil || !ok {
				return nil, err
			}
			if len(args) > 1 {
				if args[1] == nil {
					return nil, nil
				}
				n, err := argInt("to_decimal", args, 1)
				if err != nil {
					return nil, err
				}
				if n < 0 || n > maxDecimalScale {
					return nil, fmt.Errorf("to_decimal: scale %d is out of range", n)
				}
				d = d.round(int(n))
			}
			return d, nil
		}},
		{name: "to_string", min: 1, max: 1, retType: typString, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			if s, ok := toText(args[0]); ok {
				return s, nil
			}
			return nil, nil
		}},
		{name: "to_bool", min: 1, max: 1, params: []class{cString | cInt | cBool}, retType: typBool, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			switch x := args[0].(type) {
			case nil:
				return nil, nil
			case bool:
				return x, nil
			case string:
				switch strings.ToLower(strings.TrimSpace(x)) {
				case "true", "t", "yes", "y", "1":
					return true, nil
				case "false", "f", "no", "n", "0":
					return false, nil
				}
				return nil, fmt.Errorf("to_bool: %q is not a boolean", x)
			}
			if i, ok := asInt(args[0]); ok && (i == 0 || i == 1) {
				return i == 1, nil
			}
			return nil, fmt.Errorf("to_bool: cannot convert %v (%s) to bool", args[0], valueName(args[0]))
		}},

		// Hashing.
		{name: "sha256", min: 1, max: -1, retType: typString, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			return hashOf(sha256.New(), args)
		}},
		{name: "md5", min: 1, max: -1, retType: typString, call: func(_ *env, v argv) (any, error) {
			args := v.args()
			return hashOf(md5.New(), args)
		}},
	}
	fns = append(fns, operators()...)
	for _, f := range fns {
		if f.layoutArg == 0 {
			f.layoutArg = -1
		}
		if f.zoneArg == 0 {
			f.zoneArg = -1
		}
		if f.regexpArg == 0 {
			f.regexpArg = -1
		}
	}
	return fns
}

func stringFn(name string, f func(string) string) func(*env, argv) (any, error) {
	return func(_ *env, v argv) (any, error) {
		args := v.args()
		if args[0] == nil {
			return nil, nil
		}
		s, err := argString(name, args, 0)
		if err != nil {
			return nil, err
		}
		return f(s), nil
	}
}

func trimFn(name string, space func(string) string, cut func(string, string) string) func(*env, argv) (any, error) {
	return func(_ *env, v argv) (any, error) {
		args := v.args()
		if anyNil(args, -1) {
			return nil, nil
		}
		s, err := argString(name, args, 0)
		if err != nil {
			return nil, err
		}
		if len(args) == 1 {
			return space(s), nil
		}
		chars, err := argString(name, args, 1)
		if err != nil {
			return nil, err
		}
		return cut(s, chars), nil
	}
}

func mathFn(name string, f func(float64) float64, d func(decimal) decimal) func(*env, argv) (any, error) {
	return func(_ *env, v argv) (any, error) {
		args := v.args()
		switch x := args[0].(type) {
		case nil:
			return nil, nil
		case float64:
			return f(x), nil
		case decimal:
			return d(x), nil
		}
		if i, ok := asInt(args[0]); ok {
			return i, nil
		}
		return nil, typeErr(name, 0, "a number", args[0])
	}
}

func datePart(name string, f func(date) int) func(*env, argv) (any, error) {
	return func(e *env, v argv) (any, error) {
		args := v.args()
		if args[0] == nil {
			return nil, nil
		}
		d, ok := asDate(args[0], e.loc)
		if !ok {
			return nil, typeErr(name, 0, "date or timestamp", args[0])
		}
		return int64(f(d)), nil
	}
}

// textTimestamp reads RFC 3339 text, or a wall clock without offset
// ("2024-03-10 14:30:00", "2024-03-10T14:30:00.5", "2024-03-10") in loc.
func textTimestamp(s string, loc *time.Location) (any, error) {
	t := strings.TrimSpace(s)
	if tt, err := time.Parse(time.RFC3339Nano, t); err == nil {
		return tt, nil
	}
	for _, l := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		u, err := time.Parse(l, t)
		if err != nil {
			continue
		}
		h, mi, sec := u.Clock()
		tt, err := localTime(u.Year(), u.Month(), u.Day(), h, mi, sec, u.Nanosecond(), loc)
		if err != nil {
			return nil, fmt.Errorf("to_timestamp: %w", err)
		}
		return tt, nil
	}
	return nil, fmt.Errorf("to_timestamp: %q is not a timestamp (RFC 3339, or YYYY-MM-DD[ HH:MM[:SS[.fff]]])", s)
}

func orderedCommon(name string, args []reflect.Type) (reflect.Type, error) {
	t, err := commonType(name, args)
	if err != nil {
		return nil, err
	}
	if c := classOf(t); c&(cBool|cBytes|cArray|cOther) != 0 {
		return nil, fmt.Errorf("%s: %s values have no order", name, typeName(t))
	}
	return t, nil
}

// extreme returns the greatest (sign 1) or least (sign -1) non-NULL
// argument; NULL when all are NULL.
func extreme(name string, args []any, sign int) (any, error) {
	var best any
	for _, a := range args {
		if a == nil {
			continue
		}
		if best == nil {
			best = a
			continue
		}
		c, err := compare(a, best)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if c*sign > 0 {
			best = a
		}
	}
	return best, nil
}

// equal compares two non-operator values the way == does.
func equal(a, b any) (bool, error) {
	if a == nil || b == nil {
		return a == nil && b == nil, nil
	}
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return x == y, nil
		}
	case bool:
		if y, ok := b.(bool); ok {
			return x == y, nil
		}
	case []byte:
		if y, ok := b.([]byte); ok {
			return bytes.Equal(x, y), nil
		}
	case date:
		if y, ok := b.(date); ok {
			return x.time().Equal(y.time()), nil
		}
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return x.Equal(y), nil
		}
	case time.Duration:
		if y, ok := b.(time.Duration); ok {
			return x == y, nil
		}
	}
	if isNumber(a) && isNumber(b) {
		c, err := compare(a, b)
		return c == 0, err
	}
	return false, fmt.Errorf("cannot compare %s and %s", valueName(a), valueName(b))
}

func isNumber(v any) bool {
	switch v.(type) {
	case float64, decimal:
		return true
	}
	_, ok := asInt(v)
	return ok
}

// compare orders two non-NULL values of the same kind (numbers of any
// kind together).
func compare(a, b any) (int, error) {
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), nil
		}
	case date:
		if y, ok := b.(date); ok {
			return x.time().Compare(y.time()), nil
		}
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return x.Compare(y), nil
		}
	case time.Duration:
		if y, ok := b.(time.Duration); ok {
			return cmpOrdered(x, y), nil
		}
	case decimal:
		if y, ok, err := decimalOperand(b); ok {
			if err != nil {
				return cmpFloat(x.toFloat(), b.(float64)), nil
			}
			return x.cmp(y), nil
		}
	case float64:
		if y, ok := asFloat(b); ok {
			return cmpFloat(x, y), nil
		}
		if y, ok := b.(decimal); ok {
			c, err := compare(y, x)
			return -c, err
		}
	default:
		if i, ok := asInt(a); ok {
			if j, ok := asInt(b); ok {
				return cmpOrdered(i, j), nil
			}
			switch y := b.(type) {
			case float64:
				return cmpFloat(float64(i), y), nil
			case decimal:
				return decFromInt(i).cmp(y), nil
			}
		}
	}
	return 0, fmt.Errorf("cannot compare %s and %s", valueName(a), valueName(b))
}

func cmpOrdered[T int64 | time.Duration](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cmpFloat orders floats, NaN after everything (and equal to itself).
func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	case a == b:
		return 0
	case math.IsNaN(a) && math.IsNaN(b):
		return 0
	case math.IsNaN(a):
		return 1
	}
	return -1
}
