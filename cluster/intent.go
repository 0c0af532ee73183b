package cluster

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/hashicorp/memberlist"
)

// Leave notices.
//
// memberlist marks a node that broadcast its own death "left" and one
// declared dead by others "dead", but in v0.7.0 it hands NotifyLeave a Node
// whose State field is always zero (hashicorp/memberlist#293, fix pending in
// #321). So Leave first sends a leave notice of its own: a user message
// naming the node and its start stamp, sent straight to every live member
// (UDP) and queued for gossip, which every receiver relays once. A member
// whose notice arrived is reported left when memberlist drops it, dead
// otherwise; a notice that arrives after the dead message turns dead into
// left (EventLeft follows EventDead). The start stamp keeps a late notice
// from marking a restarted node with the same name.

// msgLeaveIntent is the first byte of a leave notice.
const msgLeaveIntent byte = 1

type leaveIntent struct {
	Name    string
	Started int64
}

func (li leaveIntent) encode() []byte {
	b := []byte{msgLeaveIntent}
	b = appendString(b, li.Name)
	return binary.BigEndian.AppendUint64(b, uint64(li.Started))
}

func decodeLeaveIntent(b []byte) (leaveIntent, error) {
	d := metaDecoder{b: b}
	if t := d.byte(); d.err == nil && t != msgLeaveIntent {
		return leaveIntent{}, fmt.Errorf("decode leave notice: message type %d", t)
	}
	li := leaveIntent{Name: d.string()}
	li.Started = int64(d.uint64())
	if d.err != nil {
		return leaveIntent{}, fmt.Errorf("decode leave notice at byte %d: %w", d.off, d.err)
	}
	return li, nil
}

// intentBroadcast is a leave notice in memberlist's gossip queue; a newer
// notice for the same node replaces it.
type intentBroadcast struct {
	name string
	msg  []byte
	once sync.Once
	done chan struct{} // closed when memberlist stops sending it
}

var _ memberlist.NamedBroadcast = (*intentBroadcast)(nil)

func newIntentBroadcast(li leaveIntent) *intentBroadcast {
	return &intentBroadcast{name: "leave/" + li.Name, msg: li.encode(), done: make(chan struct{})}
}

func (b *intentBroadcast) Name() string { return b.name }

func (b *intentBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(memberlist.NamedBroadcast)
	return ok && o.Name() == b.name
}

func (b *intentBroadcast) Message() []byte { return b.msg }

func (b *intentBroadcast) Finished() { b.once.Do(func() { close(b.done) }) }
