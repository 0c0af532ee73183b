package profiler

import (
	"math"

	"github.com/weirdata/weir/catalog"
)

// deviationFloor is the smallest standard deviation a metric is scored
// with: a baseline that hardly ever moved (an idle disk, a flat 2% CPU) would
// otherwise turn the smallest change into a huge score.
var deviationFloor = map[string]float64{
	catalog.MetricCPU:          1,       // one percentage point
	catalog.MetricMemUsedPct:   1,       // one percentage point
	catalog.MetricLoad1:        0.1,     // a tenth of a runnable task
	catalog.MetricDiskReadBps:  1 << 20, // 1 MiB/s
	catalog.MetricDiskWriteBps: 1 << 20,
	catalog.MetricNetRxBps:     1 << 20,
	catalog.MetricNetTxBps:     1 << 20,
	catalog.MetricProcCPU:      1,
}

// DeviationRelativeFloor is the smallest standard deviation as a fraction of
// the baseline's mean: a 5% change is never more than one deviation.
const DeviationRelativeFloor = 0.05

// ZScore returns how many standard deviations x is from the baseline agg of
// metric (signed), and false when the baseline has fewer than minSamples
// samples. The standard deviation is floored (see DeviationRelativeFloor).
func ZScore(metric string, x float64, agg catalog.MetricAgg, minSamples int64) (float64, bool) {
	if agg.N < max(minSamples, 2) {
		return 0, false
	}
	sd := max(agg.Stddev(), DeviationRelativeFloor*math.Abs(agg.Avg), deviationFloor[metric], 1e-9)
	return (x - agg.Avg) / sd, true
}

// Deviations scores the DeviationMetrics of m against a baseline cell (metric
// -> aggregate). Metrics without a baseline of minSamples are left out; the
// result is nil when none qualifies.
func Deviations(m map[string]float64, baseline map[string]catalog.MetricAgg, minSamples int64) map[string]float64 {
	var out map[string]float64
	for _, name := range catalog.DeviationMetrics {
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
