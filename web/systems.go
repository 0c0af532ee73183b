package web

import (
	"errors"
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

// systemView is the data of a system's page.
type systemView struct {
	System    *client.System
	CanManage bool
}

// systemFormView is the data of the system forms.
type systemFormView struct {
	// Name is the system edited; "" for a new one.
	Name  string
	Kinds []string
}

// systemsPage lists the systems the viewer may read.
func (s *Server) systemsPage(c echo.Context) error {
	sys, err := s.apiFor(c).ListSystems(c.Request().Context())
	if err != nil {
		return err
	}
	sort.Slice(sys, func(i, j int) bool { return sys[i].Name < sys[j].Name })
	return s.render(c, http.StatusOK, "systems", Page{Title: "Systems", Nav: "systems", Flash: flashOf(c), Data: sys})
}

// systemPage shows a system: its settings and the names of its secrets,
// never their values (the API never gives them).
func (s *Server) systemPage(c echo.Context) error {
	ctx := c.Request().Context()
	api := s.apiFor(c)
	sys, err := api.GetSystem(ctx, c.Param("name"))
	if err != nil {
		return err
	}
	may, err := s.entitled(ctx, c, api)
	if err != nil {
		return err
	}
	v := systemView{System: sys, CanManage: may(catalog.ActionManage, "system:"+sys.Name)}
	return s.render(c, http.StatusOK, "system", Page{Title: "System " + sys.Name, Nav: "systems", Flash: flashOf(c), Data: v})
}

// newSystemForm shows the form of a new system.
func (s *Server) newSystemForm(c echo.Context) error {
	return s.systemForm(c, http.StatusOK, "", url.Values{"kind": {catalog.KindFS}}, nil)
}

// editSystemForm shows a system's form, filled; secrets stay blank (kept
// unless replaced).
func (s *Server) editSystemForm(c echo.Context) error {
	sys, err := s.apiFor(c).GetSystem(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	form := url.Values{"name": {sys.Name}, "kind": {sys.Kind}, "region": {sys.Region},
		"settings": {formatPairs(sys.Settings.V)}, "max_concurrent_runs": {strconv.Itoa(sys.MaxConcurrentRuns)}}
	return s.systemForm(c, http.StatusOK, sys.Name, form, nil)
}

func (s *Server) systemForm(c echo.Context, status int, name string, form url.Values, fe FieldErrors) error {
	title := "New system"
	if name != "" {
		title = "Edit system " + name
	}
	return s.render(c, status, "system_form", Page{Title: title, Nav: "systems", Form: form, Errors: fe,
		Data: systemFormView{Name: name, Kinds: catalog.KnownKinds}})
}

// createSystem creates a system from the form.
func (s *Server) createSystem(c echo.Context) error { return s.saveSystem(c, "") }

// updateSystem replaces a system with the form.
func (s *Server) updateSystem(c echo.Context) error { return s.saveSystem(c, c.Param("name")) }

func (s *Server) saveSystem(c echo.Context, name string) error {
	form, err := c.FormParams()
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "the form could not be read")
	}
	form.Del(FieldCSRF)
	if name != "" {
		form.Set("name", name)
	}
	req := client.SystemRequest{Name: strings.TrimSpace(form.Get("name")), Kind: strings.TrimSpace(form.Get("kind")),
		Region: strings.TrimSpace(form.Get("region"))}
	fe := FieldErrors{}
	if req.Settings, err = parsePairs(form.Get("settings")); err != nil {
		fe["settings"] = err.Error()
	}
	if req.Secrets, err = parsePairs(form.Get("secrets")); err != nil {
		fe["secrets"] = err.Error()
	}
	switch {
	case form.Get("remove_secrets") != "":
		req.Secrets = map[string]string{}
	case len(req.Secrets) == 0:
		req.Secrets = nil // keep the stored secrets
	}
	if v := strings.TrimSpace(form.Get("max_concurrent_runs")); v != "" {
		if req.MaxConcurrentRuns, err = strconv.Atoi(v); err != nil {
			fe["max_concurrent_runs"] = fmt.Sprintf("%q is not a whole number", v)
		}
	}
	form.Del("secrets") // never sent back to the browser
	if len(fe) > 0 {
		return s.systemForm(c, http.StatusBadRequest, name, form, fe)
	}
	api := s.apiFor(c)
	var sys *client.System
	if name == "" {
		sys, err = api.CreateSystem(c.Request().Context(), req)
	} else {
		sys, err = api.UpdateSystem(c.Request().Context(), req)
	}
	if err != nil {
		if fe, status, ok := refusedFields(err); ok {
			return s.systemForm(c, status, name, form, prefixErrors(fe, "settings", "secrets"))
		}
		return err
	}
	return c.Redirect(http.StatusSeeOther, withFlash("/systems/"+url.PathEscape(sys.Name), "System "+sys.Name+" saved."))
}

// refusedFields is formErrors, and also takes the client's own checks
// (a *catalog.ValidationError, such as a bad name refused before any
// request) as errors next to their fields, with status 400, as the API answers them.
func refusedFields(err error) (FieldErrors, int, bool) {
	if fe, status, ok := formErrors(err); ok {
		return fe, status, true
	}
	var ve *catalog.ValidationError
	if errors.As(err, &ve) {
		return FieldErrors{ve.Field: ve.Message}, http.StatusBadRequest, true
	}
	return nil, 0, false
}

// prefixErrors moves an error on a sub-field (settings.root) next to its
// field (settings), keeping the sub-field's name in the message.
func prefixErrors(fe FieldErrors, fields ...string) FieldErrors {
	out := FieldErrors{}
	for k, msg := range fe {
		moved := false
		for _, f := range fields {
			if strings.HasPrefix(k, f+".") || strings.HasPrefix(k, f+"[") {
				out[f] = k + ": " + msg
				moved = true
				break
			}
		}
		if !moved {
			out[k] = msg
		}
	}
	return out
}

// parsePairs reads "key=value" lines; blank lines are skipped.
func parsePairs(text string) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: write key=value, one per line (got %q)", i+1, line)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("line %d: %s is given twice", i+1, k)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

// formatPairs writes a map as sorted "key=value" lines, as parsePairs reads them.
func formatPairs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, m[k])
	}
	return b.String()
}
