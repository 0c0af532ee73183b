package catalog_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestLeaseAcquireRenewTakeoverRelease(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)
		name := catalog.LeaderLeaseName("eu")
		require.Equal(t, "leader/eu", name)
		_, err := s.GetLease(ctx, name)
		require.ErrorIs(t, err, catalog.ErrNotFound)

		// A free lease is taken with token 1.
		l, err := s.AcquireLease(ctx, name, "a", 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, catalog.Lease{Name: name, Holder: "a", Token: 1, ExpiresAt: l.ExpiresAt}, *l)
		require.True(t, l.ExpiresAt.Equal(clock.Now().Add(10*time.Second)))

		// Held: another candidate does not get it, and changes nothing.
		clock.Advance(5 * time.Second)
		l, err = s.AcquireLease(ctx, name, "b", 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, "a", l.Holder)
		require.Equal(t, int64(1), l.Token)
		require.True(t, l.ExpiresAt.Equal(clock.Now().Add(5*time.Second)))

		// The holder renews: same token, later expiry.
		l, err = s.AcquireLease(ctx, name, "a", 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, "a", l.Holder)
		require.Equal(t, int64(1), l.Token)
		require.True(t, l.ExpiresAt.Equal(clock.Now().Add(10*time.Second)))

		// Just before expiry it is still a's; at expiry b takes over with token 2.
		clock.Advance(10*time.Second - time.Millisecond)
		l, err = s.AcquireLease(ctx, name, "b", 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, "a", l.Holder)
		clock.Advance(time.Millisecond)
		l, err = s.AcquireLease(ctx, name, "b", 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, "b", l.Holder, "an expired lease is free")
		require.Equal(t, int64(2), l.Token)
		got, err := s.GetLease(ctx, name)
		require.NoError(t, err)
		require.Equal(t, *l, *got)

		// a comes back: b holds it now.
		l, err = s.AcquireLease(ctx, name, "a", 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, "b", l.Holder)

		// Release lets another take it at once, with a new token.
		require.NoError(t, s.ReleaseLease(ctx, name, "a")) // not a's: no effect
		l, err = s.AcquireLease(ctx, name, "a", 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, "b", l.Holder)
		require.NoError(t, s.ReleaseLease(ctx, name, "b"))
		l, err = s.AcquireLease(ctx, name, "a", 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, "a", l.Holder)
		require.Equal(t, int64(3), l.Token)

		// Leases are independent.
		other, err := s.AcquireLease(ctx, catalog.LeaderLeaseName("us"), "b", time.Second)
		require.NoError(t, err)
		require.Equal(t, "b", other.Holder)
		require.Equal(t, int64(1), other.Token)
	})
}

func TestLeaseRefusesBadInput(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		for _, c := range []struct {
			name, holder string
			ttl          time.Duration
			field        string
		}{
			{"", "a", time.Second, "name"},
			{"leader/x", "", time.Second, "holder"},
			{"leader/x", "a", 0, "ttl"},
			{"leader/x", "a", -time.Second, "ttl"},
		} {
			_, err := s.AcquireLease(ctx, c.name, c.holder, c.ttl)
			var ve *catalog.ValidationError
			require.ErrorAs(t, err, &ve, "%+v", c)
			require.Equal(t, c.field, ve.Field)
		}
		_, err := s.GetLease(ctx, "leader/x")
		require.ErrorIs(t, err, catalog.ErrNotFound, "nothing was stored")
	})
}

// TestLeaseRace: candidates racing for a free or an expired lease on
// PostgreSQL, from two Stores: exactly one wins each round.
func TestLeaseRace(t *testing.T) {
	dsn := catalogtest.NewPostgresDSN(t)
	stores := []*catalog.Store{catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn}), catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn})}
	clock := newTestClock()
	for _, s := range stores {
		s.SetClock(clock.Now)
	}
	ctx := context.Background()
	name := catalog.LeaderLeaseName("race")
	for round := range 5 {
		const n = 6
		holders := make([]string, n)
		tokens := make([]int64, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				l, err := stores[i%2].AcquireLease(ctx, name, fmt.Sprintf("cand-%d-%d", round, i), time.Minute)
				if assertNoError(t, err) {
					holders[i], tokens[i] = l.Holder, l.Token
				}
			})
		}
		close(start)
		wg.Wait()
		winner := holders[0]
		wins := 0
		for i := range n {
			require.Equal(t, winner, holders[i], "every candidate sees the same holder")
			require.Equal(t, int64(round+1), tokens[i], "one takeover per round")
			if holders[i] == fmt.Sprintf("cand-%d-%d", round, i) {
				wins++
			}
		}
		require.Equal(t, 1, wins)
		clock.Advance(time.Minute) // the lease expires: next round
	}
}
