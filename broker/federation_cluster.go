package broker

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// ClusterView is the answer of GET /api/v1/cluster: the regions of the
// federation and their nodes, as this server sees them. Nodes of this
// region come from its catalog (the truth: heartbeats and leases) merged
// with what gossip says; nodes of other regions come from gossip alone.
type ClusterView struct {
	Region string `json:"region"`
	Node   string `json:"node"`
	// AuthoritativeRegion manages users, tokens and entitlements ("" when
	// every region manages its own).
	AuthoritativeRegion string `json:"authoritative_region,omitempty"`
	// Federation is true when this server forwards to other regions.
	Federation bool `json:"federation"`
	// Gossip is true when this server is in a gossip pool.
	Gossip      bool          `json:"gossip"`
	Regions     []RegionView  `json:"regions"`
	Nodes       []ClusterNode `json:"nodes"`
	GeneratedAt time.Time     `json:"generated_at"`
}

// RegionView is one region of the federation.
type RegionView struct {
	Name          string `json:"name"`
	Code          string `json:"code"` // the 3 digits its run_ids carry
	Local         bool   `json:"local"`
	Authoritative bool   `json:"authoritative"`
	// ServersAlive and NodesAlive count its alive members (gossip; for
	// this region without gossip, the catalog).
	ServersAlive int `json:"servers_alive"`
	NodesAlive   int `json:"nodes_alive"`
	// Reachable: this region, or one with a server alive to forward to.
	Reachable bool `json:"reachable"`
	// Replication is what this region pulls from that one.
	Replication []ReplicationView `json:"replication,omitempty"`
}

// ReplicationView is the state of one stream pulled from a region.
type ReplicationView struct {
	Stream        string     `json:"stream"`
	LastSuccessAt *time.Time `json:"last_success_at,omitempty"`
	// LagSeconds is the time since the last success; absent when it never succeeded.
	LagSeconds    *float64  `json:"lag_seconds,omitempty"`
	LastAttemptAt time.Time `json:"last_attempt_at"`
	LastError     string    `json:"last_error,omitempty"`
	Rows          int       `json:"rows"`
}

// ClusterNode is one node of the cluster view.
type ClusterNode struct {
	ID      string   `json:"id"`
	Region  string   `json:"region"`
	Roles   []string `json:"roles"`
	State   string   `json:"state"`
	Leaving bool     `json:"leaving,omitempty"`
	// GossipState is the state gossip reports, when the node is in the pool.
	GossipState string `json:"gossip_state,omitempty"`
	// Health is the node's health (this region's nodes only).
	Health    *catalog.Health `json:"health,omitempty"`
	Address   string          `json:"address,omitempty"`
	Version   string          `json:"version,omitempty"`
	Slots     int             `json:"slots"`
	StartedAt time.Time       `json:"started_at,omitzero"`
	LastSeen  time.Time       `json:"last_seen"`
	// Source says where the node is known from: "catalog", "gossip" or both.
	Source string `json:"source"`
}

// clusterView handles GET /api/v1/cluster; any authenticated caller may read it.
func (f *Federation) clusterView(c echo.Context) error {
	ctx := c.Request().Context()
	own := f.region()
	h, err := f.s.snapshot(ctx)
	if err != nil {
		return fmt.Errorf("judge node health: %w", err)
	}
	var nodes []*catalog.Node
	for i := range h.Nodes {
		if h.Nodes[i].Region == own {
			nodes = append(nodes, &h.Nodes[i])
		}
	}
	syncs, err := f.store.ListSyncs(ctx)
	if err != nil {
		return err
	}
	peers := f.peers()
	now := f.store.Now()
	v := ClusterView{Region: own, Node: f.s.cfg.NodeID, AuthoritativeRegion: f.cfg.AuthoritativeRegion,
		Federation: f.enabled(), Gossip: f.cfg.Membership != nil, Nodes: []ClusterNode{}, GeneratedAt: now}

	byID := map[string]int{}
	for _, n := range nodes {
		nv := ClusterNode{ID: n.ID, Region: n.Region, Roles: n.Roles.V, State: n.State, Address: n.Address, Version: n.Version,
			Slots: n.Slots, StartedAt: n.StartedAt, LastSeen: n.LastSeen, Source: "catalog"}
		hl := h.node(n)
		nv.Health = &hl
		if nv.Roles == nil {
			nv.Roles = []string{}
		}
		byID[n.ID] = len(v.Nodes)
		v.Nodes = append(v.Nodes, nv)
	}
	regions := map[string]*RegionView{own: {Name: own, Local: true, Reachable: true}}
	region := func(name string) *RegionView {
		if r, ok := regions[name]; ok {
			return r
		}
		r := &RegionView{Name: name}
		regions[name] = r
		return r
	}
	for _, p := range peers {
		r := region(p.Region)
		if p.State == catalog.NodeAlive {
			r.NodesAlive++
			if slices.Contains(p.Roles, catalog.NodeRoleServer) {
				r.ServersAlive++
				if !p.Leaving && p.APIAddr != "" {
					r.Reachable = true
				}
			}
		}
		if i, ok := byID[p.Name]; ok && p.Region == own {
			v.Nodes[i].GossipState, v.Nodes[i].Leaving, v.Nodes[i].Source = p.State, p.Leaving, "catalog+gossip"
			continue
		}
		addr := p.APIAddr
		if addr == "" {
			addr = p.AgentAddr
		}
		roles := p.Roles
		if roles == nil {
			roles = []string{}
		}
		seen := p.Since // when it went; an alive member is seen now
		if p.State == catalog.NodeAlive {
			seen = now
		}
		v.Nodes = append(v.Nodes, ClusterNode{ID: p.Name, Region: p.Region, Roles: roles, State: p.State, GossipState: p.State,
			Leaving: p.Leaving, Address: addr, Version: p.Version, Slots: p.Capacity, StartedAt: p.Started, LastSeen: seen, Source: "gossip"})
	}
	if f.cfg.Membership == nil {
		for _, n := range nodes {
			if n.State == catalog.NodeAlive {
				regions[own].NodesAlive++
				if n.HasRole(catalog.NodeRoleServer) {
					regions[own].ServersAlive++
				}
			}
		}
	}
	for _, s := range syncs {
		r := region(s.Region)
		rv := ReplicationView{Stream: s.Stream, LastSuccessAt: s.LastSuccessAt, LastAttemptAt: s.LastAttemptAt,
			LastError: s.LastError, Rows: s.Rows}
		if lag, ok := s.Lag(now); ok {
			secs := lag.Round(time.Millisecond).Seconds()
			rv.LagSeconds = &secs
		}
		r.Replication = append(r.Replication, rv)
	}
	for _, r := range regions {
		r.Code = fmt.Sprintf("%03d", catalog.RegionCode(r.Name))
		r.Authoritative = r.Name == f.cfg.AuthoritativeRegion || (f.cfg.AuthoritativeRegion == "" && r.Local)
		v.Regions = append(v.Regions, *r)
	}
	slices.SortFunc(v.Regions, func(a, b RegionView) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(v.Nodes, func(a, b ClusterNode) int {
		return cmp.Or(cmp.Compare(a.Region, b.Region), cmp.Compare(a.ID, b.ID))
	})
	return c.JSON(http.StatusOK, v)
}
