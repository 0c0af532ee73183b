package cluster

import (
	"sync"
	"sync/atomic"
)

// eventQueue is a bounded channel that drops its oldest event when full, so
// that memberlist's callbacks, which run under memberlist's node lock, never
// wait for a slow or absent reader.
type eventQueue struct {
	mu      sync.Mutex // makes drop-then-send atomic among producers
	ch      chan Event
	closed  bool
	dropped atomic.Uint64
}

func newEventQueue(capacity int) *eventQueue {
	return &eventQueue{ch: make(chan Event, capacity)}
}

// push adds e, dropping the oldest queued event if the channel is full.
func (q *eventQueue) push(e Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	for {
		select {
		case q.ch <- e:
			return
		default:
		}
		select {
		case <-q.ch:
			q.dropped.Add(1)
		default: // a reader took one meanwhile: retry the send
		}
	}
}

// close ends the channel; later pushes are ignored.
func (q *eventQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}
