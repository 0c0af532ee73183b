package catalog_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestInsertRunAndGetRun(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		in := f.newRun(func(r *catalog.Run) { r.Priority = 7; r.TokenID = ptr(int64(42)) })
		r, created, err := s.InsertRun(f.ctx, in)
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, catalog.StatePending, r.State)
		require.Equal(t, f.clock.Now(), r.CreatedAt)
		require.Equal(t, f.clock.Now(), r.NotBefore, "a run without not_before may start at once")

		got := f.reload(r.ID)
		require.Equal(t, catalog.StatePending, got.State)
		require.Equal(t, "m", got.Mapping)
		require.Equal(t, 1, got.MappingVersion)
		require.Equal(t, map[string]string{"business_date": "2026-02-27"}, got.Params.V)
		require.Equal(t, 7, got.Priority)
		require.Equal(t, "alice", got.SubmittedBy)
		require.Equal(t, f.user.ID, got.UserID)
		require.Equal(t, int64(42), *got.TokenID)
		require.Equal(t, "10.1.2.3", got.ClientIP)
		require.Equal(t, catalog.RequestTransfer, got.RequestType)
		require.Equal(t, 0, got.Attempt)
		require.True(t, got.CreatedAt.Equal(f.clock.Now()))
		require.Nil(t, got.IdempotencyKey)
		require.Equal(t, []string{"submitted"}, f.events(r.ID))

		_, err = s.GetRun(f.ctx, "000000000000000000000000")
		require.ErrorIs(t, err, catalog.ErrNotFound)

		// A run_id collision is ErrConflict and leaves the first run alone.
		dup := f.newRun(func(x *catalog.Run) { x.ID = r.ID; x.Mapping = "other" })
		_, _, err = s.InsertRun(f.ctx, dup)
		require.ErrorIs(t, err, catalog.ErrConflict)
		require.Equal(t, "m", f.reload(r.ID).Mapping)
		require.Equal(t, []string{"submitted"}, f.events(r.ID))

		// A later not_before is kept.
		later := f.clock.Now().Add(time.Hour)
		r2 := f.pending(func(x *catalog.Run) { x.NotBefore = later })
		require.True(t, f.reload(r2.ID).NotBefore.Equal(later))
	})
}

func TestInsertRunRefusesBadInput(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		cases := []struct {
			field string
			mod   func(*catalog.Run)
		}{
			{"run_id", func(r *catalog.Run) { r.ID = "" }},
			{"run_id", func(r *catalog.Run) { r.ID = "12345" }},
			{"run_id", func(r *catalog.Run) { r.ID = strings.Repeat("1", 30) }},
			{"idempotency_key", func(r *catalog.Run) { r.IdempotencyKey = ptr(strings.Repeat("k", 201)) }},
			{"idempotency_key", func(r *catalog.Run) { r.IdempotencyKey = ptr("") }},
		}
		for _, c := range cases {
			_, _, err := s.InsertRun(f.ctx, f.newRun(c.mod))
			var ve *catalog.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, c.field, ve.Field)
		}
		n, err := s.CountRuns(f.ctx, "")
		require.NoError(t, err)
		require.Empty(t, n, "refused runs were stored")
	})
}

func TestInsertRunIdempotency(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		key := func(k, hash string) func(*catalog.Run) {
			return func(r *catalog.Run) { r.IdempotencyKey = ptr(k); r.RequestHash = hash }
		}
		first, created, err := s.InsertRun(f.ctx, f.newRun(key("k1", "h1")))
		require.NoError(t, err)
		require.True(t, created)

		// Same key, same request: the same run, not a new one.
		again, created, err := s.InsertRun(f.ctx, f.newRun(key("k1", "h1")))
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, first.ID, again.ID)
		require.Equal(t, catalog.StatePending, again.State)

		// Same key, other request: conflict, nothing stored.
		_, _, err = s.InsertRun(f.ctx, f.newRun(key("k1", "h2")))
		require.ErrorIs(t, err, catalog.ErrConflict)

		// Same key used by another user: a separate run.
		bob := &catalog.User{Name: "bob", Role: catalog.RoleSubmitter}
		require.NoError(t, s.CreateUser(f.ctx, bob))
		other, created, err := s.InsertRun(f.ctx, f.newRun(key("k1", "h2"), func(r *catalog.Run) { r.UserID = bob.ID; r.SubmittedBy = "bob" }))
		require.NoError(t, err)
		require.True(t, created)
		require.NotEqual(t, first.ID, other.ID)

		// The replay still answers after the run moved on.
		f.dispatch(first.ID, workerFor(first.ID))
		again, created, err = s.InsertRun(f.ctx, f.newRun(key("k1", "h1")))
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, first.ID, again.ID)
		require.Equal(t, catalog.StateQueued, again.State)

		// Runs without a key never collide with each other.
		f.pending()
		f.pending()
		counts, err := s.CountRuns(f.ctx, "")
		require.NoError(t, err)
		require.Equal(t, map[catalog.RunState]int64{catalog.StatePending: 3, catalog.StateQueued: 1}, counts)
	})
}

