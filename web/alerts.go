package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// alertsPageSize is how many alerts one page of the alerts list shows.
const alertsPageSize = 50

// alertsView is the data of the alerts page.
type alertsView struct {
	Filter alertFilter
	Alerts []client.Alert
	// Next is the link to the next page ("" on the last page), built whole
	// here: html/template would escape a query written after "?" in a template.
	Next string
}

// alertFilter is the alerts page's filter form, echoed in its query.
type alertFilter struct {
	Open     bool
	Unacked  bool
	Severity string
	Region   string
	Cursor   int64
}

// Query is the filter as a query string, first page.
func (f alertFilter) Query() string { return f.query(0) }

func (f alertFilter) query(cursor int64) string {
	q := url.Values{}
	if f.Open {
		q.Set("open", "1")
	}
	if f.Unacked {
		q.Set("unacked", "1")
	}
	if f.Severity != "" {
		q.Set("severity", f.Severity)
	}
	if f.Region != "" {
		q.Set("region", f.Region)
	}
	if cursor > 0 {
		q.Set("cursor", strconv.FormatInt(cursor, 10))
	}
	return q.Encode()
}

// parseAlertFilter reads the filter from the query; a bad value is a
// field error. With no query at all, the page shows the open alerts.
func parseAlertFilter(q url.Values) (alertFilter, FieldErrors) {
	f := alertFilter{Open: q.Get("open") != "", Unacked: q.Get("unacked") != "", Severity: q.Get("severity"), Region: q.Get("region")}
	if len(q) == 0 {
		f.Open = true
	}
	var fe FieldErrors
	if f.Severity != "" && catalog.AlertSeverityRank(f.Severity) == 0 {
		fe = FieldErrors{"severity": fmt.Sprintf("%q is not a severity: pick info, warning or critical", f.Severity)}
		f.Severity = ""
	}
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 0 {
			if fe == nil {
				fe = FieldErrors{}
			}
			fe["cursor"] = "the page cursor must be a positive number"
		} else {
			f.Cursor = n
		}
	}
	return f, fe
}

// alertsPage lists alerts, filtered, newest first. Who may read them is
// the API's decision (operators, admins, and users who may read
// everything); the nav offers the page to operators and admins.
func (s *Server) alertsPage(c echo.Context) error {
	f, fe := parseAlertFilter(c.QueryParams())
	p := Page{Title: "Alerts", Nav: "alerts", Flash: flashOf(c), Errors: fe}
	v := alertsView{Filter: f}
	p.Data = &v
	if fe != nil {
		return s.render(c, http.StatusBadRequest, "alerts", p)
	}
	page, err := s.apiFor(c).ListAlerts(c.Request().Context(), client.ListAlertsOptions{
		Open: f.Open, Unacked: f.Unacked, Severity: f.Severity, Region: f.Region, Limit: alertsPageSize, Cursor: f.Cursor})
	if err != nil {
		var ae *client.APIError
		if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
			p.Errors, _, _ = formErrors(err)
			return s.render(c, http.StatusBadRequest, "alerts", p)
		}
		return err
	}
	v.Alerts = page.Alerts
	if page.NextCursor > 0 {
		v.Next = "/alerts?" + f.query(page.NextCursor)
	}
	return s.render(c, http.StatusOK, "alerts", p)
}

// ackAlert acknowledges an alert as the viewer and goes back to the list.
func (s *Server) ackAlert(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return echo.NewHTTPError(http.StatusNotFound, "there is no such alert")
	}
	if _, err := s.apiFor(c).AckAlert(c.Request().Context(), id); err != nil {
		return err
	}
	back := safeNext(c.FormValue("back"))
	if back == "/" {
		back = "/alerts"
	}
	return c.Redirect(http.StatusSeeOther, withFlash(back, fmt.Sprintf("Alert %d acknowledged.", id)))
}
