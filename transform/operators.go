package transform

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
)

// Operators are compiled into calls of internal functions (named "op+",
// "op<"...) rather than expr's own opcodes, so that they follow this
// package's rules: NULL operands make NULL results (arithmetic) or false
// (comparisons), decimals stay exact, integer overflow and division by zero
// are errors, and the types are checked with our names.

// opNames maps an expr operator to its internal function.
var opNames = map[string]string{
	"+": "op+", "-": "op-", "*": "op*", "/": "op/", "%": "op%", "**": "op**", "^": "op**",
	"<": "op<", ">": "op>", "<=": "op<=", ">=": "op>=", "==": "op==", "!=": "op!=",
	"in": "op in", "contains": "op contains", "startsWith": "op startsWith",
	"endsWith": "op endsWith", "matches": "op matches",
}

// The internal functions for unary minus and boolean contexts.
const (
	fnNeg   = "op neg"
	fnTruth = "op truth"
)

func operators() []*fnDef {
	arith := func(op string, call func(a, b any) (any, error)) *fnDef {
		return &fnDef{name: opNames[op], op: op, min: 2, max: 2,
			ret: func(a []reflect.Type) (reflect.Type, error) { return arithType(op, a[0], a[1]) },
			call: func(_ *env, v argv) (any, error) {
				args := v.args()
				if args[0] == nil || args[1] == nil {
					return nil, nil
				}
				return call(args[0], args[1])
			}}
	}
	cmp := func(op string, ok func(int) bool) *fnDef {
		return &fnDef{name: opNames[op], op: op, min: 2, max: 2,
			ret: func(a []reflect.Type) (reflect.Type, error) { return typBool, checkComparable(op, a[0], a[1], true) },
			call: func(_ *env, v argv) (any, error) {
				args := v.args()
				if args[0] == nil || args[1] == nil {
					return false, nil
				}
				c, err := compare(args[0], args[1])
				if err != nil {
					return nil, err
				}
				return ok(c), nil
			}}
	}
	eq := func(op string, want bool) *fnDef {
		return &fnDef{name: opNames[op], op: op, min: 2, max: 2,
			ret: func(a []reflect.Type) (reflect.Type, error) { return typBool, checkComparable(op, a[0], a[1], false) },
			call: func(_ *env, v argv) (any, error) {
				args := v.args()
				e, err := equal(args[0], args[1])
				if err != nil {
					return nil, err
				}
				return e == want, nil
			}}
	}
	text := func(op string, f func(s, t string) bool) *fnDef {
		return &fnDef{name: opNames[op], op: op, min: 2, max: 2, params: []class{cString}, retType: typBool,
			call: func(_ *env, v argv) (any, error) {
				args := v.args()
				if args[0] == nil || args[1] == nil {
					return false, nil
				}
				s, ok1 := args[0].(string)
				t, ok2 := args[1].(string)
				if !ok1 || !ok2 {
					return nil, fmt.Errorf("invalid operation: %s %s %s", valueName(args[0]), op, valueName(args[1]))
				}
				return f(s, t), nil
			}}
	}
	return []*fnDef{
		arith("+", add), arith("-", sub), arith("*", mul), arith("/", quo), arith("%", rem), arith("**", pow),
		cmp("<", func(c int) bool { return c < 0 }),
		cmp(">", func(c int) bool { return c > 0 }),
		cmp("<=", func(c int) bool { return c <= 0 }),
		cmp(">=", func(c int) bool { return c >= 0 }),
		eq("==", true), eq("!=", false),
		text("contains", strings.Contains),
		text("startsWith", strings.HasPrefix),
		text("endsWith", strings.HasSuffix),
		{name: opNames["matches"], op: "matches", min: 2, max: 2, params: []class{cString}, retType: typBool, regexpArg: 1,
			call: func(_ *env, v argv) (any, error) {
				args := v.args()
				if args[0] == nil || args[1] == nil {
					return false, nil
				}
				s, ok := args[0].(string)
				if !ok {
					return nil, fmt.Errorf("invalid operation: %s matches string", valueName(args[0]))
				}
				re, err := argRegexp("matches", args, 1)
				if err != nil {
					return nil, err
				}
				return re.MatchString(s), nil
			}},
		{name: opNames["in"], op: "in", min: 2, max: 2, params: []class{anyClass, cArray}, retType: typBool,
			call: func(_ *env, v argv) (any, error) {
				args := v.args()
				if args[0] == nil || args[1] == nil {
					return false, nil
				}
				list, ok := args[1].([]any)
				if ints, isRange := args[1].([]int); isRange {
					// a..b
					i, ok := asInt(args[0])
					return ok && len(ints) > 0 && i >= int64(ints[0]) && i <= int64(ints[len(ints)-1]), nil
				}
				if !ok {
					return nil, fmt.Errorf("invalid operation: in %s (the right side must be a list [...])", valueName(args[1]))
				}
				for _, v := range list {
					if v == nil {
						continue
					}
					if e, err := equal(args[0], v); err == nil && e {
						return true, nil
					}
				}
				return false, nil
			}},
		{name: fnNeg, op: "-", min: 1, max: 1, params: []class{cNumber | cDuration}, ret: sameAsArg(0),
			call: func(_ *env, v argv) (any, error) {
				args := v.args()
				switch x := args[0].(type) {
				case nil:
					return nil, nil
				case float64:
					return -x, nil
				case decimal:
					return x.neg(), nil
				case time.Duration:
					return -x, nil
				}
				if i, ok := asInt(args[0]); ok {
					if i == math.MinInt64 {
						return nil, errIntOverflow
					}
					return -i, nil
				}
				return nil, fmt.Errorf("invalid operation: -%s", valueName(args[0]))
			}},
		{name: fnTruth, op: "condition", min: 1, max: 1, params: []class{cBool}, retType: typBool,
			call: func(_ *env, v argv) (any, error) {
				args := v.args()
				switch x := args[0].(type) {
				case nil:
					return false, nil
				case bool:
					return x, nil
				}
				return nil, fmt.Errorf("condition is %s, not bool", valueName(args[0]))
			}},
	}
}

