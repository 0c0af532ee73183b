package catalog_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestRaiseAlertDedupesOpenAlerts(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)
		t0 := clock.Now()

		a, created, err := s.RaiseAlert(ctx, catalog.RaiseAlertParams{Key: "node-red:w1", Severity: catalog.AlertWarning,
			Subject: "node w1 is red", Message: "cpu 99% > 95%", Region: "eu"})
		require.NoError(t, err)
		require.True(t, created)
		require.NotZero(t, a.ID)
		require.Equal(t, "node-red:w1", a.Key)
		require.Equal(t, int64(1), a.Count)
		require.True(t, a.FirstSeen.Equal(t0) && a.LastSeen.Equal(t0), "%v %v", a.FirstSeen, a.LastSeen)
		require.NotNil(t, a.NextDeliveryAt, "a new alert waits for delivery")
		require.True(t, a.NextDeliveryAt.Equal(t0))
		require.True(t, a.Open())

		clock.Advance(time.Minute)
		b, created, err := s.RaiseAlert(ctx, catalog.RaiseAlertParams{Key: "node-red:w1", Severity: catalog.AlertWarning,
			Subject: "node w1 is red", Message: "cpu 98% > 95%", Region: "eu"})
		require.NoError(t, err)
		require.False(t, created, "an open alert with the key counts instead")
		require.Equal(t, a.ID, b.ID)
		require.Equal(t, int64(2), b.Count)
		require.True(t, b.FirstSeen.Equal(t0))
		require.True(t, b.LastSeen.Equal(t0.Add(time.Minute)))
		require.Equal(t, "cpu 98% > 95%", b.Message, "the latest message is kept")

		// Another key is another alert.
		c, created, err := s.RaiseAlert(ctx, catalog.RaiseAlertParams{Key: "node-red:w2", Severity: catalog.AlertInfo, Subject: "w2"})
		require.NoError(t, err)
		require.True(t, created)
		require.NotEqual(t, a.ID, c.ID)

		got, err := s.GetAlert(ctx, a.ID)
		require.NoError(t, err)
		require.Equal(t, int64(2), got.Count)
		rows, err := s.RawRows("alerts")
		require.NoError(t, err)
		require.Len(t, rows, 2)

		// Resolve: the next raise is a new incident with a new row.
		ok, err := s.ResolveAlert(ctx, "node-red:w1")
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = s.ResolveAlert(ctx, "node-red:w1")
		require.NoError(t, err)
		require.False(t, ok, "nothing open to resolve")
		got, err = s.GetAlert(ctx, a.ID)
		require.NoError(t, err)
		require.False(t, got.Open())
		require.True(t, got.ResolvedAt.Equal(clock.Now()))

		clock.Advance(time.Minute)
		d, created, err := s.RaiseAlert(ctx, catalog.RaiseAlertParams{Key: "node-red:w1", Severity: catalog.AlertWarning, Subject: "node w1 is red again"})
		require.NoError(t, err)
		require.True(t, created, "a raise after resolve opens a new alert")
		require.NotEqual(t, a.ID, d.ID)
		require.Equal(t, int64(1), d.Count)
		old, err := s.GetAlert(ctx, a.ID)
		require.NoError(t, err)
		require.Equal(t, int64(2), old.Count, "the resolved alert is history and does not count on")
	})
}

