package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
	"github.com/weirdata/weir/transform"
)

// The data plane's routes (issue 3): user functions, and the preview of a
// mapping on a sample of its source's rows.
//
//	GET    /functions                      every function (any caller)
//	POST   /functions                      create (manage on function:NAME)
//	GET    /functions/:name                the latest version
//	GET    /functions/:name/versions/:v    one version
//	PUT    /functions/:name                a new version (manage)
//	DELETE /functions/:name                delete, unless a mapping or function calls it (manage)
//	POST   /mappings/:name/preview         run the mapping on sample rows (read on the mapping and its source system)

// FunctionStore is what the data-plane routes need from the catalog beyond
// Store; *catalog.Store implements it.
type FunctionStore interface {
	CreateFunction(ctx context.Context, f *catalog.Function) error
	UpdateFunction(ctx context.Context, f *catalog.Function) error
	GetFunction(ctx context.Context, name string) (*catalog.Function, error)
	GetFunctionVersion(ctx context.Context, name string, version int) (*catalog.Function, error)
	ListFunctions(ctx context.Context) ([]catalog.Function, error)
	FunctionUsers(ctx context.Context, name string) (mappings, functions []string, err error)
	DeleteFunction(ctx context.Context, name, by string) error
}

// Limits of a preview.
const (
	PreviewLimitDefault = 10
	PreviewLimitMax     = 100
	// PreviewTimeoutDefault bounds reading a preview's sample.
	PreviewTimeoutDefault = 30 * time.Second
)

// dataplaneRoutes registers the data plane's routes on api.
func (s *Server) dataplaneRoutes(api *echo.Group, user []echo.MiddlewareFunc) {
	api.GET("/functions", s.listFunctions, user...)
	api.POST("/functions", s.createFunction, user...)
	api.GET("/functions/:name", s.getFunction, user...)
	api.GET("/functions/:name/versions/:version", s.getFunctionVersion, user...)
	api.PUT("/functions/:name", s.updateFunction, user...)
	api.DELETE("/functions/:name", s.deleteFunction, user...)
	api.POST("/mappings/:name/preview", s.previewMapping, user...)
}

// functionStore returns the catalog's functions, or an error when the
// Store given to New has none.
func (s *Server) functionStore() (FunctionStore, error) {
	fs, ok := s.store.(FunctionStore)
	if !ok {
		return nil, &apiError{Status: http.StatusNotImplemented, Code: CodeInternal, Message: "this server's catalog keeps no user functions"}
	}
	return fs, nil
}

// functions returns every user function; a catalog without them has none.
func (s *Server) functions(ctx context.Context) ([]transform.Function, error) {
	fs, ok := s.store.(FunctionStore)
	if !ok {
		return nil, nil
	}
	all, err := fs.ListFunctions(ctx)
	if err != nil {
		return nil, fmt.Errorf("load user functions: %w", err)
	}
	out := make([]transform.Function, len(all))
	for i, f := range all {
		out[i] = transform.Function{Name: f.Name, Params: f.Params.V, Expr: f.Expr}
	}
	return out, nil
}

var functionNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,63}$`)

func knownFunction(name string) error {
	if !functionNameRE.MatchString(name) {
		return notFound("no function named %q", name)
	}
	return nil
}

// FunctionRequest is the body of POST and PUT /functions. The read-only
// fields of a function's JSON are accepted and ignored.
type FunctionRequest struct {
	Name        string   `json:"name"`
	Params      []string `json:"params"`
	Expr        string   `json:"expr"`
	Description string   `json:"description"`

	ID        any `json:"id,omitempty"`
	Version   any `json:"version,omitempty"`
	Deleted   any `json:"deleted,omitempty"`
	CreatedBy any `json:"created_by,omitempty"`
	CreatedAt any `json:"created_at,omitempty"`
}

func (r *FunctionRequest) function(by string) *catalog.Function {
	params := r.Params
	if params == nil {
		params = []string{}
	}
	return &catalog.Function{Name: r.Name, Params: catalog.NewJSON(params), Expr: r.Expr, Description: r.Description, CreatedBy: by}
}

// checkFunction compiles f on its own, with the functions it calls.
func (s *Server) checkFunction(ctx context.Context, f *catalog.Function) error {
	if err := f.Validate(); err != nil {
		return err
	}
	all, err := s.functions(ctx)
	if err != nil {
		return err
	}
	others := all[:0:0]
	for _, o := range all {
		if o.Name != f.Name {
			others = append(others, o)
		}
	}
	fns := append(transform.UsedFunctions([]string{f.Expr}, others), transform.Function{Name: f.Name, Params: f.Params.V, Expr: f.Expr})
	if _, err := transform.Compile(transform.Spec{Functions: fns, Now: s.cfg.Now()}); err != nil {
		ces := transform.CompileErrors(err)
		if len(ces) == 0 {
			return fmt.Errorf("compile function %s: %w", f.Name, err)
		}
		cf := &compileFailure{}
		for _, ce := range ces {
			field := "expr"
			if ce.Function != "" && ce.Function != f.Name {
				field = "functions." + ce.Function + ".expr"
			}
			cf.errs = append(cf.errs, ExprError{Field: field, Line: ce.Line, Column: ce.Column, Reason: ce.Reason})
		}
		return cf
	}
	return nil
}

// listFunctions handles GET /functions.
func (s *Server) listFunctions(c echo.Context) error {
	fs, err := s.functionStore()
	if err != nil {
		return err
	}
	all, err := fs.ListFunctions(c.Request().Context())
	if err != nil {
		return err
	}
	if all == nil {
		all = []catalog.Function{}
	}
	return c.JSON(http.StatusOK, map[string]any{"functions": all})
}

// getFunction handles GET /functions/:name.
func (s *Server) getFunction(c echo.Context) error {
	fs, err := s.functionStore()
	if err != nil {
		return err
	}
	name := c.Param("name")
	if err := knownFunction(name); err != nil {
		return err
	}
	f, err := fs.GetFunction(c.Request().Context(), name)
	if errors.Is(err, catalog.ErrNotFound) {
		return notFound("no function named %q", name)
	} else if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, f)
}

// getFunctionVersion handles GET /functions/:name/versions/:version.
func (s *Server) getFunctionVersion(c echo.Context) error {
	fs, err := s.functionStore()
	if err != nil {
		return err
	}
	name := c.Param("name")
	v, err := strconv.Atoi(c.Param("version"))
	if err != nil || v < 1 {
		return badRequestField("version", "version %q must be a positive integer", c.Param("version"))
	}
	if err := knownFunction(name); err != nil {
		return err
	}
	f, err := fs.GetFunctionVersion(c.Request().Context(), name, v)
	if errors.Is(err, catalog.ErrNotFound) {
		return notFound("function %q has no version %d", name, v)
	} else if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, f)
}

// createFunction handles POST /functions.
func (s *Server) createFunction(c echo.Context) error {
	ctx := c.Request().Context()
	fs, err := s.functionStore()
	if err != nil {
		return err
	}
	var req FunctionRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := s.allow(c, catalog.ActionManage, "function:"+req.Name); err != nil {
		return err
	}
	f := req.function(principalOf(c).User.Name)
	if err := s.checkFunction(ctx, f); err != nil {
		return answerCompile(c, err)
	}
	if err := fs.CreateFunction(ctx, f); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			return conflict("a function named %q exists already; change it with PUT /api/v1/functions/%s", req.Name, req.Name)
		}
		return err
	}
	s.log.Info("function created", slog.String("function", f.Name), slog.String("user", f.CreatedBy))
	return c.JSON(http.StatusCreated, f)
}

// updateFunction handles PUT /functions/:name: a new version. Mappings
// calling it use the new version from their next run.
func (s *Server) updateFunction(c echo.Context) error {
	ctx := c.Request().Context()
	fs, err := s.functionStore()
	if err != nil {
		return err
	}
	name := c.Param("name")
	if err := s.allow(c, catalog.ActionManage, "function:"+name); err != nil {
		return err
	}
	if err := knownFunction(name); err != nil {
		return err
	}
	var req FunctionRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Name == "" {
		req.Name = name
	} else if req.Name != name {
		return catalog.Invalid("name", "%q differs from the function %q in the path; functions cannot be renamed", req.Name, name)
	}
	f := req.function(principalOf(c).User.Name)
	if err := s.checkFunction(ctx, f); err != nil {
		return answerCompile(c, err)
	}
	if err := fs.UpdateFunction(ctx, f); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return notFound("no function named %q; create it with POST /api/v1/functions", name)
		}
		return err
	}
	s.log.Info("function updated", slog.String("function", f.Name), slog.Int("version", f.Version), slog.String("user", f.CreatedBy))
	return c.JSON(http.StatusOK, f)
}

// deleteFunction handles DELETE /functions/:name.
func (s *Server) deleteFunction(c echo.Context) error {
	ctx := c.Request().Context()
	fs, err := s.functionStore()
	if err != nil {
		return err
	}
	name := c.Param("name")
	if err := s.allow(c, catalog.ActionManage, "function:"+name); err != nil {
		return err
	}
	if err := knownFunction(name); err != nil {
		return err
	}
	by := principalOf(c).User.Name
	if err := fs.DeleteFunction(ctx, name, by); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return notFound("no function named %q", name)
		}
		return err
	}
	s.log.Info("function deleted", slog.String("function", name), slog.String("user", by))
	return c.NoContent(http.StatusNoContent)
}

// PreviewRequest is the body of POST /mappings/:name/preview.
type PreviewRequest struct {
	// Params are the run's parameters, checked as a run's are.
	Params map[string]any `json:"params"`
	// Limit is the most source rows read: PreviewLimitDefault, at most PreviewLimitMax.
	Limit int `json:"limit"`
}

// Preview is the answer of a preview: the source's rows and what the
// mapping makes of them, side by side, and the records that could not be read.
type Preview struct {
	Mapping      string                 `json:"mapping"`
	Version      int                    `json:"version"`
	Params       map[string]string      `json:"params"`
	SourceFields []catalog.SchemaField  `json:"source_fields"`
	TargetFields []catalog.FieldMapping `json:"target_fields"`
	Rows         []PreviewRow           `json:"rows"`
	Bad          []PreviewBad           `json:"bad"`
}

// PreviewRow is one source row: its values, and its output values when the
// filter kept it and every expression worked; else Dropped or Error says why.
type PreviewRow struct {
	Loc     string `json:"loc,omitempty"`
	Input   []any  `json:"input"`
	Output  []any  `json:"output,omitempty"`
	Dropped bool   `json:"dropped,omitempty"` // the filter was not true
	Error   string `json:"error,omitempty"`
}

// PreviewBad is a source record that could not be read.
type PreviewBad struct {
	Loc    string `json:"loc"`
	Raw    string `json:"raw,omitempty"`
	Reason string `json:"reason"`
}

// errPreviewFull stops reading once the sample is complete.
var errPreviewFull = errors.New("preview sample complete")

// previewMapping handles POST /mappings/:name/preview: it reads a sample of
// the source's rows (the first partition's first rows) and applies the
// mapping to them. Nothing is written anywhere.
func (s *Server) previewMapping(c echo.Context) error {
	name := c.Param("name")
	if err := s.allow(c, catalog.ActionRead, "mapping:"+name); err != nil {
		return err
	}
	if err := knownName("mapping", name); err != nil {
		return err
	}
	var req PreviewRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	switch {
	case req.Limit == 0:
		req.Limit = PreviewLimitDefault
	case req.Limit < 1 || req.Limit > PreviewLimitMax:
		return catalog.Invalid("limit", "must be from 1 to %d, got %d", PreviewLimitMax, req.Limit)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), PreviewTimeoutDefault)
	defer cancel()
	m, err := s.store.GetMapping(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		return notFound("no mapping named %q", name)
	} else if err != nil {
		return err
	}
	// The sample is the source's data: reading it needs read on its system.
	if err := s.allow(c, catalog.ActionRead, "system:"+m.SourceSystem); err != nil {
		return err
	}
	params, err := m.ResolveParams(req.Params, s.cfg.Now())
	if err != nil {
		return err
	}
	src, err := s.store.GetSystem(ctx, m.SourceSystem)
	if err != nil {
		return fmt.Errorf("preview mapping %s: %w", name, err)
	}
	dst, err := s.store.GetSystem(ctx, m.TargetSystem)
	if err != nil {
		return fmt.Errorf("preview mapping %s: %w", name, err)
	}
	if m.DataPath(src.Kind, dst.Kind) == catalog.DataPathCopy {
		return catalog.Invalid("mapping", "mapping %s copies files byte for byte: it has no rows to preview", name)
	}
	comp, err := s.compileMapping(ctx, m, src, params)
	if err != nil {
		return answerCompile(c, err)
	}
	ds, err := sourceDataset(m.Source.V, src, params)
	if err != nil {
		return err
	}
	conn, err := s.connectors().Open(ctx, connector.System{Name: src.Name, Kind: src.Kind, Settings: src.Settings.V, Secrets: src.Secrets.V})
	if err != nil {
		return catalog.Invalid("source", "cannot read the source: %v", err)
	}
	defer conn.Close()
	rs, ok := conn.(connector.RowSource)
	if !ok {
		return catalog.Invalid("source.system", "system %s of kind %s cannot be read as rows", src.Name, src.Kind)
	}
	parts, err := rs.Partitions(ctx, ds, 1)
	if err != nil {
		return catalog.Invalid("source", "cannot read the source: %v", err)
	}
	out := &Preview{Mapping: m.Name, Version: m.Version, Params: params, TargetFields: comp.fields,
		Rows: []PreviewRow{}, Bad: []PreviewBad{}}
	for _, f := range comp.source {
		out.SourceFields = append(out.SourceFields, catalog.SchemaField{Name: f.Name, Type: string(f.Type), Nullable: f.Nullable,
			Precision: f.Precision, Scale: f.Scale})
	}
	th := comp.prog.NewThread()
	width := len(comp.prog.Output())
	seen := 0
	for _, p := range parts {
		err := rs.Read(ctx, ds, p, min(req.Limit, 100), func(b connector.Batch) error {
			for _, bad := range b.Bad {
				if len(out.Bad) < req.Limit {
					out.Bad = append(out.Bad, PreviewBad{Loc: bad.Loc, Raw: string(bad.Raw), Reason: bad.Reason})
				}
			}
			for i, row := range b.Rows {
				if seen >= req.Limit {
					return errPreviewFull
				}
				seen++
				pr := PreviewRow{Input: jsonValues(row)}
				if i < len(b.Locs) {
					pr.Loc = b.Locs[i]
				}
				o := make([]any, width)
				keep, err := th.Apply(row, o)
				switch {
				case err != nil:
					pr.Error = err.Error()
				case !keep:
					pr.Dropped = true
				default:
					pr.Output = jsonValues(o)
				}
				out.Rows = append(out.Rows, pr)
			}
			if seen >= req.Limit {
				return errPreviewFull
			}
			return nil
		})
		if err != nil && !errors.Is(err, errPreviewFull) {
			return catalog.Invalid("source", "cannot read the source: %v", err)
		}
		if seen >= req.Limit {
			break
		}
	}
	return c.JSON(http.StatusOK, out)
}

// jsonValues makes a row's values JSON-safe: floats that JSON has no number
// for become text ("NaN", "+Inf", "-Inf"); times are RFC 3339 and bytes
// base64, as encoding/json writes them.
func jsonValues(row []any) []any {
	out := make([]any, len(row))
	for i, v := range row {
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			out[i] = strconv.FormatFloat(f, 'g', -1, 64)
			if math.IsInf(f, 1) {
				out[i] = "+Inf"
			}
			continue
		}
		out[i] = v
	}
	return out
}
