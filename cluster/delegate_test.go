package cluster

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/catalog"
)

// These tests drive the memberlist callbacks directly, without a network,
// to pin down the state machine; cluster_test.go runs real pools.

func fakeNode(name string, started int64, capacity int) *memberlist.Node {
	md := meta{Region: "us-east", Roles: []string{RoleWorker}, AgentAddr: "10.0.0.9:7070", Version: "1.0", Capacity: capacity, Started: started}
	return &memberlist.Node{Name: name, Addr: net.IP{127, 0, 0, 9}, Port: 7946, Meta: md.encode()}
}

func drain(c *Cluster) []Event {
	var out []Event
	for {
		select {
		case e := <-c.Events():
			out = append(out, e)
		default:
			return out
		}
	}
}

func types(es []Event) []EventType {
	var out []EventType
	for _, e := range es {
		out = append(out, e.Type)
	}
	return out
}

func member(t *testing.T, c *Cluster, name string) Member {
	t.Helper()
	for _, m := range c.Members() {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("%s is not a member", name)
	return Member{}
}

func TestCallbacksDeadThenLateLeaveNotice(t *testing.T) {
	c, err := New(validConfig())
	require.NoError(t, err)
	d := delegate{c}
	w2 := fakeNode("w2", 5, 2)

	d.NotifyJoin(w2)
	m := member(t, c, "w2")
	require.Equal(t, StateAlive, m.State)
	require.Equal(t, "127.0.0.9:7946", m.Addr)
	require.Equal(t, 2, m.Capacity)
	require.Equal(t, time.Unix(0, 5).UTC(), m.Started)

	d.NotifyLeave(w2)
	require.Equal(t, StateDead, member(t, c, "w2").State)

	d.NotifyMsg(leaveIntent{Name: "w2", Started: 99}.encode()) // another life of w2: ignored
	require.Equal(t, StateDead, member(t, c, "w2").State)
	require.Zero(t, c.queue.NumQueued())

	d.NotifyMsg(leaveIntent{Name: "w2", Started: 5}.encode()) // arrived after the dead message
	m = member(t, c, "w2")
	require.Equal(t, StateLeft, m.State)
	require.True(t, m.Leaving)
	require.Equal(t, 1, c.queue.NumQueued(), "relayed once")
	d.NotifyMsg(leaveIntent{Name: "w2", Started: 5}.encode())
	require.Equal(t, 1, c.queue.NumQueued(), "not relayed twice")

	es := drain(c)
	require.Equal(t, []EventType{EventJoin, EventDead, EventLeft}, types(es))
	require.Equal(t, StateLeft, es[2].Member.State)

	// w2 restarts under the same name: alive again, not leaving, and its
	// next failure is a death.
	w2b := fakeNode("w2", 6, 2)
	d.NotifyJoin(w2b)
	m = member(t, c, "w2")
	require.Equal(t, StateAlive, m.State)
	require.False(t, m.Leaving)
	d.NotifyLeave(w2b)
	require.Equal(t, StateDead, member(t, c, "w2").State)
	require.Equal(t, []EventType{EventJoin, EventDead}, types(drain(c)))
}

func TestCallbacksLeaveNoticeThenLeave(t *testing.T) {
	c, err := New(validConfig())
	require.NoError(t, err)
	d := delegate{c}
	s1 := fakeNode("s1", 7, 0)
	d.NotifyJoin(s1)
	d.NotifyMsg(leaveIntent{Name: "s1", Started: 7}.encode())
	m := member(t, c, "s1")
	require.Equal(t, StateAlive, m.State)
	require.True(t, m.Leaving)

	// A metadata update of the same life keeps the leaving mark.
	d.NotifyUpdate(fakeNode("s1", 7, 3))
	m = member(t, c, "s1")
	require.True(t, m.Leaving)
	require.Equal(t, 3, m.Capacity)

	d.NotifyLeave(s1)
	require.Equal(t, StateLeft, member(t, c, "s1").State)
	d.NotifyLeave(s1) // repeated: no second event
	es := drain(c)
	require.Equal(t, []EventType{EventJoin, EventUpdate, EventUpdate, EventLeft}, types(es))
	require.True(t, es[1].Member.Leaving)
	require.Equal(t, catalog.NodeLeft, es[3].Member.CatalogNode().State)
}

func TestCallbacksQuickRestartIsAJoin(t *testing.T) {
	c, err := New(validConfig())
	require.NoError(t, err)
	d := delegate{c}
	d.NotifyJoin(fakeNode("w2", 1, 2))
	d.NotifyMsg(leaveIntent{Name: "w2", Started: 1}.encode())
	// Restarted before anyone found it dead: memberlist sees new metadata.
	d.NotifyUpdate(fakeNode("w2", 2, 2))
	m := member(t, c, "w2")
	require.Equal(t, StateAlive, m.State)
	require.False(t, m.Leaving, "the new life has not announced a leave")
	require.Equal(t, time.Unix(0, 2).UTC(), m.Started)
	require.Equal(t, []EventType{EventJoin, EventUpdate, EventJoin}, types(drain(c)))
}

func TestCallbacksIgnoreForeignNodes(t *testing.T) {
	c, err := New(validConfig())
	require.NoError(t, err)
	d := delegate{c}
	foreign := &memberlist.Node{Name: "consul-1", Addr: net.IP{127, 0, 0, 8}, Port: 8301, Meta: []byte("role=consul")}
	d.NotifyJoin(foreign)
	d.NotifyLeave(foreign)
	d.NotifyMsg([]byte{42, 1, 2})
	d.NotifyMsg(nil)
	d.NotifyMsg([]byte{msgLeaveIntent, 200})
	require.Empty(t, c.Members())
	require.Empty(t, drain(c))
}

func TestMembersForgetsAfterRetain(t *testing.T) {
	cfg := validConfig()
	cfg.Retain = 50 * time.Millisecond
	c, err := New(cfg)
	require.NoError(t, err)
	d := delegate{c}
	d.NotifyJoin(fakeNode("w2", 1, 1))
	d.NotifyJoin(fakeNode("w3", 1, 1))
	d.NotifyLeave(fakeNode("w2", 1, 1))
	require.Len(t, c.Members(), 2)
	time.Sleep(60 * time.Millisecond)
	ms := c.Members()
	require.Len(t, ms, 1, "the dead member is forgotten after Retain; the alive one stays")
	require.Equal(t, "w3", ms[0].Name)
}

func TestEventQueueDropsOldest(t *testing.T) {
	q := newEventQueue(2)
	for i := range 5 {
		q.push(Event{Type: EventJoin, Member: Member{Name: string(rune('a' + i))}})
	}
	require.EqualValues(t, 3, q.dropped.Load())
	require.Equal(t, "d", (<-q.ch).Member.Name)
	require.Equal(t, "e", (<-q.ch).Member.Name)
	q.close()
	q.push(Event{}) // after close: ignored, no panic
	_, ok := <-q.ch
	require.False(t, ok)
}

func TestCatalogNode(t *testing.T) {
	started := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	since := started.Add(time.Hour)
	m := Member{Name: "s1", Region: "eu-west", Roles: []string{RoleServer}, APIAddr: "http://10.0.0.1:8080",
		AgentAddr: "10.0.0.1:7070", Version: "1.0", Capacity: 0, Started: started, State: StateDead, Since: since}
	n := m.CatalogNode()
	require.Equal(t, catalog.Node{ID: "s1", Region: "eu-west", Roles: catalog.NewJSON([]string{RoleServer}),
		Address: "http://10.0.0.1:8080", State: catalog.NodeDead, Version: "1.0", StartedAt: started, LastSeen: since}, n)
	require.True(t, n.HasRole(catalog.NodeRoleServer))

	m.APIAddr = ""
	require.Equal(t, "10.0.0.1:7070", m.CatalogNode().Address, "agent address when no API")
	for s, want := range map[State]string{StateAlive: catalog.NodeAlive, StateDead: catalog.NodeDead, StateLeft: catalog.NodeLeft} {
		require.Equal(t, want, s.CatalogState())
	}
}

func TestLifecycleErrors(t *testing.T) {
	c, err := New(validConfig())
	require.NoError(t, err)
	require.ErrorIs(t, c.Leave(time.Second), ErrNotRunning, "leave before start")
	require.Equal(t, Member{Name: "w1", Region: "us-east", Roles: []string{RoleWorker}, APIAddr: "http://10.0.0.5:8080",
		AgentAddr: "10.0.0.5:7070", Version: "1.2.3", Capacity: 4, Started: startedTime(c.started)}, c.LocalMember())
	require.NoError(t, c.Shutdown())
	require.NoError(t, c.Shutdown(), "twice")
	_, ok := <-c.Events()
	require.False(t, ok, "Shutdown closes Events")
	require.ErrorIs(t, c.Leave(time.Second), ErrNotRunning, "leave after shutdown")
	require.ErrorIs(t, c.WaitJoined(t.Context()), ErrNotRunning)
}
