package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/catalog"
)

// Real pools on loopback: every node binds its own 127.0.0.x address (Linux
// routes all of 127/8 to lo) on a free port, with LAN-ish timings shortened
// so that a dead node is declared within a second or two.

var lastIP atomic.Int32

// loopbackIP returns a fresh 127.0.0.x address.
func loopbackIP() string {
	n := lastIP.Add(1)
	return fmt.Sprintf("127.0.%d.%d", 1+n/250, 1+n%250)
}

// freePort returns a port free for both TCP and UDP on ip.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		_ = l.Close()
		if err == nil {
			_ = u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func testLogger() *slog.Logger {
	if os.Getenv("WEIR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// fastConfig is a node on its own loopback address with test timings.
func fastConfig(name, region string, roles []string, seeds ...string) Config {
	ip := loopbackIP()
	return Config{
		NodeName: name, Region: region, Roles: roles, Version: "test", Capacity: 2,
		APIAddr: "http://" + ip + ":8080", AgentAddr: ip + ":7070",
		BindAddr: ip, BindPort: BindPortAuto, Join: seeds,
		ProbeInterval: 200 * time.Millisecond, ProbeTimeout: 100 * time.Millisecond,
		SuspicionMult: 3, GossipInterval: 50 * time.Millisecond,
		JoinRetry: JoinRetry{Interval: 100 * time.Millisecond}, LeaveTimeout: 2 * time.Second,
		Logger: testLogger(),
	}
}

func startNode(t *testing.T, cfg Config) *Cluster {
	t.Helper()
	c, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Start(t.Context()))
	t.Cleanup(func() { _ = c.Shutdown() })
	return c
}

func addr(c *Cluster) string { return c.LocalMember().Addr }

// startPool starts n nodes of region us-east, the first a server, the rest
// workers joining it, and waits until all see all.
func startPool(t *testing.T, prefix string, n int) []*Cluster {
	t.Helper()
	nodes := []*Cluster{startNode(t, fastConfig(prefix+"0", "us-east", []string{RoleServer}))}
	for i := 1; i < n; i++ {
		nodes = append(nodes, startNode(t, fastConfig(prefix+strconv.Itoa(i), "us-east", []string{RoleWorker}, addr(nodes[0]))))
	}
	for _, c := range nodes {
		require.NoError(t, c.WaitJoined(t.Context()))
	}
	waitFor(t, 5*time.Second, "all nodes see all", func() bool {
		for _, c := range nodes {
			if countState(c, StateAlive) != n {
				return false
			}
		}
		return true
	})
	return nodes
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, within, 20*time.Millisecond, what)
}

func countState(c *Cluster, s State) int {
	n := 0
	for _, m := range c.Members() {
		if m.State == s {
			n++
		}
	}
	return n
}

func stateOf(c *Cluster, name string) State {
	for _, m := range c.Members() {
		if m.Name == name {
			return m.State
		}
	}
	return ""
}

func names(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

// eventsAbout collects c's events about name until stop says enough, or
// within passes.
func eventsAbout(t *testing.T, c *Cluster, name string, within time.Duration, stop func([]Event) bool) []Event {
	t.Helper()
	var out []Event
	deadline := time.After(within)
	for !stop(out) {
		select {
		case e := <-c.Events():
			if e.Member.Name == name {
				out = append(out, e)
			}
		case <-deadline:
			t.Fatalf("events about %s: got %v", name, types(out))
		}
	}
	return out
}

func lastIs(typ EventType) func([]Event) bool {
	return func(es []Event) bool { return len(es) > 0 && es[len(es)-1].Type == typ }
}

func TestPoolMembershipAndMetadata(t *testing.T) {
	t.Parallel()
	s1 := startNode(t, fastConfig("s1", "us-east", []string{RoleServer}))
	wcfg := fastConfig("w1", "us-east", []string{RoleWorker, RoleAgent}, addr(s1))
	wcfg.APIAddr, wcfg.Capacity, wcfg.Version = "", 12, "1.4.0-rc.1+abc"
	w1 := startNode(t, wcfg)
	s2 := startNode(t, fastConfig("s2", "eu-west", []string{RoleServer}, addr(w1)))
	for _, c := range []*Cluster{s1, w1, s2} {
		require.NoError(t, c.WaitJoined(t.Context()))
	}
	waitFor(t, 5*time.Second, "three alive everywhere", func() bool {
		return countState(s1, StateAlive) == 3 && countState(w1, StateAlive) == 3 && countState(s2, StateAlive) == 3
	})

	// w1's metadata as s2 (which joined through w1, not s1) sees it.
	var got Member
	for _, m := range s2.Members() {
		if m.Name == "w1" {
			got = m
		}
	}
	local := w1.LocalMember()
	require.NotEqual(t, local.Since, got.Since, "each node stamps Since itself")
	local.Since = got.Since
	require.Equal(t, local, got)
	require.Equal(t, Member{Name: "w1", Region: "us-east", Roles: []string{RoleWorker, RoleAgent}, AgentAddr: wcfg.AgentAddr,
		Version: "1.4.0-rc.1+abc", Capacity: 12, Started: local.Started, State: StateAlive, Since: got.Since,
		Addr: got.Addr}, got)
	require.Equal(t, wcfg.BindAddr, got.Addr[:len(wcfg.BindAddr)], "advertises its bound address")
	require.WithinDuration(t, time.Now(), got.Started, time.Minute)

	require.Equal(t, []string{"s1"}, names(w1.ServersIn("us-east")))
	require.Equal(t, []string{"s2"}, names(s1.ServersIn("eu-west")))
	require.Empty(t, s1.ServersIn("ap-south"))
	require.Equal(t, []string{"eu-west", "us-east"}, s2.Regions())
	require.Equal(t, []string{"s1", "s2", "w1"}, names(s1.Members()))

	// s1 saw itself, then w1 and s2 join.
	seen := map[string]EventType{}
	deadline := time.After(3 * time.Second)
	for len(seen) < 3 {
		select {
		case e := <-s1.Events():
			seen[e.Member.Name] = e.Type
		case <-deadline:
			t.Fatalf("join events on s1: %v", seen)
		}
	}
	require.Equal(t, map[string]EventType{"s1": EventJoin, "w1": EventJoin, "s2": EventJoin}, seen)
	require.Zero(t, s1.DroppedEvents())
}

func TestJoinRetriesUntilSeedIsUp(t *testing.T) {
	t.Parallel()
	seedCfg := fastConfig("seed", "us-east", []string{RoleServer})
	seedCfg.BindPort = freePort(t, seedCfg.BindAddr)
	seedAddr := net.JoinHostPort(seedCfg.BindAddr, strconv.Itoa(seedCfg.BindPort))

	late := startNode(t, fastConfig("early", "us-east", []string{RoleWorker}, seedAddr))
	ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, late.WaitJoined(ctx), context.DeadlineExceeded, "no seed yet")
	require.Equal(t, []string{"early"}, names(late.Members()))

	seed := startNode(t, seedCfg)
	require.NoError(t, late.WaitJoined(t.Context()))
	waitFor(t, 3*time.Second, "the seed sees the early node", func() bool { return stateOf(seed, "early") == StateAlive })
	require.Equal(t, StateAlive, stateOf(late, "seed"))
}

func TestRunGivesUpAfterMaxJoinAttempts(t *testing.T) {
	t.Parallel()
	ip := loopbackIP()
	cfg := fastConfig("lonely", "us-east", []string{RoleWorker}, net.JoinHostPort(ip, strconv.Itoa(freePort(t, ip))))
	cfg.JoinRetry = JoinRetry{Interval: 50 * time.Millisecond, Max: 3}
	c, err := New(cfg)
	require.NoError(t, err)
	start := time.Now()
	err = c.Run(t.Context())
	require.ErrorIs(t, err, ErrJoinFailed)
	require.ErrorContains(t, err, "after 3 attempts")
	require.Less(t, time.Since(start), 3*time.Second)
	_, ok := <-c.Events()
	for ok { // Run shut the node down: Events ends
		_, ok = <-c.Events()
	}
}

func TestWrongGossipKeyIsRefused(t *testing.T) {
	t.Parallel()
	key := func(b byte) []byte {
		k := make([]byte, 32)
		for i := range k {
			k[i] = b + byte(i)
		}
		return k
	}
	acfg := fastConfig("a", "us-east", []string{RoleServer})
	acfg.GossipKey = key(1)
	a := startNode(t, acfg)
	bcfg := fastConfig("b", "us-east", []string{RoleWorker}, addr(a))
	bcfg.GossipKey = key(1)
	b := startNode(t, bcfg)
	require.NoError(t, b.WaitJoined(t.Context()), "same key joins")

	ccfg := fastConfig("c-wrong-key", "us-east", []string{RoleWorker}, addr(a), addr(b))
	ccfg.GossipKey = key(2)
	ccfg.JoinRetry = JoinRetry{Interval: 100 * time.Millisecond, Max: 3}
	c := startNode(t, ccfg)
	dcfg := fastConfig("d-no-key", "us-east", []string{RoleWorker}, addr(a))
	dcfg.JoinRetry = JoinRetry{Interval: 100 * time.Millisecond, Max: 3}
	d := startNode(t, dcfg)

	require.ErrorIs(t, c.WaitJoined(t.Context()), ErrJoinFailed)
	require.ErrorIs(t, d.WaitJoined(t.Context()), ErrJoinFailed)
	// Give gossip time to spread anything that leaked: several probe and
	// gossip rounds.
	time.Sleep(600 * time.Millisecond)
	require.Equal(t, []string{"a", "b"}, names(a.Members()))
	require.Equal(t, []string{"a", "b"}, names(b.Members()))
	require.Equal(t, []string{"c-wrong-key"}, names(c.Members()))
	require.Equal(t, []string{"d-no-key"}, names(d.Members()))
}

func TestDeadNodeNoticedWithinSeconds(t *testing.T) {
	t.Parallel()
	nodes := startPool(t, "k", 4)
	victim := nodes[3]
	require.Len(t, nodes[0].ServersIn("us-east"), 1)
	drain(nodes[0])

	start := time.Now()
	require.NoError(t, victim.Shutdown()) // no Leave: a crash, as far as the others can tell
	waitFor(t, 5*time.Second, "the others declare k3 dead", func() bool {
		for _, c := range nodes[:3] {
			if stateOf(c, "k3") != StateDead {
				return false
			}
		}
		return true
	})
	t.Logf("k3 declared dead by all in %s", time.Since(start).Round(10*time.Millisecond))

	es := eventsAbout(t, nodes[0], "k3", time.Second, lastIs(EventDead))
	require.Equal(t, []EventType{EventDead}, types(es))
	require.Equal(t, catalog.NodeDead, es[0].Member.CatalogNode().State)
	require.Equal(t, 3, countState(nodes[1], StateAlive))
	require.Equal(t, []string{"k0", "k1", "k2", "k3"}, names(nodes[1].Members()), "the dead stay listed for Retain")
}

func TestGracefulLeaveShowsLeft(t *testing.T) {
	t.Parallel()
	nodes := startPool(t, "g", 3)
	for _, c := range nodes {
		drain(c)
	}
	leaver := nodes[2]
	require.NoError(t, leaver.Leave(2*time.Second))
	require.Equal(t, StateLeft, leaver.LocalMember().State)
	require.NoError(t, leaver.Shutdown())

	for _, c := range nodes[:2] {
		es := eventsAbout(t, c, "g2", 3*time.Second, lastIs(EventLeft))
		require.Equal(t, []EventType{EventUpdate, EventLeft}, types(es), "leaving announced, then left")
		require.True(t, es[0].Member.Leaving)
		require.Equal(t, StateAlive, es[0].Member.State)
		require.Equal(t, catalog.NodeLeft, es[1].Member.CatalogNode().State)
	}
	// Longer than the suspicion timeout: nobody turns the leaver dead.
	time.Sleep(time.Second)
	for _, c := range nodes[:2] {
		require.Equal(t, StateLeft, stateOf(c, "g2"))
		select {
		case e := <-c.Events():
			t.Fatalf("unexpected event after leave: %s %s", e.Type, e.Member.Name)
		default:
		}
	}
}

func TestRunLeavesWhenContextEnds(t *testing.T) {
	t.Parallel()
	a := startNode(t, fastConfig("ra", "us-east", []string{RoleServer}))
	c, err := New(fastConfig("rb", "eu-west", []string{RoleServer}, addr(a)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitFor(t, 3*time.Second, "rb joins", func() bool { return stateOf(a, "rb") == StateAlive })
	require.Equal(t, []string{"rb"}, names(a.ServersIn("eu-west")))

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if !assert.Eventually(t, func() bool { return stateOf(a, "rb") == StateLeft }, 3*time.Second, 20*time.Millisecond) {
		t.Fatalf("ra sees rb %q, want left", stateOf(a, "rb"))
	}
	require.Empty(t, a.ServersIn("eu-west"))
	require.Equal(t, []string{"us-east"}, a.Regions())
}

func TestEventsNeverBlockGossip(t *testing.T) {
	t.Parallel()
	cfg := fastConfig("e0", "us-east", []string{RoleServer})
	cfg.EventBuffer = 2
	hub := startNode(t, cfg) // nobody reads its events
	nodes := []*Cluster{hub}
	for i := 1; i <= 4; i++ {
		name := "e" + strconv.Itoa(i)
		nodes = append(nodes, startNode(t, fastConfig(name, "us-east", []string{RoleWorker}, addr(hub))))
		waitFor(t, 3*time.Second, name+" seen by the hub", func() bool { return stateOf(hub, name) == StateAlive })
	}
	waitFor(t, 5*time.Second, "five alive everywhere", func() bool {
		for _, c := range nodes {
			if countState(c, StateAlive) != 5 {
				return false
			}
		}
		return true
	})
	require.EqualValues(t, 3, hub.DroppedEvents(), "five joins in a buffer of two")
	var kept []string
	for range 2 {
		e := <-hub.Events()
		require.Equal(t, EventJoin, e.Type)
		kept = append(kept, e.Member.Name)
	}
	require.Equal(t, []string{"e3", "e4"}, kept, "the newest are kept")
	require.True(t, slices.Equal([]string{"e0", "e1", "e2", "e3", "e4"}, names(hub.Members())), "Members stays complete")
}

func TestSeedListHoldingItself(t *testing.T) {
	t.Parallel()
	// Deployments often give every node the same seed list, its own address
	// included: reaching only itself is not joining.
	cfg := fastConfig("self-seeded", "us-east", []string{RoleServer})
	cfg.BindPort = freePort(t, cfg.BindAddr)
	cfg.Join = []string{net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.BindPort))}
	a := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, a.WaitJoined(ctx), context.DeadlineExceeded)

	b := startNode(t, fastConfig("other", "us-east", []string{RoleWorker}, cfg.Join[0]))
	require.NoError(t, b.WaitJoined(t.Context()))
	require.NoError(t, a.WaitJoined(t.Context()), "joined once another node reached it")
}

