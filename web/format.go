package web

import (
	"fmt"
	"strconv"
	"time"

	"github.com/weirdata/weir/client"
)

// healthIcon is the icon of a health color, so that color is never the only
// signal: ● green, ▲ yellow, ✖ red, ? unknown.
func healthIcon(color string) string {
	switch color {
	case client.Green:
		return "●"
	case client.Yellow:
		return "▲"
	case client.Red:
		return "✖"
	}
	return "?"
}

// healthWord is the word of a health color: healthy, warning, critical.
func healthWord(color string) string {
	switch color {
	case client.Green:
		return "healthy"
	case client.Yellow:
		return "warning"
	case client.Red:
		return "critical"
	}
	return "unknown"
}

// ago says how long before now t was, coarsely ("3m ago"); "-" for zero.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// humanBytes writes a byte count with a binary unit: "1.5 MiB".
func humanBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", v)
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// trimFloat writes v with at most two decimals and no trailing zeros.
func trimFloat(v float64) string {
	return strconv.FormatFloat(float64(int64(v*100+0.5*sign(v)))/100, 'f', -1, 64)
}

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}
