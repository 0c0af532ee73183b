package catalog

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"
)

// SettingRoot is the system setting naming a file system's root directory:
// a system's free disk is judged on the disk path that holds it.
const SettingRoot = "root"

// HealthSource is what LoadHealthView reads; *Store has it.
type HealthSource interface {
	ListNodes(ctx context.Context, region string) ([]Node, error)
	ListLatestSamples(ctx context.Context, region string) ([]HostLatest, error)
	ListThresholds(ctx context.Context, scope string) ([]HealthThreshold, error)
	ListSystemAttributeValues(ctx context.Context, key string) (map[string]string, error)
}

// HealthView is what judging hosts needs, read once: every node, every
// latest sample, every threshold and the systems' host attributes. The
// workload manager reads one per tick and the broker one per health
// request, so that changed thresholds apply at once.
type HealthView struct {
	// Now is the time the view judges at.
	Now time.Time
	// Nodes are every registered node; ByID indexes them.
	Nodes []Node
	ByID  map[string]*Node
	// Rows are every threshold the catalog sets.
	Rows     []HealthThreshold
	latest   map[string]HostLatest
	hostAttr map[string]string // system -> its SystemNodeAttribute
}

// LoadHealthView reads a HealthView from src: four reads, whatever the
// number of nodes and systems.
func LoadHealthView(ctx context.Context, src HealthSource, now time.Time) (*HealthView, error) {
	nodes, err := src.ListNodes(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	latest, err := src.ListLatestSamples(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list latest samples: %w", err)
	}
	rows, err := src.ListThresholds(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list thresholds: %w", err)
	}
	attrs, err := src.ListSystemAttributeValues(ctx, SystemNodeAttribute)
	if err != nil {
		return nil, fmt.Errorf("list system hosts: %w", err)
	}
	return NewHealthView(now, nodes, latest, rows, attrs), nil
}

// NewHealthView builds a HealthView from what LoadHealthView reads.
func NewHealthView(now time.Time, nodes []Node, latest []HostLatest, rows []HealthThreshold, attrs map[string]string) *HealthView {
	h := &HealthView{Now: now, Nodes: nodes, ByID: make(map[string]*Node, len(nodes)),
		latest: make(map[string]HostLatest, len(latest)), Rows: rows, hostAttr: attrs}
	for i := range nodes {
		h.ByID[nodes[i].ID] = &nodes[i]
	}
	for _, l := range latest {
		h.latest[l.NodeID] = l
	}
	return h
}

// Thresholds resolves the levels of the first of scopes that sets each
// metric, else the catalog's default scope, else ThresholdsDefault.
func (h *HealthView) Thresholds(scopes ...string) Thresholds {
	return ThresholdsDefault.Override(ResolveThresholdRows(h.Rows, scopes...))
}

// Sample returns a node's latest sample; false when it never sent one.
func (h *HealthView) Sample(node string) (Sample, bool) {
	l, ok := h.latest[node]
	if !ok {
		return Sample{}, false
	}
	return SampleFromLatest(l), true
}

// Stale says whether a sample is too old to judge by: older than the
// critical heartbeat age of th.
func (h *HealthView) Stale(s Sample, th Thresholds) bool {
	return th.HeartbeatCrit > 0 && h.Now.Sub(s.At) > th.HeartbeatCrit
}

// SystemHost returns the node running on the host of sys, "" when unknown.
func (h *HealthView) SystemHost(sys *System) string {
	return SystemHostNode(sys, h.hostAttr[sys.Name], h.Nodes)
}

// SystemThresholds are the levels a system is judged by: the system's, then
// its host node's, then the defaults.
func (h *HealthView) SystemThresholds(sys *System, host string) Thresholds {
	return h.Thresholds(SystemScope(sys.Name), NodeScope(host))
}

// RootDisks keeps, of a host's disk paths, the one that holds root (the
// longest path that contains it); all of them when root is empty or none
// holds it. A system's free disk is judged on it.
func RootDisks(disks []Disk, root string) []Disk {
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
