package catalog

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DateLayout is the layout of date parameters and windows.
const DateLayout = "2006-01-02"

var (
	nameRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)
	paramRefRE  = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	paramNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
)

// DescriptionMaxLength is the longest description a mapping may have.
const DescriptionMaxLength = 1000

// ValidateName checks a system, mapping or user name: lower case letters,
// digits, '.', '_' and '-', starting with a letter or digit, at most 128 long.
func ValidateName(field, name string) error {
	if !nameRE.MatchString(name) {
		return Invalid(field, "%q is not a valid name: use 1-128 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// Validate checks the declarations of a mapping (not its systems, which the Store checks).
func (m *Mapping) Validate() error {
	if err := ValidateName("name", m.Name); err != nil {
		return err
	}
	if m.Source.V.System == "" {
		return Invalid("source.system", "is required")
	}
	if m.Target.V.System == "" {
		return Invalid("target.system", "is required")
	}
	if m.MaxAttempts < 1 || m.MaxAttempts > 100 {
		return Invalid("max_attempts", "must be between 1 and 100, got %d", m.MaxAttempts)
	}
	if m.TimeoutSeconds < 1 {
		return Invalid("timeout_seconds", "must be positive, got %d", m.TimeoutSeconds)
	}
	if n := utf8.RuneCountInString(m.Description); n > DescriptionMaxLength {
		return Invalid("description", "must be at most %d characters, got %d", DescriptionMaxLength, n)
	}
	seen := map[string]bool{}
	for i, p := range m.Params.V {
		f := fmt.Sprintf("params[%d]", i)
		if !paramNameRE.MatchString(p.Name) {
			return Invalid(f+".name", "%q is not a valid parameter name", p.Name)
		}
		if seen[p.Name] {
			return Invalid(f+".name", "parameter %q is declared twice", p.Name)
		}
		seen[p.Name] = true
		switch p.Type {
		case ParamString, ParamInt, ParamDate:
		default:
			return Invalid(f+".type", "must be one of string, int, date; got %q", p.Type)
		}
		if p.Window != nil {
			if p.Type != ParamDate {
				return Invalid(f+".window", "only date parameters have a window")
			}
			for _, b := range []struct{ name, v string }{{"min", p.Window.Min}, {"max", p.Window.Max}} {
				if b.v == "" {
					continue
				}
				if _, err := time.Parse(DateLayout, b.v); err != nil {
					return Invalid(f+".window."+b.name, "%q is not a date (YYYY-MM-DD)", b.v)
				}
			}
			if p.Window.Min != "" && p.Window.Max != "" && p.Window.Min > p.Window.Max {
				return Invalid(f+".window", "starts %s, after it ends %s: no date could be given", p.Window.Min, p.Window.Max)
			}
			if p.Window.MaxAgeDays < 0 {
				return Invalid(f+".window.max_age_days", "must be 0 (no limit) or more, got %d", p.Window.MaxAgeDays)
			}
		}
		if p.Default != "" {
			if _, err := checkParam(p, p.Default, time.Now()); err != nil {
				return Invalid(f+".default", "%v", err)
			}
		}
	}
	for _, side := range []struct {
		field string
		path  string
	}{{"source.path", m.Source.V.Path}, {"target.path", m.Target.V.Path}} {
		for _, ref := range paramRefRE.FindAllStringSubmatch(side.path, -1) {
			if !seen[ref[1]] {
				return Invalid(side.field, "refers to {%s}, which is not a declared parameter", ref[1])
			}
		}
		if _, err := CleanRelPath(side.field, paramRefRE.ReplaceAllString(side.path, "x")); err != nil {
			return err
		}
	}
	return nil
}

// ResolveParams validates the parameters of a run request against the
// mapping's declarations, fills defaults, and returns them as strings. today
// is the current time in the region's time zone.
func (m *Mapping) ResolveParams(in map[string]any, today time.Time) (map[string]string, error) {
	out := make(map[string]string, len(m.Params.V))
	declared := map[string]ParamSpec{}
	for _, p := range m.Params.V {
		declared[p.Name] = p
	}
	names := make([]string, 0, len(in))
	for k := range in {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, ok := declared[k]; !ok {
			return nil, Invalid("params."+k, "mapping %s declares no parameter %q", m.Name, k)
		}
	}
	for _, p := range m.Params.V {
		raw, ok := in[p.Name]
		if !ok || raw == nil {
			if p.Default != "" {
				// A default is checked like a given value: a date default
				// may have left its window since the mapping was stored.
				v, err := checkParam(p, p.Default, today)
				if err != nil {
					return nil, Invalid("params."+p.Name, "the default %v", err)
				}
				out[p.Name] = v
				continue
			}
			if p.Required {
				return nil, Invalid("params."+p.Name, "is required (%s)", p.Type)
			}
			continue
		}
		var s string
		switch v := raw.(type) {
		case string:
			s = v
		case json.Number: // a body decoded with UseNumber
			if p.Type != ParamInt {
				return nil, Invalid("params."+p.Name, "must be a %s, got the number %s", p.Type, v)
			}
			s = v.String()
		case float64:
			// 2^63 is exactly representable; every integral float below it converts exactly.
			if p.Type != ParamInt || v != math.Trunc(v) || v < -(1<<63) || v >= 1<<63 {
				return nil, Invalid("params."+p.Name, "must be a %s, got the number %v", p.Type, v)
			}
			s = strconv.FormatInt(int64(v), 10)
		case int:
			if p.Type != ParamInt {
				return nil, Invalid("params."+p.Name, "must be a %s, got the number %d", p.Type, v)
			}
			s = strconv.Itoa(v)
		case int64:
			if p.Type != ParamInt {
				return nil, Invalid("params."+p.Name, "must be a %s, got the number %d", p.Type, v)
			}
			s = strconv.FormatInt(v, 10)
		default:
			return nil, Invalid("params."+p.Name, "must be a %s given as a string", p.Type)
		}
		v, err := checkParam(p, s, today)
		if err != nil {
			return nil, Invalid("params."+p.Name, "%v", err)
		}
		out[p.Name] = v
	}
	return out, nil
}

func checkParam(p ParamSpec, s string, today time.Time) (string, error) {
	switch p.Type {
	case ParamInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not an integer", s)
		}
		return strconv.FormatInt(n, 10), nil
	case ParamDate:
		d, err := time.Parse(DateLayout, s)
		if err != nil {
			return "", fmt.Errorf("%q is not a date (YYYY-MM-DD)", s)
		}
		day := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
		w := p.Window
		if w == nil {
			w = &DateWindow{}
		}
		if !w.AllowFuture && d.After(day) {
			return "", fmt.Errorf("%s is in the future (today is %s)", s, day.Format(DateLayout))
		}
		if w.Min != "" {
			if min, _ := time.Parse(DateLayout, w.Min); d.Before(min) {
				return "", fmt.Errorf("%s is before the data set's window, which starts %s", s, w.Min)
			}
		}
		if w.Max != "" {
			if max, _ := time.Parse(DateLayout, w.Max); d.After(max) {
				return "", fmt.Errorf("%s is after the data set's window, which ends %s", s, w.Max)
			}
		}
		if w.MaxAgeDays > 0 && d.Before(day.AddDate(0, 0, -w.MaxAgeDays)) {
			return "", fmt.Errorf("%s is older than the data set's window of %d days", s, w.MaxAgeDays)
		}
		return d.Format(DateLayout), nil
	default:
		if strings.ContainsAny(s, "\x00") {
			return "", fmt.Errorf("contains a NUL byte")
		}
		return s, nil
	}
}

// ExpandPath substitutes {param} references in pattern and returns a clean
// path relative to the system's root; a result that would leave the root is an error.
func ExpandPath(field, pattern string, params map[string]string) (string, error) {
	var missing string
	out := paramRefRE.ReplaceAllStringFunc(pattern, func(ref string) string {
		name := ref[1 : len(ref)-1]
		v, ok := params[name]
		if !ok {
			missing = name
		}
		return v
	})
	if missing != "" {
		return "", Invalid(field, "parameter {%s} has no value", missing)
	}
	return CleanRelPath(field, out)
}

// CleanRelPath cleans p as a slash-separated path relative to a system's root
// and refuses absolute paths, backslashes, NUL bytes and any ".." element.
func CleanRelPath(field, p string) (string, error) {
	if strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return "", Invalid(field, "%q must be relative to the system's root", p)
	}
	if strings.ContainsRune(p, 0) {
		return "", Invalid(field, "%q contains a NUL byte", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", Invalid(field, "%q escapes the system's root", p)
		}
	}
	c := path.Clean("/" + p)[1:]
	if c == "" {
		c = "."
	}
	return c, nil
}

// RequestType classifies a run by the kinds of its source and target systems.
func RequestType(sourceKind, targetKind string) string {
	srcFile := sourceKind == "fs" || sourceKind == "null"
	dstFile := targetKind == "fs" || targetKind == "null"
	switch {
	case srcFile && dstFile:
		return RequestTransfer
	case srcFile:
		return RequestLoad
	case dstFile:
		return RequestExtract
	default:
		return RequestReplicate
	}
}
