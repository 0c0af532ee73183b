package catalog

import (
	"maps"
	"sort"
	"strings"
	"time"
)

// Metric names, the keys of the catalog's metric maps. Per-disk metrics
// append the disk path: DiskFreeBytesMetric(path), DiskUsedPctMetric(path).
const (
	MetricCPU            = "cpu.busy_pct"    // CPU busy, percent of all cores
	MetricMemUsedPct     = "mem.used_pct"    // memory used, percent
	MetricMemUsedBytes   = "mem.used_bytes"  // memory used, bytes
	MetricDiskReadBps    = "disk.read_bps"   // bytes read per second, all physical disks
	MetricDiskWriteBps   = "disk.write_bps"  // bytes written per second, all physical disks
	MetricNetRxBps       = "net.rx_bps"      // bytes received per second, all interfaces but loopback
	MetricNetTxBps       = "net.tx_bps"      // bytes sent per second, all interfaces but loopback
	MetricLoad1          = "load.1"          // load average over 1 minute
	MetricLoad5          = "load.5"          // load average over 5 minutes
	MetricLoad15         = "load.15"         // load average over 15 minutes
	MetricProcCPU        = "proc.cpu_pct"    // Weir's process CPU, percent of one core
	MetricProcRSS        = "proc.rss_bytes"  // Weir's resident memory, bytes
	MetricProcOpenFiles  = "proc.open_files" // Weir's open file descriptors
	MetricProcGoroutines = "proc.goroutines" // Weir's goroutines

	diskFreeBytesPrefix = "disk.free_bytes:"
	diskUsedPctPrefix   = "disk.used_pct:"
)

// DiskFreeBytesMetric names the free bytes metric of a disk path.
func DiskFreeBytesMetric(path string) string { return diskFreeBytesPrefix + path }

// DiskUsedPctMetric names the used percent metric of a disk path.
func DiskUsedPctMetric(path string) string { return diskUsedPctPrefix + path }

// Sample is one measurement of a node's host. Rates are per second over the
// time since the previous sample.
type Sample struct {
	NodeID string    `json:"node_id"`
	Region string    `json:"region"`
	At     time.Time `json:"at"`

	CPUPct       float64 `json:"cpu_pct"`
	MemUsedPct   float64 `json:"mem_used_pct"`
	MemUsedBytes uint64  `json:"mem_used_bytes"`
	Disks        []Disk  `json:"disks"`
	DiskReadBps  float64 `json:"disk_read_bps"`
	DiskWriteBps float64 `json:"disk_write_bps"`
	NetRxBps     float64 `json:"net_rx_bps"`
	NetTxBps     float64 `json:"net_tx_bps"`
	Load1        float64 `json:"load1"`
	Load5        float64 `json:"load5"`
	Load15       float64 `json:"load15"`
	Proc         Process `json:"process"`

	// Deviations holds, by metric name, how many standard deviations the
	// metric is from the node's baseline for this hour of the week (signed).
	// Only the DeviationMetrics whose baseline has enough samples have one.
	Deviations map[string]float64 `json:"deviations,omitempty"`
}

// Disk is the space of one configured disk path.
type Disk struct {
	Path      string  `json:"path"`
	FreeBytes uint64  `json:"free_bytes"`
	UsedPct   float64 `json:"used_pct"`
}

// FreePct is the percentage of the disk still free for use.
func (d Disk) FreePct() float64 { return 100 - d.UsedPct }

// Process is what Weir's own process uses.
type Process struct {
	CPUPct     float64 `json:"cpu_pct"`
	RSSBytes   uint64  `json:"rss_bytes"`
	OpenFiles  int     `json:"open_files"`
	Goroutines int     `json:"goroutines"`
}

// Metrics flattens the sample into the catalog's metric map.
func (s Sample) Metrics() map[string]float64 {
	m := make(map[string]float64, 14+2*len(s.Disks))
	m[MetricCPU] = s.CPUPct
	m[MetricMemUsedPct] = s.MemUsedPct
	m[MetricMemUsedBytes] = float64(s.MemUsedBytes)
	m[MetricDiskReadBps] = s.DiskReadBps
	m[MetricDiskWriteBps] = s.DiskWriteBps
	m[MetricNetRxBps] = s.NetRxBps
	m[MetricNetTxBps] = s.NetTxBps
	m[MetricLoad1] = s.Load1
	m[MetricLoad5] = s.Load5
	m[MetricLoad15] = s.Load15
	m[MetricProcCPU] = s.Proc.CPUPct
	m[MetricProcRSS] = float64(s.Proc.RSSBytes)
	m[MetricProcOpenFiles] = float64(s.Proc.OpenFiles)
	m[MetricProcGoroutines] = float64(s.Proc.Goroutines)
	for _, d := range s.Disks {
		m[DiskFreeBytesMetric(d.Path)] = float64(d.FreeBytes)
		m[DiskUsedPctMetric(d.Path)] = d.UsedPct
	}
	return m
}

// SampleFromLatest rebuilds a Sample from a node's latest catalog row; its
// disks come back ordered by path.
func SampleFromLatest(l HostLatest) Sample {
	m := l.Metrics.V
	s := Sample{
		NodeID:       l.NodeID,
		Region:       l.Region,
		At:           l.At,
		CPUPct:       m[MetricCPU],
		MemUsedPct:   m[MetricMemUsedPct],
		MemUsedBytes: uint64(m[MetricMemUsedBytes]),
		DiskReadBps:  m[MetricDiskReadBps],
		DiskWriteBps: m[MetricDiskWriteBps],
		NetRxBps:     m[MetricNetRxBps],
		NetTxBps:     m[MetricNetTxBps],
		Load1:        m[MetricLoad1],
		Load5:        m[MetricLoad5],
		Load15:       m[MetricLoad15],
		Proc: Process{
			CPUPct:     m[MetricProcCPU],
			RSSBytes:   uint64(m[MetricProcRSS]),
			OpenFiles:  int(m[MetricProcOpenFiles]),
			Goroutines: int(m[MetricProcGoroutines]),
		},
	}
	for name, used := range m {
		if path, ok := strings.CutPrefix(name, diskUsedPctPrefix); ok {
			s.Disks = append(s.Disks, Disk{Path: path, UsedPct: used, FreeBytes: uint64(m[DiskFreeBytesMetric(path)])})
		}
	}
	sort.Slice(s.Disks, func(i, j int) bool { return s.Disks[i].Path < s.Disks[j].Path })
	if len(l.Deviations.V) > 0 {
		s.Deviations = maps.Clone(l.Deviations.V)
	}
	return s
}