// arithType is the result type of l op r, or why it is invalid.
func arithType(op string, l, r reflect.Type) (reflect.Type, error) {
	cl, cr := classOf(l), classOf(r)
	allowed := map[string]class{
		"+":  cNumber | cString | cTimestamp | cDuration,
		"-":  cNumber | cTimestamp | cDate | cDuration,
		"*":  cNumber | cDuration,
		"/":  cNumber,
		"%":  cNumber,
		"**": cNumber,
	}[op]
	bad := func() (reflect.Type, error) {
		hint := ""
		if op == "+" && (cl == cString || cr == cString) {
			hint = " (use concat to join values as text)"
		}
		return nil, fmt.Errorf("invalid operation: %s %s %s%s", typeName(l), op, typeName(r), hint)
	}
	for _, c := range []class{cl, cr} {
		if c&(cAny|cNull) == 0 && c&allowed == 0 {
			return bad()
		}
	}
	switch {
	case cl == cAny || cr == cAny:
		return typAny, nil
	case cl == cNull && cr == cNull:
		return typAny, nil
	case cl == cNull:
		cl = cr
	case cr == cNull:
		cr = cl
	}
	both := cl | cr
	if both&^cNumber == 0 {
		switch {
		case op == "**":
			return typFloat, nil
		case both&cDecimal != 0:
			return typDecimal, nil
		case op == "/" || both&cFloat != 0:
			return typFloat, nil
		}
		return typInt, nil
	}
	switch op {
	case "+":
		switch {
		case cl == cString && cr == cString:
			return typString, nil
		case both == cTimestamp|cDuration:
			return typTimestamp, nil
		case cl == cDuration && cr == cDuration:
			return typDuration, nil
		}
	case "-":
		switch {
		case cl == cTimestamp && cr == cTimestamp:
			return typDuration, nil
		case cl == cTimestamp && cr == cDuration:
			return typTimestamp, nil
		case cl == cDate && cr == cDate:
			return typInt, nil
		case cl == cDuration && cr == cDuration:
			return typDuration, nil
		}
	case "*":
		if both == cInt|cDuration {
			return typDuration, nil
		}
	}
	return bad()
}

// checkComparable tells whether l and r can be compared (ordered: with <).
func checkComparable(op string, l, r reflect.Type, ordered bool) error {
	cl, cr := classOf(l), classOf(r)
	if cl&(cAny|cNull) != 0 || cr&(cAny|cNull) != 0 {
		if ordered && (cl&(cBool|cBytes|cArray|cOther) != 0 || cr&(cBool|cBytes|cArray|cOther) != 0) {
			return fmt.Errorf("invalid operation: %s %s %s (no order)", typeName(l), op, typeName(r))
		}
		return nil
	}
	ok := cl == cr || (cl|cr)&^cNumber == 0
	if ordered && (cl|cr)&(cBool|cBytes|cArray|cOther) != 0 {
		ok = false
	}
	if !ok {
		return fmt.Errorf("invalid operation: %s %s %s (mismatched types)", typeName(l), op, typeName(r))
	}
	return nil
}

// numeric applies an arithmetic operation by the kinds of a and b: two
// integers (fi), a float with any number (ff), a decimal with an integer
// or a decimal (fd). handled is false when a or b is not a number.
func numeric(a, b any, fi func(x, y int64) (any, error), ff func(x, y float64) (any, error), fd func(x, y decimal) (any, error)) (v any, err error, handled bool) {
	if i, ok := asInt(a); ok {
		if j, ok := asInt(b); ok {
			v, err = fi(i, j)
			return v, err, true
		}
	}
	_, da := a.(decimal)
	_, db := b.(decimal)
	if da || db {
		x, ok1, err1 := decimalOperand(a)
		y, ok2, err2 := decimalOperand(b)
		if !ok1 || !ok2 {
			return nil, nil, false
		}
		if err := errors.Join(err1, err2); err != nil {
			return nil, err, true
		}
		v, err = fd(x, y)
		return v, err, true
	}
	x, ok1 := asFloat(a)
	y, ok2 := asFloat(b)
	if ok1 && ok2 {
		v, err = ff(x, y)
		return v, err, true
	}
	return nil, nil, false
}

