package cluster

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/weirdata/weir/catalog"
)

// memberCollector reports, at scrape time, the pool as this node sees it.
type memberCollector struct {
	c       atomic.Pointer[Cluster] // the node's current Cluster: a restarted one takes over
	members *prometheus.Desc
	dropped *prometheus.Desc
}

// registerMetrics registers the pool's metrics for c with reg (nil: none).
func registerMetrics(reg prometheus.Registerer, c *Cluster) {
	if reg == nil {
		return
	}
	mc := catalog.MustRegisterCollector(reg, &memberCollector{
		members: prometheus.NewDesc("weir_gossip_members", "Members of the gossip pool this node knows, itself included, by state (alive, dead, left).",
			[]string{"state"}, nil),
		dropped: prometheus.NewDesc("weir_gossip_events_dropped_total", "Membership events dropped because their consumer was behind.", nil, nil),
	})
	mc.c.Store(c)
}

// Describe implements prometheus.Collector.
func (m *memberCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.members
	ch <- m.dropped
}

// Collect implements prometheus.Collector.
func (m *memberCollector) Collect(ch chan<- prometheus.Metric) {
	c := m.c.Load()
	if c == nil {
		return
	}
	counts := map[State]int{StateAlive: 0, StateDead: 0, StateLeft: 0}
	for _, mb := range c.Members() {
		counts[mb.State]++
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(m.members, prometheus.GaugeValue, float64(n), string(st))
	}
	ch <- prometheus.MustNewConstMetric(m.dropped, prometheus.CounterValue, float64(c.DroppedEvents()))
}
