package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"reflect"
	"slices"
	"strings"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector/spi"
)

// command is one registered command: its description, how its arguments
// are decoded and checked, and what it does.
type command struct {
	info CommandInfo
	// newArgs returns a pointer to the command's zero arguments.
	newArgs func() any
	// check validates the decoded arguments and c.system without I/O and
	// sets c.target and c.resource.
	check func(c *call) error
	// prepare, when set, reads what the entitlement check needs from the
	// catalog (verify's run).
	prepare func(ctx context.Context, c *call) error
	// run carries the command out for an entitled caller.
	run func(ctx context.Context, c *call) (any, error)
}

// maxPathLen bounds a path argument.
const maxPathLen = 4096

// readBody reads r's body, at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, badRequest("read the request body: %v", err)
	}
	return body, nil
}

// decode parses the body of a call to cmd into c: the envelope
// {"system", "args"}, then the arguments, each checked against the
// command's declaration, then the command's own checks.
func (a *Agent) decode(cmd *command, body []byte, c *call) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest(`the body is empty; send {"system": NAME, "args": {...}}`)
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		c.argsSummary = fmt.Sprintf(`{"unparsed_bytes":%d}`, len(body))
		return jsonError("the body", err)
	}
	var sysRaw, argsRaw json.RawMessage
	for k, v := range env {
		switch k {
		case "system":
			sysRaw = v
		case "args":
			argsRaw = v
		default:
			c.argsSummary = keysSummary(env)
			return &apiError{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: clipText(k, 64), Known: []string{"args", "system"},
				Message: fmt.Sprintf(`unknown field %q; the body has "system" and "args"`, clipText(k, 64))}
		}
	}
	if sysRaw != nil && string(sysRaw) != "null" {
		if err := json.Unmarshal(sysRaw, &c.system); err != nil {
			return invalidArg("system", "must be a string naming a system")
		}
	}
	var args map[string]json.RawMessage
	if argsRaw != nil && string(argsRaw) != "null" {
		if err := json.Unmarshal(argsRaw, &args); err != nil {
			return invalidArg("args", "must be a JSON object of the command's arguments")
		}
	}
	known := make([]string, len(cmd.info.Args))
	for i, ai := range cmd.info.Args {
		known[i] = ai.Name
	}
	for k := range args {
		if !slices.Contains(known, k) {
			c.argsSummary = keysSummary(args)
			field := "args." + clipText(k, 64)
			return &apiError{Status: http.StatusBadRequest, Code: CodeUnknownArgument, Field: field, Known: known,
				Message: fmt.Sprintf("%s: %s takes no argument %q; its arguments are %s", field, cmd.info.Name, clipText(k, 64), strings.Join(known, ", "))}
		}
	}
	for _, ai := range cmd.info.Args {
		if raw, ok := args[ai.Name]; ok && ai.Type == "object" {
			if err := checkStringMap("args."+ai.Name, raw); err != nil {
				c.argsSummary = keysSummary(args)
				return err
			}
		}
	}
	ptr := cmd.newArgs()
	if args != nil {
		if err := json.Unmarshal(argsRaw, ptr); err != nil {
			c.argsSummary = keysSummary(args)
			return jsonError("args", err)
		}
	}
	c.args = ptr
	c.argsSummary = summary(ptr)
	if err := cmd.check(c); err != nil {
		return err
	}
	c.argsSummary = summary(ptr) // as checked: cleaned paths, defaults filled
	return nil
}

// summary is the audited form of decoded arguments: their JSON. Arguments
// carry no secrets (credentials live in the catalog's system settings).
func summary(args any) string {
	b, err := json.Marshal(args)
	if err != nil {
		return ""
	}
	return string(b)
}

// jsonError turns a JSON decoding error of what into a precise 400.
func jsonError(what string, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return badRequest("%s is not valid JSON (at byte %d): %v", what, se.Offset, err)
	case errors.As(err, &te):
		if te.Field == "" {
			return badRequest("%s must be a JSON object, got %s", what, te.Value)
		}
		field := what + "." + te.Field
		return invalidArg(field, "must be %s, got %s", typeWord(te.Type), te.Value)
	}
	return badRequest("%s cannot be decoded: %v", what, err)
}

// checkStringMap checks that raw is null or an object of string values,
// naming the offending key.
func checkStringMap(field string, raw json.RawMessage) error {
	if string(raw) == "null" {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return invalidArg(field, "must be an object of string values")
	}
	for k, v := range m {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return invalidArg(field+"."+clipText(k, 64), "must be a string, got %s", jsonKind(v))
		}
	}
	return nil
}

// jsonKind names the kind of a JSON value.
func jsonKind(v json.RawMessage) string {
	switch b := bytes.TrimSpace(v); {
	case len(b) == 0:
		return "nothing"
	case b[0] == '{':
		return "object"
	case b[0] == '[':
		return "array"
	case b[0] == '"':
		return "string"
	case b[0] == 't' || b[0] == 'f':
		return "bool"
	case b[0] == 'n':
		return "null"
	}
	return "number"
}

// typeWord names a Go type as the JSON value an argument takes.
func typeWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Map:
		return "an object of " + strings.TrimPrefix(typeWord(t.Elem()), "a ") + " values"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("an integer (at most %d)", int64(1)<<(t.Bits()-1)-1)
	}
	return "a " + t.String()
}

// keysSummary is the audited summary of arguments that were refused: their
// names only, since their values were not checked.
func keysSummary[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, clipText(k, 64))
	}
	slices.Sort(keys)
	b, _ := json.Marshal(map[string][]string{"unchecked_keys": keys})
	return string(b)
}

// checkSystem validates c.system for a command on a system and makes it the
// call's target and the resource of its entitlement.
func checkSystem(c *call) error {
	if c.system == "" {
		return invalidArg("system", "is required: name the catalog system to %s", c.name)
	}
	if err := catalog.ValidateName("system", c.system); err != nil {
		return toAPIError(err)
	}
	c.target = "system:" + c.system
	c.resource = c.target
	return nil
}

// cleanArgPath checks a path argument up front: relative to the system's
// root, without "..", NUL bytes or backslashes, not into Weir's own
// bookkeeping, and a valid glob when it has metacharacters.
func cleanArgPath(field, p string) (string, error) {
	if len(p) > maxPathLen {
		return "", invalidArg(field, "is longer than %d bytes", maxPathLen)
	}
	clean, err := spi.CleanPath(p)
	if errors.Is(err, spi.ErrEscape) {
		return "", &apiError{Status: http.StatusBadRequest, Code: CodePathEscape, Field: field,
			Message: fmt.Sprintf("%s: %q escapes the system's root: give a path relative to the root, without \"..\"", field, p)}
	}
	if err != nil {
		return "", invalidArg(field, "%q is not a valid path: it holds a backslash or a NUL byte", p)
	}
	for _, el := range strings.Split(clean, "/") {
		if spi.Reserved(el) {
			return "", invalidArg(field, "%q leads into Weir's own bookkeeping (%s)", p, el)
		}
	}
	if spi.HasMeta(clean) {
		if _, err := path.Match(clean, ""); err != nil {
			return "", invalidArg(field, "%q is not a valid glob: %v", p, err)
		}
	}
	return clean, nil
}
