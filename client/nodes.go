package client

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// HostSample is a node's latest measurement of its host. Rates are per
// second since the previous sample.
type HostSample struct {
	NodeID       string     `json:"node_id"`
	Region       string     `json:"region"`
	At           time.Time  `json:"at"`
	CPUPct       float64    `json:"cpu_pct"`
	MemUsedPct   float64    `json:"mem_used_pct"`
	MemUsedBytes uint64     `json:"mem_used_bytes"`
	Disks        []HostDisk `json:"disks"`
	DiskReadBps  float64    `json:"disk_read_bps"`
	DiskWriteBps float64    `json:"disk_write_bps"`
	NetRxBps     float64    `json:"net_rx_bps"`
	NetTxBps     float64    `json:"net_tx_bps"`
	Load1        float64    `json:"load1"`
	Load5        float64    `json:"load5"`
	Load15       float64    `json:"load15"`
	Process      struct {
		CPUPct     float64 `json:"cpu_pct"`
		RSSBytes   uint64  `json:"rss_bytes"`
		OpenFiles  int     `json:"open_files"`
		Goroutines int     `json:"goroutines"`
	} `json:"process"`
	// Deviations are, by metric, the standard deviations from the node's
	// baseline for this hour of the week, once the baseline has enough samples.
	Deviations map[string]float64 `json:"deviations,omitempty"`
}

// HostDisk is the space of one disk path a node's profiler reports.
type HostDisk struct {
	Path      string  `json:"path"`
	FreeBytes uint64  `json:"free_bytes"`
	UsedPct   float64 `json:"used_pct"`
}

// NodeDetail is one node: its row and health, its latest host sample (nil
// when it never sent one), the thresholds it is judged by (by metric), the
// services that must run on it and the runs it holds.
type NodeDetail struct {
	Node
	Sample     *HostSample                `json:"sample"`
	Thresholds map[string]ThresholdLevels `json:"thresholds"`
	Services   []Service                  `json:"services"`
	Runs       []Run                      `json:"runs"`
}

// ListNodes returns the nodes of region ("" for every region) with their health.
func (c *Client) ListNodes(ctx context.Context, region string) ([]Node, error) {
	q := url.Values{}
	if region != "" {
		q.Set("region", region)
	}
	var out struct {
		Nodes []Node `json:"nodes"`
	}
	if err := c.get(ctx, "/api/v1/nodes", q, &out); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return out.Nodes, nil
}

// GetNode returns one node by ID.
func (c *Client) GetNode(ctx context.Context, id string) (*NodeDetail, error) {
	if err := checkID("node id", id); err != nil {
		return nil, err
	}
	var out NodeDetail
	if err := c.get(ctx, "/api/v1/nodes/"+esc(id), nil, &out); err != nil {
		return nil, fmt.Errorf("get node %s: %w", id, err)
	}
	return &out, nil
}
