package catalog

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Color is a health: green (fine), yellow (warning), red (critical).
type Color string

// The colors, from best to worst.
const (
	Green  Color = "green"
	Yellow Color = "yellow"
	Red    Color = "red"
)

// rank orders colors; an unknown color counts as green.
func (c Color) rank() int {
	switch c {
	case Yellow:
		return 1
	case Red:
		return 2
	}
	return 0
}

// Worst returns the worst of colors; green when there are none.
func Worst(colors ...Color) Color {
	w := Green
	for _, c := range colors {
		if c.rank() > w.rank() {
			w = c
		}
	}
	return w
}

// Thresholds are the warning and critical levels health is judged by. A
// level of 0 is not checked. CPU, memory and deviation are bad above their
// levels, free disk below, heartbeat (the age of the latest sample) after.
type Thresholds struct {
	CPUWarn, CPUCrit                 float64 // CPU busy, percent
	MemWarn, MemCrit                 float64 // memory used, percent
	DiskFreeWarnPct, DiskFreeCritPct float64 // free space of each disk path, percent
	DeviationWarn, DeviationCrit     float64 // distance from baseline, standard deviations
	HeartbeatWarn, HeartbeatCrit     time.Duration
}

// ThresholdsDefault are the built-in levels, used where the catalog sets none.
var ThresholdsDefault = Thresholds{
	CPUWarn: 85, CPUCrit: 95,
	MemWarn: 85, MemCrit: 95,
	DiskFreeWarnPct: 10, DiskFreeCritPct: 5,
	DeviationWarn: 3, DeviationCrit: 5,
	HeartbeatWarn: 15 * time.Second, HeartbeatCrit: 30 * time.Second,
}

