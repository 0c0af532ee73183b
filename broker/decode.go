package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// decodeJSON reads exactly one JSON value of type T from r: unknown fields,
// trailing data and an empty body are bad requests; a body beyond the limit
// (already wrapped by checkBody) is 413.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if field, ok := findNUL(reflect.ValueOf(v), ""); ok {
		return badRequestField(field, "malformed JSON body: %s contains a NUL character (\\u0000), which the catalog cannot store", field)
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return decodeError(err)
	default:
		return badRequest("malformed JSON body: unexpected data after the JSON value")
	}
}

// findNUL returns the JSON path of the first string in v that contains a
// NUL character: JSON allows it (\u0000) but PostgreSQL text does not.
func findNUL(v reflect.Value, path string) (string, bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "", false
		}
		return findNUL(v.Elem(), path)
	case reflect.String:
		return path, strings.IndexByte(v.String(), 0) >= 0
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if f.Anonymous {
				name = ""
			}
			if p, ok := findNUL(v.Field(i), joinPath(path, name)); ok {
				return p, true
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			k := iter.Key()
			if k.Kind() == reflect.String && strings.IndexByte(k.String(), 0) >= 0 {
				return joinPath(path, "(key)"), true
			}
			if p, ok := findNUL(iter.Value(), joinPath(path, fmt.Sprint(k.Interface()))); ok {
				return p, true
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "", false // raw JSON of ignored read-only fields
		}
		for i := range v.Len() {
			if p, ok := findNUL(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); ok {
				return p, true
			}
		}
	}
	return "", false
}

func joinPath(path, name string) string {
	switch {
	case name == "":
		return path
	case path == "":
		return name
	}
	return path + "." + name
}

func decodeError(err error) error {
	var mbe *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return err // classify answers 413
	case errors.Is(err, io.EOF):
		return badRequest("request body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON body: it ends too early")
	case errors.As(err, &syn):
		return badRequest("malformed JSON body at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return badRequest("malformed JSON body: expected %s, got a JSON %s", typ.Type, typ.Value)
		}
		return &apiError{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: field,
			Message: fmt.Sprintf("malformed JSON body: field %s must be %s, got a JSON %s", field, typeName(typ.Type.String()), typ.Value)}
	}
	// Unknown fields and the few other decoder errors have no type of their
	// own; their text names the problem ("json: unknown field \"x\"").
	return badRequest("malformed JSON body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func typeName(t string) string {
	switch t {
	case "string":
		return "a string"
	case "int", "int64", "int32":
		return "an integer"
	case "bool":
		return "a boolean"
	case "float64":
		return "a number"
	}
	switch {
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "struct"), strings.HasPrefix(t, "catalog."), strings.HasPrefix(t, "broker."):
		return "an object"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.HasPrefix(t, "*"):
		return typeName(t[1:])
	case strings.HasPrefix(t, "time."):
		return "a time (RFC 3339)"
	}
	return t
}

// bind decodes the request body into v.
func bind(c echo.Context, v any) error {
	return decodeJSON(c.Request().Body, v)
}

// pathRunID returns the :run_id path parameter, checked for form.
func pathRunID(c echo.Context) (string, error) {
	id := c.Param("run_id")
	if _, _, err := catalog.ParseRunID(id); err != nil {
		return "", badRequestField("run_id", "run_id %q is malformed: %v", id, err)
	}
	return id, nil
}

// pathInt64 returns a positive integer path parameter.
func pathInt64(c echo.Context, name string) (int64, error) {
	v := c.Param(name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, badRequestField(name, "%s %q must be a positive integer", name, v)
	}
	return n, nil
}

// queryInt64 returns a non-negative integer query parameter, or def when absent.
func queryInt64(c echo.Context, name string, def int64) (int64, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequestField(name, "query parameter %s=%q must be a non-negative integer", name, v)
	}
	return n, nil
}

func badRequestField(field, format string, args ...any) error {
	return &apiError{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: field, Message: fmt.Sprintf(format, args...)}
}

// knownName returns a 404 for a name the catalog could never have stored
// (names are validated on creation), without asking the catalog, so that
// bytes PostgreSQL refuses (NUL, invalid UTF-8) never reach it.
func knownName(kind, name string) error {
	if catalog.ValidateName("name", name) != nil {
		return notFound("no %s named %q", kind, name)
	}
	return nil
}
