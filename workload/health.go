package workload

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/profiler"
)

// admissionMetrics are the threshold metrics that block admission when red:
// a host critical on CPU, memory or free disk takes no run, whatever its
// deviations or heartbeat say (a silent host's statistics are stale, and a
// silent worker is not live anyway).
var admissionMetrics = []string{catalog.ThresholdCPU, catalog.ThresholdMemory, catalog.ThresholdDiskFree}

// SettingRoot is the system setting naming a file system's root directory:
// a system's free disk is judged on the disk path that holds it.
const SettingRoot = "root"

// healthView judges hosts from one read of the catalog: every node, every
// latest sample, every threshold and the systems' node attributes. It is
// read once per tick, so that changed thresholds apply at the next tick.
type healthView struct {
	now      time.Time
	nodes    []catalog.Node
	byID     map[string]*catalog.Node
	latest   map[string]catalog.HostLatest
	rows     []catalog.HealthThreshold
	hostAttr map[string]string // system -> its SystemNodeAttribute
}

// loadHealth reads what judging hosts needs: four catalog reads, whatever
// the number of nodes and systems.
func (m *Manager) loadHealth(ctx context.Context) (*healthView, error) {
	nodes, err := m.store.ListNodes(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	latest, err := m.store.ListLatestSamples(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list latest samples: %w", err)
	}
	rows, err := m.store.ListThresholds(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list thresholds: %w", err)
	}
	attrs, err := m.store.ListSystemAttributeValues(ctx, catalog.SystemNodeAttribute)
	if err != nil {
		return nil, fmt.Errorf("list system hosts: %w", err)
	}
	return newHealthView(m.store.Now(), nodes, latest, rows, attrs), nil
}

func newHealthView(now time.Time, nodes []catalog.Node, latest []catalog.HostLatest, rows []catalog.HealthThreshold, attrs map[string]string) *healthView {
	h := &healthView{now: now, nodes: nodes, byID: make(map[string]*catalog.Node, len(nodes)),
		latest: make(map[string]catalog.HostLatest, len(latest)), rows: rows, hostAttr: attrs}
	for i := range nodes {
		h.byID[nodes[i].ID] = &nodes[i]
	}
	for _, l := range latest {
		h.latest[l.NodeID] = l
	}
	return h
}

// thresholds resolves the levels of the first of scopes that sets each
// metric, else the catalog's default scope, else the built-in defaults.
func (h *healthView) thresholds(scopes ...string) profiler.Thresholds {
	return profiler.ThresholdsDefault.Override(catalog.ResolveThresholdRows(h.rows, scopes...))
}

// freshSample returns a node's latest sample when it is recent enough to
// judge by (no older than the critical heartbeat age of th).
func (h *healthView) freshSample(node string, th profiler.Thresholds) (profiler.Sample, bool) {
	l, ok := h.latest[node]
	if !ok {
		return profiler.Sample{}, false
	}
	s := profiler.SampleFromLatest(l)
	if limit := th.HeartbeatCrit; limit > 0 && h.now.Sub(s.At) > limit {
		return s, false
	}
	return s, true
}

// worker fills a live worker's CPU and, when its host is red, why.
func (h *healthView) worker(w WorkerLoad) WorkerLoad {
	th := h.thresholds(catalog.NodeScope(w.ID))
	s, ok := h.freshSample(w.ID, th)
	if !ok {
		return w // no statistics to judge by: not held for them
	}
	w.CPU = s.CPUPct
	w.Red = redText(profiler.Evaluate(s, 0, th, h.now))
	return w
}

// system returns the host of sys and, when that host is red for sys (by the
// system's thresholds, then its node's, then the defaults; free disk judged
// on the disk that holds the system's root), why.
func (h *healthView) system(sys *catalog.System) SystemHost {
	host := catalog.SystemHostNode(sys, h.hostAttr[sys.Name], h.nodes)
	if host == "" {
		return SystemHost{}
	}
	th := h.thresholds(catalog.SystemScope(sys.Name), catalog.NodeScope(host))
	s, ok := h.freshSample(host, th)
	if !ok {
		return SystemHost{Host: host}
	}
	s.Disks = rootDisks(s.Disks, sys.Settings.V[SettingRoot])
	return SystemHost{Host: host, Red: redText(profiler.Evaluate(s, 0, th, h.now))}
}

// redText joins the critical findings about the admission metrics ("cpu 97%
// > 95% critical; free disk on /data 3% < 5% critical"); "" when none.
func redText(hl profiler.Health) string {
	var parts []string
	for _, r := range hl.Only(admissionMetrics...).Reasons {
		if r.Level == profiler.Red {
			parts = append(parts, r.String())
		}
	}
	return strings.Join(parts, "; ")
}

// rootDisks keeps, of a host's disk paths, the one that holds root (the
// longest path that contains it); all of them when root is empty or none
// holds it.
func rootDisks(disks []profiler.Disk, root string) []profiler.Disk {
	if root == "" {
		return disks
	}
	root = path.Clean(root)
	best := -1
	for i, d := range disks {
		p := path.Clean(d.Path)
		if p == root || p == "/" || strings.HasPrefix(root, p+"/") {
			if best < 0 || len(p) > len(path.Clean(disks[best].Path)) {
				best = i
			}
		}
	}
	if best < 0 {
		return disks
	}
	return disks[best : best+1]
}
