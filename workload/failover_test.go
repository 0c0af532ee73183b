package workload

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
)

var errKilled = errors.New("connection refused (test: process frozen)")

// killableStore is a catalog seen by a process that can be cut off at once:
// after kill, every call fails as if the catalog could not be reached, so the
// manager can neither renew nor release its lease, like a frozen or
// partitioned leader.
type killableStore struct {
	*catalog.Store
	dead atomic.Bool
}

func (k *killableStore) kill() { k.dead.Store(true) }

func (k *killableStore) check(ctx context.Context) error {
	if k.dead.Load() {
		return errKilled
	}
	return ctx.Err()
}

func (k *killableStore) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (*catalog.Lease, error) {
	if err := k.check(ctx); err != nil {
		return nil, err
	}
	return k.Store.AcquireLease(ctx, name, holder, ttl)
}

func (k *killableStore) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := k.check(ctx); err != nil {
		return err
	}
	return k.Store.ReleaseLease(ctx, name, holder)
}

func (k *killableStore) MarkDeadNodes(ctx context.Context, region string, deadline time.Time) ([]string, error) {
	if err := k.check(ctx); err != nil {
		return nil, err
	}
	return k.Store.MarkDeadNodes(ctx, region, deadline)
}

func (k *killableStore) RequeueOrphans(ctx context.Context, region string) ([]string, error) {
	if err := k.check(ctx); err != nil {
		return nil, err
	}
	return k.Store.RequeueOrphans(ctx, region)
}

func (k *killableStore) ReapExpiredLeases(ctx context.Context, region string) ([]string, error) {
	if err := k.check(ctx); err != nil {
		return nil, err
	}
	return k.Store.ReapExpiredLeases(ctx, region)
}

func (k *killableStore) AbortTimedOut(ctx context.Context, region string) ([]string, error) {
	if err := k.check(ctx); err != nil {
		return nil, err
	}
	return k.Store.AbortTimedOut(ctx, region)
}

func (k *killableStore) CountActive(ctx context.Context, region string) (catalog.ActiveCounts, error) {
	if err := k.check(ctx); err != nil {
		return catalog.ActiveCounts{}, err
	}
	return k.Store.CountActive(ctx, region)
}

func (k *killableStore) ListNodes(ctx context.Context, region string) ([]catalog.Node, error) {
	if err := k.check(ctx); err != nil {
		return nil, err
	}
	return k.Store.ListNodes(ctx, region)
}

func (k *killableStore) ListSystems(ctx context.Context) ([]catalog.System, error) {
	if err := k.check(ctx); err != nil {
		return nil, err
	}
	return k.Store.ListSystems(ctx)
}

func (k *killableStore) ListDispatchable(ctx context.Context, region string, limit int) ([]catalog.Run, error) {
	if err := k.check(ctx); err != nil {
		return nil, err
	}
	return k.Store.ListDispatchable(ctx, region, limit)
}

func (k *killableStore) GetMappingVersion(ctx context.Context, name string, version int) (*catalog.Mapping, error) {
	if err := k.check(ctx); err != nil {
		return nil, err
	}
	return k.Store.GetMappingVersion(ctx, name, version)
}

func (k *killableStore) DispatchRun(ctx context.Context, p catalog.DispatchParams) error {
	if err := k.check(ctx); err != nil {
		return err
	}
	return k.Store.DispatchRun(ctx, p)
}

func (k *killableStore) SetHoldReasons(ctx context.Context, reasons map[string]string) error {
	if err := k.check(ctx); err != nil {
		return err
	}
	return k.Store.SetHoldReasons(ctx, reasons)
}

func (k *killableStore) AbortPending(ctx context.Context, p catalog.AbortPendingParams) error {
	if err := k.check(ctx); err != nil {
		return err
	}
	return k.Store.AbortPending(ctx, p)
}

// failoverEnv is one PostgreSQL catalog seen by two servers and a client.
func failoverEnv(t *testing.T) (e *env, s1, s2 *catalog.Store) {
	t.Helper()
	stores := openShared(t, catalog.DialectPostgres, 3)
	e = newEnv(t, stores[2])
	e.system("a", 0)
	e.system("b", 0)
	e.mapping("ab", "a", "b")
	heartbeat(t, stores[2], "w1", 64)
	return e, stores[0], stores[1]
}

// neverBoth samples two managers until stop is closed and fails t if both
// ever claim to lead at once.
func neverBoth(t *testing.T, m1, m2 *started) (stop func()) {
	done := make(chan struct{})
	var both atomic.Bool
	var finished = make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
			if m1.IsLeader() && m2.IsLeader() {
				both.Store(true)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		require.False(t, both.Load(), "two managers led the region at the same time")
	}
}

// dispatcher returns the node that recorded the dispatch of run id.
func dispatcher(t *testing.T, e *env, id string) string {
	t.Helper()
	evs, err := e.s.ListRunEvents(context.Background(), id, 0)
	require.NoError(t, err)
	for _, ev := range evs {
		if ev.Kind == "queued" {
			return ev.Node
		}
	}
	t.Fatalf("run %s has no queued event", id)
	return ""
}

