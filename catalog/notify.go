package catalog

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// localBus delivers wake-ups inside one process: the only delivery on SQLite,
// and a shortcut on PostgreSQL for components sharing a process.
type localBus struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

func newLocalBus() *localBus { return &localBus{subs: map[string]map[chan struct{}]struct{}{}} }

func (b *localBus) subscribe(channel string) chan struct{} {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs[channel] == nil {
		b.subs[channel] = map[chan struct{}]struct{}{}
	}
	b.subs[channel][ch] = struct{}{}
	return ch
}

func (b *localBus) unsubscribe(channel string, ch chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs[channel], ch)
}

func (b *localBus) publish(channel string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs[channel] {
		wake(ch)
	}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Subscribe returns a channel that receives a value (coalesced) whenever
// channel is notified, by this process or, on PostgreSQL, by any process
// through LISTEN/NOTIFY. It also fires after every reconnection, since
// notifications may have been missed. The channel is closed when ctx ends.
func (s *Store) Subscribe(ctx context.Context, channel string) <-chan struct{} {
	out := make(chan struct{}, 1)
	local := s.bus.subscribe(channel)
	var wg sync.WaitGroup
	if s.dialect == DialectPostgres {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.listenPostgres(ctx, channel, out)
		}()
	}
	go func() {
		defer close(out)
		defer s.bus.unsubscribe(channel, local)
		for {
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case <-local:
				wake(out)
			}
		}
	}()
	return out
}

func (s *Store) listenPostgres(ctx context.Context, channel string, out chan struct{}) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := func() error {
			conn, err := pgx.Connect(ctx, s.dsn)
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(ctx))
			if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
				return err
			}
			backoff = 100 * time.Millisecond
			wake(out) // we may have missed notifications while disconnected
			for {
				if _, err := conn.WaitForNotification(ctx); err != nil {
					return err
				}
				wake(out)
			}
		}()
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("catalog listener disconnected; retrying", slog.String("channel", channel), slog.String("error", err.Error()), slog.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
