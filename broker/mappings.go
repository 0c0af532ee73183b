package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
	"github.com/weirdata/weir/transform"
)

// MappingRequest is the body of POST and PUT /mappings: a mapping's JSON.
// Creating or changing a row-level mapping compiles every expression
// against the source's fields (declared, or described through the source's
// connector) and answers 400 with the field, line, column and reason of
// each one that does not compile (CompileErrorBody).
// Omitted max_attempts and timeout_seconds take the catalog's defaults, an
// omitted region the source system's region, and an omitted enabled means
// true on POST and "unchanged" on PUT. The read-only fields of a mapping's
// JSON (id, version, created_by, created_at) are accepted, so that a GET
// answer can be sent back changed, and ignored.
type MappingRequest struct {
	Name           string              `json:"name"`
	Region         string              `json:"region"`
	Description    string              `json:"description"`
	Source         catalog.Endpoint    `json:"source"`
	Target         catalog.Endpoint    `json:"target"`
	Params         []catalog.ParamSpec `json:"params"`
	MaxAttempts    int                 `json:"max_attempts"`
	TimeoutSeconds int                 `json:"timeout_seconds"`
	Enabled        *bool               `json:"enabled"`

	// The data plane: see catalog.Mapping.
	Fields          []catalog.FieldMapping       `json:"fields"`
	Filter          string                       `json:"filter"`
	WriteMode       string                       `json:"write_mode"`
	Key             []string                     `json:"key"`
	BadRows         catalog.BadRowPolicy         `json:"bad_rows"`
	WatermarkColumn string                       `json:"watermark_column"`
	Tables          map[string]map[string]string `json:"tables"`
	Timezone        string                       `json:"timezone"`

	// MaxHold is the mapping's maximum hold time ("30m"; at most 7 days);
	// empty takes the region's --max-hold.
	MaxHold string `json:"max_hold"`

	ID        json.RawMessage `json:"id,omitempty"`
	Version   json.RawMessage `json:"version,omitempty"`
	CreatedBy json.RawMessage `json:"created_by,omitempty"`
	CreatedAt json.RawMessage `json:"created_at,omitempty"`
}

func (r *MappingRequest) mapping(enabled bool, by string) (*catalog.Mapping, error) {
	maxHold, err := catalog.ParseMaxHold(r.MaxHold)
	if err != nil {
		return nil, err
	}
	if r.Enabled != nil {
		enabled = *r.Enabled
	}
	params := r.Params
	if params == nil {
		params = []catalog.ParamSpec{}
	}
	return &catalog.Mapping{
		Name:           r.Name,
		Region:         r.Region,
		Description:    r.Description,
		Source:         catalog.NewJSON(r.Source),
		Target:         catalog.NewJSON(r.Target),
		Params:         catalog.NewJSON(params),
		MaxAttempts:    r.MaxAttempts,
		TimeoutSeconds: r.TimeoutSeconds,
		Enabled:        enabled,
		CreatedBy:      by,

		Fields:          catalog.NewJSON(r.Fields),
		Filter:          r.Filter,
		WriteMode:       r.WriteMode,
		WriteKey:        catalog.NewJSON(r.Key),
		BadRows:         catalog.NewJSON(r.BadRows),
		WatermarkColumn: r.WatermarkColumn,
		Tables:          catalog.NewJSON(r.Tables),
		Timezone:        r.Timezone,
		MaxHold:         maxHold,
	}, nil
}

// listMappings handles GET /mappings: the latest version of every mapping the caller may read.
func (s *Server) listMappings(c echo.Context) error {
	all, err := s.store.ListMappings(c.Request().Context())
	if err != nil {
		return fmt.Errorf("list mappings: %w", err)
	}
	out := make([]catalog.Mapping, 0, len(all))
	for _, m := range all {
		if s.principalMay(c, catalog.ActionRead, "mapping:"+m.Name) {
			out = append(out, m)
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"mappings": out})
}

// getMapping handles GET /mappings/:name (the latest version).
func (s *Server) getMapping(c echo.Context) error {
	name := c.Param("name")
	if err := s.allow(c, catalog.ActionRead, "mapping:"+name); err != nil {
		return err
	}
	if err := knownName("mapping", name); err != nil {
		return err
	}
	m, err := s.store.GetMapping(c.Request().Context(), name)
	if errors.Is(err, catalog.ErrNotFound) {
		return notFound("no mapping named %q", name)
	} else if err != nil {
		return fmt.Errorf("get mapping %s: %w", name, err)
	}
	return c.JSON(http.StatusOK, m)
}

