package client

import (
	"context"
	"fmt"
	"time"
)

// Cluster is the answer of GET /api/v1/cluster: the regions of the
// federation and their nodes, as the server asked sees them. Nodes of the
// server's own region come from its catalog merged with gossip; nodes of
// other regions from gossip alone.
type Cluster struct {
	// Region and Node are the answering server's.
	Region string `json:"region"`
	Node   string `json:"node"`
	// AuthoritativeRegion manages users, tokens and entitlements; empty
	// when every region manages its own.
	AuthoritativeRegion string `json:"authoritative_region,omitempty"`
	// Federation is true when the server forwards requests to other regions.
	Federation bool `json:"federation"`
	// Gossip is true when the server is in a gossip pool.
	Gossip      bool            `json:"gossip"`
	Regions     []ClusterRegion `json:"regions"`
	Nodes       []ClusterNode   `json:"nodes"`
	GeneratedAt time.Time       `json:"generated_at"`
}

// ClusterRegion is one region of the federation.
type ClusterRegion struct {
	Name string `json:"name"`
	// Code is the three digits the region's run_ids carry.
	Code          string `json:"code"`
	Local         bool   `json:"local"`
	Authoritative bool   `json:"authoritative"`
	ServersAlive  int    `json:"servers_alive"`
	NodesAlive    int    `json:"nodes_alive"`
	// Reachable is true for the server's own region, and for a region with
	// a server alive to forward to.
	Reachable bool `json:"reachable"`
	// Replication is what the server's region pulls from this one.
	Replication []ClusterReplication `json:"replication,omitempty"`
}

// ClusterReplication is the state of one stream ("identity" or
// "directory") pulled from a region.
type ClusterReplication struct {
	Stream        string     `json:"stream"`
	LastSuccessAt *time.Time `json:"last_success_at,omitempty"`
	// LagSeconds is the time since the last success; nil when it never succeeded.
	LagSeconds    *float64  `json:"lag_seconds,omitempty"`
	LastAttemptAt time.Time `json:"last_attempt_at"`
	LastError     string    `json:"last_error,omitempty"`
	Rows          int       `json:"rows"`
}

// ClusterNode is one node of the federation.
type ClusterNode struct {
	ID      string   `json:"id"`
	Region  string   `json:"region"`
	Roles   []string `json:"roles"`
	State   string   `json:"state"`
	Leaving bool     `json:"leaving,omitempty"`
	// GossipState is what gossip says, when the node is in the pool.
	GossipState string `json:"gossip_state,omitempty"`
	// Health is the node's health, for nodes of the answering server's region.
	Health    *ClusterHealth `json:"health,omitempty"`
	Address   string         `json:"address,omitempty"`
	Version   string         `json:"version,omitempty"`
	Slots     int            `json:"slots"`
	StartedAt time.Time      `json:"started_at,omitzero"`
	LastSeen  time.Time      `json:"last_seen"`
	// Source is "catalog", "gossip" or "catalog+gossip".
	Source string `json:"source"`
}

// ClusterHealth is a node's health: "green", "yellow" or "red", and why.
type ClusterHealth struct {
	Color   string `json:"color"`
	Reasons []struct {
		Metric string `json:"metric"`
		Level  string `json:"level"`
		Text   string `json:"text"`
	} `json:"reasons,omitempty"`
}

// Cluster returns the federation's regions and nodes (GET /api/v1/cluster).
func (c *Client) Cluster(ctx context.Context) (*Cluster, error) {
	var out Cluster
	if err := c.get(ctx, "/api/v1/cluster", nil, &out); err != nil {
		return nil, fmt.Errorf("get cluster: %w", err)
	}
	return &out, nil
}
