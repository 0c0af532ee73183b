// Package transform compiles a mapping's field expressions and filter once
// per run and applies them to rows, one Thread per pipeline thread.
//
// It imports only the standard library and the expression library
// (github.com/expr-lang/expr); it does not know connectors or the catalog:
// its Type mirrors connector/spi's field types, with the same names and
// the same Go values in rows, and the worker converts between the two.
//
// TODO(doc): language reference.
package transform