func TestStartOnBusyPortFails(t *testing.T) {
	t.Parallel()
	cfg := fastConfig("busy1", "us-east", []string{RoleServer})
	cfg.BindPort = freePort(t, cfg.BindAddr)
	startNode(t, cfg)
	cfg.NodeName = "busy2"
	c, err := New(cfg)
	require.NoError(t, err)
	err = c.Start(t.Context())
	require.ErrorContains(t, err, "start cluster on "+net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.BindPort))+": ")
	require.ErrorContains(t, err, "address already in use")
	require.ErrorContains(t, c.Start(t.Context()), "address already in use", "a failed Start changed nothing: it may be retried")
	require.NoError(t, c.Shutdown())
}

// leaveRecorder records the Node.State memberlist passes to NotifyLeave.
type leaveRecorder struct{ states chan memberlist.NodeStateType }

func (r leaveRecorder) NotifyJoin(*memberlist.Node)   {}
func (r leaveRecorder) NotifyUpdate(*memberlist.Node) {}
func (r leaveRecorder) NotifyLeave(n *memberlist.Node) {
	select {
	case r.states <- n.State:
	default:
	}
}

// TestMemberlistHidesLeftState is a canary for the reason leave notices
// exist: memberlist v0.7.0 passes NotifyLeave a Node whose State is always
// StateAlive, even for a node that left (hashicorp/memberlist#293). If this
// fails after an upgrade, memberlist reports StateLeft itself and the
// notices could go.
func TestMemberlistHidesLeftState(t *testing.T) {
	t.Parallel()
	mk := func(name string, events memberlist.EventDelegate) *memberlist.Memberlist {
		mc := memberlist.DefaultLocalConfig()
		mc.Name, mc.BindAddr, mc.BindPort = name, loopbackIP(), 0
		mc.Events = events
		mc.Logger = newMemberlistLogger(testLogger())
		ml, err := memberlist.Create(mc)
		require.NoError(t, err)
		t.Cleanup(func() { _ = ml.Shutdown() })
		return ml
	}
	rec := leaveRecorder{states: make(chan memberlist.NodeStateType, 1)}
	a := mk("canary-a", rec)
	b := mk("canary-b", nil)
	_, err := b.Join([]string{a.LocalNode().Address()})
	require.NoError(t, err)
	require.NoError(t, b.Leave(2*time.Second))
	select {
	case s := <-rec.states:
		require.Equal(t, memberlist.StateAlive, s, "memberlist now reports the left state: simplify nodeGone")
	case <-time.After(3 * time.Second):
		t.Fatal("no NotifyLeave")
	}
}
