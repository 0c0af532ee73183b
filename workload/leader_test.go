package workload

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
)

// leaseFake is a Store whose lease answers the test scripts; any other call panics.
type leaseFake struct {
	Store
	mu       sync.Mutex
	holder   string
	token    int64
	err      error
	released []string
}

func (f *leaseFake) AcquireLease(_ context.Context, name, holder string, _ time.Duration) (*catalog.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return &catalog.Lease{Name: name, Holder: f.holder, Token: f.token}, nil
}

func (f *leaseFake) ReleaseLease(_ context.Context, _, holder string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, holder)
	return nil
}

func (f *leaseFake) set(holder string, token int64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holder, f.token, f.err = holder, token, err
}

func drained(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestElectorTerms(t *testing.T) {
	ctx := t.Context()
	f := &leaseFake{}
	e := newElector(f, "local", "me", 300*time.Millisecond, slog.New(slog.DiscardHandler))
	require.Equal(t, "leader/local", e.name)
	require.Equal(t, 100*time.Millisecond, e.interval())

	// Another holder: not leader, no term.
	f.set("other", 1, nil)
	e.campaign(ctx)
	require.Nil(t, e.current())
	require.False(t, drained(e.changed))

	// Ours: a term with the lease's token, announced once.
	f.set("me", 2, nil)
	e.campaign(ctx)
	t1 := e.current()
	require.NotNil(t, t1)
	require.Equal(t, int64(2), t1.token)
	require.True(t, drained(e.changed))

	// Renewed with the same token: the same term.
	e.campaign(ctx)
	require.Same(t, t1, e.current())
	require.False(t, drained(e.changed))

	// An error before the lease could have expired: still leader.
	f.set("me", 2, errors.New("connection reset"))
	e.campaign(ctx)
	require.Same(t, t1, e.current())

	// Taken over in between (new token on our own name): the old term ends, a new one begins.
	f.set("me", 3, nil)
	e.campaign(ctx)
	t2 := e.current()
	require.NotNil(t, t2)
	require.NotSame(t, t1, t2)
	require.Error(t, t1.ctx.Err(), "the old term's work must stop")
	require.Equal(t, int64(3), t2.token)

	// Another holder: the term ends at once.
	f.set("other", 4, nil)
	e.campaign(ctx)
	require.Nil(t, e.current())
	require.Error(t, t2.ctx.Err())
	require.True(t, drained(e.changed))
}

func TestElectorStepsDownWhenItCannotRenew(t *testing.T) {
	ctx := t.Context()
	f := &leaseFake{}
	e := newElector(f, "local", "me", 150*time.Millisecond, slog.New(slog.DiscardHandler))
	f.set("me", 1, nil)
	e.campaign(ctx)
	tm := e.current()
	require.NotNil(t, tm)

	f.set("", 0, errors.New("catalog unreachable"))
	start := time.Now()
	require.Eventually(t, func() bool { return e.current() == nil }, 2*time.Second, 5*time.Millisecond)
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "stepped down before the lease could have expired")
	require.Error(t, tm.ctx.Err())

	// The same happens through campaigns alone.
	f.set("me", 1, nil)
	e.campaign(ctx)
	tm = e.current()
	require.NotNil(t, tm)
	f.set("", 0, errors.New("catalog unreachable"))
	time.Sleep(160 * time.Millisecond)
	e.campaign(ctx)
	e.mu.Lock()
	cur := e.cur
	e.mu.Unlock()
	require.Nil(t, cur)
	require.Error(t, tm.ctx.Err())
}

func TestElectorStepDownOnlyEndsItsTerm(t *testing.T) {
	ctx := t.Context()
	f := &leaseFake{}
	e := newElector(f, "local", "me", time.Minute, slog.New(slog.DiscardHandler))
	f.set("me", 1, nil)
	e.campaign(ctx)
	old := e.current()
	f.set("me", 2, nil)
	e.campaign(ctx)
	cur := e.current()
	e.stepDown(old, "a late ErrNotLeader of the old term")
	require.Same(t, cur, e.current())
	e.stepDown(cur, "ErrNotLeader")
	require.Nil(t, e.current())

	// release steps down and gives the lease up.
	f.set("me", 2, nil)
	e.campaign(ctx)
	require.NotNil(t, e.current())
	e.release(ctx)
	require.Nil(t, e.current())
	require.Equal(t, []string{"me"}, f.released)
}
