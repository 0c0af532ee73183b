package transform

import (
	"fmt"
	"math"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
)

// Most mapping expressions are calls of built-ins over fields and
// constants: upper(symbol), round(price * quantity, 2). For those, the
// checked expression tree is also turned into a tree of Go closures, which
// a Thread runs instead of expr's virtual machine: no VM set-up per row, no
// stack, errors returned rather than raised. Expressions with other forms
// (ranges, unary +...) run on the VM. Both evaluators are tested on the
// same expressions (compile's vmOnly).

// evalState is what a closure tree reads while it runs.
type evalState struct {
	src  []any // the source row
	conv []any // the converted values of decimal and date source fields
	vars []any // the expression's variables (let, inlined functions)
}

type evalFunc func(s *evalState) (any, error)

// evalError is a failure with the location of the failing operation.
type evalError struct {
	loc file.Location
	err error
}

func (e *evalError) Error() string { return e.err.Error() }
func (e *evalError) Unwrap() error { return e.err }

// closureBuilder turns a checked tree into closures.
type closureBuilder struct {
	c     *compiler
	slots int // variables used
}

type varScope struct {
	name string
	slot int
	up   *varScope
}

// build returns the closure of n, false when n has a form it does not
// handle.
func (b *closureBuilder) build(n ast.Node, vs *varScope) (evalFunc, bool) {
	switch x := n.(type) {
	case *ast.NilNode, *ast.FloatNode, *ast.BoolNode, *ast.StringNode, *ast.BytesNode, *ast.ConstantNode:
		v, _ := constValue(x)
		return func(*evalState) (any, error) { return v, nil }, true
	case *ast.IntegerNode:
		// As the VM pushes it: an int.
		v := any(x.Value)
		return func(*evalState) (any, error) { return v, nil }, true
	case *ast.IdentifierNode:
		for s := vs; s != nil; s = s.up {
			if s.name == x.Value {
				slot := s.slot
				return func(st *evalState) (any, error) { return st.vars[slot], nil }, true
			}
		}
		j := b.c.sourceOf(x.Value)
		if j < 0 {
			return nil, false
		}
		if t := b.c.spec.Source[j].Type; t == TypeDecimal || t == TypeDate {
			return func(st *evalState) (any, error) { return st.conv[j], nil }, true
		}
		return func(st *evalState) (any, error) { return st.src[j], nil }, true
	case *ast.CallNode:
		if f, ok := b.numeric(x); ok {
			return f, true
		}
		return b.call(x, vs)
	case *ast.ConditionalNode:
		cond, ok1 := b.build(x.Cond, vs)
		e1, ok2 := b.build(x.Exp1, vs)
		e2, ok3 := b.build(x.Exp2, vs)
		if !ok1 || !ok2 || !ok3 {
			return nil, false
		}
		loc := x.Cond.Location()
		return func(st *evalState) (any, error) {
			c, err := cond(st)
			if err != nil {
				return nil, err
			}
			t, ok := c.(bool)
			if !ok {
				return nil, &evalError{loc, fmt.Errorf("condition is %s, not bool", valueName(c))}
			}
			if t {
				return e1(st)
			}
			return e2(st)
		}, true
	case *ast.UnaryNode:
		if x.Operator != "not" && x.Operator != "!" {
			return nil, false
		}
		inner, ok := b.build(x.Node, vs)
		if !ok {
			return nil, false
		}
		loc := x.Location()
		return func(st *evalState) (any, error) {
			v, err := inner(st)
			if err != nil {
				return nil, err
			}
			t, ok := v.(bool)
			if !ok {
				return nil, &evalError{loc, fmt.Errorf("not %s: operand must be bool", valueName(v))}
			}
			return !t, nil
		}, true
	case *ast.BinaryNode:
		l, ok1 := b.build(x.Left, vs)
		r, ok2 := b.build(x.Right, vs)
		if !ok1 || !ok2 {
			return nil, false
		}
		loc := x.Location()
		switch x.Operator {
		case "and", "&&", "or", "||":
			or := x.Operator == "or" || x.Operator == "||"
			return func(st *evalState) (any, error) {
				v, err := l(st)
				if err != nil {
					return nil, err
				}
				t, ok := v.(bool)
				if !ok {
					return nil, &evalError{loc, fmt.Errorf("%s: operand must be bool, got %s", x.Operator, valueName(v))}
				}
				if t == or {
					return t, nil
				}
				v, err = r(st)
				if err != nil {
					return nil, err
				}
				if t, ok = v.(bool); !ok {
					return nil, &evalError{loc, fmt.Errorf("%s: operand must be bool, got %s", x.Operator, valueName(v))}
				}
				return t, nil
			}, true
		case "??":
			return func(st *evalState) (any, error) {
				v, err := l(st)
				if err != nil || v != nil {
					return v, err
				}
				return r(st)
			}, true
		}
		return nil, false
	case *ast.VariableDeclaratorNode:
		value, ok := b.build(x.Value, vs)
		if !ok {
			return nil, false
		}
		slot := b.slots
		b.slots++
		body, ok := b.build(x.Expr, &varScope{name: x.Name, slot: slot, up: vs})
		if !ok {
			return nil, false
		}
		return func(st *evalState) (any, error) {
			v, err := value(st)
			if err != nil {
				return nil, err
			}
			st.vars[slot] = v
			return body(st)
		}, true
	case *ast.SequenceNode:
		parts := make([]evalFunc, len(x.Nodes))
		for i, p := range x.Nodes {
			f, ok := b.build(p, vs)
			if !ok {
				return nil, false
			}
			parts[i] = f
		}
		return func(st *evalState) (v any, err error) {
			for _, p := range parts {
				if v, err = p(st); err != nil {
					return nil, err
				}
			}
			return v, nil
		}, true
	case *ast.ArrayNode:
		parts := make([]evalFunc, len(x.Nodes))
		for i, p := range x.Nodes {
			f, ok := b.build(p, vs)
			if !ok {
				return nil, false
			}
			parts[i] = f
		}
		return func(st *evalState) (any, error) {
			list := make([]any, len(parts))
			for i, p := range parts {
				v, err := p(st)
				if err != nil {
					return nil, err
				}
				list[i] = v
			}
			return list, nil
		}, true
	}
	return nil, false
}

