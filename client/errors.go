package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/weirdata/weir/catalog"
)

// Sentinels that an *APIError matches with errors.Is, by the answer's
// status, so that callers branch without reading codes:
//
//	if errors.Is(err, client.ErrNotFound) { ... }
var (
	// ErrInvalid: 400, the request was malformed or a value was refused (see APIError.Field).
	ErrInvalid = errors.New("invalid request")
	// ErrUnauthenticated: 401, the token is missing, unknown, expired or revoked.
	ErrUnauthenticated = catalog.ErrUnauthenticated
	// ErrForbidden: 403, no entitlement grants the action to the caller from its address.
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound: 404, no such resource.
	ErrNotFound = catalog.ErrNotFound
	// ErrConflict: 409, the request conflicts with the catalog's state
	// (a taken name, an idempotency key reused for another request, an
	// illegal state transition).
	ErrConflict = catalog.ErrConflict
	// ErrTooLarge: 413, the request body is larger than the server accepts.
	ErrTooLarge = errors.New("request too large")
	// ErrUnavailable: 502 or 503, the server or the region owning the
	// resource could not answer; retryable requests were already retried.
	ErrUnavailable = errors.New("unavailable")
)

// APIError is an error answer of the server: its HTTP status and the body
// {"error":{"code","message","field"}}. Match it with errors.As; errors.Is
// also matches catalog.ErrNotFound (404), catalog.ErrConflict (409) and
// catalog.ErrUnauthenticated (401).
type APIError struct {
	Status  int    // HTTP status code
	Code    string // machine-readable code, such as "not_found" or "invalid"
	Message string // what went wrong, for a person
	Field   string // the request field at fault, when the server names one
	// RequestID is the server's id of the request (X-Request-Id), to find it in the server's logs.
	RequestID string
	Method    string // the request's method
	Path      string // the request's path, without the server's address
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Field != "" && !strings.HasPrefix(msg, e.Field) {
		msg = e.Field + ": " + msg
	}
	code := e.Code
	if code == "" {
		code = strings.ToLower(strings.ReplaceAll(http.StatusText(e.Status), " ", "_"))
	}
	return fmt.Sprintf("%s (%d %s)", msg, e.Status, code)
}

// Is lets errors.Is match the sentinel that the status stands for
// (ErrNotFound, ErrConflict, ... which include catalog's).
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrInvalid:
		return e.Status == http.StatusBadRequest
	case ErrUnauthenticated:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrTooLarge:
		return e.Status == http.StatusRequestEntityTooLarge
	case ErrUnavailable:
		return e.Status == http.StatusBadGateway || e.Status == http.StatusServiceUnavailable
	}
	return false
}

// errorBody is the JSON shape of an error answer.
type errorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Field     string `json:"field"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// decodeAPIError builds the APIError of an answer with status >= 400. A body
// that is not the JSON error shape (a proxy's HTML page, say) becomes the
// message, shortened.
func decodeAPIError(method, path string, status int, body []byte, token string) *APIError {
	e := &APIError{Status: status, Method: method, Path: path}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err == nil && (eb.Error.Message != "" || eb.Error.Code != "") {
		e.Code, e.Message, e.Field, e.RequestID = eb.Error.Code, eb.Error.Message, eb.Error.Field, eb.Error.RequestID
	} else {
		text := strings.TrimSpace(string(body))
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		if text != "" {
			e.Message = fmt.Sprintf("%s %s: %s", method, path, text)
		} else {
			e.Message = fmt.Sprintf("%s %s: %s", method, path, http.StatusText(status))
		}
	}
	// A server should never echo a credential, but if one does, it stops here.
	e.Message = redact(e.Message, token)
	e.Field = redact(e.Field, token)
	return e
}

// redact removes the token from s.
func redact(s, token string) string {
	if token == "" || !strings.Contains(s, token) {
		return s
	}
	return strings.ReplaceAll(s, token, "[REDACTED]")
}
