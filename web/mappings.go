package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// mappingRecentRuns is how many of a mapping's latest runs its page lists.
const mappingRecentRuns = 10

// mappingsView is the data of the mappings list.
type mappingsView struct {
	Mappings []client.Mapping
}

// mappingView is the data of a mapping's page: its definition, the form to
// submit a run with its parameters, the preview form and its result.
type mappingView struct {
	Mapping   *client.Mapping
	Advanced  string // the data plane's definition, as JSON
	Runs      []client.Run
	Schedules []client.Schedule
	Preview   *client.Preview
	// CanSubmit: the viewer may submit runs of this mapping (the API decides).
	CanSubmit bool
	// CanManage: the viewer may edit the mapping (the API decides).
	CanManage bool
}

// mappingFormView is the data of the create and edit forms.
type mappingFormView struct {
	// Name is the mapping edited; "" for a new one.
	Name    string
	Systems []client.System
}

// mappingsPage lists the mappings the viewer may read.
func (s *Server) mappingsPage(c echo.Context) error {
	ms, err := s.apiFor(c).ListMappings(c.Request().Context())
	if err != nil {
		return err
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	return s.render(c, http.StatusOK, "mappings", Page{Title: "Mappings", Nav: "mappings", Flash: flashOf(c), Data: mappingsView{Mappings: ms}})
}

// mappingPage shows a mapping, its recent runs and schedules, and the
// forms to submit a run and to preview the mapping on sample rows.
func (s *Server) mappingPage(c echo.Context) error {
	v, err := s.loadMapping(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "mapping", s.mappingPageOf(c, v))
}

func (s *Server) mappingPageOf(c echo.Context, v *mappingView) Page {
	return Page{Title: "Mapping " + v.Mapping.Name, Nav: "mappings", Flash: flashOf(c), Data: v}
}

func (s *Server) loadMapping(c echo.Context) (*mappingView, error) {
	ctx := c.Request().Context()
	api := s.apiFor(c)
	m, err := api.GetMapping(ctx, c.Param("name"))
	if err != nil {
		return nil, err
	}
	v := &mappingView{Mapping: m, Advanced: advancedJSON(client.MappingRequestOf(m))}
	page, err := api.ListRuns(ctx, client.ListRunsOptions{Mapping: m.Name, Limit: mappingRecentRuns})
	if err != nil {
		return nil, err
	}
	v.Runs = page.Runs
	if v.Schedules, err = api.ListSchedules(ctx, m.Name); err != nil {
		return nil, err
	}
	may, err := s.entitled(ctx, c, api)
	if err != nil {
		return nil, err
	}
	v.CanSubmit = m.Enabled && may(catalog.ActionSubmit, "mapping:"+m.Name)
	v.CanManage = may(catalog.ActionManage, "mapping:"+m.Name)
	return v, nil
}

// runParams reads a run's parameters from a form: the fields
// params.NAME of the mapping's declared parameters; an empty field is left
// out, so that the parameter's default applies.
func runParams(c echo.Context, m *client.Mapping) map[string]string {
	out := map[string]string{}
	for _, p := range m.Params.V {
		if v := strings.TrimSpace(c.FormValue("params." + p.Name)); v != "" {
			out[p.Name] = v
		}
	}
	return out
}

// submitRun submits a run of the mapping with the form's parameters and
// opens it; a refused parameter shows the form again with the error next
// to its field.
func (s *Server) submitRun(c echo.Context) error {
	ctx := c.Request().Context()
	v, err := s.loadMapping(c)
	if err != nil {
		return err
	}
	req := client.SubmitRunRequest{Mapping: v.Mapping.Name, Params: runParams(c, v.Mapping),
		IdempotencyKey: strings.TrimSpace(c.FormValue(FieldIdempotencyKey))}
	p := s.mappingPageOf(c, v)
	p.Form, _ = c.FormParams()
	if pr := strings.TrimSpace(c.FormValue("priority")); pr != "" {
		n, err := strconv.Atoi(pr)
		if err != nil {
			p.Errors = FieldErrors{"priority": fmt.Sprintf("%q is not a whole number", pr)}
			return s.render(c, http.StatusBadRequest, "mapping", p)
		}
		req.Priority = n
	}
	run, err := s.apiFor(c).SubmitRun(ctx, req)
	if err != nil {
		if fe, status, ok := formErrors(err); ok {
			p.Errors = fe
			return s.render(c, status, "mapping", p)
		}
		return err
	}
	return c.Redirect(http.StatusSeeOther, withFlash("/runs/"+run.ID, fmt.Sprintf("Run %s of %s submitted.", run.ID, run.Mapping)))
}

// previewMapping applies the mapping to sample rows of its source with the
// form's parameters and shows them on the mapping's page. Nothing is written.
func (s *Server) previewMapping(c echo.Context) error {
	v, err := s.loadMapping(c)
	if err != nil {
		return err
	}
	p := s.mappingPageOf(c, v)
	p.Form, _ = c.FormParams()
	req := client.PreviewRequest{Params: runParams(c, v.Mapping)}
	if l := strings.TrimSpace(c.FormValue("limit")); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			p.Errors = FieldErrors{"limit": fmt.Sprintf("%q is not a whole number", l)}
			return s.render(c, http.StatusBadRequest, "mapping", p)
		}
		req.Limit = n
	}
	pv, err := s.apiFor(c).PreviewMapping(c.Request().Context(), v.Mapping.Name, req)
	if err != nil {
		if fe, status, ok := formErrors(err); ok {
			if msg, ok := fe["source"]; ok { // the source cannot be read: not a form field
				delete(fe, "source")
				fe[""] = "The preview cannot read the source: " + msg
			}
			if msg, ok := fe["mapping"]; ok {
				delete(fe, "mapping")
				fe[""] = msg
			}
			p.Errors = fe
			return s.render(c, status, "mapping", p)
		}
		return err
	}
	v.Preview = pv
	return s.render(c, http.StatusOK, "mapping", p)
}

