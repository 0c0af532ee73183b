package dispatcher

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"net/http"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector/spi"
)

// apiError is an error the agent answers with a given status and code.
type apiError struct {
	Status  int
	Code    string
	Message string
	Field   string
	Known   []string
	Err     error // the cause, logged for 5xx, never shown
}

func (e *apiError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *apiError) Unwrap() error { return e.Err }

func badRequest(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

func invalidArg(field, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: CodeInvalid, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

func unsupported(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: CodeUnsupported, Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusConflict, Code: CodeConflict, Message: fmt.Sprintf(format, args...)}
}

// toAPIError maps err to the answer the caller gets. Messages of connector
// errors are shown (connectors never put secrets in errors); catalog and
// unknown failures are reported without their cause, which is logged.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
			Message: fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit)}
	}
	var authErr *catalog.AuthError
	if errors.As(err, &authErr) {
		return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: "unauthenticated: " + authErr.Reason}
	}
	if errors.Is(err, catalog.ErrUnauthenticated) {
		return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: err.Error()}
	}
	var ve *catalog.ValidationError
	if errors.As(err, &ve) {
		return &apiError{Status: http.StatusBadRequest, Code: CodeInvalid, Field: ve.Field, Message: ve.Error()}
	}
	switch {
	case errors.Is(err, spi.ErrEscape):
		return &apiError{Status: http.StatusBadRequest, Code: CodePathEscape, Message: err.Error(), Err: err}
	case errors.Is(err, spi.ErrUnknownKind):
		return &apiError{Status: http.StatusBadRequest, Code: CodeUnsupported, Message: err.Error(), Err: err}
	case errors.Is(err, spi.ErrInvalid):
		return &apiError{Status: http.StatusBadRequest, Code: CodeInvalid, Message: err.Error(), Err: err}
	case errors.Is(err, iofs.ErrNotExist):
		return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: err.Error(), Err: err}
	case errors.Is(err, catalog.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: err.Error(), Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusGatewayTimeout, Code: CodeTimeout, Message: "the command ran past its deadline", Err: err}
	case errors.Is(err, context.Canceled):
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the command was stopped", Err: err}
	}
	var se *spi.Error
	if errors.As(err, &se) {
		return &apiError{Status: http.StatusBadGateway, Code: CodeSystemError, Message: err.Error(), Err: err}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
}

// catalogError maps a failed catalog read: not found is the caller's
// problem, anything else the agent's.
func catalogError(what string, err error) *apiError {
	if errors.Is(err, catalog.ErrNotFound) {
		return notFound("%s", what)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the catalog did not answer in time", Err: err}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
}