func TestInsertRunConcurrentIdempotencyKey(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectPostgres)
	f := newFixture(t, s)
	const n = 8
	var wg sync.WaitGroup
	ids := make([]string, n)
	createdN := make([]bool, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		r := f.newRun(func(r *catalog.Run) { r.IdempotencyKey = ptr("same"); r.RequestHash = "h" })
		wg.Go(func() {
			<-start
			got, created, err := s.InsertRun(f.ctx, r)
			errs[i], createdN[i] = err, created
			if err == nil {
				ids[i] = got.ID
			}
		})
	}
	close(start)
	wg.Wait()
	winners := 0
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, ids[0], ids[i], "every caller gets the same run")
		if createdN[i] {
			winners++
		}
	}
	require.Equal(t, 1, winners, "exactly one insert created the run")
	counts, err := s.CountRuns(f.ctx, "")
	require.NoError(t, err)
	require.Equal(t, map[catalog.RunState]int64{catalog.StatePending: 1}, counts)
}

func TestListRunsFiltersAndPages(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		bob := &catalog.User{Name: "bob", Role: catalog.RoleSubmitter}
		require.NoError(t, s.CreateUser(f.ctx, bob))
		var all []string // in insertion order (oldest first)
		for i := range 23 {
			r := f.pending(func(r *catalog.Run) {
				if i%3 == 0 {
					r.Mapping = "m2"
				}
				if i%2 == 0 {
					r.UserID, r.SubmittedBy = bob.ID, "bob"
				}
				if i%5 == 0 {
					r.Region = "r2"
				}
			})
			all = append(all, r.ID)
		}
		f.dispatch(all[1], workerFor(all[1]))
		f.dispatch(all[2], workerFor(all[2]))

		newestFirst := make([]string, len(all))
		for i, id := range all {
			newestFirst[len(all)-1-i] = id
		}

		// Pages of 5 walk every run once, newest first, without gaps.
		var seen []string
		cursor := ""
		pages := 0
		for {
			page, next, err := s.ListRuns(f.ctx, catalog.RunFilter{Limit: 5, Cursor: cursor})
			require.NoError(t, err)
			require.LessOrEqual(t, len(page), 5)
			for _, r := range page {
				seen = append(seen, r.ID)
			}
			pages++
			if next == "" {
				break
			}
			require.Len(t, page, 5, "only the last page may be short")
			cursor = next
		}
		require.Equal(t, newestFirst, seen)
		require.Equal(t, 5, pages)

		// Exactly full last page: no empty page after it.
		page, next, err := s.ListRuns(f.ctx, catalog.RunFilter{Limit: 23})
		require.NoError(t, err)
		require.Len(t, page, 23)
		require.Empty(t, next)

		ids := func(f catalog.RunFilter) []string {
			t.Helper()
			f.Limit = 100
			rs, next, err := s.ListRuns(t.Context(), f)
			require.NoError(t, err)
			require.Empty(t, next)
			out := []string{}
			for _, r := range rs {
				out = append(out, r.ID)
			}
			return out
		}
		want := func(keep func(i int) bool) []string {
			out := []string{}
			for i := len(all) - 1; i >= 0; i-- {
				if keep(i) {
					out = append(out, all[i])
				}
			}
			return out
		}
		require.Equal(t, want(func(i int) bool { return i%3 == 0 }), ids(catalog.RunFilter{Mapping: "m2"}))
		require.Equal(t, want(func(i int) bool { return i%2 == 0 }), ids(catalog.RunFilter{SubmittedBy: "bob"}))
		require.Equal(t, want(func(i int) bool { return i%5 == 0 }), ids(catalog.RunFilter{Region: "r2"}))
		require.Equal(t, want(func(i int) bool { return i == 1 || i == 2 }), ids(catalog.RunFilter{States: []catalog.RunState{catalog.StateQueued}}))
		require.Equal(t, want(func(i int) bool { return i%3 != 0 }), ids(catalog.RunFilter{Mappings: []string{"m", "nope"}}))
		require.Equal(t, []string{}, ids(catalog.RunFilter{Mappings: []string{}}), "an empty allow-list shows nothing")
		require.Equal(t, want(func(i int) bool { return i%3 == 0 && i%2 == 0 && i%5 != 0 }),
			ids(catalog.RunFilter{Mapping: "m2", SubmittedBy: "bob", Region: testRegion}))

		// Filtered pages: no duplicates, no gaps.
		seen = nil
		cursor = ""
		for {
			page, next, err := s.ListRuns(f.ctx, catalog.RunFilter{Limit: 2, Cursor: cursor, SubmittedBy: "bob"})
			require.NoError(t, err)
			for _, r := range page {
				seen = append(seen, r.ID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		require.Equal(t, want(func(i int) bool { return i%2 == 0 }), seen)

		// Limits: default and maximum.
		page, _, err = s.ListRuns(f.ctx, catalog.RunFilter{})
		require.NoError(t, err)
		require.Len(t, page, 23)
		page, _, err = s.ListRuns(f.ctx, catalog.RunFilter{Limit: catalog.ListLimitMax * 10})
		require.NoError(t, err)
		require.Len(t, page, 23)
	})
}

func TestListRunsDefaultLimit(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		for range catalog.ListLimitDefault + 1 {
			f.pending()
		}
		page, next, err := s.ListRuns(f.ctx, catalog.RunFilter{})
		require.NoError(t, err)
		require.Len(t, page, catalog.ListLimitDefault)
		require.NotEmpty(t, next)
		page, next, err = s.ListRuns(f.ctx, catalog.RunFilter{Cursor: next})
		require.NoError(t, err)
		require.Len(t, page, 1)
		require.Empty(t, next)
	})
}