// newMappingForm shows the form of a new mapping.
func (s *Server) newMappingForm(c echo.Context) error {
	form := url.Values{"enabled": {"1"}, "params": {"[]"}, "advanced": {"{}"}}
	return s.mappingForm(c, http.StatusOK, "", form, nil)
}

// editMappingForm shows the form of a mapping's next version, filled with the latest.
func (s *Server) editMappingForm(c echo.Context) error {
	m, err := s.apiFor(c).GetMapping(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	def := client.MappingRequestOf(m)
	params, _ := json.MarshalIndent(def.Params, "", "  ")
	if def.Params == nil {
		params = []byte("[]")
	}
	form := url.Values{
		"name": {m.Name}, "description": {m.Description}, "region": {m.Region},
		"source.system": {m.Source.V.System}, "source.path": {m.Source.V.Path}, "source.table": {m.Source.V.Table},
		"target.system": {m.Target.V.System}, "target.path": {m.Target.V.Path}, "target.table": {m.Target.V.Table},
		"max_attempts": {strconv.Itoa(m.MaxAttempts)}, "timeout_seconds": {strconv.Itoa(m.TimeoutSeconds)},
		"params": {string(params)}, "advanced": {advancedJSON(def)},
	}
	if m.Enabled {
		form.Set("enabled", "1")
	}
	return s.mappingForm(c, http.StatusOK, m.Name, form, nil)
}

func (s *Server) mappingForm(c echo.Context, status int, name string, form url.Values, fe FieldErrors) error {
	systems, err := s.apiFor(c).ListSystems(c.Request().Context())
	if err != nil {
		return err
	}
	sort.Slice(systems, func(i, j int) bool { return systems[i].Name < systems[j].Name })
	title := "New mapping"
	if name != "" {
		title = "Edit mapping " + name
	}
	return s.render(c, status, "mapping_form", Page{Title: title, Nav: "mappings", Form: form, Errors: fe,
		Data: mappingFormView{Name: name, Systems: systems}})
}

// createMapping creates a mapping from the form.
func (s *Server) createMapping(c echo.Context) error { return s.saveMapping(c, "") }

// updateMapping stores the form as the mapping's next version.
func (s *Server) updateMapping(c echo.Context) error { return s.saveMapping(c, c.Param("name")) }

func (s *Server) saveMapping(c echo.Context, name string) error {
	form, err := c.FormParams()
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "the form could not be read")
	}
	form.Del(FieldCSRF)
	if name != "" {
		form.Set("name", name)
	}
	def, fe := mappingDefinitionOf(form)
	if fe != nil {
		return s.mappingForm(c, http.StatusBadRequest, name, form, fe)
	}
	api := s.apiFor(c)
	var m *client.Mapping
	if name == "" {
		m, err = api.CreateMapping(c.Request().Context(), def)
	} else {
		m, err = api.UpdateMapping(c.Request().Context(), def)
	}
	if err != nil {
		if fe, status, ok := refusedFields(err); ok {
			return s.mappingForm(c, status, name, form, mappingFieldErrors(fe))
		}
		return err
	}
	return c.Redirect(http.StatusSeeOther, withFlash("/mappings/"+url.PathEscape(m.Name), fmt.Sprintf("Mapping %s saved as version %d.", m.Name, m.Version)))
}

