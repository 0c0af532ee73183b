package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/weirdata/weir/catalog"
)

// Health colors.
const (
	Green  = "green"
	Yellow = "yellow"
	Red    = "red"
)

// Health is the health of a node, system, service, region or run: a color
// and the reasons for it, worst first (green has none).
type Health struct {
	// Color is Green, Yellow or Red.
	Color   string         `json:"color"`
	Reasons []HealthReason `json:"reasons,omitempty"`
}

// HealthReason is one finding that makes a health yellow or red.
type HealthReason struct {
	// Subject is what the finding is about ("node w1") in a combined health.
	Subject string `json:"subject,omitempty"`
	// Metric is what was judged: a threshold metric (cpu, memory, disk_free,
	// deviation, heartbeat) or service, hold, failed, progress, host.
	Metric string `json:"metric"`
	// Detail names the disk path (disk_free) or the deviating metric.
	Detail string `json:"detail,omitempty"`
	// Value and Threshold are in the metric's unit: percent, standard
	// deviations, seconds.
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Level is Yellow or Red.
	Level string `json:"level"`
	// Text says it in words: "cpu 97% > 95% critical".
	Text  string     `json:"text"`
	Since *time.Time `json:"since,omitempty"`
}

// String is the reason's text, prefixed by its subject when it has one.
func (r HealthReason) String() string {
	if r.Subject == "" {
		return r.Text
	}
	return r.Subject + ": " + r.Text
}

// String is the color and the reasons: "red: cpu 97% > 95% critical".
func (h Health) String() string {
	if len(h.Reasons) == 0 {
		return h.Color
	}
	parts := make([]string, len(h.Reasons))
	for i, r := range h.Reasons {
		parts[i] = r.String()
	}
	return h.Color + ": " + strings.Join(parts, "; ")
}

// HealthCounts counts healths by color.
type HealthCounts struct {
	Green  int `json:"green"`
	Yellow int `json:"yellow"`
	Red    int `json:"red"`
}

// RegionHealth is a region's health: the worst of its nodes (those that
// left do not count), and its nodes counted by color.
type RegionHealth struct {
	Region string       `json:"region"`
	Health Health       `json:"health"`
	Nodes  HealthCounts `json:"nodes"`
}

// Node is a node as the API shows it: the catalog's row and its health.
type Node struct {
	catalog.Node
	Health Health `json:"health"`
}

// Service is a service that must run on a node, as its node's monitor last
// recorded it, with its health.
type Service struct {
	catalog.Service
	Health Health `json:"health"`
}

// SystemHealth is a system's health: that of the node on its host, when known.
type SystemHealth struct {
	Health
	// Host is the node running on the system's host ("" when unknown).
	Host string `json:"host,omitempty"`
}

// SystemHealthEntry is one system in the health report.
type SystemHealthEntry struct {
	Name   string       `json:"name"`
	Kind   string       `json:"kind"`
	Region string       `json:"region"`
	Health SystemHealth `json:"health"`
}

// RunHealthCounts are the run counts of the health report: pending, held,
// queued, active, and failed or aborted since FailedSince.
type RunHealthCounts = catalog.RunHealthCounts

// HealthReport is the health of every region, node, system (that the
// caller may read) and service, and the run counts.
type HealthReport struct {
	// Region is the region asked for ("" for all).
	Region string    `json:"region,omitempty"`
	At     time.Time `json:"at"`
	// Health is the worst of everything below, with the reasons, each
	// naming its subject.
	Health   Health              `json:"health"`
	Regions  []RegionHealth      `json:"regions"`
	Nodes    []Node              `json:"nodes"`
	Systems  []SystemHealthEntry `json:"systems"`
	Services []Service           `json:"services"`
	Runs     RunHealthCounts     `json:"runs"`
}

// Health returns the health report of region ("" for every region).
func (c *Client) Health(ctx context.Context, region string) (*HealthReport, error) {
	q := url.Values{}
	if region != "" {
		q.Set("region", region)
	}
	var rep HealthReport
	if err := c.get(ctx, "/api/v1/health", q, &rep); err != nil {
		return nil, fmt.Errorf("get health: %w", err)
	}
	return &rep, nil
}

