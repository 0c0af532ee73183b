package workload

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/weirdata/weir/catalog"
)

// term is one uninterrupted period of leadership. Its context ends when the
// leadership does, which stops whatever governing is in flight.
type term struct {
	ctx    context.Context
	cancel context.CancelFunc
	token  int64 // the lease's fencing token
}

// elector campaigns for a region's leader lease: it renews the lease every
// TTL/3 while it holds it and tries to take it as often while it does not.
type elector struct {
	store  Store
	name   string
	holder string
	ttl    time.Duration
	log    *slog.Logger

	mu     sync.Mutex
	cur    *term
	until  time.Time // local deadline of cur: the lease may have expired after it
	failed bool      // the last campaign failed (to log a failure once, not every try)

	// changed receives a value (coalesced) whenever leadership begins or ends.
	changed chan struct{}
}

func newElector(store Store, region, holder string, ttl time.Duration, log *slog.Logger) *elector {
	return &elector{
		store:   store,
		name:    catalog.LeaderLeaseName(region),
		holder:  holder,
		ttl:     ttl,
		log:     log,
		changed: make(chan struct{}, 1),
	}
}

// interval is how often the lease is renewed or tried.
func (e *elector) interval() time.Duration { return e.ttl / 3 }

// run campaigns until ctx ends, then steps down. It does not release the
// lease: the caller does, once the governing it fences has stopped.
func (e *elector) run(ctx context.Context) {
	t := time.NewTicker(e.interval())
	defer t.Stop()
	for {
		e.campaign(ctx)
		select {
		case <-ctx.Done():
			e.stepDown(nil, "shutting down")
			return
		case <-t.C:
		}
	}
}

// campaign makes one attempt to take or renew the lease, bounded by the
// renewal interval, and updates the leadership.
func (e *elector) campaign(ctx context.Context) {
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, e.interval())
	lease, err := e.store.AcquireLease(actx, e.name, e.holder, e.ttl)
	cancel()
	if ctx.Err() != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case err != nil:
		if !e.failed {
			e.log.Warn("cannot reach the leader lease; retrying", slog.String("lease", e.name), slog.String("error", err.Error()))
		}
		e.failed = true
		if e.cur != nil && !time.Now().Before(e.until) {
			e.endLocked("the lease could not be renewed before it expired")
		}
	case lease.Holder == e.holder:
		if e.failed {
			e.log.Info("leader lease reachable again", slog.String("lease", e.name))
		}
		e.failed = false
		if e.cur != nil && e.cur.token != lease.Token {
			e.endLocked("the lease was taken over in between")
		}
		if e.cur == nil {
			tctx, tcancel := context.WithCancel(ctx)
			e.cur = &term{ctx: tctx, cancel: tcancel, token: lease.Token}
			e.log.Info("became leader", slog.String("lease", e.name), slog.Int64("token", lease.Token))
			wake(e.changed)
		}
		e.until = start.Add(e.ttl)
	default:
		e.failed = false
		if e.cur != nil {
			e.endLocked("the lease is held by " + lease.Holder)
		}
	}
}

// current returns the term in force, or nil when this process is not the
// leader. A term whose lease may have expired (not renewed in time) ends here.
func (e *elector) current() *term {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur == nil {
		return nil
	}
	if !time.Now().Before(e.until) {
		e.endLocked("the lease could not be renewed before it expired")
		return nil
	}
	if e.cur.ctx.Err() != nil {
		e.endLocked("the manager stopped")
		return nil
	}
	return e.cur
}

// stepDown ends term t (any term when t is nil) at once, for example when
// the catalog answered ErrNotLeader to a dispatch.
func (e *elector) stepDown(t *term, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur != nil && (t == nil || t == e.cur) {
		e.endLocked(reason)
	}
}

func (e *elector) endLocked(reason string) {
	e.cur.cancel()
	e.cur = nil
	e.log.Info("no longer leader", slog.String("lease", e.name), slog.String("reason", reason))
	wake(e.changed)
}

// release gives the lease up so that another server takes over at once
// rather than after the lease time. It changes nothing when another holds it.
func (e *elector) release(ctx context.Context) {
	e.stepDown(nil, "shutting down")
	if err := e.store.ReleaseLease(ctx, e.name, e.holder); err != nil {
		e.log.Warn("cannot release the leader lease; another server takes over when it expires",
			slog.String("lease", e.name), slog.String("error", err.Error()))
	}
}

// wake sends a coalesced signal on ch.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
