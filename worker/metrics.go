package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/weirdata/weir/catalog"
)

// Directions of data, the label of the bytes and rows metrics.
const (
	DirectionRead    = "read"
	DirectionWritten = "written"
)

// workerMetrics are the worker's metrics; counted once per attempt, when
// its end is recorded, never per row.
type workerMetrics struct {
	finished   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	bytes      *prometheus.CounterVec
	rows       *prometheus.CounterVec
	rejected   prometheus.Counter
	leasesLost prometheus.Counter
}

// newWorkerMetrics registers the worker's metrics with reg; nil reg, nil metrics.
func newWorkerMetrics(reg prometheus.Registerer) *workerMetrics {
	if reg == nil {
		return nil
	}
	return &workerMetrics{
		finished: catalog.MustRegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_worker_attempts_finished_total",
			Help: "Run attempts this worker ended and recorded, by the state they ended in.",
		}, []string{"state"})),
		duration: catalog.MustRegisterCollector(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "weir_run_duration_seconds",
			Help:    "Time a run attempt took on this worker, from claim to its end, by the state it ended in.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400},
		}, []string{"state"})),
		bytes: catalog.MustRegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_bytes_moved_total",
			Help: "Bytes read from sources and written to targets by the runs this worker delivered, by connector kind and direction.",
		}, []string{"connector", "direction"})),
		rows: catalog.MustRegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_rows_moved_total",
			Help: "Rows read from sources and written to targets by the runs this worker delivered, by connector kind and direction.",
		}, []string{"connector", "direction"})),
		rejected: catalog.MustRegisterCollector(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_rows_rejected_total",
			Help: "Rows set aside by the bad-row policy of the runs this worker delivered.",
		})),
		leasesLost: catalog.MustRegisterCollector(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_worker_lease_losses_total",
			Help: "Run attempts this worker abandoned because it lost their lease.",
		})),
	}
}

// finishedRun counts an attempt whose end the catalog recorded in state;
// man and prog are its delivery manifest and progress when it delivered.
func (m *workerMetrics) finishedRun(r *catalog.Run, state catalog.RunState, man *catalog.Manifest, prog *catalog.Progress, took time.Duration) {
	if m == nil {
		return
	}
	m.finished.WithLabelValues(string(state)).Inc()
	m.duration.WithLabelValues(string(state)).Observe(took.Seconds())
	if man == nil || prog == nil {
		return
	}
	src, dst := "unknown", "unknown"
	if p := r.Plan.V; p != nil {
		src, dst = p.Source.Kind, p.Target.Kind
	}
	read, written := man.TotalRows, man.TotalRows
	if c := man.Counts; c != nil {
		read, written = c.SourceRows, c.Written
	}
	m.bytes.WithLabelValues(src, DirectionRead).Add(float64(max(0, prog.BytesDone)))
	m.bytes.WithLabelValues(dst, DirectionWritten).Add(float64(max(0, man.TotalBytes)))
	m.rows.WithLabelValues(src, DirectionRead).Add(float64(max(0, read)))
	m.rows.WithLabelValues(dst, DirectionWritten).Add(float64(max(0, written)))
	m.rejected.Add(float64(max(0, man.Rejects)))
}

// leaseLost counts an attempt abandoned for its lost lease.
func (m *workerMetrics) leaseLost() {
	if m != nil {
		m.leasesLost.Inc()
	}
}