func TestRaiseAlertEscalates(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)
		raise := func(sev string) *catalog.Alert {
			a, _, err := s.RaiseAlert(ctx, catalog.RaiseAlertParams{Key: "k", Severity: sev, Subject: "s"})
			require.NoError(t, err)
			return a
		}
		a := raise(catalog.AlertWarning)
		claimed, err := s.ClaimAlertDeliveries(ctx, catalog.ClaimAlertDeliveriesParams{Limit: 10, Lease: time.Minute})
		require.NoError(t, err)
		require.Len(t, claimed, 1)
		require.Equal(t, a.EventID(), claimed[0].EventID(), "a claim keeps the event")
		require.NoError(t, s.FinishAlertDelivery(ctx, catalog.AlertDeliveryOutcome{ID: a.ID, Token: claimed[0].DeliveryToken, DeliveredTo: []string{"ops"}, Done: true}))
		_, err = s.AckAlert(ctx, a.ID, "alice")
		require.NoError(t, err)

		// Same or lower severity: counted only, still acknowledged and delivered.
		clock.Advance(time.Second)
		b := raise(catalog.AlertInfo)
		require.Equal(t, catalog.AlertWarning, b.Severity, "severity never falls")
		require.Equal(t, "alice", b.AckedBy)
		require.Nil(t, b.NextDeliveryAt)
		require.NotNil(t, b.DeliveredAt)
		require.Equal(t, []string{"ops"}, b.DeliveredTo.V)

		// Higher severity: escalated, the acknowledgement cleared, delivered again.
		clock.Advance(time.Second)
		c := raise(catalog.AlertCritical)
		require.Equal(t, a.ID, c.ID)
		require.Equal(t, int64(3), c.Count)
		require.Equal(t, catalog.AlertCritical, c.Severity)
		require.Empty(t, c.AckedBy)
		require.Nil(t, c.AckedAt)
		require.Nil(t, c.DeliveredAt)
		require.Empty(t, c.DeliveredTo.V)
		require.Zero(t, c.DeliveryAttempts)
		require.NotNil(t, c.NextDeliveryAt)
		require.True(t, c.NextDeliveryAt.Equal(clock.Now()))
		require.Greater(t, c.DeliveryToken, claimed[0].DeliveryToken, "a claim from before the escalation is stale")
		claimed2, err := s.ClaimAlertDeliveries(ctx, catalog.ClaimAlertDeliveriesParams{Limit: 10, Lease: time.Minute})
		require.NoError(t, err)
		require.Len(t, claimed2, 1)
		require.Equal(t, catalog.AlertCritical, claimed2[0].Severity)
		require.NotEqual(t, a.EventID(), claimed2[0].EventID(), "an escalation is a new event")
		require.Equal(t, c.EventID(), claimed2[0].EventID())
	})
}

func TestRaiseAlertValidation(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		for name, p := range map[string]catalog.RaiseAlertParams{
			"no key":        {Severity: catalog.AlertInfo, Subject: "s"},
			"long key":      {Key: strings.Repeat("k", catalog.AlertKeyMax+1), Severity: catalog.AlertInfo, Subject: "s"},
			"control key":   {Key: "a\nb", Severity: catalog.AlertInfo, Subject: "s"},
			"NUL key":       {Key: "a\x00b", Severity: catalog.AlertInfo, Subject: "s"},
			"bad utf8 key":  {Key: "a\xffb", Severity: catalog.AlertInfo, Subject: "s"},
			"no severity":   {Key: "k", Subject: "s"},
			"bad severity":  {Key: "k", Severity: "fatal", Subject: "s"},
			"no subject":    {Key: "k", Severity: catalog.AlertInfo, Subject: "  "},
			"long region":   {Key: "k", Severity: catalog.AlertInfo, Subject: "s", Region: strings.Repeat("r", 65)},
			"NUL in region": {Key: "k", Severity: catalog.AlertInfo, Subject: "s", Region: "e\x00u"},
		} {
			_, _, err := s.RaiseAlert(ctx, p)
			var ve *catalog.ValidationError
			require.ErrorAs(t, err, &ve, name)
		}
		rows, err := s.RawRows("alerts")
		require.NoError(t, err)
		require.Empty(t, rows, "refused raises change nothing")

		// Texts are made storable: NUL and broken UTF-8 replaced, long ones cut.
		long := strings.Repeat("é", catalog.AlertMessageMax+10)
		a, _, err := s.RaiseAlert(ctx, catalog.RaiseAlertParams{Key: "k", Severity: catalog.AlertInfo,
			Subject: "bad \x00 byte \xff" + strings.Repeat("s", 300), Message: long})
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(a.Subject, "bad \uFFFD byte \uFFFD"))
		require.Equal(t, catalog.AlertSubjectMax, len([]rune(a.Subject)))
		require.Equal(t, catalog.AlertMessageMax, len([]rune(a.Message)))
		got, err := s.GetAlert(ctx, a.ID)
		require.NoError(t, err)
		require.Equal(t, a.Message, got.Message)
	})
}

