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
	"unicode"
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
	if err := validateMaxHold(m.MaxHold, false); err != nil {
		return err
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
	return m.validateDataPlane()
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

// The data plane's declarations of a mapping (issue 3): the datasets of its
// endpoints, its fields, filter, write mode, bad-row policy, watermark,
// translation tables and zone. Mapping.Validate checks what can be checked
// without the systems; the broker checks the rest against the systems'
// kinds and compiles the expressions.

// Field types of a dataset; the same names as connector/spi's and transform's.
const (
	FieldString    = "string"
	FieldInt       = "int"
	FieldFloat     = "float"
	FieldDecimal   = "decimal"
	FieldBool      = "bool"
	FieldDate      = "date"
	FieldTimestamp = "timestamp"
	FieldBytes     = "bytes"
)

// FieldTypes lists the field types.
var FieldTypes = []string{FieldString, FieldInt, FieldFloat, FieldDecimal, FieldBool, FieldDate, FieldTimestamp, FieldBytes}

// File formats of an endpoint.
var FileFormats = []string{"csv", "jsonl", "parquet"}

// Limits of a mapping's data-plane declarations.
const (
	MaxFields         = 1000
	MaxExprLength     = 64 << 10
	MaxQueryLength    = 64 << 10
	MaxTableLength    = 256
	MaxOptions        = 64
	MaxOptionLength   = 4096
	MaxTables         = 100
	MaxTableEntries   = 100_000
	MaxFieldNameBytes = 128
)

// Data paths: how a run moves its data.
const (
	// DataPathCopy copies files byte for byte (file systems on both sides,
	// nothing row-level declared).
	DataPathCopy = "copy"
	// DataPathRows reads typed rows, filters and maps them, and loads them.
	DataPathRows = "rows"
)

var (
	identRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	optionNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	offsetZoneRE = regexp.MustCompile(`^[+-](0\d|1[0-4]):[0-5]\d$`)
	firstWordRE  = regexp.MustCompile(`^\s*([A-Za-z]+)`)
)

// fileKind tells whether systems of a kind hold files (or nothing, for null).
func fileKind(kind string) bool { return kind == KindFS || kind == KindNull }

// DataPath returns how a run of m from a system of kind src to one of kind
// dst moves its data: DataPathCopy when both hold files and m declares
// nothing row-level (no format, table, query, schema, fields, filter,
// watermark or upsert), DataPathRows otherwise.
func (m *Mapping) DataPath(src, dst string) string {
	if fileKind(src) && fileKind(dst) && !m.RowLevel() {
		return DataPathCopy
	}
	return DataPathRows
}

// RowLevel reports whether m declares anything that needs rows rather than
// files: a format, a table or query, a schema, fields, a filter, a
// watermark, a write mode other than append, or a reject policy.
func (m *Mapping) RowLevel() bool {
	s, t := m.Source.V, m.Target.V
	return s.Format != "" || t.Format != "" || s.Table != "" || t.Table != "" || s.Query != "" ||
		len(s.Schema) > 0 || len(m.Fields.V) > 0 || m.Filter != "" || m.WatermarkColumn != "" ||
		(m.WriteMode != "" && m.WriteMode != WriteAppend) || m.BadRows.V.Policy == BadRowsReject
}

// Mode returns the write mode, WriteAppend when none is declared.
func (m *Mapping) Mode() string {
	if m.WriteMode == "" {
		return WriteAppend
	}
	return m.WriteMode
}

// Policy returns the bad-row policy, BadRowsFail when none is declared.
func (m *Mapping) Policy() string {
	if m.BadRows.V.Policy == "" {
		return BadRowsFail
	}
	return m.BadRows.V.Policy
}

// Location returns the mapping's zone, UTC when none is declared.
func (m *Mapping) Location() (*time.Location, error) {
	return ParseZone("timezone", m.Timezone)
}

// ParseZone reads a zone: an IANA name ("Europe/Paris"), "UTC", or a fixed
// offset ("+05:30"); "" is UTC.
func ParseZone(field, z string) (*time.Location, error) {
	switch {
	case z == "" || z == "UTC":
		return time.UTC, nil
	case offsetZoneRE.MatchString(z):
		h, _ := strconv.Atoi(z[1:3])
		mi, _ := strconv.Atoi(z[4:6])
		off := h*3600 + mi*60
		if z[0] == '-' {
			off = -off
		}
		return time.FixedZone(z, off), nil
	case strings.HasPrefix(z, "+") || strings.HasPrefix(z, "-"):
		return nil, Invalid(field, "%q is not an offset of the form +05:30 (at most +14:00)", z)
	}
	loc, err := time.LoadLocation(z)
	if err != nil || strings.EqualFold(z, "local") {
		return nil, Invalid(field, "%q is not a time zone: give an IANA name (Europe/Paris), UTC or an offset (+05:30)", z)
	}
	return loc, nil
}

func (m *Mapping) validateDataPlane() error {
	if err := validateEndpoint("source", m.Source.V, true); err != nil {
		return err
	}
	if err := validateEndpoint("target", m.Target.V, false); err != nil {
		return err
	}
	fields := m.Fields.V
	if len(fields) > MaxFields {
		return Invalid("fields", "has %d fields; at most %d", len(fields), MaxFields)
	}
	names := map[string]int{}
	for i, f := range fields {
		at := fmt.Sprintf("fields[%d]", i)
		if err := validateFieldName(at+".name", f.Name); err != nil {
			return err
		}
		if j, dup := names[f.Name]; dup {
			return Invalid(at+".name", "field %q is declared twice (also fields[%d])", f.Name, j)
		}
		names[f.Name] = i
		if f.Type != "" && !oneOf(f.Type, FieldTypes) {
			return Invalid(at+".type", "must be one of %s; got %q", strings.Join(FieldTypes, ", "), f.Type)
		}
		if len(f.Expr) > MaxExprLength {
			return Invalid(at+".expr", "is %d bytes long; at most %d", len(f.Expr), MaxExprLength)
		}
		if strings.ContainsRune(f.Expr, 0) {
			return Invalid(at+".expr", "contains a NUL byte")
		}
	}
	if len(m.Filter) > MaxExprLength {
		return Invalid("filter", "is %d bytes long; at most %d", len(m.Filter), MaxExprLength)
	}
	if strings.ContainsRune(m.Filter, 0) {
		return Invalid("filter", "contains a NUL byte")
	}
	switch m.WriteMode {
	case "", WriteAppend, WriteTruncateInsert:
		if len(m.WriteKey.V) > 0 {
			return Invalid("key", "applies to write_mode upsert only; the write mode is %s", m.Mode())
		}
	case WriteUpsert:
		if len(m.WriteKey.V) == 0 {
			return Invalid("key", "is required with write_mode upsert: name the target fields that identify a row")
		}
		seen := map[string]bool{}
		for i, k := range m.WriteKey.V {
			at := fmt.Sprintf("key[%d]", i)
			if k == "" {
				return Invalid(at, "is empty")
			}
			if seen[k] {
				return Invalid(at, "%q is named twice", k)
			}
			seen[k] = true
			if len(fields) > 0 {
				if _, ok := names[k]; !ok {
					return Invalid(at, "%q is not one of the mapping's fields", k)
				}
			}
		}
	default:
		return Invalid("write_mode", "must be one of append, truncate_insert, upsert; got %q", m.WriteMode)
	}
	br := m.BadRows.V
	switch br.Policy {
	case "", BadRowsFail:
		switch {
		case br.MaxRejects != 0:
			return Invalid("bad_rows.max_rejects", "applies to the reject policy; the policy is fail")
		case br.RejectSystem != "" || br.RejectPath != "":
			return Invalid("bad_rows", "reject_system and reject_path apply to the reject policy; the policy is fail")
		}
	case BadRowsReject:
		if br.MaxRejects < 0 {
			return Invalid("bad_rows.max_rejects", "must be 0 (no limit) or more, got %d", br.MaxRejects)
		}
		if br.RejectSystem != "" {
			if err := ValidateName("bad_rows.reject_system", br.RejectSystem); err != nil {
				return err
			}
		}
		if br.RejectPath != "" {
			if _, err := CleanRelPath("bad_rows.reject_path", br.RejectPath); err != nil {
				return err
			}
		}
	default:
		return Invalid("bad_rows.policy", "must be fail or reject; got %q", br.Policy)
	}
	if w := m.WatermarkColumn; w != "" {
		if err := validateFieldName("watermark_column", w); err != nil {
			return err
		}
		if m.WriteMode == WriteTruncateInsert {
			return Invalid("watermark_column", "an incremental mapping adds to what earlier runs delivered: use write_mode append or upsert, not truncate_insert")
		}
	}
	if len(m.Tables.V) > MaxTables {
		return Invalid("tables", "has %d tables; at most %d", len(m.Tables.V), MaxTables)
	}
	entries := 0
	for name, t := range m.Tables.V {
		if !identRE.MatchString(name) {
			return Invalid("tables."+name, "%q is not a table name: use letters, digits and '_', not starting with a digit", name)
		}
		entries += len(t)
	}
	if entries > MaxTableEntries {
		return Invalid("tables", "hold %d entries; at most %d", entries, MaxTableEntries)
	}
	if _, err := m.Location(); err != nil {
		return err
	}
	return nil
}

func validateEndpoint(side string, e Endpoint, source bool) error {
	if e.Table != "" && e.Query != "" {
		return Invalid(side+".query", "give a table or a query, not both")
	}
	if e.Path != "" && (e.Table != "" || e.Query != "") {
		return Invalid(side+".path", "a path names files; a table or query names rows of a database: give one of them")
	}
	if e.Table != "" {
		if len(e.Table) > MaxTableLength {
			return Invalid(side+".table", "is %d bytes long; at most %d", len(e.Table), MaxTableLength)
		}
		if strings.TrimSpace(e.Table) != e.Table {
			return Invalid(side+".table", "%q has leading or trailing spaces", e.Table)
		}
		for _, r := range e.Table {
			if !unicode.IsPrint(r) {
				return Invalid(side+".table", "%q holds a control character", e.Table)
			}
		}
	}
	if e.Query != "" {
		if !source {
			return Invalid(side+".query", "a target is loaded into a table, not a query")
		}
		if len(e.Query) > MaxQueryLength {
			return Invalid(side+".query", "is %d bytes long; at most %d", len(e.Query), MaxQueryLength)
		}
		if strings.ContainsRune(e.Query, 0) {
			return Invalid(side+".query", "contains a NUL byte")
		}
		w := firstWordRE.FindStringSubmatch(e.Query)
		if w == nil || (!strings.EqualFold(w[1], "select") && !strings.EqualFold(w[1], "with")) {
			return Invalid(side+".query", "must be a SELECT statement")
		}
	}
	if e.Format != "" && !oneOf(e.Format, FileFormats) {
		return Invalid(side+".format", "must be one of %s; got %q", strings.Join(FileFormats, ", "), e.Format)
	}
	if len(e.Options) > MaxOptions {
		return Invalid(side+".options", "has %d options; at most %d", len(e.Options), MaxOptions)
	}
	for k, v := range e.Options {
		if !optionNameRE.MatchString(k) {
			return Invalid(side+".options", "%q is not an option name (lower-case letters, digits and '_')", k)
		}
		if len(v) > MaxOptionLength {
			return Invalid(side+".options."+k, "is %d bytes long; at most %d", len(v), MaxOptionLength)
		}
		if strings.ContainsRune(v, 0) {
			return Invalid(side+".options."+k, "contains a NUL byte")
		}
	}
	if len(e.Schema) > MaxFields {
		return Invalid(side+".schema", "has %d fields; at most %d", len(e.Schema), MaxFields)
	}
	seen := map[string]int{}
	for i, f := range e.Schema {
		at := fmt.Sprintf("%s.schema[%d]", side, i)
		if err := validateFieldName(at+".name", f.Name); err != nil {
			return err
		}
		if j, dup := seen[f.Name]; dup {
			return Invalid(at+".name", "field %q is declared twice (also %s.schema[%d])", f.Name, side, j)
		}
		seen[f.Name] = i
		if !oneOf(f.Type, FieldTypes) {
			return Invalid(at+".type", "must be one of %s; got %q", strings.Join(FieldTypes, ", "), f.Type)
		}
		if f.Precision < 0 || f.Scale < 0 || (f.Precision > 0 && f.Scale > f.Precision) {
			return Invalid(at, "precision %d and scale %d: both must be 0 or more, the scale at most the precision", f.Precision, f.Scale)
		}
		if (f.Precision > 0 || f.Scale > 0) && f.Type != FieldDecimal {
			return Invalid(at, "precision and scale apply to decimals; the type is %s", f.Type)
		}
	}
	return nil
}

func validateFieldName(field, name string) error {
	switch {
	case name == "":
		return Invalid(field, "is required")
	case len(name) > MaxFieldNameBytes:
		return Invalid(field, "%q is longer than %d bytes", name, MaxFieldNameBytes)
	case !utf8.ValidString(name):
		return Invalid(field, "is not valid UTF-8")
	case strings.TrimSpace(name) != name:
		return Invalid(field, "%q has leading or trailing spaces", name)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return Invalid(field, "%q holds a control character", name)
		}
	}
	return nil
}

