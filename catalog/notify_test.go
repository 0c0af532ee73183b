package catalog_test

import (
	"context"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

const wakeWait = 5 * time.Second

func requireWoken(t *testing.T, ch <-chan struct{}, msg string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		require.True(t, ok, "%s: channel closed", msg)
	case <-time.After(wakeWait):
		t.Fatalf("%s: no wake-up within %s", msg, wakeWait)
	}
}

func requireQuiet(t *testing.T, ch <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: unexpected wake-up", msg)
	case <-time.After(100 * time.Millisecond):
	}
}

// drain empties a subscription, including the wake-up it gives when it
// starts listening, and returns once it has been quiet for a moment.
func drain(ch <-chan struct{}, first time.Duration) {
	wait := first
	for {
		select {
		case <-ch:
			wait = 200 * time.Millisecond
		case <-time.After(wait):
			return
		}
	}
}

func TestSubscribeWithinOneStore(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		ctx, cancel := context.WithCancel(f.ctx)
		defer cancel()
		pending := s.Subscribe(ctx, catalog.ChannelRunsPending)
		queued := s.Subscribe(ctx, catalog.ChannelRunsQueued)
		drain(pending, time.Second)
		drain(queued, 10*time.Millisecond)

		r := f.pending()
		requireWoken(t, pending, "insert run")
		requireQuiet(t, queued, "another channel")
		f.dispatch(r.ID, "w1")
		requireWoken(t, queued, "dispatch")
	})
}

// TestSubscribeAcrossStores: on PostgreSQL a commit by one Store (another
// process, in production) wakes a Subscribe of another Store through
// LISTEN/NOTIFY.
func TestSubscribeAcrossStores(t *testing.T) {
	dsn := catalogtest.NewPostgresDSN(t)
	writer := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn})
	listener := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn})
	f := newFixture(t, writer)
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	pending := listener.Subscribe(ctx, catalog.ChannelRunsPending)
	finished := listener.Subscribe(ctx, catalog.ChannelRunsFinished)
	// The first wake-up says the listener is connected.
	requireWoken(t, pending, "listening")
	requireWoken(t, finished, "listening")
	drain(pending, 10*time.Millisecond)
	drain(finished, 10*time.Millisecond)

	r := f.pending()
	requireWoken(t, pending, "a run inserted by another Store")
	requireQuiet(t, finished, "another channel")

	// A rolled-back change notifies nobody.
	_, _, err := writer.InsertRun(f.ctx, f.newRun(func(x *catalog.Run) { x.ID = r.ID }))
	require.ErrorIs(t, err, catalog.ErrConflict)
	requireQuiet(t, pending, "a failed insert")

	_, err = writer.RequestCancel(f.ctx, r.ID, "alice")
	require.NoError(t, err)
	requireWoken(t, finished, "a run canceled by another Store")
}

// subscriptionGoroutines counts the goroutines running Subscribe's code.
func subscriptionGoroutines() int {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	n := 0
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, "catalog.(*Store).Subscribe") || strings.Contains(g, "catalog.(*Store).listenPostgres") {
			n++
		}
	}
	return n
}

// TestSubscribeClosesWhenContextEnds runs its dialects one after the other
// (not in parallel) so that it can count the goroutines subscriptions leave.
func TestSubscribeClosesWhenContextEnds(t *testing.T) {
	for _, d := range catalogtest.Dialects {
		t.Run(d, func(t *testing.T) {
			s := catalogtest.Open(t, d)
			require.Eventually(t, func() bool { return subscriptionGoroutines() == 0 }, wakeWait, 10*time.Millisecond, "subscriptions of earlier tests still run")
			var chans []<-chan struct{}
			var cancels []context.CancelFunc
			for range 5 {
				c, cancel := context.WithCancel(context.Background())
				cancels = append(cancels, cancel)
				chans = append(chans, s.Subscribe(c, catalog.ChannelRunsQueued))
			}
			if d == catalog.DialectPostgres {
				for _, ch := range chans {
					requireWoken(t, ch, "listening")
				}
			}
			require.Positive(t, subscriptionGoroutines())
			for _, cancel := range cancels {
				cancel()
			}
			for _, ch := range chans {
				deadline := time.After(wakeWait)
				for closed := false; !closed; {
					select {
					case _, ok := <-ch:
						closed = !ok
					case <-deadline:
						t.Fatal("the subscription was not closed when its context ended")
					}
				}
			}
			require.Eventually(t, func() bool { return subscriptionGoroutines() == 0 }, wakeWait, 10*time.Millisecond, "subscriptions left goroutines behind")

			// A context that is already over gives a closed channel.
			c, cancel := context.WithCancel(context.Background())
			cancel()
			ch := s.Subscribe(c, catalog.ChannelRunsQueued)
			select {
			case _, ok := <-ch:
				for ok {
					_, ok = <-ch
				}
			case <-time.After(wakeWait):
				t.Fatal("not closed")
			}
		})
	}
}