// TestRaiseAlertConcurrently: raisers on several processes (Stores) at once
// end with one open alert counting every raise.
func TestRaiseAlertConcurrently(t *testing.T) {
	for _, d := range catalogtest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			dsn := catalogtest.DSN(t, d)
			stores := []*catalog.Store{
				catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn}),
				catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn}),
			}
			ctx := context.Background()
			const n = 10
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make([]error, n)
			created := make([]bool, n)
			for i := range n {
				wg.Go(func() {
					<-start
					_, created[i], errs[i] = stores[i%2].RaiseAlert(ctx, catalog.RaiseAlertParams{
						Key: "auth-failures:10.0.0.1", Severity: catalog.AlertWarning, Subject: fmt.Sprintf("raise %d", i)})
				})
			}
			close(start)
			wg.Wait()
			creations := 0
			for i := range n {
				require.NoError(t, errs[i])
				if created[i] {
					creations++
				}
			}
			require.Equal(t, 1, creations, "exactly one raiser created the alert")
			list, _, err := stores[0].ListAlerts(ctx, catalog.AlertFilter{})
			require.NoError(t, err)
			require.Len(t, list, 1)
			require.Equal(t, int64(n), list[0].Count)
		})
	}
}

func TestAckAndResolveAlertByID(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)
		a, _, err := s.RaiseAlert(ctx, catalog.RaiseAlertParams{Key: "run-held:1", Severity: catalog.AlertWarning, Subject: "held"})
		require.NoError(t, err)

		_, err = s.AckAlert(ctx, a.ID, " ")
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve)
		_, err = s.AckAlert(ctx, a.ID+100, "alice")
		require.ErrorIs(t, err, catalog.ErrNotFound)

		got, err := s.AckAlert(ctx, a.ID, "alice")
		require.NoError(t, err)
		require.Equal(t, "alice", got.AckedBy)
		require.True(t, got.AckedAt.Equal(clock.Now()))
		clock.Advance(time.Minute)
		got, err = s.AckAlert(ctx, a.ID, "bob")
		require.NoError(t, err)
		require.Equal(t, "alice", got.AckedBy, "the first acknowledgement stands")
		require.True(t, got.AckedAt.Equal(clock.Now().Add(-time.Minute)))
		require.True(t, got.Open(), "an acknowledged alert stays open")

		_, err = s.ResolveAlertByID(ctx, a.ID+100)
		require.ErrorIs(t, err, catalog.ErrNotFound)
		got, err = s.ResolveAlertByID(ctx, a.ID)
		require.NoError(t, err)
		require.False(t, got.Open())
		at := *got.ResolvedAt
		clock.Advance(time.Minute)
		got, err = s.ResolveAlertByID(ctx, a.ID)
		require.NoError(t, err)
		require.True(t, got.ResolvedAt.Equal(at), "resolving again keeps the first resolution")
		_, err = s.GetAlert(ctx, a.ID+100)
		require.ErrorIs(t, err, catalog.ErrNotFound)
	})
}

