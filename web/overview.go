package web

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// Overview limits.
const (
	// overviewFailures is how many recent failed runs the overview lists.
	overviewFailures = 5
	// overviewAlerts is how many open alerts the overview lists.
	overviewAlerts = 8
	// overviewFinishedScan is how many of the newest finished runs are
	// looked at to count the runs that finished in the last minute.
	overviewFinishedScan = 500
)

// overviewView is the data of the overview page.
type overviewView struct {
	Report  *client.HealthReport
	Regions []regionView
	// QueueDepth counts the runs waiting: pending (held included) and queued.
	QueueDepth int64
	// FinishedLastMinute counts the runs that ended in the last minute.
	FinishedLastMinute int
	// BytesPerSecond is the sum of the active runs' transfer rates.
	BytesPerSecond float64
	Failures       []client.Run
	Alerts         []client.Alert
	// AlertsHidden: the viewer may not read alerts.
	AlertsHidden bool
}

// regionView is one region of the overview and its nodes.
type regionView struct {
	client.RegionHealth
	// Members are the region's nodes, worst health first.
	Members []client.Node
}

// alertsHiddenParam on the live fragment's URL says the page found the
// viewer may not read alerts: the polls of a viewer below operator then skip
// the call, which the API would refuse (and audit) every RefreshInterval.
// An operator's polls ignore it. Reloading the page asks the API again (a
// grant of read on "*" lets viewers read alerts).
const alertsHiddenParam = "alerts"

// overview shows each region's nodes as health tiles and the run figures;
// its "live" part refreshes itself.
func (s *Server) overview(c echo.Context) error {
	v, err := s.loadOverview(c, true)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "overview", Page{Title: "Overview", Nav: "overview", Data: v})
}

// overviewLive is the overview's live fragment.
func (s *Server) overviewLive(c echo.Context) error {
	askAlerts := c.QueryParam(alertsHiddenParam) != "hidden" || viewerOf(c).Can(roleOperator)
	v, err := s.loadOverview(c, askAlerts)
	if err != nil {
		return err
	}
	return s.renderLive(c, "overview", Page{Data: v})
}

// loadOverview reads the overview's figures; its open alerts only when
// askAlerts (else they are hidden).
func (s *Server) loadOverview(c echo.Context, askAlerts bool) (*overviewView, error) {
	ctx := c.Request().Context()
	api := s.apiFor(c)
	rep, err := api.Health(ctx, "")
	if err != nil {
		return nil, err
	}
	v := &overviewView{Report: rep, QueueDepth: rep.Runs.Pending + rep.Runs.Queued}
	seen := map[string]bool{}
	for _, r := range rep.Regions {
		v.Regions = append(v.Regions, regionView{RegionHealth: r})
		seen[r.Region] = true
	}
	for _, n := range rep.Nodes { // a node's region the report does not list: a node that left
		if !seen[n.Region] {
			v.Regions = append(v.Regions, regionView{RegionHealth: client.RegionHealth{Region: n.Region, Health: client.Health{Color: client.Green}}})
			seen[n.Region] = true
		}
	}
	byRegion := make(map[string]*regionView, len(v.Regions))
	for i := range v.Regions {
		byRegion[v.Regions[i].Region] = &v.Regions[i]
	}
	for _, n := range rep.Nodes {
		byRegion[n.Region].Members = append(byRegion[n.Region].Members, n)
	}
	for i := range v.Regions {
		m := v.Regions[i].Members
		sort.SliceStable(m, func(a, b int) bool { return colorRank(m[a].Health.Color) > colorRank(m[b].Health.Color) })
	}
	if err := s.runFigures(ctx, api, v); err != nil {
		return nil, err
	}
	if !askAlerts {
		v.AlertsHidden = true
		return v, nil
	}
	page, err := api.ListAlerts(ctx, client.ListAlertsOptions{Open: true, Limit: overviewAlerts})
	var ae *client.APIError
	switch {
	case err == nil:
		v.Alerts = page.Alerts
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		v.AlertsHidden = true
	default:
		return nil, err
	}
	return v, nil
}

// runFigures fills the run rates and the recent failures of v.
func (s *Server) runFigures(ctx context.Context, api *client.Client, v *overviewView) error {
	active, err := api.ListRuns(ctx, client.ListRunsOptions{States: []catalog.RunState{catalog.StateActive}, Limit: 1000})
	if err != nil {
		return err
	}
	for _, r := range active.Runs {
		v.BytesPerSecond += r.RateBytesPerSecond
	}
	finished, err := api.ListRuns(ctx, client.ListRunsOptions{States: []catalog.RunState{catalog.StateSucceeded, catalog.StateEmpty,
		catalog.StateFailed, catalog.StateCanceled, catalog.StateAborted}, Limit: overviewFinishedScan})
	if err != nil {
		return err
	}
	since := s.cfg.Now().Add(-time.Minute)
	for _, r := range finished.Runs {
		if r.FinishedAt != nil && r.FinishedAt.After(since) {
			v.FinishedLastMinute++
		}
		if (r.State == catalog.StateFailed || r.State == catalog.StateAborted) && len(v.Failures) < overviewFailures {
			v.Failures = append(v.Failures, r)
		}
	}
	return nil
}

// colorRank orders colors worst last: green 1, yellow 2, red 3.
func colorRank(color string) int {
	switch color {
	case client.Green:
		return 1
	case client.Yellow:
		return 2
	case client.Red:
		return 3
	}
	return 0
}
