package web

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// diagnosticsHeldScan is how many pending runs are looked at for held runs.
const diagnosticsHeldScan = 1000

// nodeAlertKeys are the prefixes of the dedupe keys of the alerts the
// workload manager raises about a node (workload/holds.go), followed by the
// node ID.
var nodeAlertKeys = []string{"node-red:", "node-deviation:", "node-silent:"}

// diagnosticsView explains why something is yellow or red.
type diagnosticsView struct {
	// Kind is "node" or "region"; Subject its ID or name.
	Kind, Subject string
	Health        client.Health
	Findings      []finding
	// Held are the runs waiting because of it; Assigned the runs on the node.
	Held     []client.Run
	Assigned []client.Run
	// Systems are the systems whose host is this node.
	Systems []string
	// Nodes are a region's yellow and red nodes.
	Nodes []client.Node
	// Alerts are the open alerts about the node (nil when the viewer may
	// not read alerts).
	Alerts []client.Alert
}

// finding is one reason of a health, explained.
type finding struct {
	client.HealthReason
	// Unit of Value and Threshold: "%", "σ" or "s".
	Unit string
	// Baseline is the metric's usual level in this hour of the week
	// ("31.2% ± 4.1"), "" when unknown or not applicable.
	Baseline string
	// Deviation is how far the metric is from its baseline now, in standard
	// deviations; HasDeviation says whether it is known.
	Deviation    float64
	HasDeviation bool
	// Advice says what to do.
	Advice string
	// SinceAlert: Since is when the node's first open alert was raised, as
	// the health itself does not tell.
	SinceAlert bool
}

// nodeAlerts returns the open alerts about node; none when the viewer may
// not read alerts.
func (s *Server) nodeAlerts(c echo.Context, api *client.Client, node string) ([]client.Alert, error) {
	var out []client.Alert
	for _, k := range nodeAlertKeys {
		page, err := api.ListAlerts(c.Request().Context(), client.ListAlertsOptions{Open: true, Key: k + node, Limit: 10})
		var ae *client.APIError
		if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, page.Alerts...)
	}
	return out, nil
}

// firstSeen is the earliest FirstSeen of alerts, or nil.
func firstSeen(alerts []client.Alert) *time.Time {
	var first *time.Time
	for i := range alerts {
		if t := alerts[i].FirstSeen; first == nil || t.Before(*first) {
			first = &alerts[i].FirstSeen
		}
	}
	return first
}

// diagnostics explains a yellow or red indicator: ?node=ID or ?region=NAME.
func (s *Server) diagnostics(c echo.Context) error {
	ctx := c.Request().Context()
	api := s.apiFor(c)
	node, region := c.QueryParam("node"), c.QueryParam("region")
	p := Page{Title: "Diagnostics", Nav: "overview"}
	switch {
	case node != "":
		n, err := api.GetNode(ctx, node)
		if err != nil {
			return err
		}
		v := &diagnosticsView{Kind: "node", Subject: n.ID, Health: n.Health, Assigned: n.Runs}
		var hist *client.NodeHistory
		if h, err := api.NodeHistory(ctx, n.ID, 15*time.Minute); err == nil {
			hist = h
		} else {
			s.log.Warn("diagnostics: no history", "node", n.ID, "error", err.Error())
		}
		alerts, err := s.nodeAlerts(c, api, n.ID)
		if err != nil {
			return err
		}
		v.Alerts = alerts
		for _, r := range n.Health.Reasons {
			f := explain(r, n, hist, s.cfg.Now())
			if f.Since == nil {
				f.Since = firstSeen(alerts)
				f.SinceAlert = f.Since != nil
			}
			v.Findings = append(v.Findings, f)
		}
		rep, err := api.Health(ctx, n.Region)
		if err != nil {
			return err
		}
		onNode := map[string]bool{}
		for _, sys := range rep.Systems {
			if sys.Health.Host == n.ID {
				onNode[sys.Name] = true
				v.Systems = append(v.Systems, sys.Name)
			}
		}
		held, err := s.heldRuns(c, api, func(r client.Run) bool {
			return onNode[r.SourceSystem] || onNode[r.TargetSystem]
		})
		if err != nil {
			return err
		}
		v.Held = held
		p.Title = "Diagnostics of node " + n.ID
		p.Data = v
	case region != "":
		rep, err := api.Health(ctx, region)
		if err != nil {
			return err
		}
		v := &diagnosticsView{Kind: "region", Subject: region, Health: rep.Health}
		for _, r := range rep.Health.Reasons {
			v.Findings = append(v.Findings, explain(r, nil, nil, s.cfg.Now()))
		}
		for _, n := range rep.Nodes {
			if n.Health.Color != client.Green {
				v.Nodes = append(v.Nodes, n)
			}
		}
		held, err := s.heldRuns(c, api, func(r client.Run) bool { return r.Region == region })
		if err != nil {
			return err
		}
		v.Held = held
		p.Title = "Diagnostics of region " + region
		p.Data = v
	default:
		return echo.NewHTTPError(http.StatusBadRequest, "say what to diagnose: /diagnostics?node=ID or /diagnostics?region=NAME")
	}
	return s.render(c, http.StatusOK, "diagnostics", p)
}