// decimalOperand converts a number to a decimal; a float by its shortest
// written form (0.1 is exactly 0.1).
func decimalOperand(v any) (decimal, bool, error) {
	switch x := v.(type) {
	case decimal:
		return x, true, nil
	case float64:
		d, err := decFromFloat(x)
		return d, true, err
	}
	if i, ok := asInt(v); ok {
		return decFromInt(i), true, nil
	}
	return decimal{}, false, nil
}

func floatOperand(v any) (float64, bool) {
	if d, ok := v.(decimal); ok {
		return d.toFloat(), true
	}
	return asFloat(v)
}

func invalid(a any, op string, b any) error {
	return fmt.Errorf("invalid operation: %s %s %s", valueName(a), op, valueName(b))
}

func add(a, b any) (any, error) {
	v, err, ok := numeric(a, b, addInt,
		func(x, y float64) (any, error) { return x + y, nil },
		func(x, y decimal) (any, error) { return x.add(y) })
	if ok {
		return v, err
	}
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return x + y, nil
		}
	case time.Time:
		if y, ok := b.(time.Duration); ok {
			return x.Add(y), nil
		}
	case time.Duration:
		switch y := b.(type) {
		case time.Time:
			return y.Add(x), nil
		case time.Duration:
			return x + y, nil
		}
	}
	return nil, invalid(a, "+", b)
}

func sub(a, b any) (any, error) {
	v, err, ok := numeric(a, b, subInt,
		func(x, y float64) (any, error) { return x - y, nil },
		func(x, y decimal) (any, error) { return x.sub(y) })
	if ok {
		return v, err
	}
	switch x := a.(type) {
	case time.Time:
		switch y := b.(type) {
		case time.Time:
			return x.Sub(y), nil
		case time.Duration:
			return x.Add(-y), nil
		}
	case date:
		if y, ok := b.(date); ok {
			return daysBetween(y, x), nil
		}
	case time.Duration:
		if y, ok := b.(time.Duration); ok {
			return x - y, nil
		}
	}
	return nil, invalid(a, "-", b)
}

func mul(a, b any) (any, error) {
	v, err, ok := numeric(a, b, mulInt,
		func(x, y float64) (any, error) { return x * y, nil },
		func(x, y decimal) (any, error) { return x.mul(y) })
	if ok {
		return v, err
	}
	if d, ok := a.(time.Duration); ok {
		if n, ok := asInt(b); ok {
			return d * time.Duration(n), nil
		}
	}
	if d, ok := b.(time.Duration); ok {
		if n, ok := asInt(a); ok {
			return d * time.Duration(n), nil
		}
	}
	return nil, invalid(a, "*", b)
}

func quo(a, b any) (any, error) {
	v, err, ok := numeric(a, b,
		func(x, y int64) (any, error) {
			if y == 0 {
				return nil, errDivisionByZero
			}
			return float64(x) / float64(y), nil
		},
		func(x, y float64) (any, error) {
			if y == 0 {
				return nil, errDivisionByZero
			}
			return x / y, nil
		},
		func(x, y decimal) (any, error) { return x.quo(y) })
	if ok {
		return v, err
	}
	return nil, invalid(a, "/", b)
}

func rem(a, b any) (any, error) {
	v, err, ok := numeric(a, b,
		func(x, y int64) (any, error) {
			if y == 0 {
				return nil, errDivisionByZero
			}
			if y == -1 {
				return int64(0), nil
			}
			return x % y, nil
		},
		func(x, y float64) (any, error) {
			if y == 0 {
				return nil, errDivisionByZero
			}
			return math.Mod(x, y), nil
		},
		func(x, y decimal) (any, error) { return x.rem(y) })
	if ok {
		return v, err
	}
	return nil, invalid(a, "%", b)
}

func pow(a, b any) (any, error) {
	x, ok1 := floatOperand(a)
	y, ok2 := floatOperand(b)
	if !ok1 || !ok2 {
		return nil, invalid(a, "**", b)
	}
	return math.Pow(x, y), nil
}

func addInt(x, y int64) (any, error) {
	c := x + y
	if (x > 0 && y > 0 && c < 0) || (x < 0 && y < 0 && c >= 0) {
		return nil, errIntOverflow
	}
	return c, nil
}

func subInt(x, y int64) (any, error) {
	c := x - y
	if (x >= 0 && y < 0 && c < 0) || (x < 0 && y > 0 && c >= 0) {
		return nil, errIntOverflow
	}
	return c, nil
}

func mulInt(x, y int64) (any, error) {
	if x == 0 || y == 0 {
		return int64(0), nil
	}
	c := x * y
	if c/y != x || (x == -1 && y == math.MinInt64) || (y == -1 && x == math.MinInt64) {
		return nil, errIntOverflow
	}
	return c, nil
}