func TestListAlertsFiltersAndPages(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		ids := map[string]int64{}
		for i, p := range []catalog.RaiseAlertParams{
			{Key: "a", Severity: catalog.AlertInfo, Subject: "a", Region: "eu"},
			{Key: "b", Severity: catalog.AlertWarning, Subject: "b", Region: "eu"},
			{Key: "c", Severity: catalog.AlertCritical, Subject: "c", Region: "us"},
			{Key: "d", Severity: catalog.AlertCritical, Subject: "d", Region: "eu"},
			{Key: "e", Severity: catalog.AlertWarning, Subject: "e", Region: "us"},
		} {
			a, _, err := s.RaiseAlert(ctx, p)
			require.NoError(t, err, i)
			ids[p.Key] = a.ID
		}
		_, err := s.ResolveAlert(ctx, "d")
		require.NoError(t, err)
		_, err = s.AckAlert(ctx, ids["e"], "alice")
		require.NoError(t, err)

		keys := func(f catalog.AlertFilter) []string {
			list, next, err := s.ListAlerts(ctx, f)
			require.NoError(t, err)
			require.Zero(t, next)
			var out []string
			for _, a := range list {
				out = append(out, a.Key)
			}
			return out
		}
		require.Equal(t, []string{"e", "d", "c", "b", "a"}, keys(catalog.AlertFilter{}), "newest first")
		require.Equal(t, []string{"e", "c", "b", "a"}, keys(catalog.AlertFilter{Open: true}))
		require.Equal(t, []string{"c", "b", "a"}, keys(catalog.AlertFilter{Open: true, Unacked: true}))
		require.Equal(t, []string{"e", "d", "c", "b"}, keys(catalog.AlertFilter{MinSeverity: catalog.AlertWarning}))
		require.Equal(t, []string{"d", "c"}, keys(catalog.AlertFilter{MinSeverity: catalog.AlertCritical}))
		require.Equal(t, []string{"e", "d", "c", "b", "a"}, keys(catalog.AlertFilter{MinSeverity: catalog.AlertInfo}))
		require.Equal(t, []string{"d", "b", "a"}, keys(catalog.AlertFilter{Region: "eu"}))
		require.Equal(t, []string{"c"}, keys(catalog.AlertFilter{Region: "us", Open: true, Unacked: true}))
		require.Equal(t, []string{"b"}, keys(catalog.AlertFilter{Key: "b"}))

		_, _, err = s.ListAlerts(ctx, catalog.AlertFilter{MinSeverity: "loud"})
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve)
		_, _, err = s.ListAlerts(ctx, catalog.AlertFilter{Cursor: -1})
		require.ErrorAs(t, err, &ve)

		// Pages of two: every alert once, in order.
		var seen []string
		var cursor int64
		for pages := 0; ; pages++ {
			require.Less(t, pages, 5)
			list, next, err := s.ListAlerts(ctx, catalog.AlertFilter{Limit: 2, Cursor: cursor})
			require.NoError(t, err)
			for _, a := range list {
				seen = append(seen, a.Key)
			}
			if next == 0 {
				break
			}
			require.Len(t, list, 2)
			cursor = next
		}
		require.Equal(t, []string{"e", "d", "c", "b", "a"}, seen)
	})
}

