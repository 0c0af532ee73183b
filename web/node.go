package web

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// Profiler metric names the node page charts (the profiler's catalog keys).
const (
	metricCPU      = "cpu.busy_pct"
	metricMem      = "mem.used_pct"
	metricNetRx    = "net.rx_bps"
	metricNetTx    = "net.tx_bps"
	diskUsedPrefix = "disk.used_pct:"
	// deviationWarnDefault is the deviation threshold used for the band
	// when the node has none in force.
	deviationWarnDefault = 3.0
)

// nodeWindows are the chart windows the node page offers.
var nodeWindows = []string{"15m", "1h", "6h", "24h", "7d"}

// nodeWindowDefault is the chart window when none is asked for.
const nodeWindowDefault = "1h"

// nodeView is the data of the node page.
type nodeView struct {
	Node    *client.NodeDetail
	Window  string
	Windows []string
	Charts  []chart
	// Resolution of the charts: raw samples, or minute or hour averages.
	Resolution string
}

// nodePage shows one node: health, charts of its profiler history with the
// baseline band and deviations, its services and its runs.
func (s *Server) nodePage(c echo.Context) error {
	v, err := s.loadNode(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "node", Page{Title: "Node " + v.Node.ID, Nav: "overview", Data: v})
}

// nodeLive is the node page's live fragment.
func (s *Server) nodeLive(c echo.Context) error {
	v, err := s.loadNode(c)
	if err != nil {
		return err
	}
	return s.renderLive(c, "node", Page{Data: v})
}

func (s *Server) loadNode(c echo.Context) (*nodeView, error) {
	id, err := url.PathUnescape(c.Param("id"))
	if err != nil || id == "" {
		return nil, echo.NewHTTPError(http.StatusNotFound, "there is no such node")
	}
	window := c.QueryParam("window")
	if window == "" {
		window = nodeWindowDefault
	}
	d, err := parseWindow(window)
	if err != nil {
		return nil, echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	api := s.apiFor(c)
	n, err := api.GetNode(c.Request().Context(), id)
	if err != nil {
		return nil, err
	}
	h, err := api.NodeHistory(c.Request().Context(), id, d)
	if err != nil {
		return nil, err
	}
	return &nodeView{Node: n, Window: window, Windows: nodeWindows, Resolution: h.Resolution, Charts: nodeCharts(n, h)}, nil
}

// parseWindow reads a chart window: one of nodeWindows.
func parseWindow(w string) (time.Duration, error) {
	for _, ok := range nodeWindows {
		if w == ok {
			if strings.HasSuffix(w, "d") {
				var days int
				_, _ = fmt.Sscanf(w, "%dd", &days)
				return time.Duration(days) * 24 * time.Hour, nil
			}
			return time.ParseDuration(w)
		}
	}
	return 0, fmt.Errorf("window %q is not one of %s", w, strings.Join(nodeWindows, ", "))
}

// nodeCharts builds the CPU, memory, disk and network charts of a node.
func nodeCharts(n *client.NodeDetail, h *client.NodeHistory) []chart {
	devWarn := n.Thresholds[catalog.ThresholdDeviation].Warn
	if devWarn <= 0 {
		devWarn = deviationWarnDefault
	}
	base := map[int]map[string]client.BaselineLevel{}
	for _, b := range h.Baselines {
		base[b.HourOfWeek] = b.Metrics
	}
	series := func(name, class, metric string) chartSeries {
		s := chartSeries{Name: name, Class: class}
		for _, p := range h.Points {
			if v, ok := p.Metrics[metric]; ok {
				s.Points = append(s.Points, chartPoint{T: p.At, V: v})
			}
		}
		return s
	}
	band := func(metric string) []chartBand {
		var out []chartBand
		for _, p := range h.Points {
			lvl, ok := base[catalog.HourOfWeek(p.At)][metric]
			if !ok || !lvl.Scored {
				continue
			}
			sd := max(lvl.ScoreStddev, lvl.Stddev)
			out = append(out, chartBand{T: p.At, Lo: max(lvl.Mean-devWarn*sd, 0), Mean: lvl.Mean, Hi: lvl.Mean + devWarn*sd})
		}
		return out
	}
	devs := func(metrics ...string) []chartPoint {
		var out []chartPoint
		for _, p := range h.Points {
			for _, m := range metrics {
				if z, ok := p.Deviations[m]; ok && (z >= devWarn || z <= -devWarn) {
					out = append(out, chartPoint{T: p.At, V: p.Metrics[m]})
				}
			}
		}
		return out
	}
	cpuCrit := n.Thresholds[catalog.ThresholdCPU].Crit
	memCrit := n.Thresholds[catalog.ThresholdMemory].Crit
	diskCrit := n.Thresholds[catalog.ThresholdDiskFree].Crit
	charts := []chart{
		{ID: "chart-cpu", Title: "CPU busy", Unit: "%", YMax: 100, Series: []chartSeries{series("CPU busy", "line", metricCPU)},
			Band: band(metricCPU), Deviations: devs(metricCPU), Threshold: cpuCrit, ThresholdLabel: critLabel(cpuCrit, "%")},
		{ID: "chart-memory", Title: "Memory used", Unit: "%", YMax: 100, Series: []chartSeries{series("memory used", "line", metricMem)},
			Band: band(metricMem), Deviations: devs(metricMem), Threshold: memCrit, ThresholdLabel: critLabel(memCrit, "%")},
	}
	disk := chart{ID: "chart-disk", Title: "Disk space used", Unit: "%", YMax: 100}
	for i, path := range diskPaths(h) {
		class := "line"
		if i > 0 {
			class = "line2"
		}
		if i >= 2 {
			break
		}
		disk.Series = append(disk.Series, series("used on "+path, class, diskUsedPrefix+path))
	}
	if diskCrit > 0 {
		disk.Threshold, disk.ThresholdLabel = 100-diskCrit, fmt.Sprintf("critical: under %s free", fmtValue(diskCrit, "%"))
	}
	net := chart{ID: "chart-network", Title: "Network", Unit: "B/s",
		Series: []chartSeries{series("received", "line", metricNetRx), series("sent", "line2", metricNetTx)},
		Band:   band(metricNetRx), Deviations: devs(metricNetRx, metricNetTx)}
	charts = append(charts, disk, net)
	for i := range charts {
		charts[i].From, charts[i].To = h.From, h.To
	}
	return charts
}

func critLabel(v float64, unit string) string {
	if v <= 0 {
		return ""
	}
	return "critical " + fmtValue(v, unit)
}

// diskPaths lists the disk paths of the history, sorted.
func diskPaths(h *client.NodeHistory) []string {
	seen := map[string]bool{}
	for _, p := range h.Points {
		for k := range p.Metrics {
			if strings.HasPrefix(k, diskUsedPrefix) {
				seen[strings.TrimPrefix(k, diskUsedPrefix)] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
