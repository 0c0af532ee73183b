package catalog

import (
	"math"
)

// deviationFloor is the smallest standard deviation a metric is scored
// with: a baseline that hardly ever moved (an idle disk, a flat 2% CPU) would
// otherwise turn the smallest change into a huge score.
var deviationFloor = map[string]float64{
	MetricCPU:          1,       // one percentage point
	MetricMemUsedPct:   1,       // one percentage point
	MetricLoad1:        0.1,     // a tenth of a runnable task
	MetricDiskReadBps:  1 << 20, // 1 MiB/s
	MetricDiskWriteBps: 1 << 20,
	MetricNetRxBps:     1 << 20,
	MetricNetTxBps:     1 << 20,
	MetricProcCPU:      1,
}

// DeviationRelativeFloor is the smallest standard deviation as a fraction of
// the baseline's mean: a 5% change is never more than one deviation.
const DeviationRelativeFloor = 0.05

// ZScore returns how many standard deviations x is from the baseline agg of
// metric (signed), and false when the baseline has fewer than minSamples
// samples. The standard deviation is floored (see DeviationRelativeFloor).
func ZScore(metric string, x float64, agg MetricAgg, minSamples int64) (float64, bool) {
	if agg.N < max(minSamples, 2) {
		return 0, false
	}
	sd := max(agg.Stddev(), DeviationRelativeFloor*math.Abs(agg.Avg), deviationFloor[metric], 1e-9)
	return (x - agg.Avg) / sd, true
}

// Deviations scores the DeviationMetrics of m against a baseline cell (metric
// -> aggregate). Metrics without a baseline of minSamples are left out; the
// result is nil when none qualifies.
func Deviations(m map[string]float64, baseline map[string]MetricAgg, minSamples int64) map[string]float64 {
	var out map[string]float64
	for _, name := range DeviationMetrics {
		x, ok := m[name]
		if !ok {
			continue
		}
		z, ok := ZScore(name, x, baseline[name], minSamples)
		if !ok {
			continue
		}
		if out == nil {
			out = map[string]float64{}
		}
		out[name] = z
	}
	return out
}

// MinBaselineSamplesDefault is how many raw samples a baseline cell (one
// hour of the week) needs before deviations from it are scored: half an
// hour of 5 s samples.
const MinBaselineSamplesDefault = 360
