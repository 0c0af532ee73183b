package web

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestChartDrawsAxesBandDeviationsAndThreshold(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
	var pts []chartPoint
	var band []chartBand
	for i := 0; i < 60; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		pts = append(pts, chartPoint{T: at, V: 20 + float64(i%5)})
		band = append(band, chartBand{T: at, Lo: 15, Mean: 22, Hi: 29})
	}
	ch := chart{ID: "c<1>", Title: `CPU "busy"`, Unit: "%", YMax: 100, From: t0, To: t0.Add(time.Hour),
		Series: []chartSeries{{Name: "cpu <b>", Class: "line", Points: pts}}, Band: band,
		Deviations: []chartPoint{{T: t0.Add(30 * time.Minute), V: 97}}, Threshold: 95, ThresholdLabel: "critical 95%"}
	svg := string(ch.SVG())
	require.Contains(t, svg, `<polygon class="band"`)
	require.Contains(t, svg, `<circle class="dev"`)
	require.Contains(t, svg, `<line class="thr"`)
	require.Contains(t, svg, ">critical 95%<")
	require.Contains(t, svg, ">100%<", "y axis labels carry the unit")
	require.Contains(t, svg, ">14:30<", "x axis labels are times")
	require.Contains(t, svg, ">UTC<")
	require.Contains(t, svg, "1 points off the baseline")
	require.NotContains(t, svg, "<b>", "text is escaped")
	require.Contains(t, svg, `id="c&lt;1&gt;"`)

	empty := chart{ID: "e", Title: "Network", Unit: "B/s", From: t0, To: t0.Add(time.Hour)}
	require.Contains(t, string(empty.SVG()), "no samples in this window")

	net := chart{ID: "n", Title: "Network", Unit: "B/s", From: t0, To: t0.Add(time.Hour),
		Series: []chartSeries{{Name: "rx", Class: "line", Points: []chartPoint{{T: t0, V: 3 << 20}}}}}
	s := string(net.SVG())
	require.True(t, strings.Contains(s, "MiB/s"), "byte rates in binary units: %s", s)
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/alerts?open=1": "/alerts?open=1", "": "/", "https://x.example/": "/", "//x.example": "/",
		`/\x.example`: "/", "alerts": "/", "/nodes/w1": "/nodes/w1",
	} {
		require.Equal(t, want, safeNext(in), in)
	}
}