// getMappingVersion handles GET /mappings/:name/versions/:version.
func (s *Server) getMappingVersion(c echo.Context) error {
	name := c.Param("name")
	v, err := strconv.Atoi(c.Param("version"))
	if err != nil || v < 1 {
		return badRequestField("version", "version %q must be a positive integer", c.Param("version"))
	}
	if err := s.allow(c, catalog.ActionRead, "mapping:"+name); err != nil {
		return err
	}
	if err := knownName("mapping", name); err != nil {
		return err
	}
	m, err := s.store.GetMappingVersion(c.Request().Context(), name, v)
	if errors.Is(err, catalog.ErrNotFound) {
		return notFound("mapping %q has no version %d", name, v)
	} else if err != nil {
		return fmt.Errorf("get mapping %s v%d: %w", name, v, err)
	}
	return c.JSON(http.StatusOK, m)
}

// allowMappingSystems checks that whoever writes a mapping may read both of
// its systems: a mapping moves data out of one and into the other.
func (s *Server) allowMappingSystems(c echo.Context, r *MappingRequest) error {
	for _, sys := range []string{r.Source.System, r.Target.System} {
		if sys == "" {
			continue // the catalog's validation names the missing field
		}
		if err := s.allow(c, catalog.ActionRead, "system:"+sys); err != nil {
			return err
		}
	}
	return nil
}

// createMapping handles POST /mappings: version 1 of a new name.
func (s *Server) createMapping(c echo.Context) error {
	ctx := c.Request().Context()
	var req MappingRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := s.allow(c, catalog.ActionManage, "mapping:"+req.Name); err != nil {
		return err
	}
	if err := s.allowMappingSystems(c, &req); err != nil {
		return err
	}
	m, err := req.mapping(true, principalOf(c).User.Name)
	if err != nil {
		return err
	}
	if err := s.checkMapping(ctx, m); err != nil {
		return answerCompile(c, err)
	}
	if err := s.store.CreateMapping(ctx, m); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			return conflict("a mapping named %q exists already; change it with PUT /api/v1/mappings/%s", req.Name, req.Name)
		}
		return err
	}
	s.log.Info("mapping created", slog.String("mapping", m.Name), slog.String("user", m.CreatedBy))
	return c.JSON(http.StatusCreated, m)
}

// updateMapping handles PUT /mappings/:name: a new version of an existing mapping.
func (s *Server) updateMapping(c echo.Context) error {
	ctx := c.Request().Context()
	name := c.Param("name")
	if err := s.allow(c, catalog.ActionManage, "mapping:"+name); err != nil {
		return err
	}
	if err := knownName("mapping", name); err != nil {
		return err
	}
	var req MappingRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Name == "" {
		req.Name = name
	} else if req.Name != name {
		return catalog.Invalid("name", "%q differs from the mapping %q in the path; mappings cannot be renamed", req.Name, name)
	}
	if err := s.allowMappingSystems(c, &req); err != nil {
		return err
	}
	cur, err := s.store.GetMapping(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		return notFound("no mapping named %q; create it with POST /api/v1/mappings", name)
	} else if err != nil {
		return fmt.Errorf("update mapping %s: %w", name, err)
	}
	m, err := req.mapping(cur.Enabled, principalOf(c).User.Name)
	if err != nil {
		return err
	}
	if err := s.checkMapping(ctx, m); err != nil {
		return answerCompile(c, err)
	}
	if err := s.store.PutMapping(ctx, m); err != nil {
		return err
	}
	s.log.Info("mapping updated", slog.String("mapping", m.Name), slog.Int("version", m.Version), slog.String("user", m.CreatedBy))
	return c.JSON(http.StatusOK, m)
}

// disableMapping handles DELETE /mappings/:name: a new, disabled version; history stays.
func (s *Server) disableMapping(c echo.Context) error {
	ctx := c.Request().Context()
	name := c.Param("name")
	if err := s.allow(c, catalog.ActionManage, "mapping:"+name); err != nil {
		return err
	}
	if err := knownName("mapping", name); err != nil {
		return err
	}
	by := principalOf(c).User.Name
	if err := s.store.DisableMapping(ctx, name, by); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return notFound("no mapping named %q", name)
		}
		return err
	}
	m, err := s.store.GetMapping(ctx, name)
	if err != nil {
		return fmt.Errorf("disable mapping %s: %w", name, err)
	}
	s.log.Info("mapping disabled", slog.String("mapping", name), slog.Int("version", m.Version), slog.String("user", by))
	return c.JSON(http.StatusOK, m)
}

