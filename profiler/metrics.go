package profiler

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/weirdata/weir/catalog"
)

// hostMetrics are the gauges of the host's latest sample. Disk gauges are
// labelled by path, which are the configured Config.DiskPaths only. The
// Weir process's own CPU and memory are the process collector's
// (process_cpu_seconds_total, process_resident_memory_bytes).
type hostMetrics struct {
	cpu, memUsed, memBytes, load1, load5, load15 prometheus.Gauge
	netRx, netTx, diskRead, diskWrite            prometheus.Gauge
	diskFree, diskUsed                           *prometheus.GaugeVec
}

func gauge(reg prometheus.Registerer, name, help string) prometheus.Gauge {
	return catalog.MustRegisterCollector(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
}

// newHostMetrics registers the host gauges with reg; nil reg, nil metrics.
func newHostMetrics(reg prometheus.Registerer) *hostMetrics {
	if reg == nil {
		return nil
	}
	return &hostMetrics{
		cpu:       gauge(reg, "weir_host_cpu_usage_ratio", "Share of the host's CPU time in use (0 to 1), as of the profiler's latest sample."),
		memUsed:   gauge(reg, "weir_host_memory_used_ratio", "Share of the host's memory in use (0 to 1)."),
		memBytes:  gauge(reg, "weir_host_memory_used_bytes", "Memory in use on the host, in bytes."),
		load1:     gauge(reg, "weir_host_load1", "The host's 1-minute load average."),
		load5:     gauge(reg, "weir_host_load5", "The host's 5-minute load average."),
		load15:    gauge(reg, "weir_host_load15", "The host's 15-minute load average."),
		netRx:     gauge(reg, "weir_host_network_receive_bytes_per_second", "Bytes per second the host received, over the last sample interval."),
		netTx:     gauge(reg, "weir_host_network_transmit_bytes_per_second", "Bytes per second the host sent, over the last sample interval."),
		diskRead:  gauge(reg, "weir_host_disk_read_bytes_per_second", "Bytes per second read from the host's disks, over the last sample interval."),
		diskWrite: gauge(reg, "weir_host_disk_write_bytes_per_second", "Bytes per second written to the host's disks, over the last sample interval."),
		diskFree: catalog.MustRegisterCollector(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weir_host_disk_free_bytes", Help: "Free space of each configured disk path, in bytes."}, []string{"path"})),
		diskUsed: catalog.MustRegisterCollector(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weir_host_disk_used_ratio", Help: "Share of each configured disk path's space in use (0 to 1)."}, []string{"path"})),
	}
}

// observe sets the gauges from sample s.
func (m *hostMetrics) observe(s catalog.Sample) {
	if m == nil {
		return
	}
	m.cpu.Set(s.CPUPct / 100)
	m.memUsed.Set(s.MemUsedPct / 100)
	m.memBytes.Set(float64(s.MemUsedBytes))
	m.load1.Set(s.Load1)
	m.load5.Set(s.Load5)
	m.load15.Set(s.Load15)
	m.netRx.Set(s.NetRxBps)
	m.netTx.Set(s.NetTxBps)
	m.diskRead.Set(s.DiskReadBps)
	m.diskWrite.Set(s.DiskWriteBps)
	for _, d := range s.Disks {
		m.diskFree.WithLabelValues(d.Path).Set(float64(d.FreeBytes))
		m.diskUsed.WithLabelValues(d.Path).Set(d.UsedPct / 100)
	}
}
