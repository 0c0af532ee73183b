package web

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/client"
)

// assets are the templates and static files, built into the binary.
//
//go:embed templates/*.html static/*
var assets embed.FS

// headerLive marks the requests of the live-update script (static/weir.js):
// they get the page's "live" fragment, and a 401 rather than a redirect.
const headerLive = "X-Weir-Live"

// Page is what every template receives: the layout's fields and the page's
// own Data. Handlers fill Title, Nav, Data and, for forms, Form and Errors;
// render fills the rest.
type Page struct {
	Title string
	// Nav is the nav entry to mark as current ("overview", "alerts"...).
	Nav string
	// Menu is the navigation the viewer may see (filled by render).
	Menu []navItem
	// Viewer is the signed-in user (nil on the sign-in page).
	Viewer *Viewer
	// CSRF is the token forms carry; write it with {{csrf .}}.
	CSRF string
	// Flash is a one-line notice shown above the content ("Alert 7 acknowledged").
	Flash string
	// Form holds a posted form's values, to fill the form again after an error.
	Form url.Values
	// Errors holds, by form field, the error to show next to it; the key ""
	// holds an error that names no field (shown above the form).
	Errors FieldErrors
	// Refresh is the live-update period in milliseconds (data-every).
	Refresh int64
	// Now is when the page was rendered.
	Now time.Time
	// Data is the page's own data.
	Data any
}

// FieldErrors maps a form field to the error to show next to it.
type FieldErrors map[string]string

// formErrors turns an API refusal of a form's data into errors to show
// next to the fields (see broker/errors.go), with the API's status to
// render the form again with, reporting false for any other error, which
// the handler returns instead. Refusals that name no field (403, 409, 429)
// come under the key "". The API's field names are the form's field names.
func formErrors(err error) (FieldErrors, int, bool) {
	var ae *client.APIError
	if !errors.As(err, &ae) {
		return nil, 0, false
	}
	switch ae.Status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusConflict, http.StatusForbidden, http.StatusTooManyRequests:
	default:
		return nil, 0, false
	}
	msg := ae.Message
	if ae.Field != "" {
		msg = strings.TrimPrefix(msg, ae.Field+": ")
	}
	return FieldErrors{ae.Field: msg}, ae.Status, true
}

// templateFuncs are the helpers every template may call.
var templateFuncs = template.FuncMap{
	// csrf writes the hidden CSRF field of a form: {{csrf .}}.
	"csrf": func(p Page) template.HTML {
		return template.HTML(`<input type="hidden" name="` + FieldCSRF + `" value="` + template.HTMLEscapeString(p.CSRF) + `">`)
	},
	// fieldError is the error of a form field, or "": {{with fieldError . "name"}}...{{end}}.
	"fieldError": func(p Page, field string) string { return p.Errors[field] },
	// formValue is a posted form's value of field, to fill the form again.
	"formValue":  func(p Page, field string) string { return p.Form.Get(field) },
	"healthIcon": healthIcon,
	"healthWord": healthWord,
	"ago":        ago,
	"bytes":      humanBytes,
	"rate":       func(bps float64) string { return humanBytes(bps) + "/s" },
	"pct":        func(v float64) string { return fmt.Sprintf("%.1f%%", v) },
	"num":        func(v float64) string { return trimFloat(v) },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"join":        strings.Join,
	"list":        func(s ...string) []string { return s },
	"pathEscape":  url.PathEscape,
	"float":       func(n int64) float64 { return float64(n) },
	"queryEscape": url.QueryEscape,
}

// parsePages parses every page template with the layout and the partials:
// templates/layout.html defines "layout", templates/_*.html define shared
// pieces, and each other templates/NAME.html is a page named NAME defining
// "content" (and "live" when part of it refreshes itself).
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	partials, err := fs.Glob(assets, "templates/_*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" || strings.HasPrefix(base, "_") {
			continue
		}
		files := append([]string{"templates/layout.html"}, partials...)
		files = append(files, n)
		t, err := template.New(base).Funcs(templateFuncs).ParseFS(assets, files...)
		if err != nil {
			return nil, fmt.Errorf("page %s: %w", base, err)
		}
		pages[strings.TrimSuffix(base, ".html")] = t
	}
	return pages, nil
}

// render writes page (templates/PAGE.html) in the layout with status. It
// renders into a buffer first, so that a template error is a clean 500 and
// never half a page.
func (s *Server) render(c echo.Context, status int, page string, p Page) error {
	return s.execute(c, status, page, "layout", p)
}

// renderLive writes the "live" fragment of page: the answer to the
// live-update script's polls.
func (s *Server) renderLive(c echo.Context, page string, p Page) error {
	return s.execute(c, http.StatusOK, page, "live", p)
}

func (s *Server) execute(c echo.Context, status int, page, name string, p Page) error {
	t, ok := s.pages[page]
	if !ok {
		return fmt.Errorf("render: no template %q", page)
	}
	p.Viewer = viewerOf(c)
	p.Menu = s.menu(p.Viewer)
	if p.CSRF == "" {
		p.CSRF = s.csrfToken(c)
	}
	p.Refresh = s.cfg.RefreshInterval.Milliseconds()
	p.Now = s.cfg.Now()
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, p); err != nil {
		return fmt.Errorf("render %s/%s: %w", page, name, err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

// handleError answers a handler's error: an error page with the status the
// error stands for (the API's own status for an API refusal), a redirect to
// /signin when the session ended, and a short text to the live script.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := http.StatusInternalServerError, "Something went wrong on the server; the details are in its log."
	var he *echo.HTTPError
	var ae *client.APIError
	switch {
	case errors.As(err, &ae):
		status, msg = ae.Status, ae.Message
		if status == http.StatusUnauthorized && c.Request().Header.Get(headerLive) == "" {
			_ = c.Redirect(http.StatusSeeOther, "/signin")
			return
		}
		if status >= 500 {
			s.log.Error("API call of a page failed", slog.String("path", c.Request().URL.Path), slog.String("error", err.Error()))
			msg = "The API failed: " + ae.Message
		}
	case errors.As(err, &he):
		status = he.Code
		msg = fmt.Sprint(he.Message)
		if status == http.StatusNotFound && msg == http.StatusText(http.StatusNotFound) {
			msg = "There is no such page."
		}
	default:
		s.log.Error("page failed", slog.String("path", c.Request().URL.Path), slog.String("error", err.Error()))
	}
	if c.Request().Header.Get(headerLive) != "" || c.Request().Method == http.MethodHead {
		_ = c.String(status, msg)
		return
	}
	p := Page{Title: http.StatusText(status), Data: errorView{Status: status, Message: msg}}
	if rerr := s.render(c, status, "error", p); rerr != nil {
		s.log.Error("render error page", slog.String("error", rerr.Error()))
		_ = c.String(status, msg)
	}
}

// errorView is the data of the error page.
type errorView struct {
	Status  int
	Message string
}

// staticHandler serves the embedded static files, cached for a short while.
func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	})
}