// DescribeTimeoutDefault bounds describing a mapping's source (connecting,
// reading a file's header or a table's columns) when a mapping is checked.
const DescribeTimeoutDefault = 15 * time.Second

// CompileErrorBody is the answer to a mapping whose expressions do not
// compile: the usual error body, with the position and reason of the first
// error and every error in Errors.
type CompileErrorBody struct {
	Error CompileErrorDetail `json:"error"`
}

// CompileErrorDetail is ErrorDetail with positions.
type CompileErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field is the mapping's input at fault: fields[2].expr, filter, or a
	// user function's functions.NAME.expr.
	Field  string `json:"field"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Reason string `json:"reason"`
	// Errors lists every error found, the first one included.
	Errors []ExprError `json:"errors"`
}

// ExprError is one expression that does not compile.
type ExprError struct {
	Field  string `json:"field"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Reason string `json:"reason"`
}

// compileFailure is a mapping whose expressions do not compile.
type compileFailure struct{ errs []ExprError }

func (e *compileFailure) Error() string {
	f := e.errs[0]
	if f.Line > 0 {
		return fmt.Sprintf("%s (%d:%d): %s", f.Field, f.Line, f.Column, f.Reason)
	}
	return fmt.Sprintf("%s: %s", f.Field, f.Reason)
}

// answerCompile answers a compileFailure with its own body; other errors go
// to the error handler.
func answerCompile(c echo.Context, err error) error {
	var cf *compileFailure
	if !errors.As(err, &cf) {
		return err
	}
	f := cf.errs[0]
	return c.JSON(http.StatusBadRequest, CompileErrorBody{Error: CompileErrorDetail{Code: CodeInvalid, Message: cf.Error(),
		Field: f.Field, Line: f.Line, Column: f.Column, Reason: f.Reason, Errors: cf.errs}})
}

// connectors returns the connectors the broker describes sources with.
func (s *Server) connectors() *connector.Registry { return connector.Default() }

// checkMapping checks a mapping against its systems: what each side names
// fits the system's kind, and, for a row-level mapping, every expression
// compiles against the source's fields.
func (s *Server) checkMapping(ctx context.Context, m *catalog.Mapping) error {
	v := *m
	if v.MaxAttempts == 0 {
		v.MaxAttempts = catalog.MaxAttemptsDefault
	}
	if v.TimeoutSeconds == 0 {
		v.TimeoutSeconds = catalog.TimeoutSecondsDefault
	}
	if err := v.Validate(); err != nil {
		return err
	}
	src, err := s.store.GetSystem(ctx, m.Source.V.System)
	if errors.Is(err, catalog.ErrNotFound) {
		return catalog.Invalid("source.system", "no system named %q", m.Source.V.System)
	} else if err != nil {
		return err
	}
	dst, err := s.store.GetSystem(ctx, m.Target.V.System)
	if errors.Is(err, catalog.ErrNotFound) {
		return catalog.Invalid("target.system", "no system named %q", m.Target.V.System)
	} else if err != nil {
		return err
	}
	if err := checkSide("source", m.Source.V, src); err != nil {
		return err
	}
	if err := checkSide("target", m.Target.V, dst); err != nil {
		return err
	}
	if m.DataPath(src.Kind, dst.Kind) == catalog.DataPathCopy {
		return nil
	}
	if err := s.checkRows(ctx, m, src, dst); err != nil {
		return err
	}
	_, err = s.compileMapping(ctx, m, src, nil)
	return err
}

// fileKinds hold files.
func fileSystem(kind string) bool { return kind == catalog.KindFS || kind == catalog.KindNull }

