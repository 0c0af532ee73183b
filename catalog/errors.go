package catalog

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrNotFound means the addressed row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the row exists already or was changed by someone else.
	ErrConflict = errors.New("conflict")
	// ErrStaleLease means a worker's fencing token or lease no longer matches the run.
	ErrStaleLease = errors.New("stale lease")
	// ErrIllegalTransition means the run is not in a state from which the asked transition is allowed.
	ErrIllegalTransition = errors.New("illegal transition")
	// ErrNotLeader means the caller does not hold the region's leader lease.
	ErrNotLeader = errors.New("not leader")
)

// ValidationError reports one invalid field of an input, with a hint for the user.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Message)
}

// Invalid returns a *ValidationError for field.
func Invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// TransitionError tells which run transition was refused and why.
type TransitionError struct {
	RunID string
	From  []RunState
	To    RunState
	Err   error // ErrIllegalTransition, ErrStaleLease, ErrNotFound, or ErrConflict (changed meanwhile)
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("run %s: transition %v -> %s: %v", e.RunID, e.From, e.To, e.Err)
}

func (e *TransitionError) Unwrap() error { return e.Err }
