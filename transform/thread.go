package transform

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Output returns the fields of the rows Apply writes, in order.
func (p *Program) Output() []Field { return append([]Field(nil), p.output...) }

// Source returns the fields of the rows Apply reads, in order.
func (p *Program) Source() []Field { return append([]Field(nil), p.source...) }

// Thread applies a Program to rows, one at a time. It keeps the state that
// is reused from row to row (the virtual machine, its variables), so it
// must be used by one goroutine only; make one per thread with NewThread.
type Thread struct {
	p     *Program
	vm    vm.VM
	vars  []any
	state evalState
}

// NewThread makes a Thread of p. It is cheap: nothing is compiled.
func (p *Program) NewThread() *Thread {
	slots := 0
	if p.filter != nil {
		slots = p.filter.slots
	}
	for _, f := range p.fields {
		if f.expr != nil {
			slots = max(slots, f.expr.slots)
		}
	}
	return &Thread{p: p, vars: make([]any, p.base+len(p.source)), state: evalState{vars: make([]any, slots)}}
}

// Apply transforms one row. in holds a value for each source field (see
// Type for the Go value of each type); out, which must have one slot per
// output field, receives the output values. keep is false when the filter
// drops the row (out is then unspecified). A failure of the row (a bad
// value, a division by zero, a result that does not fit its field) is a
// *RowError. Each value of in must have its field's Go type (a value of
// another type fails the functions that meet it, and is copied as it is
// by a field that copies it). The caller may reuse in and out from row to row: values are
// placed in out as they are (a copied string or byte slice shares its
// memory with in), and Apply holds on to neither.
func (t *Thread) Apply(in []any, out []any) (keep bool, err error) {
	defer func() {
		// A bug must fail the row, not the process.
		if r := recover(); r != nil {
			keep, err = false, &RowError{Reason: fmt.Sprintf("internal error: %v", r)}
		}
	}()
	p := t.p
	if len(in) != len(p.source) {
		return false, fmt.Errorf("apply transform: row has %d values, source has %d fields", len(in), len(p.source))
	}
	if len(out) != len(p.fields) {
		return false, fmt.Errorf("apply transform: output has %d slots, mapping has %d fields", len(out), len(p.fields))
	}
	if p.dropAll {
		return false, nil
	}
	vars := t.vars
	if p.zeroCopy {
		vars = in
	}
	t.vm.Variables = vars
	t.state.src, t.state.conv = in, vars[p.base:]
	if p.filter != nil {
		if !p.zeroCopy {
			if err := t.load(in, p.filterRefs); err != nil {
				return false, err
			}
		}
		v, err := t.run(p.filter)
		if err != nil {
			return false, runError(err, p.filter, "", true)
		}
		if b, _ := v.(bool); !b {
			return false, nil
		}
	}
	if !p.zeroCopy {
		if err := t.load(in, p.fieldRefs); err != nil {
			return false, err
		}
	}
	for i := range p.fields {
		f := &p.fields[i]
		switch f.kind {
		case fieldCopy:
			out[i] = in[f.src]
		case fieldConstant:
			out[i] = f.value
		case fieldConvert:
			v, err := f.out(in[f.src])
			if err != nil {
				return false, &RowError{Field: f.name, Reason: err.Error()}
			}
			out[i] = v
		case fieldExpr:
			v, err := t.run(f.expr)
			if err != nil {
				return false, runError(err, f.expr, f.name, false)
			}
			if !f.fits(v) {
				if v, err = f.out(v); err != nil {
					return false, &RowError{Field: f.name, Reason: err.Error()}
				}
			}
			out[i] = v
		}
	}
	return true, nil
}

// fits tells whether v is already a row value of the field's type, which
// is the common case: then no conversion is needed.
func (f *fieldProgram) fits(v any) bool {
	switch v.(type) {
	case nil:
		return true
	case string:
		return f.typ == TypeString
	case int64:
		return f.typ == TypeInt
	case float64:
		return f.typ == TypeFloat
	case bool:
		return f.typ == TypeBool
	case time.Time:
		return f.typ == TypeTimestamp
	case []byte:
		return f.typ == TypeBytes
	}
	return false
}

func (t *Thread) run(ep *exprProgram) (any, error) {
	if ep.eval != nil {
		return ep.eval(&t.state)
	}
	return t.vm.Run(ep.prog, nil)
}

// load puts the source fields refs into their slots, converting decimals
// and dates to their expression values. Other values are not checked: a
// value of the wrong Go type fails in the functions that meet it.
func (t *Thread) load(in []any, refs []int) error {
	base := t.p.base
	for _, j := range refs {
		v := in[j]
		if conv := t.p.in[j]; conv != nil && v != nil {
			var err error
			if v, err = conv(v); err != nil {
				return &RowError{Reason: fmt.Sprintf("source field %q: %v", t.p.source[j].Name, err)}
			}
		}
		t.vars[base+j] = v
	}
	return nil
}

// toDate is the date of a date field's value: 00:00 UTC of its day
// (connectors give exactly that; another time counts by its own zone).
func toDate(t time.Time) date {
	if t.Location() == time.UTC && t.Unix()%86400 == 0 && t.Nanosecond() == 0 {
		return makeDate(t)
	}
	return dateIn(t)
}

