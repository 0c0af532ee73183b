// Package cluster is Weir's gossip membership: which nodes are alive, in
// which region, with which roles, addresses, version and capacity. It runs
// one node of a hashicorp/memberlist pool; servers, workers and agents each
// run one, and the broker (forwarding to another region's servers), the
// workload manager (dead workers) and the dashboard read it. Membership is a
// hint that speeds things up: the catalog stays the truth (a run's lease,
// not gossip, decides who owns it).
//
// A node's metadata (region, roles, API and agent addresses, version,
// capacity) travels in memberlist's node metadata, encoded compactly and
// always under memberlist's 512-byte limit (see MaxRegionLen and the other
// limits). With a GossipKey, all gossip is encrypted and authenticated, and
// a node without the key cannot join.
//
// States and events: memberlist tells alive members from dead ones; a node
// that leaves with Leave is reported "left" (memberlist v0.7.0 hides that
// distinction from its callbacks, so Leave announces itself first; see
// Leave), and memberlist does not expose "suspect" at all (see State). The states are the catalog's node states:
// alive → catalog.NodeAlive, dead → catalog.NodeDead, left → catalog.NodeLeft
// (State.CatalogState, Member.CatalogNode).
//
// cluster imports only the standard library, memberlist and catalog (for
// the node roles, states and validation errors).
package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrJoinFailed is wrapped by WaitJoined's and Run's error when
// JoinRetry.Max attempts to join failed.
var ErrJoinFailed = errors.New("could not join the gossip pool")

// ErrNotRunning is returned by Leave and WaitJoined when the node is not
// started, or already left or shut down.
var ErrNotRunning = errors.New("cluster node is not running")

type phase int

const (
	phaseNew phase = iota
	phaseRunning
	phaseLeft
	phaseShutdown
)

// Cluster is this process's node in the gossip pool.
type Cluster struct {
	cfg     Config
	log     *slog.Logger
	started int64  // Unix nanoseconds, in the metadata and leave notices
	metaBuf []byte // encoded metadata, returned to memberlist
	events  *eventQueue
	queue   *memberlist.TransmitLimitedQueue // leave notices to gossip

	life  sync.Mutex // serializes Start, Leave and Shutdown
	phase phase
	ml    *memberlist.Memberlist

	mu      sync.Mutex // guards members and leaving; never held while calling memberlist
	members map[string]*record
	leaving bool

	joined     chan struct{} // closed once the node knows another live member (or has no seeds)
	joinFailed chan struct{} // closed when JoinRetry.Max attempts failed; joinErr says why
	joinErr    error
	joinDone   chan struct{} // closed when the join loop returns
	stop       chan struct{} // closed by Leave or Shutdown: stops the join loop
	stopOnce   sync.Once
	wg         sync.WaitGroup
}

// record is one member as seen here.
type record struct {
	m       Member
	node    memberlist.Node // a copy, for sending leave notices
	started int64
}

// New checks cfg (after WithDefaults) and returns a node ready to Start.
// Invalid settings get a *catalog.ValidationError naming the field.
func New(cfg Config) (*Cluster, error) {
	cfg = cfg.WithDefaults()
	cfg.Roles = slices.Clone(cfg.Roles)
	cfg.Join = slices.Clone(cfg.Join)
	cfg.GossipKey = slices.Clone(cfg.GossipKey)
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("configure cluster: %w", err)
	}
	c := &Cluster{
		cfg:        cfg,
		log:        cfg.Logger.With(slog.String("node", cfg.NodeName)),
		started:    time.Now().UnixNano(),
		events:     newEventQueue(cfg.EventBuffer),
		members:    map[string]*record{},
		joined:     make(chan struct{}),
		joinFailed: make(chan struct{}),
		joinDone:   make(chan struct{}),
		stop:       make(chan struct{}),
	}
	md := cfg.meta()
	md.Started = c.started
	c.metaBuf = md.encode()
	c.queue = &memberlist.TransmitLimitedQueue{NumNodes: c.numAlive, RetransmitMult: cfg.timings().RetransmitMult}
	registerMetrics(cfg.Metrics, c)
	return c, nil
}