// checkSide checks that an endpoint names what its system's kind holds.
func checkSide(side string, ep catalog.Endpoint, sys *catalog.System) error {
	if fileSystem(sys.Kind) {
		switch {
		case ep.Table != "":
			return catalog.Invalid(side+".table", "system %s is a %s system: it holds files, named by %s.path", sys.Name, sys.Kind, side)
		case ep.Query != "":
			return catalog.Invalid(side+".query", "system %s is a %s system: it holds files, named by %s.path", sys.Name, sys.Kind, side)
		}
		if sys.Kind == catalog.KindFS && (ep.Format != "" || len(ep.Options) > 0) {
			if _, err := connector.ParseFormatOptions(ep.Format, ep.Options); err != nil {
				return catalog.Invalid(side+".options", "%v", err)
			}
		}
		return nil
	}
	switch {
	case ep.Path != "":
		return catalog.Invalid(side+".path", "system %s is a %s database: name a table (%s.table), not a path", sys.Name, sys.Kind, side)
	case ep.Format != "":
		return catalog.Invalid(side+".format", "system %s is a %s database: its rows have no file format", sys.Name, sys.Kind)
	case ep.Table == "" && ep.Query == "" && side == "source":
		return catalog.Invalid(side+".table", "system %s is a %s database: name the table (or query) to read", sys.Name, sys.Kind)
	case ep.Table == "":
		return catalog.Invalid(side+".table", "system %s is a %s database: name the table to load", sys.Name, sys.Kind)
	}
	return nil
}

// checkRows checks a row-level mapping's declarations against its systems' kinds.
func (s *Server) checkRows(ctx context.Context, m *catalog.Mapping, src, dst *catalog.System) error {
	if dst.Kind == catalog.KindFS && m.Target.V.Format == "" {
		return catalog.Invalid("target.format", "rows written to files need a format: csv, jsonl or parquet")
	}
	if fileSystem(dst.Kind) && m.Mode() == catalog.WriteUpsert {
		return catalog.Invalid("write_mode", "upsert needs a keyed table; a %s target takes append or truncate_insert", dst.Kind)
	}
	if fileSystem(src.Kind) && m.WatermarkColumn != "" {
		return catalog.Invalid("watermark_column", "files have no order to resume from: an incremental mapping reads a database; select new files by a path parameter instead")
	}
	if m.Policy() != catalog.BadRowsReject {
		return nil
	}
	name := m.BadRows.V.RejectSystem
	switch {
	case name != "":
	case dst.Kind == catalog.KindFS:
		name = dst.Name
	case src.Kind == catalog.KindFS:
		name = src.Name
	default:
		return catalog.Invalid("bad_rows.reject_system", "the reject policy writes a reject file, and neither %s (%s) nor %s (%s) holds files: name a file system",
			src.Name, src.Kind, dst.Name, dst.Kind)
	}
	rs, err := s.store.GetSystem(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		return catalog.Invalid("bad_rows.reject_system", "no system named %q", name)
	} else if err != nil {
		return err
	}
	if rs.Kind != catalog.KindFS {
		return catalog.Invalid("bad_rows.reject_system", "system %s is a %s system: a reject file needs a file system", rs.Name, rs.Kind)
	}
	return nil
}

// compiled is a mapping compiled against its source: the source's fields,
// the output fields, and the program (nil when no field needs one).
type compiled struct {
	source connector.Schema
	fields []catalog.FieldMapping
	prog   *transform.Program
}

// compileMapping describes the source (unless schema is given) and
// compiles the mapping's expressions against it, with the run's params
// (nil: each declared parameter's default, or a sample of its type).
func (s *Server) compileMapping(ctx context.Context, m *catalog.Mapping, src *catalog.System, params map[string]string) (*compiled, error) {
	schema, err := s.describeSource(ctx, m, src, params)
	if err != nil {
		return nil, err
	}
	source := make([]catalog.SchemaField, len(schema))
	for i, f := range schema {
		source[i] = catalog.SchemaField{Name: f.Name, Type: string(f.Type), Nullable: f.Nullable, Precision: f.Precision, Scale: f.Scale}
	}
	fields, err := m.ResolveFields(source)
	if err != nil {
		return nil, err
	}
	fns, err := s.functions(ctx)
	if err != nil {
		return nil, err
	}
	loc, err := m.Location()
	if err != nil {
		return nil, err
	}
	if params == nil {
		params = sampleParams(m.Params.V, s.cfg.Now())
	}
	spec := transform.Spec{Filter: m.Filter, Tables: m.Tables.V, Location: loc, Params: params, Now: s.cfg.Now()}
	exprs := []string{m.Filter}
	for _, f := range schema {
		spec.Source = append(spec.Source, transform.Field{Name: f.Name, Type: transform.Type(f.Type)})
	}
	for _, f := range fields {
		spec.Fields = append(spec.Fields, transform.FieldSpec{Name: f.Name, Type: transform.Type(f.Type), Expr: f.Expr})
		exprs = append(exprs, f.Expr)
	}
	spec.Functions = transform.UsedFunctions(exprs, fns)
	prog, err := transform.Compile(spec)
	if err != nil {
		ces := transform.CompileErrors(err)
		if len(ces) == 0 {
			return nil, fmt.Errorf("compile mapping %s: %w", m.Name, err)
		}
		cf := &compileFailure{}
		for _, ce := range ces {
			cf.errs = append(cf.errs, ExprError{Field: exprField(m, ce), Line: ce.Line, Column: ce.Column, Reason: ce.Reason})
		}
		return nil, cf
	}
	return &compiled{source: schema, fields: fields, prog: prog}, nil
}

