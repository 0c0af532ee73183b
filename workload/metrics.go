package workload

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/weirdata/weir/catalog"
)

// HoldKind is why a run waits, in a few words fit for a metric label (the
// hold reason itself is free text).
type HoldKind string

// Kinds of holds.
const (
	HoldHostCritical   HoldKind = "host_critical"   // its source or target host is red
	HoldRegionLimit    HoldKind = "region_limit"    // the region's maximum of active runs
	HoldSystemLimit    HoldKind = "system_limit"    // a system's maximum of concurrent runs
	HoldNoWorker       HoldKind = "no_worker"       // no live worker in the region
	HoldWorkerFull     HoldKind = "worker_full"     // every live worker's slots are taken
	HoldWorkerCritical HoldKind = "worker_critical" // only red workers have free slots
)

// HoldKinds lists every HoldKind.
var HoldKinds = []HoldKind{HoldHostCritical, HoldRegionLimit, HoldSystemLimit, HoldNoWorker, HoldWorkerFull, HoldWorkerCritical}

// RunCountsCacheDefault is how long the leader reuses its count of the
// region's runs between scrapes.
const RunCountsCacheDefault = 10 * time.Second

// runCounter is what the run gauges need of the catalog; *catalog.Store has it.
type runCounter interface {
	CountRunsByState(ctx context.Context, region string) ([]catalog.RunCount, error)
}

// managerMetrics are the workload manager's metrics. The gauges are
// computed at scrape time and reported only while this manager is its
// region's leader, so that summing over servers counts each run once.
type managerMetrics struct {
	dispatch prometheus.Histogram
	state    *managerCollector
}

// newManagerMetrics registers the manager's metrics with reg for m; nil reg, nil metrics.
func newManagerMetrics(reg prometheus.Registerer, m *Manager) *managerMetrics {
	if reg == nil {
		return nil
	}
	mm := &managerMetrics{
		dispatch: catalog.MustRegisterCollector(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "weir_run_dispatch_latency_seconds",
			Help:    "Time from a run's creation to its dispatch to a worker (queued), observed by the leader.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		})),
		state: catalog.MustRegisterCollector(reg, newManagerCollector()),
	}
	mm.state.mgr.Store(m) // a restarted manager takes over the gauges
	return mm
}

// governed records the holds of one round of decisions.
func (mm *managerMetrics) governed(decisions []Decision) {
	if mm == nil {
		return
	}
	held := make(map[HoldKind]int, len(HoldKinds))
	for _, d := range decisions {
		if !d.Admitted() && d.Kind != "" {
			held[d.Kind]++
		}
	}
	mm.state.mu.Lock()
	mm.state.held = held
	mm.state.mu.Unlock()
}

// dispatched observes a run's wait from creation to dispatch.
func (mm *managerMetrics) dispatched(r *catalog.Run, now time.Time) {
	if mm == nil {
		return
	}
	mm.dispatch.Observe(max(0, now.Sub(r.CreatedAt).Seconds()))
}

// managerCollector reports the leader's view of its region at scrape time.
type managerCollector struct {
	mgr atomic.Pointer[Manager]

	leader, runs, queue, heldDesc *prometheus.Desc

	mu       sync.Mutex
	held     map[HoldKind]int // of the last round of decisions
	counts   []catalog.RunCount
	countsAt time.Time
}

func newManagerCollector() *managerCollector {
	return &managerCollector{
		leader: prometheus.NewDesc("weir_workload_leader", "1 while this server is its region's workload leader, else 0.", nil, nil),
		runs: prometheus.NewDesc("weir_runs", "Runs of the region by mapping and state, counted by the leader from the catalog.",
			[]string{"mapping", "state"}, nil),
		queue: prometheus.NewDesc("weir_queue_depth", "Runs of the region waiting: pending (not yet dispatched) and queued (dispatched, not yet claimed).",
			[]string{"state"}, nil),
		heldDesc: prometheus.NewDesc("weir_runs_held", "Pending runs the leader holds back, by kind of hold reason, as of its last decision.",
			[]string{"reason"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *managerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.leader
	ch <- c.runs
	ch <- c.queue
	ch <- c.heldDesc
}

// Collect implements prometheus.Collector.
func (c *managerCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.mgr.Load()
	if m == nil || !m.IsLeader() {
		ch <- prometheus.MustNewConstMetric(c.leader, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.leader, prometheus.GaugeValue, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range HoldKinds {
		ch <- prometheus.MustNewConstMetric(c.heldDesc, prometheus.GaugeValue, float64(c.held[k]), string(k))
	}
	counts, ok := c.runCounts(m)
	if !ok {
		return // the catalog did not answer: no stale figures
	}
	waiting := map[catalog.RunState]int64{catalog.StatePending: 0, catalog.StateQueued: 0}
	for _, rc := range counts {
		ch <- prometheus.MustNewConstMetric(c.runs, prometheus.GaugeValue, float64(rc.Count), rc.Mapping, string(rc.State))
		if _, w := waiting[rc.State]; w {
			waiting[rc.State] += rc.Count
		}
	}
	for st, n := range waiting {
		ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(n), string(st))
	}
}

// runCounts returns the region's run counts, read again when the cache is
// older than m's RunCountsCache. Called with c.mu held.
func (c *managerCollector) runCounts(m *Manager) ([]catalog.RunCount, bool) {
	rc, ok := m.store.(runCounter)
	if !ok {
		return nil, false
	}
	now := time.Now()
	if c.countsAt.IsZero() || now.Sub(c.countsAt) >= m.cfg.RunCountsCache {
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		defer cancel()
		counts, err := rc.CountRunsByState(ctx, m.cfg.Region)
		if err != nil {
			m.log.Warn("metrics: count runs", "error", err.Error())
			c.countsAt = time.Time{}
			return nil, false
		}
		c.counts, c.countsAt = counts, now
	}
	return c.counts, true
}

// scrapeTimeout bounds the catalog read of one scrape.
const scrapeTimeout = 5 * time.Second

// noWorkerKind is the kind of a hold for want of a worker (noWorkerReason).
func noWorkerKind(workers []WorkerLoad, health bool) HoldKind {
	switch {
	case len(workers) == 0:
		return HoldNoWorker
	case health:
		return HoldWorkerCritical
	}
	return HoldWorkerFull
}
