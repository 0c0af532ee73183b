package broker

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// History windows of GET /nodes/:id/history.
const (
	// HistoryWindowDefault is the window when none is asked for.
	HistoryWindowDefault = time.Hour
	// HistoryWindowMax is the longest window.
	HistoryWindowMax = 7 * 24 * time.Hour
	// historyRawMax: windows up to it are answered with raw samples;
	// up to historyMinuteMax with minute rollups; longer with hour rollups.
	historyRawMax    = 2 * time.Hour
	historyMinuteMax = 2 * 24 * time.Hour
)

// Resolutions of a NodeHistory.
const (
	HistoryRaw    = "raw"
	HistoryMinute = catalog.RollupMinute
	HistoryHour   = catalog.RollupHour
)

// historyStore is what GET /nodes/:id/history needs from the catalog;
// *catalog.Store implements it.
type historyStore interface {
	ListSamples(ctx context.Context, nodeID string, from, to time.Time) ([]catalog.HostSample, error)
	ListRollups(ctx context.Context, nodeID, resolution string, from, to time.Time) ([]catalog.HostRollup, error)
	ListBaselines(ctx context.Context, nodeID string, hoursOfWeek ...int) ([]catalog.HostBaseline, error)
}

// NodeHistory is the answer of GET /nodes/:id/history: the node's metrics
// over a window, oldest first, and its baseline for every hour of the week
// the window touches.
type NodeHistory struct {
	NodeID string    `json:"node_id"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Resolution is raw (each sample), minute or hour (averages, with maxima).
	Resolution string         `json:"resolution"`
	Points     []HistoryPoint `json:"points"`
	// Baselines are by hour of the week (0 = Sunday 00:00 UTC).
	Baselines []HistoryBaseline `json:"baselines"`
}

// HistoryPoint is one sample, or one rollup bucket's averages and maxima.
type HistoryPoint struct {
	At      time.Time          `json:"at"`
	Metrics map[string]float64 `json:"metrics"`
	// Max holds the bucket's maxima (rollups only).
	Max map[string]float64 `json:"max,omitempty"`
	// Deviations are, by metric, the standard deviations of the point from
	// the baseline of its hour of the week, for the metrics the profiler
	// scores and once the baseline has enough samples (as the profiler
	// judges a sample's deviation).
	Deviations map[string]float64 `json:"deviations,omitempty"`
}

// HistoryBaseline is a node's usual level of each metric in one hour of the week.
type HistoryBaseline struct {
	HourOfWeek int                      `json:"hour_of_week"`
	Metrics    map[string]BaselineLevel `json:"metrics"`
}

// BaselineLevel is the mean and standard deviation of a metric over N samples.
type BaselineLevel struct {
	Mean   float64 `json:"mean"`
	Stddev float64 `json:"stddev"`
	// ScoreStddev is the standard deviation deviations are scored with:
	// Stddev raised to the profiler's floor for the metric (so a flat
	// baseline does not make every wiggle a deviation).
	ScoreStddev float64 `json:"score_stddev"`
	N           int64   `json:"n"`
	// Scored: the baseline has enough samples for deviations to be scored.
	Scored bool `json:"scored"`
}

// nodeHistory handles GET /nodes/:id/history?window=1h: any authenticated
// caller, as GET /nodes/:id.
func (s *Server) nodeHistory(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := url.PathUnescape(c.Param("id"))
	if err != nil || id == "" || len(id) > 128 || strings.ContainsRune(id, 0) {
		return notFound("no node %q", c.Param("id"))
	}
	window := HistoryWindowDefault
	if v := c.QueryParam("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > HistoryWindowMax {
			return badRequestField("window", "window must be a duration from 1m to %s, such as 1h or 30m, got %q", HistoryWindowMax, v)
		}
		window = d
	}
	hs, ok := s.store.(historyStore)
	if !ok {
		return &apiError{Status: http.StatusNotImplemented, Code: CodeInternal, Message: "this catalog keeps no host history"}
	}
	h, err := s.snapshot(ctx)
	if err != nil {
		return fmt.Errorf("judge node health: %w", err)
	}
	if _, ok := h.ByID[id]; !ok {
		return notFound("no node %q", id)
	}
	to := h.Now.UTC()
	from := to.Add(-window)
	out := NodeHistory{NodeID: id, From: from, To: to, Points: []HistoryPoint{}, Baselines: []HistoryBaseline{}}
	baselines, err := hs.ListBaselines(ctx, id, hoursOfWeek(from, to)...)
	if err != nil {
		return fmt.Errorf("baselines of node %s: %w", id, err)
	}
	byHour := make(map[int]map[string]catalog.MetricAgg, len(baselines))
	for _, b := range baselines {
		byHour[b.HourOfWeek] = b.Metrics.V
		hb := HistoryBaseline{HourOfWeek: b.HourOfWeek, Metrics: make(map[string]BaselineLevel, len(b.Metrics.V))}
		for k, a := range b.Metrics.V {
			lvl := BaselineLevel{Mean: a.Avg, Stddev: finite(a.Stddev()), N: a.N, Scored: a.N >= max(historyMinSamples, 2)}
			if z, ok := catalog.ZScore(k, a.Avg+1, a, 2); ok && z > 0 {
				lvl.ScoreStddev = finite(1 / z)
			}
			hb.Metrics[k] = lvl
		}
		out.Baselines = append(out.Baselines, hb)
	}
	switch {
	case window <= historyRawMax:
		out.Resolution = HistoryRaw
		samples, err := hs.ListSamples(ctx, id, from, to.Add(time.Nanosecond))
		if err != nil {
			return fmt.Errorf("history of node %s: %w", id, err)
		}
		for _, p := range samples {
			out.Points = append(out.Points, HistoryPoint{At: p.At, Metrics: p.Metrics.V,
				Deviations: catalog.Deviations(p.Metrics.V, byHour[catalog.HourOfWeek(p.At)], historyMinSamples)})
		}
	default:
		out.Resolution = HistoryMinute
		if window > historyMinuteMax {
			out.Resolution = HistoryHour
		}
		rollups, err := hs.ListRollups(ctx, id, out.Resolution, from, to)
		if err != nil {
			return fmt.Errorf("history of node %s: %w", id, err)
		}
		for _, r := range rollups {
			p := HistoryPoint{At: r.Bucket, Metrics: make(map[string]float64, len(r.Metrics.V)), Max: make(map[string]float64, len(r.Metrics.V))}
			for k, a := range r.Metrics.V {
				p.Metrics[k], p.Max[k] = a.Avg, a.Max
			}
			p.Deviations = catalog.Deviations(p.Metrics, byHour[catalog.HourOfWeek(r.Bucket)], historyMinSamples)
			out.Points = append(out.Points, p)
		}
	}
	return c.JSON(http.StatusOK, out)
}

// historyMinSamples is how many samples a baseline needs before points are
// scored against it: the profiler's default.
const historyMinSamples = catalog.MinBaselineSamplesDefault

// finite is v, or 0 when v is NaN or infinite.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// hoursOfWeek lists the distinct hours of the week [from, to] touches.
func hoursOfWeek(from, to time.Time) []int {
	seen := map[int]bool{}
	var out []int
	for t := from.Truncate(time.Hour); !t.After(to) && len(out) < catalog.HoursPerWeek; t = t.Add(time.Hour) {
		if h := catalog.HourOfWeek(t); !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}