// heldRuns lists the pending runs with a hold reason that keep says yes to.
func (s *Server) heldRuns(c echo.Context, api *client.Client, keep func(client.Run) bool) ([]client.Run, error) {
	page, err := api.ListRuns(c.Request().Context(), client.ListRunsOptions{States: []catalog.RunState{catalog.StatePending}, Limit: diagnosticsHeldScan})
	if err != nil {
		return nil, err
	}
	var out []client.Run
	for _, r := range page.Runs {
		if r.HoldReason != "" && keep(r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// profilerMetric maps a threshold metric to the profiler metric it judges.
var profilerMetric = map[string]string{
	catalog.ThresholdCPU:    metricCPU,
	catalog.ThresholdMemory: metricMem,
}

// explain adds units, the baseline, the deviation and advice to a reason.
func explain(r client.HealthReason, n *client.NodeDetail, h *client.NodeHistory, now time.Time) finding {
	f := finding{HealthReason: r}
	switch r.Metric {
	case catalog.ThresholdCPU, catalog.ThresholdMemory, catalog.ThresholdDiskFree:
		f.Unit = "%"
	case catalog.ThresholdDeviation:
		f.Unit = "σ"
	case catalog.ThresholdHeartbeat:
		f.Unit = "s"
	}
	metric := profilerMetric[r.Metric]
	if r.Metric == catalog.ThresholdDeviation {
		metric = r.Detail
	}
	if metric != "" && h != nil {
		for _, b := range h.Baselines {
			if b.HourOfWeek != catalog.HourOfWeek(now) {
				continue
			}
			if lvl, ok := b.Metrics[metric]; ok && lvl.N > 0 {
				unit := "%"
				if metric != metricCPU && metric != metricMem {
					unit = ""
					if metric == metricNetRx || metric == metricNetTx || metric == "disk.read_bps" || metric == "disk.write_bps" {
						unit = "B/s"
					}
				}
				f.Baseline = fmt.Sprintf("%s ± %s over %d samples", fmtValue(lvl.Mean, unit), fmtValue(max(lvl.ScoreStddev, lvl.Stddev), unit), lvl.N)
				if !lvl.Scored {
					f.Baseline += " (too few samples yet to score deviations)"
				}
			}
		}
	}
	if metric != "" && n != nil && n.Sample != nil {
		if z, ok := n.Sample.Deviations[metric]; ok {
			f.Deviation, f.HasDeviation = z, true
		}
	}
	f.Advice = advice(r)
	return f
}

// advice says what an operator can do about a reason.
func advice(r client.HealthReason) string {
	switch r.Metric {
	case catalog.ThresholdCPU:
		return "Find what keeps the CPU busy (the runs on this node below, or another process on the host). Weir dispatches no run to or from a critical host until it recovers; lower the load, or raise the node's cpu threshold if this level is normal for it (Admin: thresholds node:ID)."
	case catalog.ThresholdMemory:
		return "Find what holds the memory (the runs on this node, or another process). Runs to or from a critical host wait until it recovers; free memory, or raise the node's memory threshold if this level is normal."
	case catalog.ThresholdDiskFree:
		return "Free space on " + r.Detail + " (old deliveries, logs, temporary files) or grow the disk: runs writing there may fail when it fills."
	case catalog.ThresholdDeviation:
		return "This metric is far from its usual level for this hour of the week. Check whether the change is expected (a new workload, a batch); if it persists and is normal, the baseline learns it over the coming weeks."
	case catalog.ThresholdHeartbeat:
		return "The node has not reported for a while: check that its weir process runs and that it reaches the catalog. Its runs are reassigned once it is declared dead."
	case "service":
		return "A service that must run on this node is down: its monitor restarts it with backoff; check its last error on the node page."
	case "hold":
		return "Runs wait with a hold reason: see the held runs below and fix what they wait for (a critical host, a full worker, a system's limit)."
	case "failed":
		return "Runs failed recently: open them to read their errors and retry once the cause is fixed."
	}
	return "Open the subject's page for details."
}
