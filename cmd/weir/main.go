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
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/weirdata/weir/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := NewMain(os.Stdout, os.Stderr).Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// Exit codes scripts can rely on; `weir --help` and the README list them.
const (
	ExitOK          = 0 // success; for `submit --wait`, the run succeeded or was empty
	ExitError       = 1 // any other failure (server error, catalog down, ...)
	ExitRunEnded    = 2 // `submit --wait`: the run ended failed, canceled or aborted
	ExitUsage       = 3 // bad command line, flag, environment variable or configuration file
	ExitNotFound    = 4 // the server has no such run, mapping, system, ...
	ExitAuth        = 5 // the server refused the token (401) or the user's entitlements (403)
	ExitUnreachable = 6 // the server could not be reached
)

// exitCodesHelp documents the exit codes in `weir --help`.
const exitCodesHelp = `Exit codes:
  0  success (submit --wait: the run succeeded or found no data)
  1  any other error
  2  submit --wait: the run failed, was canceled or was aborted
  3  bad command line, flag, WEIR_* variable or configuration file
  4  not found (no such run, mapping, system, ...)
  5  unauthenticated (bad token) or forbidden (no entitlement)
  6  the server cannot be reached`

// exitCode is the exit code for an error a command returned.
func exitCode(err error) int {
	var ue *usageError
	var ce *client.ConnError
	var ae *client.APIError
	switch {
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &ce):
		return ExitUnreachable
	case errors.As(err, &ae):
		switch ae.Status {
		case http.StatusUnauthorized, http.StatusForbidden:
			return ExitAuth
		case http.StatusNotFound:
			return ExitNotFound
		}
	}
	return ExitError
}

// fallbackHint is the hint of an error that came without one, by its kind.
func fallbackHint(err error) string {
	var ce *client.ConnError
	var ae *client.APIError
	switch {
	case errors.As(err, &ce):
		return "check --server / WEIR_SERVER and that the server is up"
	case errors.As(err, &ae):
		switch {
		case ae.Status == http.StatusUnauthorized:
			return "check --token / WEIR_TOKEN"
		case ae.Status == http.StatusForbidden:
			return "ask an admin for the entitlement (`weir whoami` shows your grants)"
		case ae.Status == http.StatusNotFound:
			return "check the name or id; the list commands show what exists"
		case ae.Status == http.StatusConflict:
			return "someone changed it meanwhile; look at it again and retry"
		case ae.Status >= 500:
			return "the server failed; its log has the details"
		case ae.Status >= 400:
			return "fix the request as the message says; see the command's --help"
		}
	case errors.As(err, new(*usageError)):
		return "see `weir --help`"
	case errors.Is(err, context.Canceled):
		return "the command was interrupted"
	}
	return ""
}

// usageError is a mistake on the command line or in the configuration:
// the command did not start. It exits with ExitUsage.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErr marks err as a usage error; nil stays nil.
func usageErr(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err: err}
}

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
	} else if hint := fallbackHint(err); hint != "" {
		fmt.Fprintf(m.Stderr, "Hint: %s\n", hint)
	}
	return exitCode(err)
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

// usageHint is a usage error with a hint.
func usageHint(err error, format string, args ...any) error {
	return usageErr(withHint(err, format, args...))
}
