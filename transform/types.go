package transform

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Type is the logical type of a field. The values and their meaning are the
// same as connector/spi's FieldType; a Row holds, for each type:
//
//	string    string
//	int       int64
//	float     float64
//	decimal   string, canonical ("-12.340", no exponent)
//	bool      bool
//	date      time.Time at 00:00 UTC of that day
//	timestamp time.Time (an instant, in any zone)
//	bytes     []byte
//
// and NULL is nil whatever the type. Apply reads and writes these values.
type Type string

// The field types.
const (
	TypeString    Type = "string"
	TypeInt       Type = "int"
	TypeFloat     Type = "float"
	TypeDecimal   Type = "decimal"
	TypeBool      Type = "bool"
	TypeDate      Type = "date"
	TypeTimestamp Type = "timestamp"
	TypeBytes     Type = "bytes"
)

// Valid tells whether t is one of the field types.
func (t Type) Valid() bool {
	switch t {
	case TypeString, TypeInt, TypeFloat, TypeDecimal, TypeBool, TypeDate, TypeTimestamp, TypeBytes:
		return true
	}
	return false
}

// Field is a named, typed column: of the source rows or of the output rows.
type Field struct {
	Name string
	Type Type
}

// FieldSpec is one target field: its name, its type and the expression over
// the source fields that computes it.
type FieldSpec struct {
	Name string
	Type Type
	Expr string
}

// Function is a user-defined named function: Expr sees only the Params (and
// other functions); a call full_name(a, b) evaluates Expr with first=a and
// last=b. Functions may call each other but not recursively.
type Function struct {
	Name   string
	Params []string
	Expr   string
}

// Spec is everything a mapping's transform is compiled from.
type Spec struct {
	// Source is the schema of the rows given to Apply.
	Source []Field
	// Fields are the output fields, in order.
	Fields []FieldSpec
	// Filter is an optional boolean expression over the source fields: rows
	// for which it is not true (false or NULL) are dropped.
	Filter string
	// Functions are the user-defined functions the expressions may call.
	Functions []Function
	// Tables are code translation tables for translate(table, value):
	// Tables["gender"]["F"] = "1".
	Tables map[string]map[string]string
	// Location is the default zone for parsing and formatting timestamps,
	// today() and now(); nil means UTC.
	Location *time.Location
	// Params are the run's parameters, available as params.NAME (strings).
	Params map[string]string
	// Now is the instant now() returns for the whole run (so that a run is
	// reproducible); the zero value means the time of Compile.
	Now time.Time
}

// CompileError is one problem found while compiling a Spec: which expression
// (a target field's, the filter's or a user function's), where in it (Line
// and Column, 1-based, counted in characters; 0 when the problem is not at
// a position) and why.
type CompileError struct {
	// Field is the target field whose expression is wrong ("" otherwise).
	Field string `json:"field,omitempty"`
	// Filter is true when the filter is wrong.
	Filter bool `json:"filter,omitempty"`
	// Function is the user function whose definition is wrong ("" otherwise).
	Function string `json:"function,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Reason   string `json:"reason"`
}

func (e *CompileError) Error() string {
	var b strings.Builder
	switch {
	case e.Field != "":
		fmt.Fprintf(&b, "field %q", e.Field)
	case e.Filter:
		b.WriteString("filter")
	case e.Function != "":
		fmt.Fprintf(&b, "function %q", e.Function)
	default:
		b.WriteString("mapping")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " (%d:%d)", e.Line, e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// CompileErrors returns every *CompileError in err (as returned by Compile,
// which joins one per bad expression), in order.
func CompileErrors(err error) []*CompileError {
	var out []*CompileError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		var ce *CompileError
		if errors.As(err, &ce) && ce == err {
			out = append(out, ce)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if errors.As(err, &ce) {
			out = append(out, ce)
		}
	}
	walk(err)
	return out
}

// RowError is a failure while transforming one row: a value that cannot be
// converted, a bad date, a division by zero, a result that does not fit its
// field. The mapping's bad-row policy decides what happens to the row.
type RowError struct {
	// Field is the target field being computed ("" for the filter or for a
	// source value that cannot be read).
	Field string `json:"field,omitempty"`
	// Filter is true when the filter failed.
	Filter bool `json:"filter,omitempty"`
	// Reason says why, with the position in the expression when known
	// ("division by zero (at 1:7)").
	Reason string `json:"reason"`
}

func (e *RowError) Error() string {
	switch {
	case e.Field != "":
		return fmt.Sprintf("field %q: %s", e.Field, e.Reason)
	case e.Filter:
		return "filter: " + e.Reason
	}
	return e.Reason
}
