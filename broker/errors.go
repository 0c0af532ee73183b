package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// Error codes of the JSON error body {"error":{"code","message"}}.
const (
	CodeBadRequest        = "bad_request"
	CodeInvalid           = "invalid"
	CodeUnauthenticated   = "unauthenticated"
	CodeForbidden         = "forbidden"
	CodeNotFound          = "not_found"
	CodeMethodNotAllowed  = "method_not_allowed"
	CodeConflict          = "conflict"
	CodeIllegalTransition = "illegal_transition"
	CodeTooLarge          = "too_large"
	CodeUnsupportedMedia  = "unsupported_media_type"
	CodeInternal          = "internal"
	CodeUnavailable       = "unavailable"
)

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong; Field names the offending input of an
// "invalid" error.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// apiError is an error a handler answers with a given status and code.
type apiError struct {
	Status  int
	Code    string
	Message string
	Field   string
	Err     error // the cause, logged for 5xx, never shown
}

func (e *apiError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *apiError) Unwrap() error { return e.Err }

func badRequest(format string, args ...any) error {
	return &apiError{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

func forbidden(action, resource string) error {
	return &apiError{Status: http.StatusForbidden, Code: CodeForbidden,
		Message: fmt.Sprintf("you may not %s %s: no entitlement grants %q on %q to you from this address", action, resource, action, resource)}
}

func notFound(format string, args ...any) error {
	return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &apiError{Status: http.StatusConflict, Code: CodeConflict, Message: fmt.Sprintf(format, args...)}
}

// classify maps an error to its answer, with errors.Is/As only.
func classify(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return fromHTTPError(he)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
			Message: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
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
		return &apiError{Status: http.StatusBadRequest, Code: CodeInvalid, Message: ve.Error(), Field: ve.Field}
	}
	switch {
	case errors.Is(err, catalog.ErrIllegalTransition):
		return &apiError{Status: http.StatusConflict, Code: CodeIllegalTransition, Message: err.Error()}
	case errors.Is(err, catalog.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: err.Error()}
	case errors.Is(err, catalog.ErrConflict), errors.Is(err, catalog.ErrStaleLease):
		return &apiError{Status: http.StatusConflict, Code: CodeConflict, Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the catalog did not answer in time", Err: err}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
}

func fromHTTPError(he *echo.HTTPError) *apiError {
	if inner, ok := he.Internal.(*echo.HTTPError); ok {
		he = inner
	}
	msg := http.StatusText(he.Code)
	if m, ok := he.Message.(string); ok && m != "" {
		msg = m
	}
	ae := &apiError{Status: he.Code, Message: msg}
	switch he.Code {
	case http.StatusNotFound:
		ae.Code, ae.Message = CodeNotFound, "no such route"
	case http.StatusMethodNotAllowed:
		ae.Code = CodeMethodNotAllowed
	case http.StatusRequestEntityTooLarge:
		ae.Code = CodeTooLarge
	case http.StatusUnsupportedMediaType:
		ae.Code = CodeUnsupportedMedia
	case http.StatusUnauthorized:
		ae.Code = CodeUnauthenticated
	case http.StatusForbidden:
		ae.Code = CodeForbidden
	case http.StatusConflict:
		ae.Code = CodeConflict
	case http.StatusServiceUnavailable:
		ae.Code = CodeUnavailable
	default:
		switch {
		case he.Code >= 500:
			ae.Code, ae.Message, ae.Err = CodeInternal, "internal error", he
		default:
			ae.Code = CodeBadRequest
		}
	}
	return ae
}

// handleError is the echo HTTPErrorHandler: the one place errors become answers.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae := classify(err)
	body := ErrorBody{Error: ErrorDetail{Code: ae.Code, Message: ae.Message, Field: ae.Field}}
	if ae.Status >= 500 {
		rid := requestIDOf(c)
		body.Error.RequestID = rid
		if ae.Code == CodeInternal {
			body.Error.Message = "internal error; the server's log has the details under request id " + rid
		}
		attrs := []any{slog.String("request_id", rid), slog.String("method", c.Request().Method),
			slog.String("route", c.Path()), slog.Int("status", ae.Status), slog.Any("error", err)}
		if id := c.Param("run_id"); id != "" {
			attrs = append(attrs, slog.String("run_id", id))
		}
		s.log.Error("request failed", attrs...)
	}
	if ae.Status == http.StatusUnauthorized {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="weir"`)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.Status)
		return
	}
	if werr := c.JSON(ae.Status, body); werr != nil {
		s.log.Warn("write error answer", slog.String("request_id", requestIDOf(c)), slog.Any("error", werr))
	}
}