// Start binds the gossip ports, announces this node and returns; it then
// joins the seeds in Config.Join in the background, retrying per
// Config.JoinRetry until it joins, ctx ends, or Leave or Shutdown is called.
// The node keeps running after ctx ends, until Shutdown. Start may be called
// once.
func (c *Cluster) Start(ctx context.Context) error {
	c.life.Lock()
	defer c.life.Unlock()
	if c.phase != phaseNew {
		return fmt.Errorf("start cluster: already started or shut down")
	}
	mc, err := c.cfg.memberlistConfig()
	if err != nil {
		return fmt.Errorf("start cluster: %w", err)
	}
	d := delegate{c}
	mc.Delegate = d
	mc.Events = d
	mc.Logger = newMemberlistLogger(c.log)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("start cluster on %s: %w", c.cfg.bindAddr(), err)
	}
	c.ml = ml
	c.phase = phaseRunning
	c.log.Info("gossip started", slog.Any("config", c.cfg), slog.String("addr", c.LocalMember().Addr))
	c.wg.Add(1)
	go c.joinLoop(ctx)
	return nil
}

// Run starts the node and, when ctx ends, leaves gracefully (within
// Config.LeaveTimeout) and shuts down. It returns nil then, or an error if
// the node cannot start or, with JoinRetry.Max set, cannot join. Use either
// Run or Start, Leave and Shutdown.
func (c *Cluster) Run(ctx context.Context) error {
	if err := c.Start(ctx); err != nil {
		return err
	}
	var err error
	select {
	case <-ctx.Done():
	case <-c.joinFailed:
		err = c.joinErr
	}
	if lerr := c.Leave(c.cfg.LeaveTimeout); lerr != nil {
		c.log.Warn("leave was not confirmed; others will see this node dead", slog.Any("error", lerr))
	}
	_ = c.Shutdown()
	return err
}

