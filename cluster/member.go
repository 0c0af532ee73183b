package cluster

import (
	"slices"
	"time"

	"github.com/weirdata/weir/catalog"
)

// Roles a node announces. Server and worker are the catalog's; an agent runs
// the profiler, monitor and dispatcher on a source or target host.
const (
	RoleServer = catalog.NodeRoleServer
	RoleWorker = catalog.NodeRoleWorker
	RoleAgent  = "agent"
)

// State is a member's state as this node sees it. Its values are the
// catalog's node states, so CatalogState is the identity.
//
// There is no "suspect": memberlist v0.7.0 keeps a node's suspect state in
// an unexported field (the exported Node.State it shadows stays zero, see
// hashicorp/memberlist#293) and calls no delegate when it suspects a node.
// A suspect member therefore stays alive here until memberlist declares it
// dead, ProbeInterval x SuspicionMult x log10(nodes) or so later.
type State string

// Member states.
const (
	StateAlive State = catalog.NodeAlive
	StateDead  State = catalog.NodeDead // failed: stopped answering probes
	StateLeft  State = catalog.NodeLeft // announced its leave, then went
)

// CatalogState returns the catalog node state (catalog.NodeAlive, NodeDead,
// NodeLeft) for s.
func (s State) CatalogState() string { return string(s) }

// Member is one node of the pool, from its gossip metadata.
type Member struct {
	Name      string   `json:"name"`
	Region    string   `json:"region"`
	Roles     []string `json:"roles"`
	APIAddr   string   `json:"api_addr,omitempty"`
	AgentAddr string   `json:"agent_addr,omitempty"`
	Version   string   `json:"version,omitempty"`
	Capacity  int      `json:"capacity"`
	// Started is when the node's process joined the pool (its own clock).
	Started time.Time `json:"started"`
	State   State     `json:"state"`
	// Leaving is true once the node announced a graceful leave; it stays
	// alive until its leave arrives. Do not send it new work.
	Leaving bool `json:"leaving,omitempty"`
	// Since is when this node last saw the member change state or
	// metadata: for a dead or left member, when it went.
	Since time.Time `json:"since"`
	// Addr is the member's gossip address, host:port.
	Addr string `json:"addr"`
}

// HasRole reports whether m announces role.
func (m Member) HasRole(role string) bool { return slices.Contains(m.Roles, role) }

// CatalogNode returns the catalog row for m, for the wiring that keeps the
// catalog's nodes in step with the pool: ID is the member name, Address its
// API address (its agent address when it serves no API), Slots its capacity,
// State m.State.CatalogState() and LastSeen m.Since. Store.UpsertNode stamps
// LastSeen itself; for a dead or left member, Store.SetNodeState(m.Name,
// m.State.CatalogState()) is the write to make.
func (m Member) CatalogNode() catalog.Node {
	addr := m.APIAddr
	if addr == "" {
		addr = m.AgentAddr
	}
	return catalog.Node{
		ID: m.Name, Region: m.Region, Roles: catalog.NewJSON(slices.Clone(m.Roles)), Address: addr,
		Slots: m.Capacity, State: m.State.CatalogState(), Version: m.Version,
		StartedAt: m.Started, LastSeen: m.Since,
	}
}

func (m Member) clone() Member {
	m.Roles = slices.Clone(m.Roles)
	return m
}

// EventType says what happened to a member.
type EventType string

// Event types. A member that is suspected and then refutes produces no
// event (see State).
const (
	// EventJoin: a member became alive: new, back from dead or left, or
	// restarted under the same name before it was found dead (its
	// Started changed): any work it held in its previous life is gone.
	EventJoin EventType = "join"
	// EventUpdate: an alive member changed its metadata or announced
	// that it is leaving (Member.Leaving).
	EventUpdate EventType = "update"
	// EventDead: a member stopped answering and was declared dead.
	EventDead EventType = "dead"
	// EventLeft: a member left gracefully. It may follow EventDead for the
	// same member when its leave notice arrived after the dead message.
	EventLeft EventType = "left"
)

// Event is one membership change, with the member as it is after it.
type Event struct {
	Type   EventType `json:"type"`
	Member Member    `json:"member"`
	At     time.Time `json:"at"`
}