// Override returns t with the levels of the catalog's thresholds (metric ->
// threshold, as ResolveThresholds returns them) in place of its own;
// a threshold replaces both levels of its metric.
func (t Thresholds) Override(rows map[string]HealthThreshold) Thresholds {
	for metric, r := range rows {
		switch metric {
		case ThresholdCPU:
			t.CPUWarn, t.CPUCrit = r.Warn, r.Crit
		case ThresholdMemory:
			t.MemWarn, t.MemCrit = r.Warn, r.Crit
		case ThresholdDiskFree:
			t.DiskFreeWarnPct, t.DiskFreeCritPct = r.Warn, r.Crit
		case ThresholdDeviation:
			t.DeviationWarn, t.DeviationCrit = r.Warn, r.Crit
		case ThresholdHeartbeat:
			t.HeartbeatWarn, t.HeartbeatCrit = seconds(r.Warn), seconds(r.Crit)
		}
	}
	return t
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

// Reason is one finding that makes a health yellow or red.
type Reason struct {
	// Subject is what the finding is about ("node w1"), set by About when
	// healths are combined; empty for the thing Evaluate judged.
	Subject string `json:"subject,omitempty"`
	// Metric is the threshold metric: ThresholdCPU, ThresholdMemory,
	// ThresholdDiskFree, ThresholdDeviation or ThresholdHeartbeat.
	Metric string `json:"metric"`
	// Detail names the disk path (disk_free) or the deviating metric (deviation).
	Detail string `json:"detail,omitempty"`
	// Value and Threshold are in the metric's unit: percent, standard
	// deviations, or seconds for heartbeat.
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Level is Yellow (warning) or Red (critical).
	Level Color `json:"level"`
	// Text says it in words, for example "cpu 97% > 95% critical".
	Text string `json:"text"`
	// Since is when the condition began, when known (the last heartbeat).
	Since *time.Time `json:"since,omitempty"`
}

// String is the reason's text, prefixed by its subject when it has one.
func (r Reason) String() string {
	if r.Subject == "" {
		return r.Text
	}
	return r.Subject + ": " + r.Text
}

// Health is a color and the reasons for it, worst first; green has none.
type Health struct {
	Color   Color    `json:"color"`
	Reasons []Reason `json:"reasons,omitempty"`
}

// String is the color and the reasons, for logs and hold reasons.
func (h Health) String() string {
	if len(h.Reasons) == 0 {
		return string(Worst(h.Color))
	}
	parts := make([]string, len(h.Reasons))
	for i, r := range h.Reasons {
		parts[i] = r.String()
	}
	return string(h.Color) + ": " + strings.Join(parts, "; ")
}

// Worst returns the worst level among the reasons about the given threshold
// metrics (green if none): for example, admission control blocks a host
// whose Worst(ThresholdCPU, ThresholdMemory,
// ThresholdDiskFree) is red, whatever its deviations say.
func (h Health) Worst(metrics ...string) Color {
	w := Green
	for _, r := range h.Reasons {
		for _, m := range metrics {
			if r.Metric == m {
				w = Worst(w, r.Level)
			}
		}
	}
	return w
}

// Only returns the reasons of h about the given threshold metrics, and their color.
func (h Health) Only(metrics ...string) Health {
	var out Health
	for _, r := range h.Reasons {
		for _, m := range metrics {
			if r.Metric == m {
				out.Reasons = append(out.Reasons, r)
			}
		}
	}
	out.Color = h.Worst(metrics...)
	return out
}

// About returns h with subject set on the reasons that have none, so that a
// combined health still tells which node or system each reason is about.
func (h Health) About(subject string) Health {
	out := Health{Color: h.Color, Reasons: make([]Reason, len(h.Reasons))}
	copy(out.Reasons, h.Reasons)
	for i := range out.Reasons {
		if out.Reasons[i].Subject == "" {
			out.Reasons[i].Subject = subject
		}
	}
	if len(out.Reasons) == 0 {
		out.Reasons = nil
	}
	return out
}

// Combine rolls healths up, for a region, a service or a system: the worst
// color, and every reason, worst first (in their order otherwise). Use About
// first to keep each reason's subject.
func Combine(hs ...Health) Health {
	out := Health{Color: Green}
	for _, h := range hs {
		out.Color = Worst(out.Color, h.Color)
		out.Reasons = append(out.Reasons, h.Reasons...)
	}
	sort.SliceStable(out.Reasons, func(i, j int) bool { return out.Reasons[i].Level.rank() > out.Reasons[j].Level.rank() })
	return out
}

// DeviationMetrics are the metrics scored against their baseline: those that
// say how busy a host is. Levels that drift by nature (free bytes, RSS,
// goroutines) are kept in the baselines for charts but not scored.
var DeviationMetrics = []string{
	MetricCPU, MetricMemUsedPct, MetricLoad1,
	MetricDiskReadBps, MetricDiskWriteBps, MetricNetRxBps, MetricNetTxBps,
	MetricProcCPU,
}

// deviationLabel names the scored metrics in reasons.
var deviationLabel = map[string]string{
	MetricCPU:          "cpu",
	MetricMemUsedPct:   "memory",
	MetricLoad1:        "load",
	MetricDiskReadBps:  "disk reads",
	MetricDiskWriteBps: "disk writes",
	MetricNetRxBps:     "network in",
	MetricNetTxBps:     "network out",
	MetricProcCPU:      "weir's cpu",
}

// Evaluate judges a node from its latest sample. age is how long ago the
// node was last heard from (usually now minus latest.At); now dates the
// heartbeat reason's Since. Every threshold crossed gives a reason:
//
//	cpu 97% > 95% critical
//	memory 88% > 85% warning
//	free disk on /data 3% < 5% critical
//	cpu 6.2σ above its baseline (> 5σ critical)
//	no heartbeat for 42s (critical after 30s)
//
// A value exactly at a level does not cross it. A sample never taken (zero
// At) is yellow: there is nothing to judge yet.
func Evaluate(latest Sample, age time.Duration, th Thresholds, now time.Time) Health {
	var rs []Reason
	if r, ok := heartbeat(age, th, now); ok {
		rs = append(rs, r)
	}
	if latest.At.IsZero() {
		rs = append(rs, Reason{Metric: ThresholdHeartbeat, Level: Yellow, Text: "no host statistics recorded yet"})
	} else {
		if r, ok := above(ThresholdCPU, "", "cpu", latest.CPUPct, th.CPUWarn, th.CPUCrit); ok {
			rs = append(rs, r)
		}
		if r, ok := above(ThresholdMemory, "", "memory", latest.MemUsedPct, th.MemWarn, th.MemCrit); ok {
			rs = append(rs, r)
		}
		for _, d := range latest.Disks {
			if r, ok := diskFree(d, th); ok {
				rs = append(rs, r)
			}
		}
		rs = append(rs, deviations(latest.Deviations, th)...)
	}
	return HealthOf(rs)
}

// HealthOf is the health the reasons give: the worst of their levels
// (green when there are none), with the reasons worst first (in their order
// otherwise). It sorts rs in place.
func HealthOf(rs []Reason) Health {
	h := Health{Color: Green}
	for _, r := range rs {
		h.Color = Worst(h.Color, r.Level)
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Level.rank() > rs[j].Level.rank() })
	h.Reasons = rs
	return h
}

