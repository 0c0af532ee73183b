package web

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"
)

// Chart geometry, in SVG user units (the SVG scales to its box).
const (
	chartW, chartH                          = 720, 230
	chartLeft, chartRight, chartTop, chartB = 84, 14, 14, 30
)

// chartPoint is one value at one time.
type chartPoint struct {
	T time.Time
	V float64
}

// chartSeries is one line of a chart.
type chartSeries struct {
	Name   string
	Class  string // "line" or "line2" (static/weir.css)
	Points []chartPoint
}

// chartBand is the baseline band at one time: [Lo, Hi] is the usual range
// (mean ± the deviation threshold), Mean the usual level.
type chartBand struct {
	T            time.Time
	Lo, Mean, Hi float64
}

// chart is a time chart: lines, the baseline band, marked deviations and
// an optional threshold line, with axes and units.
type chart struct {
	ID    string // element id, for tests and links
	Title string
	// Unit formats the y axis and values: "%" or "B/s".
	Unit     string
	From, To time.Time
	Series   []chartSeries
	Band     []chartBand
	// Deviations are the points to mark: beyond the deviation threshold.
	Deviations []chartPoint
	// Threshold draws a dashed line at its value when Label is set.
	Threshold      float64
	ThresholdLabel string
	// YMax fixes the top of the y axis (100 for percents); 0 fits the data.
	YMax float64
}

// fmtValue writes v in unit u.
func fmtValue(v float64, u string) string {
	switch u {
	case "%":
		return trimFloat(v) + "%"
	case "B/s":
		return humanBytes(v) + "/s"
	}
	return trimFloat(v)
}

// niceStep is a round tick step (1, 2 or 5 times a power of ten) giving
// about n ticks over span.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// niceByteStep is like niceStep but in powers of 1024 times 1, 2 or 5.
func niceByteStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	unit := 1.0
	for unit*1024 <= raw {
		unit *= 1024
	}
	return niceStep(raw/unit*float64(n), n) * unit
}

// SVG renders the chart as inline SVG with a text alternative. It is
// safe HTML: every text is escaped.
func (ch chart) SVG() template.HTML {
	var b strings.Builder
	esc := html.EscapeString
	plotW := float64(chartW - chartLeft - chartRight)
	plotH := float64(chartH - chartTop - chartB)
	from, to := ch.From, ch.To
	if !to.After(from) {
		to = from.Add(time.Minute)
	}
	ymax := ch.YMax
	if ymax <= 0 {
		for _, s := range ch.Series {
			for _, p := range s.Points {
				ymax = max(ymax, p.V)
			}
		}
		for _, bd := range ch.Band {
			ymax = max(ymax, bd.Hi)
		}
		if ch.ThresholdLabel != "" {
			ymax = max(ymax, ch.Threshold)
		}
		ymax *= 1.1
		if ymax <= 0 {
			ymax = 1
		}
	}
	step := niceStep(ymax, 4)
	if ch.Unit == "B/s" {
		step = niceByteStep(ymax, 4)
	}
	if ch.YMax <= 0 {
		ymax = math.Ceil(ymax/step) * step
	}
	x := func(t time.Time) float64 {
		return float64(chartLeft) + plotW*float64(t.Sub(from))/float64(to.Sub(from))
	}
	y := func(v float64) float64 {
		v = min(max(v, 0), ymax)
		return float64(chartTop) + plotH*(1-v/ymax)
	}
	fmt.Fprintf(&b, `<svg id="%s" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-title"><title id="%s-title">%s</title>`,
		esc(ch.ID), chartW, chartH, esc(ch.ID), esc(ch.ID), esc(ch.summary()))
	// Baseline band and mean, as steps per point.
	if len(ch.Band) > 0 {
		var up, down []string
		for _, bd := range ch.Band {
			up = append(up, fmt.Sprintf("%.1f,%.1f", x(bd.T), y(bd.Hi)))
			down = append([]string{fmt.Sprintf("%.1f,%.1f", x(bd.T), y(bd.Lo))}, down...)
		}
		fmt.Fprintf(&b, `<polygon class="band" points="%s"><title>baseline band</title></polygon>`, strings.Join(append(up, down...), " "))
		var mean []string
		for _, bd := range ch.Band {
			mean = append(mean, fmt.Sprintf("%.1f,%.1f", x(bd.T), y(bd.Mean)))
		}
		fmt.Fprintf(&b, `<polyline class="mean" fill="none" points="%s"/>`, strings.Join(mean, " "))
	}
	// Grid and y labels.
	for v := 0.0; v <= ymax+step/1000; v += step {
		yy := y(v)
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, chartLeft, yy, chartW-chartRight, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, chartLeft-6, yy+4, esc(fmtValue(v, ch.Unit)))
	}
	// X axis labels: about five times.
	span := to.Sub(from)
	tick := niceDuration(span / 5)
	for t := from.Truncate(tick).Add(tick); t.Before(to); t = t.Add(tick) {
		xx := x(t)
		fmt.Fprintf(&b, `<line class="axis" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>`, xx, chartH-chartB, xx, chartH-chartB+4)
		layout := "15:04"
		if span > 36*time.Hour {
			layout = "Jan 2 15h"
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, xx, chartH-chartB+16, esc(t.UTC().Format(layout)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">UTC</text>`, chartLeft-6, chartH-chartB+16)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, chartLeft, chartTop, chartLeft, chartH-chartB)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, chartLeft, chartH-chartB, chartW-chartRight, chartH-chartB)
	if ch.ThresholdLabel != "" && ch.Threshold > 0 && ch.Threshold <= ymax {
		yy := y(ch.Threshold)
		fmt.Fprintf(&b, `<line class="thr" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, chartLeft, yy, chartW-chartRight, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, chartW-chartRight-2, yy-4, esc(ch.ThresholdLabel))
	}
	for _, s := range ch.Series {
		var pts []string
		for _, p := range s.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.T), y(p.V)))
		}
		if len(pts) == 1 {
			pts = append(pts, pts[0])
		}
		fmt.Fprintf(&b, `<polyline class="%s" points="%s"><title>%s</title></polyline>`, esc(s.Class), strings.Join(pts, " "), esc(s.Name))
	}
	for _, d := range ch.Deviations {
		fmt.Fprintf(&b, `<circle class="dev" cx="%.1f" cy="%.1f" r="3.5"><title>%s at %s: off its baseline</title></circle>`,
			x(d.T), y(d.V), esc(fmtValue(d.V, ch.Unit)), esc(d.T.UTC().Format("15:04:05 UTC")))
	}
	if len(ch.Series) == 0 || len(ch.Series[0].Points) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">no samples in this window</text>`, chartLeft+int(plotW/2), chartTop+int(plotH/2))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from escaped text and numbers only
}

// summary describes the chart in words, for screen readers and tests.
func (ch chart) summary() string {
	parts := []string{ch.Title}
	for _, s := range ch.Series {
		if n := len(s.Points); n > 0 {
			parts = append(parts, fmt.Sprintf("%s now %s", s.Name, fmtValue(s.Points[n-1].V, ch.Unit)))
		}
	}
	if len(ch.Deviations) > 0 {
		parts = append(parts, fmt.Sprintf("%d points off the baseline", len(ch.Deviations)))
	}
	return strings.Join(parts, "; ")
}

// niceDuration rounds d up to a readable tick: 1, 2, 5, 10, 15, 30 minutes, 1, 2, 3, 6, 12, 24 hours.
func niceDuration(d time.Duration) time.Duration {
	for _, s := range []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
		30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		if s >= d {
			return s
		}
	}
	return 24 * time.Hour
}