// mappingSimpleFields are the form's own inputs; the rest of a definition
// is edited as JSON in the "advanced" field, and params in "params".
var mappingSimpleFields = []string{"name", "description", "region", "source.system", "source.path", "source.table",
	"target.system", "target.path", "target.table", "max_attempts", "timeout_seconds", "enabled"}

// mappingFieldErrors moves an API error on a field the form edits as JSON
// (params[0].type, fields[2].expr, bad_rows.policy...) next to that JSON,
// prefixed with the field's path.
func mappingFieldErrors(fe FieldErrors) FieldErrors {
	out := FieldErrors{}
	for k, msg := range fe {
		switch {
		case k == "" || oneOfString(k, mappingSimpleFields):
			out[k] = msg
		case k == "params" || strings.HasPrefix(k, "params.") || strings.HasPrefix(k, "params["):
			out["params"] = k + ": " + msg
		case k == "source" || k == "target":
			out[k+".system"] = msg
		default:
			out["advanced"] = k + ": " + msg
		}
	}
	return out
}

func oneOfString(v string, set []string) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

// mappingDefinitionOf builds a mapping's definition from the form: the
// advanced JSON first, then the form's own inputs over it. A value the form
// cannot read is an error next to its field.
func mappingDefinitionOf(form url.Values) (client.MappingRequest, FieldErrors) {
	var def client.MappingRequest
	fe := FieldErrors{}
	if adv := strings.TrimSpace(form.Get("advanced")); adv != "" {
		dec := json.NewDecoder(strings.NewReader(adv))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&def); err != nil {
			fe["advanced"] = "not a JSON object of mapping fields: " + err.Error()
		}
	}
	if ps := strings.TrimSpace(form.Get("params")); ps != "" {
		var params []client.ParamSpec
		dec := json.NewDecoder(strings.NewReader(ps))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&params); err != nil {
			fe["params"] = `not a JSON list of parameters such as [{"name":"business_date","type":"date","required":true}]: ` + err.Error()
		}
		def.Params = params
	}
	def.Name = strings.TrimSpace(form.Get("name"))
	def.Description = strings.TrimSpace(form.Get("description"))
	def.Region = strings.TrimSpace(form.Get("region"))
	def.Source.System = strings.TrimSpace(form.Get("source.system"))
	def.Source.Path = strings.TrimSpace(form.Get("source.path"))
	def.Source.Table = strings.TrimSpace(form.Get("source.table"))
	def.Target.System = strings.TrimSpace(form.Get("target.system"))
	def.Target.Path = strings.TrimSpace(form.Get("target.path"))
	def.Target.Table = strings.TrimSpace(form.Get("target.table"))
	for _, n := range []struct {
		field string
		dst   *int
	}{{"max_attempts", &def.MaxAttempts}, {"timeout_seconds", &def.TimeoutSeconds}} {
		if v := strings.TrimSpace(form.Get(n.field)); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil {
				fe[n.field] = fmt.Sprintf("%q is not a whole number", v)
			}
			*n.dst = i
		}
	}
	enabled := form.Get("enabled") != ""
	def.Enabled = &enabled
	if len(fe) > 0 {
		return def, fe
	}
	return def, nil
}

// advancedJSON is the part of a definition the form edits as JSON: all but
// the form's own inputs and the params.
func advancedJSON(def client.MappingRequest) string {
	b, err := json.Marshal(def)
	if err != nil {
		return "{}"
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return "{}"
	}
	for _, k := range []string{"name", "description", "region", "max_attempts", "timeout_seconds", "enabled", "params"} {
		delete(m, k)
	}
	for _, side := range []string{"source", "target"} {
		if e, ok := m[side].(map[string]any); ok {
			delete(e, "system")
			delete(e, "path")
			delete(e, "table")
			if len(e) == 0 {
				delete(m, side)
			}
		}
	}
	if bp, ok := m["bad_rows"].(map[string]any); ok && len(bp) == 0 {
		delete(m, "bad_rows")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return "{}"
	}
	return strings.TrimSpace(buf.String())
}

// paramInputType is the HTML input type of a parameter's type.
func paramInputType(typ string) string {
	switch typ {
	case catalog.ParamDate:
		return "date"
	case catalog.ParamInt:
		return "number"
	}
	return "text"
}

// previewCell writes a preview value as text.
func previewCell(v any) string {
	switch x := v.(type) {
	case nil:
		return "∅"
	case string:
		return x
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func init() {
	templateFuncs["paramInputType"] = paramInputType
	templateFuncs["previewCell"] = previewCell
}