// level returns the level that v crosses: "worse" says whether v is worse
// than a threshold t; a zero threshold is not checked.
func level(v, warn, crit float64, worse func(v, t float64) bool) (Color, float64, bool) {
	switch {
	case crit > 0 && worse(v, crit):
		return Red, crit, true
	case warn > 0 && worse(v, warn):
		return Yellow, warn, true
	}
	return Green, 0, false
}

func levelWord(c Color) string {
	if c == Red {
		return "critical"
	}
	return "warning"
}

func gt(v, t float64) bool { return v > t }
func lt(v, t float64) bool { return v < t }

// above judges a percentage that is bad when high.
func above(metric, detail, label string, v, warn, crit float64) (Reason, bool) {
	c, t, ok := level(v, warn, crit, gt)
	if !ok {
		return Reason{}, false
	}
	return Reason{Metric: metric, Detail: detail, Value: v, Threshold: t, Level: c,
		Text: fmt.Sprintf("%s %s%% > %s%% %s", label, num(v), num(t), levelWord(c))}, true
}

func diskFree(d Disk, th Thresholds) (Reason, bool) {
	free := d.FreePct()
	c, t, ok := level(free, th.DiskFreeWarnPct, th.DiskFreeCritPct, lt)
	if !ok {
		return Reason{}, false
	}
	return Reason{Metric: ThresholdDiskFree, Detail: d.Path, Value: free, Threshold: t, Level: c,
		Text: fmt.Sprintf("free disk on %s %s%% < %s%% %s", d.Path, num(free), num(t), levelWord(c))}, true
}

func heartbeat(age time.Duration, th Thresholds, now time.Time) (Reason, bool) {
	c, t, ok := level(age.Seconds(), th.HeartbeatWarn.Seconds(), th.HeartbeatCrit.Seconds(), gt)
	if !ok {
		return Reason{}, false
	}
	lvl := th.HeartbeatWarn
	if c == Red {
		lvl = th.HeartbeatCrit
	}
	since := now.Add(-age)
	return Reason{Metric: ThresholdHeartbeat, Value: age.Seconds(), Threshold: t, Level: c, Since: &since,
		Text: fmt.Sprintf("no heartbeat for %s (%s after %s)", dur(age), levelWord(c), dur(lvl))}, true
}

// deviations gives a reason per scored metric beyond a level, farthest first.
func deviations(z map[string]float64, th Thresholds) []Reason {
	var rs []Reason
	for _, name := range DeviationMetrics {
		v, ok := z[name]
		if !ok {
			continue
		}
		c, t, ok := level(math.Abs(v), th.DeviationWarn, th.DeviationCrit, gt)
		if !ok {
			continue
		}
		dir := "above"
		if v < 0 {
			dir = "below"
		}
		rs = append(rs, Reason{Metric: ThresholdDeviation, Detail: name, Value: v, Threshold: t, Level: c,
			Text: fmt.Sprintf("%s %sσ %s its baseline (> %sσ %s)", deviationLabel[name], num(math.Abs(v)), dir, num(t), levelWord(c))})
	}
	sort.SliceStable(rs, func(i, j int) bool { return math.Abs(rs[i].Value) > math.Abs(rs[j].Value) })
	return rs
}

// num formats a value with at most one decimal: 97, 3.5.
func num(v float64) string {
	r := math.Round(v*10) / 10
	if r == 0 {
		r = 0 // no "-0"
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// dur formats a duration in whole seconds (milliseconds below one second).
func dur(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