func TestCountRuns(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		counts, err := s.CountRuns(f.ctx, "")
		require.NoError(t, err)
		require.Empty(t, counts)
		for _, st := range []catalog.RunState{catalog.StatePending, catalog.StatePending, catalog.StateQueued, catalog.StateActive, catalog.StateSucceeded, catalog.StateFailed} {
			f.inState(st)
		}
		f.pending(func(r *catalog.Run) { r.Region = "r2" })
		counts, err = s.CountRuns(f.ctx, testRegion)
		require.NoError(t, err)
		require.Equal(t, map[catalog.RunState]int64{
			catalog.StatePending: 2, catalog.StateQueued: 1, catalog.StateActive: 1, catalog.StateSucceeded: 1, catalog.StateFailed: 1,
		}, counts)
		counts, err = s.CountRuns(f.ctx, "")
		require.NoError(t, err)
		require.Equal(t, int64(3), counts[catalog.StatePending])
		counts, err = s.CountRuns(f.ctx, "r2")
		require.NoError(t, err)
		require.Equal(t, map[catalog.RunState]int64{catalog.StatePending: 1}, counts)
	})
}

func TestRunEventsAndAttempts(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		r := f.active()
		require.NoError(t, s.AddEvent(f.ctx, &catalog.RunEvent{RunID: r.ID, Attempt: 1, Kind: "note", Node: "w", Message: "hello"}))
		evs, err := s.ListRunEvents(f.ctx, r.ID, 0)
		require.NoError(t, err)
		require.Equal(t, []string{"submitted", "queued", "active", "note"}, f.events(r.ID))
		last := evs[len(evs)-1]
		require.Equal(t, "hello", last.Message)
		require.True(t, last.At.Equal(f.clock.Now()))
		after, err := s.ListRunEvents(f.ctx, r.ID, evs[1].ID)
		require.NoError(t, err)
		require.Len(t, after, 2)
		require.Equal(t, "active", after[0].Kind)

		other := f.active()
		as, err := s.ListRunAttempts(f.ctx, "")
		require.NoError(t, err)
		require.Len(t, as, 2)
		as, err = s.ListRunAttempts(f.ctx, other.ID)
		require.NoError(t, err)
		require.Len(t, as, 1)
		require.Equal(t, other.ID, as[0].RunID)
	})
}

func TestLongTextsAreStoredOnEveryDialect(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		r := f.active()
		long := strings.Repeat("é", 5000) // longer than the error column in characters and bytes
		st, err := s.FinishRun(f.ctx, catalog.FinishParams{RunID: r.ID, FencingToken: r.FencingToken, Worker: workerFor(r.ID), State: catalog.StateFailed, Error: long, Retryable: true})
		require.NoError(t, err)
		require.Equal(t, catalog.StatePending, st)
		got := f.reload(r.ID)
		require.NotEmpty(t, got.Error)
		require.True(t, strings.HasPrefix(long, strings.TrimSuffix(got.Error, "…")), "the error is cut, not mangled")
		require.LessOrEqual(t, len([]rune(got.Error)), 4000)

		p := f.pending()
		require.NoError(t, s.SetHoldReason(f.ctx, p.ID, strings.Repeat("h", 2000)))
		require.LessOrEqual(t, len([]rune(f.reload(p.ID).HoldReason)), 500)
		require.NotEmpty(t, f.reload(p.ID).HoldReason)

		require.NoError(t, s.AddEvent(f.ctx, &catalog.RunEvent{RunID: p.ID, Kind: "note", Message: long}))
		evs, err := s.ListRunEvents(f.ctx, p.ID, 0)
		require.NoError(t, err)
		require.LessOrEqual(t, len([]rune(evs[len(evs)-1].Message)), 4000)
	})
}
