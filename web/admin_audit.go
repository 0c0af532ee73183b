package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// auditPageSize is how many entries one page of the audit log shows.
const auditPageSize = 100

// adminAuditView is the data of the audit log page.
type adminAuditView struct {
	adminBase
	Filter   url.Values
	Outcomes []string
	Entries  []catalog.AuditEntry
	// Next is the link to the next page ("" on the last page), built whole
	// here: html/template would escape a query placed after a literal "?".
	Next string
}

// auditTimeLayout is how the filter form's times are given (an HTML
// datetime-local input, in UTC).
const auditTimeLayout = "2006-01-02T15:04"

// parseAuditFilter reads the filter of the query; bad values are field errors.
func parseAuditFilter(q url.Values) (client.AuditOptions, url.Values, FieldErrors) {
	f := url.Values{}
	o := client.AuditOptions{Limit: auditPageSize}
	fe := FieldErrors{}
	for _, k := range []string{"actor", "action", "target", "outcome", "since", "until", "cursor"} {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			f.Set(k, v)
		}
	}
	o.Actor, o.Action, o.Target, o.Outcome = f.Get("actor"), f.Get("action"), f.Get("target"), f.Get("outcome")
	if o.Outcome != "" && !slices.Contains(catalog.AuditOutcomes, o.Outcome) {
		fe["outcome"] = "pick one of " + strings.Join(catalog.AuditOutcomes, ", ")
	}
	for _, t := range []struct {
		key string
		dst *time.Time
	}{{"since", &o.Since}, {"until", &o.Until}} {
		if v := f.Get(t.key); v != "" {
			at, err := time.Parse(auditTimeLayout, v)
			if err != nil {
				if at, err = time.Parse(time.RFC3339, v); err != nil {
					fe[t.key] = "give a time such as 2026-11-29T15:00 (UTC)"
					continue
				}
			}
			*t.dst = at
		}
	}
	if v := f.Get("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			fe["cursor"] = "the page cursor must be a positive number"
		} else {
			o.Cursor = n
		}
	}
	if len(fe) == 0 {
		fe = nil
	}
	return o, f, fe
}

// adminAudit shows the audit log, newest first, filtered by actor, action,
// target, outcome and time.
func (s *Server) adminAudit(c echo.Context) error {
	o, f, fe := parseAuditFilter(c.QueryParams())
	v := &adminAuditView{adminBase: newAdminBase("audit"), Filter: f, Outcomes: catalog.AuditOutcomes}
	p := Page{Title: "Audit log", Nav: "admin", Errors: fe, Data: v}
	if fe != nil {
		return s.render(c, http.StatusBadRequest, "admin_audit", p)
	}
	page, err := s.apiFor(c).ListAudit(c.Request().Context(), o)
	if err != nil {
		if fe, status, ok := formErrors(err); ok {
			p.Errors = fe
			return s.render(c, status, "admin_audit", p)
		}
		return err
	}
	v.Entries = page.Entries
	if page.NextCursor > 0 {
		next := url.Values{}
		for k, vs := range f {
			next[k] = vs
		}
		next.Set("cursor", strconv.FormatInt(page.NextCursor, 10))
		v.Next = (&url.URL{Path: "/admin/audit", RawQuery: next.Encode()}).String()
	}
	return s.render(c, http.StatusOK, "admin_audit", p)
}
