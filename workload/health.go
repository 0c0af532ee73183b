package workload

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/weirdata/weir/catalog"
)

// admissionMetrics are the threshold metrics that block admission when red:
// a host critical on CPU, memory or free disk takes no run, whatever its
// deviations or heartbeat say (a silent host's statistics are stale, and a
// silent worker is not live anyway).
var admissionMetrics = []string{catalog.ThresholdCPU, catalog.ThresholdMemory, catalog.ThresholdDiskFree}

// healthView judges hosts for admission from one catalog.HealthView, read
// once per tick, so that changed thresholds apply at the next tick.
type healthView struct {
	*catalog.HealthView
}

// loadHealth reads what judging hosts needs: four catalog reads, whatever
// the number of nodes and systems.
func (m *Manager) loadHealth(ctx context.Context) (*healthView, error) {
	hv, err := catalog.LoadHealthView(ctx, m.store, m.store.Now())
	if err != nil {
		return nil, fmt.Errorf("judge hosts: %w", err)
	}
	return &healthView{hv}, nil
}

func newHealthView(now time.Time, nodes []catalog.Node, latest []catalog.HostLatest, rows []catalog.HealthThreshold, attrs map[string]string) *healthView {
	return &healthView{catalog.NewHealthView(now, nodes, latest, rows, attrs)}
}

// freshSample returns a node's latest sample when it is recent enough to
// judge by (no older than the critical heartbeat age of th).
func (h *healthView) freshSample(node string, th catalog.Thresholds) (catalog.Sample, bool) {
	s, ok := h.Sample(node)
	return s, ok && !h.Stale(s, th)
}

// worker fills a live worker's CPU and, when its host is red, why.
func (h *healthView) worker(w WorkerLoad) WorkerLoad {
	th := h.Thresholds(catalog.NodeScope(w.ID))
	s, ok := h.freshSample(w.ID, th)
	if !ok {
		return w // no statistics to judge by: not held for them
	}
	w.CPU = s.CPUPct
	w.Red = redText(catalog.Evaluate(s, 0, th, h.Now))
	return w
}

// system returns the host of sys and, when that host is red for sys (by the
// system's thresholds, then its node's, then the defaults; free disk judged
// on the disk that holds the system's root), why.
func (h *healthView) system(sys *catalog.System) SystemHost {
	host := h.SystemHost(sys)
	if host == "" {
		return SystemHost{}
	}
	th := h.SystemThresholds(sys, host)
	s, ok := h.freshSample(host, th)
	if !ok {
		return SystemHost{Host: host}
	}
	s.Disks = catalog.RootDisks(s.Disks, sys.Settings.V[catalog.SettingRoot])
	return SystemHost{Host: host, Red: redText(catalog.Evaluate(s, 0, th, h.Now))}
}

// redText joins the critical findings about the admission metrics ("cpu 97%
// > 95% critical; free disk on /data 3% < 5% critical"); "" when none.
func redText(hl catalog.Health) string {
	var parts []string
	for _, r := range hl.Only(admissionMetrics...).Reasons {
		if r.Level == catalog.Red {
			parts = append(parts, r.String())
		}
	}
	return strings.Join(parts, "; ")
}
