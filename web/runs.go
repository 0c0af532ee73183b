package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// runsPageSize is how many runs one page of the runs list shows.
const runsPageSize = 50

// runsView is the data of the runs page.
type runsView struct {
	Filter runFilter
	Runs   []client.Run
	// States are the run states the filter offers.
	States []catalog.RunState
	// Next is the link to the next (older) page; "" on the last page.
	Next string
}

// runFilter is the runs page's filter form, echoed in its query.
type runFilter struct {
	State       string // one state, or "" for all
	Mapping     string
	SubmittedBy string
	Region      string
	// Since and Until are as typed (datetime-local: 2026-11-29T15:04, UTC).
	Since, Until string
	Cursor       string

	since, until time.Time
}

// First is the link to the filter's first page.
func (f runFilter) First() string { return "/runs?" + f.query("") }

// Active reports whether any filter is set.
func (f runFilter) Active() bool {
	return f.State != "" || f.Mapping != "" || f.SubmittedBy != "" || f.Region != "" || f.Since != "" || f.Until != ""
}

func (f runFilter) query(cursor string) string {
	q := url.Values{}
	for k, v := range map[string]string{"state": f.State, "mapping": f.Mapping, "user": f.SubmittedBy,
		"region": f.Region, "since": f.Since, "until": f.Until, "cursor": cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q.Encode()
}

// timeLayouts are the forms a time of the filter may take, read in UTC
// unless they carry an offset.
var timeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339, "2006-01-02"}

// parseFilterTime reads a filter time; "" is the zero time.
func parseFilterTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, v, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: write 2026-11-29T15:04 (UTC) or 2026-11-29", v)
}

// parseRunFilter reads the filter from the query; a bad value is a field
// error (the value is dropped from the filter).
func parseRunFilter(q url.Values) (runFilter, FieldErrors) {
	f := runFilter{State: strings.TrimSpace(q.Get("state")), Mapping: strings.TrimSpace(q.Get("mapping")),
		SubmittedBy: strings.TrimSpace(q.Get("user")), Region: strings.TrimSpace(q.Get("region")),
		Since: strings.TrimSpace(q.Get("since")), Until: strings.TrimSpace(q.Get("until")), Cursor: q.Get("cursor")}
	fe := FieldErrors{}
	if f.State != "" && !catalog.RunState(f.State).Valid() {
		fe["state"] = fmt.Sprintf("%q is not a run state", f.State)
		f.State = ""
	}
	for _, n := range []struct {
		field string
		v     *string
	}{{"mapping", &f.Mapping}, {"user", &f.SubmittedBy}, {"region", &f.Region}} {
		if *n.v != "" && catalog.ValidateName(n.field, *n.v) != nil {
			fe[n.field] = fmt.Sprintf("%q is not a valid name", *n.v)
			*n.v = ""
		}
	}
	var err error
	if f.since, err = parseFilterTime(f.Since); err != nil {
		fe["since"] = err.Error()
		f.Since = ""
	}
	if f.until, err = parseFilterTime(f.Until); err != nil {
		fe["until"] = err.Error()
		f.Until = ""
	}
	if !f.since.IsZero() && !f.until.IsZero() && !f.until.After(f.since) {
		fe["until"] = "must be after since"
	}
	if f.Cursor != "" {
		if _, _, err := catalog.ParseRunID(f.Cursor); err != nil {
			fe["cursor"] = "the page cursor is not a run_id: go back to the first page"
			f.Cursor = ""
		}
	}
	if len(fe) == 0 {
		return f, nil
	}
	return f, fe
}

// options is the API listing of the filter.
func (f runFilter) options() client.ListRunsOptions {
	o := client.ListRunsOptions{Mapping: f.Mapping, SubmittedBy: f.SubmittedBy, Region: f.Region,
		Since: f.since, Until: f.until, Cursor: f.Cursor, Limit: runsPageSize}
	if f.State != "" {
		o.States = []catalog.RunState{catalog.RunState(f.State)}
	}
	return o
}

// runsPage lists runs, newest first, filtered, one page at a time (the
// API's cursor): a catalog of any size renders one page of runs.
func (s *Server) runsPage(c echo.Context) error {
	f, fe := parseRunFilter(c.QueryParams())
	v := &runsView{Filter: f, States: catalog.AllRunStates}
	p := Page{Title: "Runs", Nav: "runs", Flash: flashOf(c), Errors: fe, Data: v}
	if fe != nil {
		return s.render(c, http.StatusBadRequest, "runs", p)
	}
	page, err := s.apiFor(c).ListRuns(c.Request().Context(), f.options())
	if err != nil {
		if fe, status, ok := formErrors(err); ok {
			p.Errors = apiFilterErrors(fe)
			return s.render(c, status, "runs", p)
		}
		return err
	}
	v.Runs = page.Runs
	if page.NextCursor != "" {
		v.Next = "/runs?" + f.query(page.NextCursor)
	}
	return s.render(c, http.StatusOK, "runs", p)
}

// apiFilterErrors renames the API's query fields to the filter form's.
func apiFilterErrors(fe FieldErrors) FieldErrors {
	if m, ok := fe["submitted_by"]; ok {
		delete(fe, "submitted_by")
		fe["user"] = m
	}
	return fe
}

// runPercent is how far a run is, 0 to 100: by bytes when the total is
// known, else by tasks, else by files; a finished successful run is 100.
func runPercent(r client.Run) float64 {
	if r.State == catalog.StateSucceeded || r.State == catalog.StateEmpty {
		return 100
	}
	pr := r.Progress
	var pct float64
	switch {
	case pr.BytesTotal > 0:
		pct = 100 * float64(pr.BytesDone) / float64(pr.BytesTotal)
	case pr.TasksTotal > 0:
		pct = 100 * float64(pr.TasksDone) / float64(pr.TasksTotal)
	case pr.FilesTotal > 0:
		pct = 100 * float64(pr.FilesDone) / float64(pr.FilesTotal)
	}
	return min(max(pct, 0), 100)
}

// stateColor gives a run state a health color for its badge: green for
// success, red for failure, yellow for a run still going or stopped by hand.
func stateColor(st catalog.RunState) string {
	switch st {
	case catalog.StateSucceeded, catalog.StateEmpty:
		return client.Green
	case catalog.StateFailed, catalog.StateAborted:
		return client.Red
	}
	return client.Yellow
}

// stateIcon is a run state's icon, so that color is never the only signal.
func stateIcon(st catalog.RunState) string {
	switch st {
	case catalog.StateSucceeded, catalog.StateEmpty:
		return "✔"
	case catalog.StateFailed, catalog.StateAborted:
		return "✖"
	case catalog.StateCanceled:
		return "■"
	case catalog.StateActive:
		return "▶"
	}
	return "…"
}
