// Command weir is Weir's single binary and its composition root: it parses
// flags and configuration, wires the catalog into the broker, workload
// manager, worker and the other components, and handles signals. It is the
// only package that imports every other Weir package.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := NewMain(os.Stdout, os.Stderr).Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// Exit codes scripts can rely on.
const (
	ExitOK       = 0 // success; for `submit --wait`, the run succeeded or was empty
	ExitError    = 1 // the command failed (bad flag, server error, ...)
	ExitRunEnded = 2 // `submit --wait`: the run ended failed, canceled or aborted
)

// Main holds the process's outputs; tests build one per command line.
type Main struct {
	Stdout io.Writer
	Stderr io.Writer
}

// NewMain returns a Main writing to stdout and stderr.
func NewMain(stdout, stderr io.Writer) *Main { return &Main{Stdout: stdout, Stderr: stderr} }

// Run executes one command line and returns the process exit code.
func (m *Main) Run(ctx context.Context, args []string) int {
	root := newRootCmd(m)
	root.SetArgs(args)
	root.SetOut(m.Stdout)
	root.SetErr(m.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(m.Stderr, ee.msg)
		}
		return ee.code
	}
	fmt.Fprintf(m.Stderr, "Error: %v\n", err)
	var h interface{ Hint() string }
	if errors.As(err, &h) && h.Hint() != "" {
		fmt.Fprintf(m.Stderr, "Hint: %s\n", h.Hint())
	}
	return ExitError
}

// exitError ends a command with a specific exit code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// hintError is an error with a hint of what to do about it.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }
func (e *hintError) Hint() string  { return e.hint }

func withHint(err error, format string, args ...any) error {
	return &hintError{err: err, hint: fmt.Sprintf(format, args...)}
}