// FieldRef returns the expression that names a source field: the name
// itself when it is an identifier, else $env["name"].
func FieldRef(name string) string {
	if identRE.MatchString(name) && name != "params" && name != "nil" && name != "true" && name != "false" &&
		name != "and" && name != "or" && name != "not" && name != "in" && name != "let" && name != "if" && name != "else" &&
		name != "contains" && name != "matches" && name != "startsWith" && name != "endsWith" {
		return name
	}
	return "$env[" + strconv.Quote(name) + "]"
}

// ResolveFields returns the mapping's target fields against the source's
// fields: with no fields declared, every source field as it is; else the
// declared fields, an empty expression naming the source field of the same
// name, and an empty type taken from the source field the expression names.
func (m *Mapping) ResolveFields(source []SchemaField) ([]FieldMapping, error) {
	byName := make(map[string]SchemaField, len(source))
	for _, f := range source {
		byName[f.Name] = f
	}
	if len(m.Fields.V) == 0 {
		out := make([]FieldMapping, len(source))
		for i, f := range source {
			out[i] = FieldMapping{Name: f.Name, Type: f.Type, Expr: FieldRef(f.Name)}
		}
		return out, nil
	}
	out := make([]FieldMapping, len(m.Fields.V))
	for i, f := range m.Fields.V {
		at := fmt.Sprintf("fields[%d]", i)
		if f.Expr == "" {
			src, ok := byName[f.Name]
			if !ok {
				return nil, Invalid(at+".expr", "is empty, so the field copies the source field %q, which does not exist%s", f.Name, nearest(f.Name, source))
			}
			f.Expr = FieldRef(f.Name)
			if f.Type == "" {
				f.Type = src.Type
			}
		}
		if f.Type == "" {
			name := strings.TrimSpace(f.Expr)
			src, ok := byName[name]
			if !ok {
				return nil, Invalid(at+".type", "is required: the expression %q is not just a source field, whose type it could take", f.Expr)
			}
			f.Type = src.Type
		}
		out[i] = f
	}
	return out, nil
}

// nearest suggests the source field closest to name, for error messages.
func nearest(name string, fields []SchemaField) string {
	var names []string
	for _, f := range fields {
		if strings.EqualFold(f.Name, name) {
			return fmt.Sprintf(" (did you mean %q?)", f.Name)
		}
		names = append(names, f.Name)
	}
	if len(names) == 0 {
		return " (the source has no fields)"
	}
	if len(names) > 10 {
		names = append(names[:10], "...")
	}
	return " (source fields: " + strings.Join(names, ", ") + ")"
}