func (b *closureBuilder) call(x *ast.CallNode, vs *varScope) (evalFunc, bool) {
	id, ok := x.Callee.(*ast.IdentifierNode)
	if !ok {
		return nil, false
	}
	f := b.c.fns[id.Value]
	if f == nil {
		return nil, false
	}
	args := make([]evalFunc, len(x.Arguments))
	for i, a := range x.Arguments {
		fn, ok := b.build(a, vs)
		if !ok {
			return nil, false
		}
		args[i] = fn
	}
	e, loc := b.c.env, x.Location()
	fail := func(err error) error {
		if _, ok := err.(*evalError); ok {
			return err
		}
		return &evalError{loc, err}
	}
	switch len(args) {
	case 0:
		return func(*evalState) (any, error) {
			v, err := f.call(e, argv{})
			if err != nil {
				return nil, fail(err)
			}
			return v, nil
		}, true
	case 1:
		a0 := args[0]
		return func(st *evalState) (any, error) {
			x, err := a0(st)
			if err != nil {
				return nil, err
			}
			v, err := f.call(e, argv{n: 1, a: [3]any{x}})
			if err != nil {
				return nil, fail(err)
			}
			return v, nil
		}, true
	case 2:
		a0, a1 := args[0], args[1]
		return func(st *evalState) (any, error) {
			x, err := a0(st)
			if err != nil {
				return nil, err
			}
			y, err := a1(st)
			if err != nil {
				return nil, err
			}
			v, err := f.call(e, argv{n: 2, a: [3]any{x, y}})
			if err != nil {
				return nil, fail(err)
			}
			return v, nil
		}, true
	case 3:
		a0, a1, a2 := args[0], args[1], args[2]
		return func(st *evalState) (any, error) {
			x, err := a0(st)
			if err != nil {
				return nil, err
			}
			y, err := a1(st)
			if err != nil {
				return nil, err
			}
			z, err := a2(st)
			if err != nil {
				return nil, err
			}
			v, err := f.call(e, argv{n: 3, a: [3]any{x, y, z}})
			if err != nil {
				return nil, fail(err)
			}
			return v, nil
		}, true
	}
	return func(st *evalState) (any, error) {
		vals := make([]any, len(args))
		for i, a := range args {
			v, err := a(st)
			if err != nil {
				return nil, err
			}
			vals[i] = v
		}
		v, err := f.call(e, argv{n: len(vals), more: vals})
		if err != nil {
			return nil, fail(err)
		}
		return v, nil
	}, true
}

// Numeric subexpressions whose type is known to be float or int are also
// computed unboxed: round(price * quantity, 2) boxes one float, not three.
// They follow the same rules as the functions they stand for (NULL
// propagates, integer overflow and division by zero fail).

type floatFunc func(st *evalState) (v float64, null bool, err error)

type intFunc func(st *evalState) (v int64, null bool, err error)

func nodeClass(n ast.Node) class { return classOf(n.Type()) }