func TestClaimAndFinishAlertDeliveries(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)
		_, err := s.ClaimAlertDeliveries(ctx, catalog.ClaimAlertDeliveriesParams{Limit: 1})
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve, "a claim without a lease is refused")

		var ids []int64
		for i := range 3 {
			a, _, err := s.RaiseAlert(ctx, catalog.RaiseAlertParams{Key: fmt.Sprint("k", i), Severity: catalog.AlertWarning, Subject: "s"})
			require.NoError(t, err)
			ids = append(ids, a.ID)
			clock.Advance(time.Second)
		}
		claim := func(limit int) []catalog.Alert {
			got, err := s.ClaimAlertDeliveries(ctx, catalog.ClaimAlertDeliveriesParams{Limit: limit, Lease: time.Minute})
			require.NoError(t, err)
			return got
		}
		got := claim(2)
		require.Len(t, got, 2)
		require.Equal(t, ids[0], got[0].ID, "oldest due first")
		require.Equal(t, ids[1], got[1].ID)
		require.Equal(t, 1, got[0].DeliveryAttempts)
		require.True(t, got[0].NextDeliveryAt.Equal(clock.Now().Add(time.Minute)))
		again := claim(10)
		require.Len(t, again, 1, "claimed alerts are not offered again while the claim holds")
		require.Equal(t, ids[2], again[0].ID)
		require.Empty(t, claim(10))

		// Delivered: done, nothing waits.
		require.NoError(t, s.FinishAlertDelivery(ctx, catalog.AlertDeliveryOutcome{ID: got[0].ID, Token: got[0].DeliveryToken, DeliveredTo: []string{"a", "b"}, Done: true}))
		a0, err := s.GetAlert(ctx, ids[0])
		require.NoError(t, err)
		require.NotNil(t, a0.DeliveredAt)
		require.Nil(t, a0.NextDeliveryAt)
		require.Equal(t, []string{"a", "b"}, a0.DeliveredTo.V)
		// A second report of the same claim is stale.
		err = s.FinishAlertDelivery(ctx, catalog.AlertDeliveryOutcome{ID: got[0].ID, Token: got[0].DeliveryToken - 1, Done: true})
		require.ErrorIs(t, err, catalog.ErrConflict)

		// A failure without its error is refused; with one, it is retried after RetryAfter.
		err = s.FinishAlertDelivery(ctx, catalog.AlertDeliveryOutcome{ID: got[1].ID, Token: got[1].DeliveryToken})
		require.ErrorAs(t, err, &ve)
		require.NoError(t, s.FinishAlertDelivery(ctx, catalog.AlertDeliveryOutcome{ID: got[1].ID, Token: got[1].DeliveryToken,
			DeliveredTo: []string{"a"}, Error: "b: 500 Internal Server Error", RetryAfter: 10 * time.Second}))
		a1, err := s.GetAlert(ctx, ids[1])
		require.NoError(t, err)
		require.Equal(t, "b: 500 Internal Server Error", a1.DeliveryError)
		require.Equal(t, []string{"a"}, a1.DeliveredTo.V)
		require.Nil(t, a1.DeliveredAt)
		clock.Advance(9 * time.Second)
		require.Empty(t, claim(10), "not before RetryAfter")
		clock.Advance(time.Second)
		re := claim(10)
		require.Len(t, re, 1)
		require.Equal(t, ids[1], re[0].ID)
		require.Equal(t, 2, re[0].DeliveryAttempts)
		require.Equal(t, []string{"a"}, re[0].DeliveredTo.V, "the retry knows who has it already")
		require.Equal(t, got[1].EventID(), re[0].EventID(), "a retry is the same event")

		// An expired claim is offered again; the old claimer's report is then stale.
		clock.Advance(time.Minute)
		re2 := claim(10)
		require.Len(t, re2, 2, "the expired claims of k1 and k2")
		err = s.FinishAlertDelivery(ctx, catalog.AlertDeliveryOutcome{ID: re[0].ID, Token: re[0].DeliveryToken, Done: true})
		require.ErrorIs(t, err, catalog.ErrConflict)

		// Giving up: nothing waits any more, the error says so.
		for _, a := range re2 {
			require.NoError(t, s.FinishAlertDelivery(ctx, catalog.AlertDeliveryOutcome{ID: a.ID, Token: a.DeliveryToken, Error: "timeout"}))
		}
		a2, err := s.GetAlert(ctx, ids[2])
		require.NoError(t, err)
		require.Nil(t, a2.NextDeliveryAt)
		require.Nil(t, a2.DeliveredAt)
		require.Equal(t, "gave up: timeout", a2.DeliveryError)
		clock.Advance(time.Hour)
		require.Empty(t, claim(10))
	})
}

// TestClaimAlertDeliveriesConcurrently: two notifiers claiming at once on
// one catalog never get the same alert.
func TestClaimAlertDeliveriesConcurrently(t *testing.T) {
	for _, d := range catalogtest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			dsn := catalogtest.DSN(t, d)
			a := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn})
			b := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn})
			ctx := context.Background()
			const n = 40
			for i := range n {
				_, _, err := a.RaiseAlert(ctx, catalog.RaiseAlertParams{Key: fmt.Sprint("k", i), Severity: catalog.AlertInfo, Subject: "s"})
				require.NoError(t, err)
			}
			var mu sync.Mutex
			seen := map[int64]int{}
			var wg sync.WaitGroup
			for _, s := range []*catalog.Store{a, b, a, b} {
				wg.Go(func() {
					for {
						got, err := s.ClaimAlertDeliveries(ctx, catalog.ClaimAlertDeliveriesParams{Limit: 3, Lease: time.Hour})
						if err != nil {
							t.Error(err)
							return
						}
						if len(got) == 0 {
							return
						}
						mu.Lock()
						for _, al := range got {
							seen[al.ID]++
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			require.Len(t, seen, n)
			for id, c := range seen {
				require.Equal(t, 1, c, "alert %d claimed %d times", id, c)
			}
		})
	}
}
