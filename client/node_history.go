package client

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// Resolutions of a NodeHistory.
const (
	HistoryRaw    = "raw"
	HistoryMinute = "minute"
	HistoryHour   = "hour"
)

// NodeHistory is a node's metrics over a window, oldest first, and its
// baseline for every hour of the week the window touches. Metric names are
// the profiler's ("cpu.busy_pct", "mem.used_pct", "disk.used_pct:/data"...).
type NodeHistory struct {
	NodeID string    `json:"node_id"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Resolution is HistoryRaw (each sample), HistoryMinute or HistoryHour
	// (averages, with maxima in Max).
	Resolution string            `json:"resolution"`
	Points     []HistoryPoint    `json:"points"`
	Baselines  []HistoryBaseline `json:"baselines"`
}

// HistoryPoint is one sample, or one rollup bucket's averages and maxima.
type HistoryPoint struct {
	At      time.Time          `json:"at"`
	Metrics map[string]float64 `json:"metrics"`
	Max     map[string]float64 `json:"max,omitempty"`
	// Deviations are, by scored metric, the standard deviations of the
	// point from its hour's baseline (once the baseline has enough samples).
	Deviations map[string]float64 `json:"deviations,omitempty"`
}

// HistoryBaseline is a node's usual level of each metric in one hour of the
// week (0 = Sunday 00:00 UTC).
type HistoryBaseline struct {
	HourOfWeek int                      `json:"hour_of_week"`
	Metrics    map[string]BaselineLevel `json:"metrics"`
}

// BaselineLevel is the mean and standard deviation of a metric over N
// samples; ScoreStddev is the (floored) deviation points are scored with,
// and Scored says whether the baseline has enough samples to score.
type BaselineLevel struct {
	Mean        float64 `json:"mean"`
	Stddev      float64 `json:"stddev"`
	ScoreStddev float64 `json:"score_stddev"`
	N           int64   `json:"n"`
	Scored      bool    `json:"scored"`
}

// NodeHistory returns node id's history over the window ending now (1m to
// 7 days; 0 lets the server choose, one hour).
func (c *Client) NodeHistory(ctx context.Context, id string, window time.Duration) (*NodeHistory, error) {
	if err := checkID("node id", id); err != nil {
		return nil, err
	}
	q := url.Values{}
	if window > 0 {
		q.Set("window", window.String())
	}
	var out NodeHistory
	if err := c.get(ctx, "/api/v1/nodes/"+esc(id)+"/history", q, &out); err != nil {
		return nil, fmt.Errorf("get history of node %s: %w", id, err)
	}
	return &out, nil
}