// exprField names the input of a mapping a compile error is about.
func exprField(m *catalog.Mapping, ce *transform.CompileError) string {
	switch {
	case ce.Filter:
		return "filter"
	case ce.Function != "":
		return "functions." + ce.Function + ".expr"
	case ce.Field != "":
		for i, f := range m.Fields.V {
			if f.Name == ce.Field {
				return fmt.Sprintf("fields[%d].expr", i)
			}
		}
	}
	return "fields"
}

// sampleParams gives each declared parameter a value to compile with: its
// default, else today for a date, 1 for an int and "" for a string, as runs
// give them (dates as YYYY-MM-DD).
func sampleParams(specs []catalog.ParamSpec, now time.Time) map[string]string {
	out := make(map[string]string, len(specs))
	for _, p := range specs {
		switch {
		case p.Default != "":
			out[p.Name] = p.Default
		case p.Type == catalog.ParamDate:
			out[p.Name] = now.Format(catalog.DateLayout)
		case p.Type == catalog.ParamInt:
			out[p.Name] = "1"
		default:
			out[p.Name] = ""
		}
	}
	return out
}

// describeSource returns the source's fields: the declared schema of a
// file source, else the connector's description. A path with parameters
// not given is described through a glob matching every value.
func (s *Server) describeSource(ctx context.Context, m *catalog.Mapping, src *catalog.System, params map[string]string) (connector.Schema, error) {
	ep := m.Source.V
	if len(ep.Schema) > 0 && fileSystem(src.Kind) {
		out := make(connector.Schema, len(ep.Schema))
		for i, f := range ep.Schema {
			out[i] = connector.Field{Name: f.Name, Type: connector.FieldType(f.Type), Nullable: f.Nullable, Precision: f.Precision, Scale: f.Scale}
		}
		return out, nil
	}
	ds, err := sourceDataset(ep, src, params)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, DescribeTimeoutDefault)
	defer cancel()
	conn, err := s.connectors().Open(ctx, connector.System{Name: src.Name, Kind: src.Kind, Settings: src.Settings.V, Secrets: src.Secrets.V})
	if err != nil {
		return nil, catalog.Invalid("source", "cannot describe the source to check the mapping's expressions: %v; declare source.schema to check against it instead", err)
	}
	defer conn.Close()
	rs, ok := conn.(connector.RowSource)
	if !ok {
		return nil, catalog.Invalid("source.system", "system %s of kind %s cannot be read as rows", src.Name, src.Kind)
	}
	schema, err := rs.Describe(ctx, ds)
	if err != nil {
		return nil, catalog.Invalid("source", "cannot describe the source to check the mapping's expressions: %v; declare source.schema to check against it instead", err)
	}
	return schema, nil
}

// sourceDataset resolves a source endpoint for reading: a file path with
// the params given, or with a glob (*) for each parameter when params is nil.
func sourceDataset(ep catalog.Endpoint, src *catalog.System, params map[string]string) (connector.Dataset, error) {
	ds := connector.Dataset{Table: ep.Table, Query: ep.Query, Format: ep.Format, Options: ep.Options}
	for _, f := range ep.Schema {
		ds.Schema = append(ds.Schema, connector.Field{Name: f.Name, Type: connector.FieldType(f.Type), Nullable: f.Nullable, Precision: f.Precision, Scale: f.Scale})
	}
	if !fileSystem(src.Kind) {
		return ds, nil
	}
	if params == nil {
		p, err := catalog.CleanRelPath("source.path", paramRef.ReplaceAllString(ep.Path, "*"))
		if err != nil {
			return ds, err
		}
		ds.Path = p
		return ds, nil
	}
	p, err := catalog.ExpandPath("source.path", ep.Path, params)
	if err != nil {
		return ds, err
	}
	ds.Path = p
	return ds, nil
}

var (
	paramRef = regexp.MustCompile(`\{[A-Za-z_][A-Za-z0-9_]*\}`)
)