func (c *Cluster) joinLoop(ctx context.Context) {
	defer c.wg.Done()
	defer close(c.joinDone)
	if len(c.cfg.Join) == 0 {
		close(c.joined)
		return
	}
	for attempt := 1; ; attempt++ {
		if c.knowsOthers() { // someone joined us meanwhile
			close(c.joined)
			return
		}
		n, err := c.ml.Join(c.cfg.Join)
		if err == nil && c.knowsOthers() {
			c.log.Info("joined the gossip pool", slog.Int("contacted", n), slog.Int("attempt", attempt))
			close(c.joined)
			return
		}
		select {
		case <-c.stop:
			return
		default:
		}
		if err == nil {
			err = errors.New("the seeds reached are only this node")
		}
		if max := c.cfg.JoinRetry.Max; max > 0 && attempt >= max {
			c.joinErr = fmt.Errorf("join %v: %w after %d attempts: %w", c.cfg.Join, ErrJoinFailed, attempt, err)
			c.log.Error("giving up joining the gossip pool", slog.Any("error", c.joinErr))
			close(c.joinFailed)
			return
		}
		level := slog.LevelDebug // a seed that is not up yet is normal at start: warn now and then
		if attempt == 1 || attempt%10 == 0 {
			level = slog.LevelWarn
		}
		c.log.Log(ctx, level, "join failed; retrying", slog.Any("seeds", c.cfg.Join), slog.Int("attempt", attempt),
			slog.Duration("retry_in", c.cfg.JoinRetry.Interval), slog.Any("error", err))
		t := time.NewTimer(c.cfg.JoinRetry.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-c.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// WaitJoined blocks until the node has joined the pool (it knows another
// live member, or it has no seeds), and returns nil; or until JoinRetry.Max
// attempts failed (an error wrapping ErrJoinFailed), ctx ends, or the node
// stops (ErrNotRunning).
func (c *Cluster) WaitJoined(ctx context.Context) error {
	select {
	case <-c.joined:
		return nil
	default:
	}
	select {
	case <-c.joined:
		return nil
	case <-c.joinFailed:
		return c.joinErr
	case <-c.stop:
		return ErrNotRunning
	case <-ctx.Done():
		return fmt.Errorf("wait for join: %w", ctx.Err())
	}
}

// Leave announces that this node is going, so that the others report it
// "left" rather than "dead", and waits up to timeout (LeaveTimeoutDefault
// when not positive) for the announcement to spread. It sends a leave
// notice of its own first (to every live member directly, and by gossip),
// then memberlist's leave; a member that missed the notice reports this
// node dead, and turns it left if the notice arrives later. The node keeps
// answering gossip until Shutdown; it cannot rejoin. Calling Leave again
// does nothing.
func (c *Cluster) Leave(timeout time.Duration) error {
	c.life.Lock()
	defer c.life.Unlock()
	switch c.phase {
	case phaseLeft:
		return nil
	case phaseNew, phaseShutdown:
		return fmt.Errorf("leave cluster: %w", ErrNotRunning)
	}
	if timeout <= 0 {
		timeout = LeaveTimeoutDefault
	}
	deadline := time.Now().Add(timeout)
	c.stopOnce.Do(func() { close(c.stop) })
	// Let a join in flight finish, so that the nodes it reaches hear of
	// the leave too.
	joinWait := time.NewTimer(timeout / 4)
	select {
	case <-c.joinDone:
	case <-joinWait.C:
	}
	joinWait.Stop()
	li := leaveIntent{Name: c.cfg.NodeName, Started: c.started}

	c.mu.Lock()
	c.leaving = true
	var peers []memberlist.Node
	for name, r := range c.members {
		if name != c.cfg.NodeName && r.m.State == StateAlive {
			peers = append(peers, r.node)
		}
	}
	c.mu.Unlock()

	c.log.Info("leaving the gossip pool", slog.Int("peers", len(peers)))
	if len(peers) > 0 {
		// The notice goes straight to every live member first, then by
		// gossip; memberlist's own leave (a dead message from the node
		// itself) follows once the gossip is done or half the time is up.
		b := newIntentBroadcast(li)
		c.queue.QueueBroadcast(b)
		msg := li.encode()
		for i := range peers {
			if err := c.ml.SendBestEffort(&peers[i], msg); err != nil {
				c.log.Debug("send leave notice", slog.String("to", peers[i].Name), slog.Any("error", err))
			}
		}
		wait := time.NewTimer(timeout / 2)
		select {
		case <-b.done:
		case <-wait.C:
		}
		wait.Stop()
	}
	err := c.ml.Leave(max(time.Until(deadline), time.Millisecond))
	c.phase = phaseLeft
	if err != nil {
		return fmt.Errorf("leave cluster: %w", err)
	}
	return nil
}

// Shutdown stops gossiping and waits for the goroutines the node started;
// without a Leave before, the others will see this node dead. It closes the
// Events channel. Calling it again does nothing.
func (c *Cluster) Shutdown() error {
	c.life.Lock()
	defer c.life.Unlock()
	if c.phase == phaseShutdown {
		return nil
	}
	c.stopOnce.Do(func() { close(c.stop) })
	var err error
	if c.ml != nil {
		err = c.ml.Shutdown()
	}
	c.wg.Wait()
	c.phase = phaseShutdown
	c.events.close()
	if err != nil {
		return fmt.Errorf("shut down cluster: %w", err)
	}
	return nil
}

// Events returns the membership changes, this node's own included, in the
// order they happened. The channel holds up to Config.EventBuffer events;
// when the reader falls behind, the oldest are dropped (counted by
// DroppedEvents) so that gossip never waits: a reader that must not miss a
// state reconciles with Members. One reader; the channel is closed by
// Shutdown.
func (c *Cluster) Events() <-chan Event { return c.events.ch }

// DroppedEvents returns how many events were dropped because the Events
// channel was full.
func (c *Cluster) DroppedEvents() uint64 { return c.events.dropped.Load() }

// Members returns every member this node knows, itself included, sorted by
// name: alive ones, and dead or left ones for Config.Retain after they went.
func (c *Cluster) Members() []Member {
	now := time.Now().UTC()
	c.mu.Lock()
	out := make([]Member, 0, len(c.members))
	for name, r := range c.members {
		if r.m.State != StateAlive && name != c.cfg.NodeName && now.Sub(r.m.Since) > c.cfg.Retain {
			delete(c.members, name)
			continue
		}
		out = append(out, r.m.clone())
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// LocalMember returns this node as the pool sees it. Before Start, State and
// Addr are empty.
func (c *Cluster) LocalMember() Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.members[c.cfg.NodeName]; r != nil {
		return r.m.clone()
	}
	return Member{Name: c.cfg.NodeName, Region: c.cfg.Region, Roles: slices.Clone(c.cfg.Roles),
		APIAddr: c.cfg.APIAddr, AgentAddr: c.cfg.AgentAddr, Version: c.cfg.Version,
		Capacity: c.cfg.Capacity, Started: startedTime(c.started)}
}

// ServersIn returns the alive members of region with the server role that
// have not announced a leave, sorted by name: where to forward a request
// for that region. Empty means no server of the region is reachable.
func (c *Cluster) ServersIn(region string) []Member {
	var out []Member
	for _, m := range c.Members() {
		if m.State == StateAlive && !m.Leaving && m.Region == region && m.HasRole(RoleServer) {
			out = append(out, m)
		}
	}
	return out
}

// Regions returns the regions with at least one alive member, sorted.
func (c *Cluster) Regions() []string {
	var out []string
	for _, m := range c.Members() {
		if m.State == StateAlive && !slices.Contains(out, m.Region) {
			out = append(out, m.Region)
		}
	}
	slices.Sort(out)
	return out
}

func (c *Cluster) knowsOthers() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, r := range c.members {
		if name != c.cfg.NodeName && r.m.State == StateAlive {
			return true
		}
	}
	return false
}

// numAlive counts alive members, for the gossip queue's retransmit limit.
func (c *Cluster) numAlive() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.members {
		if r.m.State == StateAlive {
			n++
		}
	}
	return n
}

// nodeAlive records a member memberlist reports alive (joined or updated).
// It runs under memberlist's node lock: it must not call memberlist.
func (c *Cluster) nodeAlive(n *memberlist.Node) {
	md, err := decodeMeta(n.Meta)
	if err != nil {
		c.log.Warn("ignoring a gossip node with unreadable metadata (not Weir, or a newer incompatible Weir)",
			slog.String("member", n.Name), slog.String("addr", n.Address()), slog.Any("error", err))
		return
	}
	now := time.Now().UTC()
	node := *n
	node.Addr = slices.Clone(n.Addr)
	node.Meta = slices.Clone(n.Meta)
	r := &record{node: node, started: md.Started, m: Member{
		Name: n.Name, Region: md.Region, Roles: md.Roles, APIAddr: md.APIAddr, AgentAddr: md.AgentAddr,
		Version: md.Version, Capacity: md.Capacity, Started: startedTime(md.Started),
		State: StateAlive, Since: now, Addr: n.Address(),
	}}
	c.mu.Lock()
	defer c.mu.Unlock()
	typ := EventJoin
	if old := c.members[n.Name]; old != nil && old.m.State == StateAlive && old.started == md.Started {
		typ = EventUpdate
		r.m.Leaving = old.m.Leaving
	}
	c.members[n.Name] = r
	c.events.push(Event{Type: typ, Member: r.m.clone(), At: now})
}

// nodeGone records a member memberlist dropped: left if it announced its
// leave, dead otherwise. It runs under memberlist's node lock.
func (c *Cluster) nodeGone(n *memberlist.Node) {
	now := time.Now().UTC()
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.members[n.Name]
	if r == nil || r.m.State != StateAlive {
		return // never seen alive (unreadable metadata), or already gone
	}
	r.m.State = StateDead
	if r.m.Leaving || (n.Name == c.cfg.NodeName && c.leaving) {
		r.m.State = StateLeft
	}
	r.m.Since = now
	typ := EventDead
	if r.m.State == StateLeft {
		typ = EventLeft
	}
	c.events.push(Event{Type: typ, Member: r.m.clone(), At: now})
}

// handleMsg handles a user message from another node.
func (c *Cluster) handleMsg(b []byte) {
	if len(b) == 0 || b[0] != msgLeaveIntent {
		c.log.Debug("ignoring an unknown gossip message", slog.Int("bytes", len(b)))
		return
	}
	li, err := decodeLeaveIntent(b)
	if err != nil {
		c.log.Warn("ignoring a bad leave notice", slog.Any("error", err))
		return
	}
	if c.noteLeave(li) {
		c.queue.QueueBroadcast(newIntentBroadcast(li)) // relay once
	}
}

// noteLeave marks the member li names as leaving; it reports whether that
// was news.
func (c *Cluster) noteLeave(li leaveIntent) bool {
	if li.Name == c.cfg.NodeName {
		return false
	}
	now := time.Now().UTC()
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.members[li.Name]
	if r == nil || r.started != li.Started || r.m.Leaving {
		return false // unknown, another life of the node, or known already
	}
	r.m.Leaving = true
	switch r.m.State {
	case StateAlive:
		r.m.Since = now
		c.events.push(Event{Type: EventUpdate, Member: r.m.clone(), At: now})
	case StateDead: // the notice lost the race with memberlist's dead message
		r.m.State = StateLeft
		c.events.push(Event{Type: EventLeft, Member: r.m.clone(), At: now})
	}
	return true
}

// delegate adapts Cluster to memberlist's Delegate and EventDelegate
// without exporting their methods on Cluster.
type delegate struct{ c *Cluster }

var (
	_ memberlist.Delegate      = delegate{}
	_ memberlist.EventDelegate = delegate{}
)

func (d delegate) NodeMeta(limit int) []byte { return d.c.metaBuf } // validated under the limit by New

func (d delegate) NotifyMsg(b []byte) { d.c.handleMsg(b) }

func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.c.queue.GetBroadcasts(overhead, limit)
}

func (d delegate) LocalState(join bool) []byte { return nil }

func (d delegate) MergeRemoteState(buf []byte, join bool) {}

func (d delegate) NotifyJoin(n *memberlist.Node) { d.c.nodeAlive(n) }

func (d delegate) NotifyUpdate(n *memberlist.Node) { d.c.nodeAlive(n) }

func (d delegate) NotifyLeave(n *memberlist.Node) { d.c.nodeGone(n) }
