package profiler

import (
	"context"
	"errors"
	"fmt"
	"github.com/weirdata/weir/catalog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/net"
	"github.com/shirou/gopsutil/v4/process"
)

// Sampler measures the host. The Profiler sets NodeID, Region, At and
// Deviations of what it returns; a Sampler fills in the measurements.
type Sampler interface {
	// Sample measures the host now; rates are per second since the previous
	// call. An error means no sample, unless it is a *PartialSampleError:
	// then the sample holds what could be measured and is recorded.
	Sample(ctx context.Context) (catalog.Sample, error)
}

// SamplerFunc adapts a function to a Sampler (synthetic series in tests,
// for example).
type SamplerFunc func(ctx context.Context) (catalog.Sample, error)

// Sample calls f.
func (f SamplerFunc) Sample(ctx context.Context) (catalog.Sample, error) { return f(ctx) }

// PartialSampleError reports the parts of the host a Sampler could not
// measure (a disk path that is gone, say); the sample it comes with holds
// the rest.
type PartialSampleError struct{ Err error }

// Error says what could not be measured.
func (e *PartialSampleError) Error() string { return "sample host partly: " + e.Err.Error() }

// Unwrap returns the measurement errors.
func (e *PartialSampleError) Unwrap() error { return e.Err }

// HostSampler measures the real host with gopsutil. It is safe for
// concurrent use; rates are computed between consecutive calls.
type HostSampler struct {
	diskPaths []string
	proc      *process.Process

	mu   sync.Mutex
	prev counters
}

// counters are the cumulative values rates are computed from.
type counters struct {
	at                   time.Time
	cpuBusy, cpuTotal    float64
	diskRead, diskWrite  uint64
	netRx, netTx         uint64
	procCPU              float64 // seconds of CPU used by the process
	haveDisk, haveNet    bool
	haveCPU, haveProcCPU bool
}

// NewHostSampler returns a sampler of this host that reports the space of
// each of diskPaths (absolute paths; each must exist now). It takes a first
// reading, so that the first Sample already has rates.
func NewHostSampler(diskPaths []string) (*HostSampler, error) {
	paths := make([]string, 0, len(diskPaths))
	seen := map[string]bool{}
	for _, p := range diskPaths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("new host sampler: disk path %q is not absolute", p)
		}
		p = filepath.Clean(p)
		if seen[p] {
			continue
		}
		seen[p] = true
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("new host sampler: disk path: %w", err)
		}
		paths = append(paths, p)
	}
	proc, err := process.NewProcess(int32(os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("new host sampler: open own process: %w", err)
	}
	h := &HostSampler{diskPaths: paths, proc: proc}
	h.prev = h.read(context.Background())
	return h, nil
}

// DiskPaths returns the disk paths the sampler reports, cleaned and without duplicates.
func (h *HostSampler) DiskPaths() []string { return append([]string(nil), h.diskPaths...) }

// read takes the cumulative counters; what cannot be read is marked missing.
func (h *HostSampler) read(ctx context.Context) counters {
	c := counters{at: time.Now()}
	if ts, err := cpu.TimesWithContext(ctx, false); err == nil && len(ts) > 0 {
		t := ts[0]
		// Guest time is already counted in user time on Linux.
		c.cpuTotal = t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
		c.cpuBusy = c.cpuTotal - t.Idle - t.Iowait
		c.haveCPU = true
	}
	if io, err := disk.IOCountersWithContext(ctx); err == nil {
		for name, st := range io {
			if physicalDisk(name) {
				c.diskRead += st.ReadBytes
				c.diskWrite += st.WriteBytes
			}
		}
		c.haveDisk = true
	}
	if nics, err := net.IOCountersWithContext(ctx, true); err == nil {
		for _, n := range nics {
			if n.Name == "lo" || strings.HasPrefix(n.Name, "lo0") {
				continue
			}
			c.netRx += n.BytesRecv
			c.netTx += n.BytesSent
		}
		c.haveNet = true
	}
	if t, err := h.proc.TimesWithContext(ctx); err == nil {
		c.procCPU = t.User + t.System
		c.haveProcCPU = true
	}
	return c
}