func calleeName(n ast.Node) (*ast.CallNode, string) {
	call, ok := n.(*ast.CallNode)
	if !ok {
		return nil, ""
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok {
		return nil, ""
	}
	return call, id.Value
}

// numeric builds the boxed closure of a float or int computation, false
// when n is not one (or is a mere name or constant).
func (b *closureBuilder) numeric(n ast.Node) (evalFunc, bool) {
	call, name := calleeName(n)
	if call == nil {
		return nil, false
	}
	switch name {
	case "op<", "op>", "op<=", "op>=", "op==", "op!=":
		return b.numericCompare(call, name)
	}
	switch nodeClass(n) {
	case cFloat:
		f, ok := b.buildFloat(n)
		if !ok {
			return nil, false
		}
		return func(st *evalState) (any, error) {
			v, null, err := f(st)
			if err != nil || null {
				return nil, err
			}
			return v, nil
		}, true
	case cInt:
		f, ok := b.buildInt(n)
		if !ok {
			return nil, false
		}
		return func(st *evalState) (any, error) {
			v, null, err := f(st)
			if err != nil || null {
				return nil, err
			}
			return v, nil
		}, true
	}
	return nil, false
}

func (b *closureBuilder) numericCompare(call *ast.CallNode, name string) (evalFunc, bool) {
	l, r := call.Arguments[0], call.Arguments[1]
	cl, cr := nodeClass(l), nodeClass(r)
	if (cl != cInt && cl != cFloat) || (cr != cInt && cr != cFloat) {
		return nil, false
	}
	var test func(c int) bool
	eq := name == "op==" || name == "op!="
	switch name {
	case "op<":
		test = func(c int) bool { return c < 0 }
	case "op>":
		test = func(c int) bool { return c > 0 }
	case "op<=":
		test = func(c int) bool { return c <= 0 }
	case "op>=":
		test = func(c int) bool { return c >= 0 }
	case "op==":
		test = func(c int) bool { return c == 0 }
	case "op!=":
		test = func(c int) bool { return c != 0 }
	}
	// NULL: false for ordering; for equality NULL equals only NULL.
	onNull := func(ln, rn bool) bool {
		if !eq {
			return false
		}
		return (ln && rn) == (name == "op==")
	}
	if cl == cInt && cr == cInt {
		lf, ok1 := b.buildInt(l)
		rf, ok2 := b.buildInt(r)
		if !ok1 || !ok2 {
			return nil, false
		}
		return func(st *evalState) (any, error) {
			x, xn, err := lf(st)
			if err != nil {
				return nil, err
			}
			y, yn, err := rf(st)
			if err != nil {
				return nil, err
			}
			if xn || yn {
				return onNull(xn, yn), nil
			}
			return test(cmpOrdered(x, y)), nil
		}, true
	}
	lf, ok1 := b.buildFloat(l)
	rf, ok2 := b.buildFloat(r)
	if !ok1 || !ok2 {
		return nil, false
	}
	return func(st *evalState) (any, error) {
		x, xn, err := lf(st)
		if err != nil {
			return nil, err
		}
		y, yn, err := rf(st)
		if err != nil {
			return nil, err
		}
		if xn || yn {
			return onNull(xn, yn), nil
		}
		return test(cmpFloat(x, y)), nil
	}, true
}

// buildFloat computes a float or int node as a float64.
func (b *closureBuilder) buildFloat(n ast.Node) (floatFunc, bool) {
	if nodeClass(n) == cInt {
		f, ok := b.buildInt(n)
		if !ok {
			return nil, false
		}
		return func(st *evalState) (float64, bool, error) {
			v, null, err := f(st)
			return float64(v), null, err
		}, true
	}
	switch x := n.(type) {
	case *ast.FloatNode:
		v := x.Value
		return func(*evalState) (float64, bool, error) { return v, false, nil }, true
	case *ast.ConstantNode:
		v, ok := x.Value.(float64)
		if !ok {
			return nil, false
		}
		return func(*evalState) (float64, bool, error) { return v, false, nil }, true
	case *ast.NilNode:
		return func(*evalState) (float64, bool, error) { return 0, true, nil }, true
	case *ast.IdentifierNode:
		j := b.c.sourceOf(x.Value)
		if j < 0 || b.c.spec.Source[j].Type != TypeFloat {
			return nil, false
		}
		loc := x.Location()
		return func(st *evalState) (float64, bool, error) {
			switch v := st.src[j].(type) {
			case float64:
				return v, false, nil
			case nil:
				return 0, true, nil
			default:
				if f, ok := asFloat(v); ok {
					return f, false, nil
				}
				return 0, false, &evalError{loc, fmt.Errorf("a float field holds %T", v)}
			}
		}, true
	}
	call, name := calleeName(n)
	if call == nil || nodeClass(n) != cFloat {
		return nil, false
	}
	loc := call.Location()
	switch name {
	case "op+", "op-", "op*", "op/":
		l, r := call.Arguments[0], call.Arguments[1]
		for _, a := range []ast.Node{l, r} {
			if c := nodeClass(a); c != cInt && c != cFloat && c != cNull {
				return nil, false
			}
		}
		lf, ok1 := b.buildFloat(l)
		rf, ok2 := b.buildFloat(r)
		if !ok1 || !ok2 {
			return nil, false
		}
		op := name[2]
		return func(st *evalState) (float64, bool, error) {
			x, xn, err := lf(st)
			if err != nil {
				return 0, false, err
			}
			y, yn, err := rf(st)
			if err != nil {
				return 0, false, err
			}
			if xn || yn {
				return 0, true, nil
			}
			switch op {
			case '+':
				return x + y, false, nil
			case '-':
				return x - y, false, nil
			case '*':
				return x * y, false, nil
			}
			if y == 0 {
				return 0, false, &evalError{loc, errDivisionByZero}
			}
			return x / y, false, nil
		}, true
	case fnNeg, "abs", "floor", "ceil", "round":
		a := call.Arguments[0]
		if nodeClass(a) != cFloat {
			return nil, false
		}
		af, ok := b.buildFloat(a)
		if !ok {
			return nil, false
		}
		digits := 0
		if name == "round" && len(call.Arguments) == 2 {
			d, ok := call.Arguments[1].(*ast.IntegerNode)
			if !ok || d.Value > maxDecimalScale || d.Value < -maxDecimalScale {
				return nil, false
			}
			digits = d.Value
		}
		var f func(float64) float64
		switch name {
		case fnNeg:
			f = func(x float64) float64 { return -x }
		case "abs":
			f = math.Abs
		case "floor":
			f = math.Floor
		case "ceil":
			f = math.Ceil
		case "round":
			f = func(x float64) float64 { return roundFloat(x, digits) }
		}
		return func(st *evalState) (float64, bool, error) {
			x, null, err := af(st)
			if err != nil || null {
				return 0, null, err
			}
			return f(x), false, nil
		}, true
	}
	return nil, false
}

// buildInt computes an int node as an int64.
func (b *closureBuilder) buildInt(n ast.Node) (intFunc, bool) {
	switch x := n.(type) {
	case *ast.IntegerNode:
		v := int64(x.Value)
		return func(*evalState) (int64, bool, error) { return v, false, nil }, true
	case *ast.ConstantNode:
		v, ok := asInt(x.Value)
		if !ok {
			return nil, false
		}
		return func(*evalState) (int64, bool, error) { return v, false, nil }, true
	case *ast.NilNode:
		return func(*evalState) (int64, bool, error) { return 0, true, nil }, true
	case *ast.IdentifierNode:
		j := b.c.sourceOf(x.Value)
		if j < 0 || b.c.spec.Source[j].Type != TypeInt {
			return nil, false
		}
		loc := x.Location()
		return func(st *evalState) (int64, bool, error) {
			switch v := st.src[j].(type) {
			case int64:
				return v, false, nil
			case nil:
				return 0, true, nil
			default:
				if i, ok := asInt(v); ok {
					return i, false, nil
				}
				return 0, false, &evalError{loc, fmt.Errorf("an int field holds %T", v)}
			}
		}, true
	}
	call, name := calleeName(n)
	if call == nil || nodeClass(n) != cInt {
		return nil, false
	}
	loc := call.Location()
	switch name {
	case "op+", "op-", "op*":
		l, r := call.Arguments[0], call.Arguments[1]
		for _, a := range []ast.Node{l, r} {
			if c := nodeClass(a); c != cInt && c != cNull {
				return nil, false
			}
		}
		lf, ok1 := b.buildInt(l)
		rf, ok2 := b.buildInt(r)
		if !ok1 || !ok2 {
			return nil, false
		}
		var f func(x, y int64) (any, error)
		switch name {
		case "op+":
			f = addInt
		case "op-":
			f = subInt
		default:
			f = mulInt
		}
		return func(st *evalState) (int64, bool, error) {
			x, xn, err := lf(st)
			if err != nil {
				return 0, false, err
			}
			y, yn, err := rf(st)
			if err != nil {
				return 0, false, err
			}
			if xn || yn {
				return 0, true, nil
			}
			v, err := f(x, y)
			if err != nil {
				return 0, false, &evalError{loc, err}
			}
			return v.(int64), false, nil
		}, true
	}
	return nil, false
}