// ThresholdLevels are the warning and critical levels of one metric: for
// cpu, memory and deviation bad above them, for disk_free (percent free)
// below, for heartbeat (seconds) after. A level of 0 is not checked.
type ThresholdLevels struct {
	Warn float64 `json:"warn"`
	Crit float64 `json:"crit"`
}

// EffectiveThreshold is the level in force for a metric and where it comes
// from: a scope ("node:w1", "default") or "built-in".
type EffectiveThreshold struct {
	ThresholdLevels
	From string `json:"from"`
}

// Threshold is a threshold row of the catalog.
type Threshold = catalog.HealthThreshold

// ThresholdList is every threshold set, and the built-in levels by metric.
type ThresholdList struct {
	BuiltIn    map[string]ThresholdLevels `json:"built_in"`
	Thresholds []Threshold                `json:"thresholds"`
}

// ScopeThresholds are the thresholds a scope sets and, for every metric, the
// level in force for it.
type ScopeThresholds struct {
	Scope      string                        `json:"scope"`
	Thresholds []Threshold                   `json:"thresholds"`
	Effective  map[string]EffectiveThreshold `json:"effective"`
}

// ListThresholds returns every threshold set (admin).
func (c *Client) ListThresholds(ctx context.Context) (*ThresholdList, error) {
	var out ThresholdList
	if err := c.get(ctx, "/api/v1/thresholds", nil, &out); err != nil {
		return nil, fmt.Errorf("list thresholds: %w", err)
	}
	return &out, nil
}

// checkScope checks a threshold scope before it is sent.
func checkScope(scope string) error {
	if err := catalog.ValidateThresholdScope(scope); err != nil {
		return fmt.Errorf("threshold scope: %w", err)
	}
	return nil
}

// GetThresholds returns the thresholds of scope: "default", "node:<id>" or
// "system:<name>" (admin).
func (c *Client) GetThresholds(ctx context.Context, scope string) (*ScopeThresholds, error) {
	if err := checkScope(scope); err != nil {
		return nil, err
	}
	var out ScopeThresholds
	if err := c.get(ctx, "/api/v1/thresholds/"+esc(scope), nil, &out); err != nil {
		return nil, fmt.Errorf("get thresholds of %s: %w", scope, err)
	}
	return &out, nil
}

// SetThresholds sets the levels of the metrics given for scope, all or none;
// the scope's other metrics stay (admin). It takes effect at the workload
// manager's next tick.
func (c *Client) SetThresholds(ctx context.Context, scope string, levels map[string]ThresholdLevels) (*ScopeThresholds, error) {
	if err := checkScope(scope); err != nil {
		return nil, err
	}
	if len(levels) == 0 {
		return nil, fmt.Errorf("set thresholds of %s: give at least one metric", scope)
	}
	var out ScopeThresholds
	if _, err := c.do(ctx, request{method: http.MethodPut, path: "/api/v1/thresholds/" + esc(scope), body: levels, idempotent: true}, &out); err != nil {
		return nil, fmt.Errorf("set thresholds of %s: %w", scope, err)
	}
	return &out, nil
}

// DeleteThresholds removes scope's threshold of metric, or all of the
// scope's thresholds when metric is "" (admin). Nothing to delete is a 404
// (catalog.ErrNotFound).
func (c *Client) DeleteThresholds(ctx context.Context, scope, metric string) error {
	if err := checkScope(scope); err != nil {
		return err
	}
	q := url.Values{}
	if metric != "" {
		q.Set("metric", metric)
	}
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/thresholds/" + esc(scope), query: q, idempotent: true}, nil); err != nil {
		if metric != "" {
			return fmt.Errorf("delete threshold %s of %s: %w", metric, scope, err)
		}
		return fmt.Errorf("delete thresholds of %s: %w", scope, err)
	}
	return nil
}

// ThresholdBuiltIn names the built-in levels in EffectiveThreshold.From.
const ThresholdBuiltIn = "built-in"
