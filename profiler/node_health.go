package profiler

import (
	"context"
	"fmt"
	"time"

	"github.com/weirdata/weir/catalog"
)

// HealthStore is what NodeHealths needs of the catalog; *catalog.Store has it.
type HealthStore interface {
	ListLatestSamples(ctx context.Context, region string) ([]catalog.HostLatest, error)
	ListThresholds(ctx context.Context, scope string) ([]catalog.HealthThreshold, error)
}

// NodeHealth is a node's latest sample and the health it gives.
type NodeHealth struct {
	NodeID string `json:"node_id"`
	Region string `json:"region"`
	// Sample is the node's latest sample, with its deviations.
	Sample catalog.Sample `json:"sample"`
	// Thresholds are the levels the node was judged by.
	Thresholds catalog.Thresholds `json:"-"`
	Health     catalog.Health     `json:"health"`
}

// NodeHealths judges every node of a region ("" for all) that has a latest
// sample: each by its own thresholds (node scope, then the default scope,
// then base, usually catalog.ThresholdsDefault), its heartbeat age counted from its
// latest sample to now. Two catalog reads, whatever the number of nodes.
func NodeHealths(ctx context.Context, st HealthStore, region string, base catalog.Thresholds, now time.Time) ([]NodeHealth, error) {
	latest, err := st.ListLatestSamples(ctx, region)
	if err != nil {
		return nil, fmt.Errorf("judge node health: %w", err)
	}
	rows, err := st.ListThresholds(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("judge node health: %w", err)
	}
	out := make([]NodeHealth, 0, len(latest))
	for _, l := range latest {
		s := catalog.SampleFromLatest(l)
		th := base.Override(catalog.ResolveThresholdRows(rows, catalog.NodeScope(l.NodeID)))
		out = append(out, NodeHealth{NodeID: l.NodeID, Region: l.Region, Sample: s, Thresholds: th,
			Health: catalog.Evaluate(s, max(now.Sub(s.At), 0), th, now)})
	}
	return out, nil
}