// physicalDisk tells whether a block device counts in disk throughput: on
// Linux a whole disk that is not a loop, RAM or stacked (device-mapper, md)
// device, so that no byte is counted twice; elsewhere every device.
func physicalDisk(name string) bool {
	if _, err := os.Stat("/sys/block"); err != nil {
		return true
	}
	if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") {
		return false
	}
	if _, err := os.Stat(filepath.Join("/sys/block", name)); err != nil {
		return false // a partition, or not a block device
	}
	slaves, _ := os.ReadDir(filepath.Join("/sys/block", name, "slaves"))
	return len(slaves) == 0
}

// rate is the per-second change of a counter; a counter that went back (a
// reset) gives 0.
func rate(cur, prev uint64, secs float64) float64 {
	if cur < prev || secs <= 0 {
		return 0
	}
	return float64(cur-prev) / secs
}

// Sample measures the host. CPU and memory are required; the rest is
// reported as a *PartialSampleError when it fails.
func (h *HostSampler) Sample(ctx context.Context) (catalog.Sample, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var s catalog.Sample
	var problems []error
	cur := h.read(ctx)
	prev := h.prev
	h.prev = cur
	secs := cur.at.Sub(prev.at).Seconds()

	if !cur.haveCPU {
		return catalog.Sample{}, errors.New("sample host: cannot read cpu times")
	}
	if prev.haveCPU && cur.cpuTotal > prev.cpuTotal {
		busy := (cur.cpuBusy - prev.cpuBusy) / (cur.cpuTotal - prev.cpuTotal) * 100
		s.CPUPct = min(max(busy, 0), 100)
	}
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return catalog.Sample{}, fmt.Errorf("sample host memory: %w", err)
	}
	s.MemUsedPct, s.MemUsedBytes = vm.UsedPercent, vm.Used

	for _, p := range h.diskPaths {
		u, err := disk.UsageWithContext(ctx, p)
		if err != nil {
			problems = append(problems, fmt.Errorf("disk %s: %w", p, err))
			continue
		}
		s.Disks = append(s.Disks, catalog.Disk{Path: p, FreeBytes: u.Free, UsedPct: u.UsedPercent})
	}
	if cur.haveDisk && prev.haveDisk {
		s.DiskReadBps = rate(cur.diskRead, prev.diskRead, secs)
		s.DiskWriteBps = rate(cur.diskWrite, prev.diskWrite, secs)
	} else if !cur.haveDisk {
		problems = append(problems, errors.New("disk throughput: cannot read I/O counters"))
	}
	if cur.haveNet && prev.haveNet {
		s.NetRxBps = rate(cur.netRx, prev.netRx, secs)
		s.NetTxBps = rate(cur.netTx, prev.netTx, secs)
	} else if !cur.haveNet {
		problems = append(problems, errors.New("network throughput: cannot read interface counters"))
	}
	if avg, err := load.AvgWithContext(ctx); err == nil {
		s.Load1, s.Load5, s.Load15 = avg.Load1, avg.Load5, avg.Load15
	} else {
		problems = append(problems, fmt.Errorf("load average: %w", err))
	}

	if cur.haveProcCPU && prev.haveProcCPU && secs > 0 {
		s.Proc.CPUPct = max(cur.procCPU-prev.procCPU, 0) / secs * 100
	}
	if mi, err := h.proc.MemoryInfoWithContext(ctx); err == nil {
		s.Proc.RSSBytes = mi.RSS
	} else {
		problems = append(problems, fmt.Errorf("process memory: %w", err))
	}
	if n, err := h.proc.NumFDsWithContext(ctx); err == nil {
		s.Proc.OpenFiles = int(n)
	} else {
		problems = append(problems, fmt.Errorf("process open files: %w", err))
	}
	s.Proc.Goroutines = runtime.NumGoroutine()
	if len(problems) > 0 {
		return s, &PartialSampleError{Err: errors.Join(problems...)}
	}
	return s, nil
}