// runError turns a VM error into a RowError with the position of the
// failing operation.
func runError(err error, ep *exprProgram, field string, filter bool) *RowError {
	re := &RowError{Field: field, Filter: filter, Reason: err.Error()}
	var ee *evalError
	if errors.As(err, &ee) {
		fe := (&file.Error{Location: ee.loc}).Bind(ep.prog.Source())
		msg := ee.err.Error()
		if name, ok := ep.callSites[ee.loc]; ok {
			msg = "in function " + name + ": " + msg
		}
		re.Reason = fmt.Sprintf("%s (at %d:%d)", msg, fe.Line, fe.Column+1)
		return re
	}
	var fe *file.Error
	if errors.As(err, &fe) {
		msg := fe.Message
		if inner := fe.Unwrap(); inner != nil {
			msg = inner.Error()
		}
		if name, ok := ep.callSites[fe.Location]; ok {
			msg = "in function " + name + ": " + msg
		}
		re.Reason = fmt.Sprintf("%s (at %d:%d)", goTypeNames.Replace(msg), fe.Line, fe.Column+1)
	}
	return re
}

// inConverter converts a row value of field f to its expression value,
// checking its Go type.
func inConverter(f Field) func(any) (any, error) {
	article := "a"
	if strings.ContainsRune("aeiou", rune(string(f.Type)[0])) {
		article = "an"
	}
	want := func(v any) error {
		return fmt.Errorf("%s %s field holds %T", article, f.Type, v)
	}
	switch f.Type {
	case TypeString:
		return func(v any) (any, error) {
			if _, ok := v.(string); ok || v == nil {
				return v, nil
			}
			return nil, want(v)
		}
	case TypeInt:
		return func(v any) (any, error) {
			switch x := v.(type) {
			case nil, int64:
				return v, nil
			default:
				if i, ok := asInt(x); ok {
					return i, nil
				}
			}
			return nil, want(v)
		}
	case TypeFloat:
		return func(v any) (any, error) {
			switch x := v.(type) {
			case nil, float64:
				return v, nil
			case float32:
				return float64(x), nil
			}
			return nil, want(v)
		}
	case TypeDecimal:
		return func(v any) (any, error) {
			switch x := v.(type) {
			case nil:
				return nil, nil
			case string:
				return parseDecimal(x)
			}
			return nil, want(v)
		}
	case TypeBool:
		return func(v any) (any, error) {
			if _, ok := v.(bool); ok || v == nil {
				return v, nil
			}
			return nil, want(v)
		}
	case TypeDate:
		return func(v any) (any, error) {
			switch x := v.(type) {
			case nil:
				return nil, nil
			case time.Time:
				return toDate(x), nil
			}
			return nil, want(v)
		}
	case TypeTimestamp:
		return func(v any) (any, error) {
			if _, ok := v.(time.Time); ok || v == nil {
				return v, nil
			}
			return nil, want(v)
		}
	case TypeBytes:
		return func(v any) (any, error) {
			if _, ok := v.([]byte); ok || v == nil {
				return v, nil
			}
			return nil, want(v)
		}
	}
	return func(v any) (any, error) { return v, nil }
}

// outConverter converts an expression value to the row value of a field of
// type typ: int widens to float and decimal, anything becomes text for a
// string field; any other mismatch is an error.
func outConverter(typ Type) func(any) (any, error) {
	mismatch := func(v any) error {
		s, _ := toText(v)
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return fmt.Errorf("result %q is %s; the field is %s", s, valueName(v), typ)
	}
	switch typ {
	case TypeString:
		return func(v any) (any, error) {
			switch x := v.(type) {
			case nil, string:
				return v, nil
			case []any:
				return nil, mismatch(v)
			default:
				s, _ := toText(x)
				return s, nil
			}
		}
	case TypeInt:
		return func(v any) (any, error) {
			switch x := v.(type) {
			case nil, int64:
				return v, nil
			default:
				if i, ok := asInt(x); ok {
					return i, nil
				}
			}
			return nil, mismatch(v)
		}
	case TypeFloat:
		return func(v any) (any, error) {
			switch x := v.(type) {
			case nil, float64:
				return v, nil
			default:
				if i, ok := asInt(x); ok {
					return float64(i), nil
				}
			}
			return nil, mismatch(v)
		}
	case TypeDecimal:
		return func(v any) (any, error) {
			switch x := v.(type) {
			case nil:
				return nil, nil
			case decimal:
				return x.String(), nil
			default:
				if i, ok := asInt(x); ok {
					return strconv.FormatInt(i, 10), nil
				}
			}
			return nil, mismatch(v)
		}
	case TypeBool:
		return func(v any) (any, error) {
			if _, ok := v.(bool); ok || v == nil {
				return v, nil
			}
			return nil, mismatch(v)
		}
	case TypeDate:
		return func(v any) (any, error) {
			switch x := v.(type) {
			case nil:
				return nil, nil
			case date:
				return x.time(), nil
			}
			return nil, mismatch(v)
		}
	case TypeTimestamp:
		return func(v any) (any, error) {
			if _, ok := v.(time.Time); ok || v == nil {
				return v, nil
			}
			return nil, mismatch(v)
		}
	case TypeBytes:
		return func(v any) (any, error) {
			if _, ok := v.([]byte); ok || v == nil {
				return v, nil
			}
			return nil, mismatch(v)
		}
	}
	return func(v any) (any, error) { return nil, mismatch(v) }
}