func TestOneLeaderAndTakeoverWhenTheLeaderStops(t *testing.T) {
	t.Parallel()
	e, s1, s2 := failoverEnv(t)
	// A lease long enough to tell a released lease (taken at srv2's next
	// try, every LeaseTTL/3) from an expired one.
	cfg1, cfg2 := testConfig(t, "srv1"), testConfig(t, "srv2")
	cfg1.LeaseTTL, cfg2.LeaseTTL = 3*time.Second, 3*time.Second
	m1 := start(t, cfg1, s1)
	waitLeader(t, m1, 5*time.Second)
	m2 := start(t, cfg2, s2)
	check := neverBoth(t, m1, m2)

	r1 := e.submit("ab", 0)
	e.waitState(r1.ID, catalog.StateQueued, 5*time.Second)
	require.Equal(t, "srv1", dispatcher(t, e, r1.ID))
	time.Sleep(1500 * time.Millisecond) // srv2 keeps trying, and keeps failing
	require.True(t, m1.IsLeader())
	require.False(t, m2.IsLeader())

	// The leader stops cleanly: it releases the lease, and srv2 takes over
	// at its next try, before the lease would have expired.
	stopped := time.Now()
	m1.stop(t)
	require.False(t, m1.IsLeader())
	released, err := e.s.GetLease(context.Background(), catalog.LeaderLeaseName(region))
	require.NoError(t, err)
	// Released (or, just as good, already taken by srv2: with 2s of it left,
	// only a release lets that happen so soon).
	require.True(t, released.Holder == "srv2" || released.ExpiresAt.Before(time.Now()), "srv1 did not release its lease when it stopped")
	r2 := e.submit("ab", 0)
	e.waitState(r2.ID, catalog.StateQueued, cfg1.LeaseTTL)
	require.Less(t, time.Since(stopped), cfg1.LeaseTTL)
	require.Equal(t, "srv2", dispatcher(t, e, r2.ID))
	require.True(t, m2.IsLeader())
	check()

	l, err := e.s.GetLease(context.Background(), catalog.LeaderLeaseName(region))
	require.NoError(t, err)
	require.Equal(t, "srv2", l.Holder)
	require.Equal(t, int64(2), l.Token, "a takeover bumps the fencing token")
}

func TestTakeoverWhenTheLeaderStopsRenewing(t *testing.T) {
	t.Parallel()
	e, s1, s2 := failoverEnv(t)
	k1 := &killableStore{Store: s1}
	cfg1 := testConfig(t, "srv1")
	m1 := start(t, cfg1, k1)
	waitLeader(t, m1, 5*time.Second)
	m2 := start(t, testConfig(t, "srv2"), s2)
	check := neverBoth(t, m1, m2)
	r1 := e.submit("ab", 0)
	e.waitState(r1.ID, catalog.StateQueued, 5*time.Second)
	require.Equal(t, "srv1", dispatcher(t, e, r1.ID))

	// srv1 freezes: it can neither renew nor release its lease.
	killed := time.Now()
	k1.kill()
	r2 := e.submit("ab", 0)
	e.waitState(r2.ID, catalog.StateQueued, 5*time.Second)
	took := time.Since(killed)
	require.Equal(t, "srv2", dispatcher(t, e, r2.ID))
	// Within the lease time, plus srv2's retry interval (TTL/3) and a
	// tick; the last second is slack for a loaded machine.
	require.Less(t, took, cfg1.LeaseTTL+cfg1.LeaseTTL/3+time.Second)
	require.False(t, m1.IsLeader(), "the frozen leader must have stepped down on its own")
	require.True(t, m2.IsLeader())
	check()
}

// TestStaleLeaderCannotDispatch checks the fencing underneath: a manager that
// still believes it leads after another took the lease gets ErrNotLeader
// from the catalog and stops governing at once.
func TestStaleLeaderCannotDispatch(t *testing.T) {
	t.Parallel()
	e, s1, _ := failoverEnv(t)
	ctx := context.Background()
	cfg := testConfig(t, "srv1")
	cfg.LeaseTTL = time.Minute // srv1 will not notice by itself for a long time
	cfg.PollInterval = time.Hour
	m1 := start(t, cfg, s1)
	waitLeader(t, m1, 5*time.Second)
	time.Sleep(200 * time.Millisecond)

	// Someone else takes the lease behind srv1's back (as after a long pause).
	name := catalog.LeaderLeaseName(region)
	require.NoError(t, e.s.ReleaseLease(ctx, name, "srv1"))
	l, err := e.s.AcquireLease(ctx, name, "intruder", time.Minute)
	require.NoError(t, err)
	require.Equal(t, "intruder", l.Holder)

	r := e.submit("ab", 0) // wakes srv1, whose dispatch is refused
	require.Eventually(t, func() bool { return !m1.IsLeader() }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	got := e.run(r.ID)
	require.Equal(t, catalog.StatePending, got.State)
	require.Empty(t, got.WorkerID)
}
