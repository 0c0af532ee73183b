package workload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// *catalog.Store is what cmd/weir wires into the scheduler.
var _ SchedulerStore = (*catalog.Store)(nil)

const schedRegion = "sched-r1"

func TestSchedulerConfig(t *testing.T) {
	t.Parallel()
	c := SchedulerConfig{Region: "r", NodeID: "n"}.WithDefaults()
	require.Equal(t, SchedulerIntervalDefault, c.Interval)
	require.Equal(t, MisfireGraceDefault, c.MisfireGrace)
	require.Equal(t, TickRetentionDefault, c.TickRetention)
	require.NoError(t, c.validate())
	for _, bad := range []SchedulerConfig{
		{NodeID: "n"},
		{Region: "r"},
		{Region: "r", NodeID: "n", Interval: -time.Second},
		{Region: "r", NodeID: "n", MisfireGrace: -time.Second},
	} {
		require.ErrorAs(t, bad.WithDefaults().validate(), new(*catalog.ValidationError), "%+v", bad)
	}
	err := NewScheduler(SchedulerConfig{Region: "r"}, nil, nil).Run(context.Background())
	require.ErrorContains(t, err, "node_id: is required")
	err = NewScheduler(SchedulerConfig{Region: "r", NodeID: "n"}, nil, nil).Run(context.Background())
	require.ErrorContains(t, err, "a catalog store and a submitter are required")
}

func TestPlanTicks(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	everySecond, err := catalog.ParseCronSchedule("* * * * * *", "UTC")
	require.NoError(t, err)
	everyMinute, err := catalog.ParseCronSchedule("* * * * *", "UTC")
	require.NoError(t, err)
	daily, err := catalog.ParseCronSchedule("0 2 * * *", "Europe/Paris")
	require.NoError(t, err)

	type step struct {
		tick string
		fire bool
	}
	cases := []struct {
		name    string
		c       *catalog.CronSchedule
		from    string
		now     string
		grace   time.Duration
		catchUp string
		max     int
		want    []step
		reason  string // of the first step
	}{
		{"not yet due", everySecond, "2026-03-01T12:00:01Z", "2026-03-01T12:00:00Z", time.Minute, catalog.CatchUpLatest, 100, nil, ""},
		{"due now", everySecond, "2026-03-01T12:00:00Z", "2026-03-01T12:00:00Z", time.Minute, catalog.CatchUpLatest, 100,
			[]step{{"2026-03-01T12:00:00Z", true}}, ""},
		{"late within the grace: all fire in order", everySecond, "2026-03-01T12:00:00Z", "2026-03-01T12:00:02Z", time.Minute, catalog.CatchUpSkip, 100,
			[]step{{"2026-03-01T12:00:00Z", true}, {"2026-03-01T12:00:01Z", true}, {"2026-03-01T12:00:02Z", true}}, ""},
		{"missed ticks skipped", everyMinute, "2026-03-01T12:00:00Z", "2026-03-01T12:10:30Z", time.Minute, catalog.CatchUpSkip, 100,
			[]step{{"2026-03-01T12:09:00Z", false}, {"2026-03-01T12:10:00Z", true}},
			"missed: the ticks from 2026-03-01T12:00:00Z to 2026-03-01T12:09:00Z missed their time by more than the grace of 1m0s (catch-up policy skip)"},
		{"the latest missed tick fires once", everyMinute, "2026-03-01T12:00:00Z", "2026-03-01T12:10:30Z", time.Minute, catalog.CatchUpLatest, 100,
			[]step{{"2026-03-01T12:09:00Z", true}, {"2026-03-01T12:10:00Z", true}},
			"catch-up: the ticks from 2026-03-01T12:00:00Z to 2026-03-01T12:09:00Z missed their time by more than the grace of 1m0s; the latest fires once"},
		{"one missed tick", daily, "2026-03-02T01:00:00Z", "2026-03-02T12:00:00Z", time.Minute, catalog.CatchUpLatest, 100,
			[]step{{"2026-03-02T01:00:00Z", true}},
			"catch-up: the tick 2026-03-02T02:00:00+01:00 missed its time by more than the grace of 1m0s; the latest fires once"},
		{"a month down, daily", daily, "2026-02-01T01:00:00Z", "2026-03-02T00:30:00Z", time.Minute, catalog.CatchUpSkip, 100,
			[]step{{"2026-03-01T01:00:00Z", false}}, ""},
		{"a week down, every second", everySecond, "2026-03-01T00:00:00Z", "2026-03-08T00:00:00Z", 3 * time.Second, catalog.CatchUpLatest, 100,
			[]step{{"2026-03-07T23:59:56Z", true}, {"2026-03-07T23:59:57Z", true}, {"2026-03-07T23:59:58Z", true}, {"2026-03-07T23:59:59Z", true}, {"2026-03-08T00:00:00Z", true}}, ""},
		{"bounded", everySecond, "2026-03-01T12:00:00Z", "2026-03-01T12:00:30Z", time.Minute, catalog.CatchUpLatest, 3,
			[]step{{"2026-03-01T12:00:00Z", true}, {"2026-03-01T12:00:01Z", true}, {"2026-03-01T12:00:02Z", true}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			got := planTicks(tc.c, at(tc.from), at(tc.now), tc.grace, tc.catchUp, tc.max)
			require.Less(t, time.Since(start), time.Second, "planning is cheap, however long the outage")
			require.Len(t, got, len(tc.want))
			for i, w := range tc.want {
				require.Equal(t, w.tick, got[i].tick.Format(time.RFC3339), "step %d", i)
				require.Equal(t, w.fire, got[i].fire, "step %d", i)
				require.True(t, got[i].next.Equal(tc.c.Next(got[i].tick)), "step %d: next", i)
				if i > 0 {
					require.True(t, got[i].tick.Equal(got[i-1].next), "steps chain")
				}
			}
			if tc.reason != "" {
				require.Equal(t, tc.reason, got[0].reason)
			}
		})
	}
}

// schedEnv is a catalog with a schedule owner, systems, a mapping
// "daily" (business_date: a date from 2026-01-01 up to today; stamp: a
// string) and a settable clock.
type schedEnv struct {
	t     *testing.T
	s     *catalog.Store
	ctx   context.Context
	owner *catalog.User
	mu    sync.Mutex
	now   time.Time
}

func newSchedEnv(t *testing.T, s *catalog.Store, clock bool) *schedEnv {
	t.Helper()
	e := &schedEnv{t: t, s: s, ctx: context.Background(), now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	if clock {
		s.SetClock(e.Now)
	}
	e.owner = &catalog.User{Name: "owner", Role: catalog.RoleSubmitter}
	require.NoError(t, s.CreateUser(e.ctx, e.owner))
	for _, n := range []string{"src", "dst"} {
		require.NoError(t, s.CreateSystem(e.ctx, &catalog.System{Name: n, Kind: catalog.KindFS, Region: schedRegion,
			Settings: catalog.NewJSON(map[string]string{"root": "/tmp/" + n})}))
	}
	require.NoError(t, s.CreateMapping(e.ctx, &catalog.Mapping{Name: "daily", Enabled: true,
		Source: catalog.NewJSON(catalog.Endpoint{System: "src", Path: "in/{business_date}"}),
		Target: catalog.NewJSON(catalog.Endpoint{System: "dst", Path: "out/{business_date}/{stamp}"}),
		Params: catalog.NewJSON([]catalog.ParamSpec{
			{Name: "business_date", Type: catalog.ParamDate, Required: true, Window: &catalog.DateWindow{Min: "2026-01-01"}},
			{Name: "stamp", Type: catalog.ParamString, Default: "none"},
		})}))
	return e
}

func (e *schedEnv) Now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *schedEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

func (e *schedEnv) schedule(mod ...func(*catalog.Schedule)) *catalog.Schedule {
	e.t.Helper()
	sc := &catalog.Schedule{Name: "every-minute", Mapping: "daily", Cron: "* * * * *", TimeZone: "Europe/Paris",
		Params:  catalog.NewJSON(map[string]string{"business_date": "${tick-1d:date}", "stamp": "${tick:unix}"}),
		Overlap: catalog.OverlapQueue, CatchUp: catalog.CatchUpLatest, Enabled: true,
		OwnerID: e.owner.ID, Owner: e.owner.Name, OwnerIP: "10.0.0.7"}
	for _, m := range mod {
		m(sc)
	}
	require.NoError(e.t, e.s.CreateSchedule(e.ctx, sc))
	return sc
}

func (e *schedEnv) ticks(scheduleID int64) []catalog.ScheduleTick {
	e.t.Helper()
	ts, err := e.s.ListScheduleTicks(e.ctx, scheduleID, 1000)
	require.NoError(e.t, err)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Tick.Before(ts[j].Tick) })
	return ts
}

func (e *schedEnv) get(name string) *catalog.Schedule {
	e.t.Helper()
	sc, err := e.s.GetSchedule(e.ctx, name)
	require.NoError(e.t, err)
	return sc
}

// storeSubmitter creates runs the way the broker does, minus the HTTP: the
// mapping's latest version, its parameter checks, the owner as submitter,
// the idempotency key. fail, when set, decides an error first.
type storeSubmitter struct {
	s     *catalog.Store
	gen   *catalog.RunIDGenerator
	fail  func(r catalog.ScheduledRun) error
	mu    sync.Mutex
	calls []catalog.ScheduledRun
}

func newStoreSubmitter(s *catalog.Store) *storeSubmitter {
	return &storeSubmitter{s: s, gen: catalog.NewRunIDGenerator(schedRegion)}
}

func (b *storeSubmitter) SubmitScheduled(ctx context.Context, r catalog.ScheduledRun) (*catalog.Run, bool, error) {
	b.mu.Lock()
	b.calls = append(b.calls, r)
	fail := b.fail
	b.mu.Unlock()
	if fail != nil {
		if err := fail(r); err != nil {
			return nil, false, err
		}
	}
	m, err := b.s.GetMapping(ctx, r.Mapping)
	if err != nil {
		return nil, false, err
	}
	in := map[string]any{}
	for k, v := range r.Params {
		in[k] = v
	}
	params, err := m.ResolveParams(in, r.Tick)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", catalog.ErrRefused, err)
	}
	u, err := b.s.GetUser(ctx, r.OwnerID)
	if err != nil {
		return nil, false, err
	}
	h, _ := json.Marshal([]any{m.Name, params, r.Priority})
	sum := sha256.Sum256(h)
	key := r.IdempotencyKey
	run := &catalog.Run{ID: b.gen.Next(), Region: m.Region, Mapping: m.Name, MappingVersion: m.Version, Params: catalog.NewJSON(params),
		SourceSystem: m.SourceSystem, TargetSystem: m.TargetSystem, RequestType: catalog.RequestTransfer, Priority: r.Priority,
		MaxAttempts: m.MaxAttempts, TimeoutSeconds: m.TimeoutSeconds, IdempotencyKey: &key, RequestHash: hex.EncodeToString(sum[:]),
		UserID: u.ID, SubmittedBy: u.Name, ClientIP: r.ClientIP}
	return b.s.InsertRun(ctx, run)
}

func (b *storeSubmitter) submitted() []catalog.ScheduledRun {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]catalog.ScheduledRun(nil), b.calls...)
}

// newTestScheduler returns a scheduler of node on e's store whose passes the
// test drives.
func (e *schedEnv) scheduler(node string, sub Submitter, mod ...func(*SchedulerConfig)) *Scheduler {
	cfg := SchedulerConfig{Region: schedRegion, NodeID: node, MisfireGrace: time.Minute}
	for _, m := range mod {
		m(&cfg)
	}
	s := NewScheduler(cfg, e.s, sub)
	require.NoError(e.t, s.cfg.validate())
	return s
}

func (e *schedEnv) lead(node string, ttl time.Duration) {
	e.t.Helper()
	l, err := e.s.AcquireLease(e.ctx, catalog.LeaderLeaseName(schedRegion), node, ttl)
	require.NoError(e.t, err)
	require.Equal(e.t, node, l.Holder)
}

func TestSchedulerFiresOnlyWhileItsNodeLeads(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newSchedEnv(t, s, true)
		sc := e.schedule()
		sub := newStoreSubmitter(s)
		a, b := e.scheduler("srv-a", sub), e.scheduler("srv-b", sub)

		e.advance(time.Minute) // the first tick, 12:01, is due
		require.NoError(t, a.pass(e.ctx))
		require.NoError(t, b.pass(e.ctx))
		require.Empty(t, sub.submitted(), "no one holds the lease: nothing fires")

		e.lead("srv-a", 10*time.Second)
		require.NoError(t, b.pass(e.ctx))
		require.Empty(t, sub.submitted(), "srv-b does not lead")
		require.NoError(t, a.pass(e.ctx))
		require.Len(t, sub.submitted(), 1)
		ticks := e.ticks(sc.ID)
		require.Len(t, ticks, 1)
		require.Equal(t, "2026-03-01T12:01:00Z", ticks[0].Tick.UTC().Format(time.RFC3339))
		require.Equal(t, "srv-a", ticks[0].Node)
		require.Equal(t, catalog.TickFired, ticks[0].Outcome)

		// The lease expires (srv-a stopped renewing): srv-a stops firing.
		e.advance(time.Minute)
		require.NoError(t, a.pass(e.ctx))
		require.Len(t, sub.submitted(), 1, "an expired lease fires nothing")
		e.lead("srv-b", 10*time.Second)
		require.NoError(t, b.pass(e.ctx))
		require.Len(t, sub.submitted(), 2)
		ticks = e.ticks(sc.ID)
		require.Len(t, ticks, 2)
		require.Equal(t, "srv-b", ticks[1].Node)
		require.Equal(t, "2026-03-01T12:02:00Z", ticks[1].Tick.UTC().Format(time.RFC3339))

		// The run carries what the tick derived, and its schedule and tick.
		run, err := s.GetRun(e.ctx, ticks[1].RunID)
		require.NoError(t, err)
		require.Equal(t, map[string]string{"business_date": "2026-02-28", "stamp": "1772366520"}, run.Params.V,
			"business_date is the tick's date in Paris minus one day")
		require.Equal(t, "owner", run.SubmittedBy, "runs are created as the schedule's owner")
		require.Equal(t, "10.0.0.7", run.ClientIP)
		require.Equal(t, catalog.ScheduleIdempotencyKey(sc.ID, ticks[1].Tick), *run.IdempotencyKey)
		evs, err := s.ListRunEvents(e.ctx, run.ID, 0)
		require.NoError(t, err)
		require.Equal(t, "scheduled", evs[len(evs)-1].Kind)
		require.Equal(t, "created by schedule every-minute for the tick 2026-03-01T13:02:00+01:00", evs[len(evs)-1].Message)

		got := e.get("every-minute")
		require.Equal(t, run.ID, got.LastRunID)
		require.Equal(t, "2026-03-01T12:03:00Z", got.NextTick.UTC().Format(time.RFC3339))
	})
}

func TestSchedulerOverlapPolicies(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newSchedEnv(t, s, true)
		skip := e.schedule(func(sc *catalog.Schedule) { sc.Name = "skip"; sc.Overlap = catalog.OverlapSkip })
		queue := e.schedule(func(sc *catalog.Schedule) { sc.Name = "queue"; sc.Overlap = catalog.OverlapQueue })
		sub := newStoreSubmitter(s)
		a := e.scheduler("srv-a", sub)
		e.lead("srv-a", time.Hour)

		for range 3 {
			e.advance(time.Minute)
			require.NoError(t, a.pass(e.ctx))
		}
		outcomes := func(id int64) []string {
			var out []string
			for _, tk := range e.ticks(id) {
				out = append(out, tk.Outcome)
			}
			return out
		}
		require.Equal(t, []string{"fired", "fired", "fired"}, outcomes(queue.ID), "queue: every tick runs, waiting behind the previous")
		require.Equal(t, []string{"fired", "skipped", "skipped"}, outcomes(skip.ID), "skip: no run while the previous is pending")
		ticks := e.ticks(skip.ID)
		require.Equal(t, fmt.Sprintf("the previous run %s is still pending (overlap policy skip)", ticks[0].RunID), ticks[1].Reason)

		// Once the previous run ended, the next tick fires.
		_, err := s.RequestCancel(e.ctx, ticks[0].RunID, "test")
		require.NoError(t, err)
		e.advance(time.Minute)
		require.NoError(t, a.pass(e.ctx))
		require.Equal(t, []string{"fired", "skipped", "skipped", "fired"}, outcomes(skip.ID))
	})
}

func TestSchedulerCatchUpAfterDowntime(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newSchedEnv(t, s, true)
		skip := e.schedule(func(sc *catalog.Schedule) { sc.Name = "skip"; sc.CatchUp = catalog.CatchUpSkip })
		latest := e.schedule(func(sc *catalog.Schedule) { sc.Name = "latest"; sc.CatchUp = catalog.CatchUpLatest })
		sub := newStoreSubmitter(s)
		a := e.scheduler("srv-a", sub)
		e.lead("srv-a", 24*time.Hour)
		e.advance(time.Minute)
		require.NoError(t, a.pass(e.ctx)) // 12:01 fires for both

		// Every server down for ten minutes and a half: 12:02 .. 12:11 are due,
		// of which 12:02 .. 12:10 are older than the minute of grace.
		e.advance(10*time.Minute + 30*time.Second)
		require.NoError(t, a.pass(e.ctx))

		st := e.ticks(skip.ID)
		require.Len(t, st, 3)
		require.Equal(t, []string{"12:01", "12:10", "12:11"}, hhmm(st))
		require.Equal(t, catalog.TickSkipped, st[1].Outcome)
		require.Contains(t, st[1].Reason, "the ticks from 2026-03-01T13:02:00+01:00 to 2026-03-01T13:10:00+01:00 missed their time")
		require.Equal(t, catalog.TickFired, st[2].Outcome, "the tick within the grace fires")

		lt := e.ticks(latest.ID)
		require.Equal(t, []string{"12:01", "12:10", "12:11"}, hhmm(lt))
		require.Equal(t, catalog.TickFired, lt[1].Outcome, "the latest missed tick fires once")
		require.Equal(t, catalog.TickFired, lt[2].Outcome)
		run, err := s.GetRun(e.ctx, lt[1].RunID)
		require.NoError(t, err)
		require.Equal(t, "1772367000", run.Params.V["stamp"], "with the parameters of its own tick (12:10)")
		evs, err := s.ListRunEvents(e.ctx, run.ID, 0)
		require.NoError(t, err)
		require.Contains(t, evs[len(evs)-1].Message, "catch-up: the ticks from")

		// Runs: 12:01 twice, then 12:11 for skip, 12:10 and 12:11 for latest.
		require.Len(t, sub.submitted(), 5)
	})
}

func hhmm(ts []catalog.ScheduleTick) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Tick.UTC().Format("15:04")
	}
	return out
}

func TestSchedulerRecordsRefusalsAlertsAndRetriesOutages(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newSchedEnv(t, s, true)
		sc := e.schedule()
		sub := newStoreSubmitter(s)
		a := e.scheduler("srv-a", sub)
		e.lead("srv-a", 24*time.Hour)

		// An outage of the broker's catalog: the tick stays due.
		var outage atomic.Bool
		outage.Store(true)
		sub.fail = func(catalog.ScheduledRun) error {
			if outage.Load() {
				return errors.New("connection refused")
			}
			return nil
		}
		e.advance(time.Minute)
		err := a.pass(e.ctx)
		require.ErrorContains(t, err, "schedule every-minute: fire the tick 2026-03-01T12:01:00Z: connection refused")
		require.Empty(t, e.ticks(sc.ID))
		require.Equal(t, "2026-03-01T12:01:00Z", e.get(sc.Name).NextTick.UTC().Format(time.RFC3339), "not lost")
		outage.Store(false)
		require.NoError(t, a.pass(e.ctx))
		require.Equal(t, []string{"12:01"}, hhmm(e.ticks(sc.ID)))

		// The mapping changed under the schedule: its ticks are refused,
		// recorded as failed, and one alert says so.
		m, err := s.GetMapping(e.ctx, "daily")
		require.NoError(t, err)
		m.Params.V = m.Params.V[:1] // stamp is no longer declared
		m.Target.V.Path = "out/{business_date}"
		require.NoError(t, s.PutMapping(e.ctx, m))
		for range 2 {
			e.advance(time.Minute)
			require.NoError(t, a.pass(e.ctx))
		}
		ticks := e.ticks(sc.ID)
		require.Len(t, ticks, 3)
		require.Equal(t, catalog.TickFailed, ticks[1].Outcome)
		require.Contains(t, ticks[1].Reason, `declares no parameter "stamp"`)
		got := e.get(sc.Name)
		require.Equal(t, catalog.TickFailed, got.LastOutcome)
		require.Contains(t, got.LastError, `declares no parameter "stamp"`)
		alerts, _, err := s.ListAlerts(e.ctx, catalog.AlertFilter{})
		require.NoError(t, err)
		require.Len(t, alerts, 1, "one alert, counted")
		require.Equal(t, "schedule-failed:every-minute", alerts[0].Key)
		require.Equal(t, int64(2), alerts[0].Count)
		require.Equal(t, "schedule every-minute cannot fire", alerts[0].Subject)

		// Fixed: the next tick fires and resolves the alert.
		m.Params.V = append(m.Params.V, catalog.ParamSpec{Name: "stamp", Type: catalog.ParamString})
		require.NoError(t, s.PutMapping(e.ctx, m))
		e.advance(time.Minute)
		require.NoError(t, a.pass(e.ctx))
		require.Equal(t, catalog.TickFired, e.get(sc.Name).LastOutcome)
		a0, err := s.GetAlert(e.ctx, alerts[0].ID)
		require.NoError(t, err)
		require.False(t, a0.Open(), "resolved by the next fire")
	})
}

// With leadership out of the way (both believe they lead), the catalog alone
// keeps every tick to one run: the idempotency key of the run and the
// compare-and-set of the schedule's next tick.
func TestTwoSchedulersThatBothBelieveTheyLeadFireEachTickOnce(t *testing.T) {
	for _, d := range catalogtest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			dsn := catalogtest.DSN(t, d)
			s1 := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn, MaxOpenConns: 4})
			s2 := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn, MaxOpenConns: 4})
			e := newSchedEnv(t, s1, true)
			s2.SetClock(e.Now)
			sc := e.schedule(func(sc *catalog.Schedule) { sc.Cron = "* * * * * *" })
			e2 := &schedEnv{t: t, s: s2, ctx: e.ctx}
			subA, subB := newStoreSubmitter(s1), newStoreSubmitter(s2)
			a := e.scheduler("srv-a", subA)
			b := e2.scheduler("srv-b", subB)
			believe := func(context.Context) (*catalog.Lease, bool, error) { return nil, true, nil }
			a.leader, b.leader = believe, believe

			const rounds = 30
			for i := range rounds {
				// Irregular steps: sometimes several ticks are due at once.
				e.advance(time.Duration(1+i%3) * time.Second)
				var wg sync.WaitGroup
				for _, sch := range []*Scheduler{a, b} {
					wg.Go(func() { _ = sch.pass(e.ctx) })
				}
				wg.Wait()
			}
			want := int(e.Now().Sub(*sc.NextTick)/time.Second) + 1
			ticks := requireEachTickOnce(t, s1, sc, want)
			require.Len(t, ticks, want)
			calls := len(subA.submitted()) + len(subB.submitted())
			require.Greater(t, calls, len(ticks), "both fired some ticks: the duplicates returned the first run")
			t.Logf("%d ticks, %d fires (srv-a %d, srv-b %d)", len(ticks), calls, len(subA.submitted()), len(subB.submitted()))
		})
	}
}

// requireEachTickOnce checks that the ticks of sc from its first are
// consecutive, n of them at least, each fired with its own run, and that
// the runs of its mapping are exactly those, each with one "scheduled" event.
func requireEachTickOnce(t *testing.T, s *catalog.Store, sc *catalog.Schedule, n int) []catalog.ScheduleTick {
	t.Helper()
	ctx := context.Background()
	ticks, err := s.ListScheduleTicks(ctx, sc.ID, catalog.ListLimitMax)
	require.NoError(t, err)
	sort.Slice(ticks, func(i, j int) bool { return ticks[i].Tick.Before(ticks[j].Tick) })
	require.GreaterOrEqual(t, len(ticks), n, "ticks lost")
	runs, _, err := s.ListRuns(ctx, catalog.RunFilter{Mapping: sc.Mapping, Limit: catalog.ListLimitMax})
	require.NoError(t, err)
	byID := map[string]catalog.Run{}
	for _, r := range runs {
		byID[r.ID] = r
	}
	require.Len(t, byID, len(ticks), "one run per tick, no more")
	first := sc.NextTick.UTC()
	for i, tk := range ticks {
		require.True(t, tk.Tick.Equal(first.Add(time.Duration(i)*time.Second)), "tick %d is %s: a gap or a repeat", i, tk.Tick)
		require.Equal(t, catalog.TickFired, tk.Outcome, "tick %s: %s", tk.Tick, tk.Reason)
		r, ok := byID[tk.RunID]
		require.True(t, ok, "tick %s names run %s", tk.Tick, tk.RunID)
		require.Equal(t, catalog.ScheduleIdempotencyKey(sc.ID, tk.Tick), *r.IdempotencyKey)
		require.Equal(t, fmt.Sprint(tk.Tick.Unix()), r.Params.V["stamp"])
		delete(byID, tk.RunID)
		evs, err := s.ListRunEvents(ctx, r.ID, 0)
		require.NoError(t, err)
		scheduled := 0
		for _, ev := range evs {
			if ev.Kind == "scheduled" {
				scheduled++
			}
		}
		require.Equal(t, 1, scheduled, "run %s has one scheduled event", r.ID)
	}
	return ticks
}

// scheduleSeconds is how long the real-time tests let a schedule fire every
// second: WEIR_SCHEDULE_SECONDS, or 20 (6 with -short). The full
// minute:
//
//	WEIR_SCHEDULE_SECONDS=60 WEIR_REQUIRE_POSTGRES=1 go test -race -run 'TestTwoServers|TestLeaderChange' -v ./workload/
func scheduleSeconds(t *testing.T) int {
	if v := envInt(t, "WEIR_SCHEDULE_SECONDS"); v > 0 {
		return v
	}
	if testing.Short() {
		return 6
	}
	return 20
}

func envInt(t *testing.T, name string) int {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return 0
	}
	var n int
	_, err := fmt.Sscan(v, &n)
	require.NoError(t, err, "%s=%q", name, v)
	return n
}

// schedServer is one server's worth: its own connection pool, a workload
// manager that campaigns for the leader lease, and a scheduler.
type schedServer struct {
	node   string
	cancel context.CancelFunc
	done   chan struct{}
}

// schedLeaseTTL is the leader lease of the real-time tests: a dead leader's
// lease runs out after at most this long.
const schedLeaseTTL = 2 * time.Second

// noRelease is a catalog that loses the lease release: its server dies
// without a goodbye, and the lease runs out.
type noRelease struct{ *catalog.Store }

func (noRelease) ReleaseLease(context.Context, string, string) error { return nil }

func startSchedServer(t *testing.T, dsn, node string, abrupt bool) *schedServer {
	t.Helper()
	st := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn, MaxOpenConns: 4})
	var ms Store = st
	if abrupt {
		ms = noRelease{st}
	}
	log := slog.New(slog.DiscardHandler)
	m := New(Config{Region: schedRegion, NodeID: node, LeaseTTL: schedLeaseTTL, PollInterval: 200 * time.Millisecond, Logger: log}, ms)
	sch := NewScheduler(SchedulerConfig{Region: schedRegion, NodeID: node, Interval: 100 * time.Millisecond, Logger: log}, st, newStoreSubmitter(st))
	ctx, cancel := context.WithCancel(context.Background())
	srv := &schedServer{node: node, cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, m.Run(ctx)) })
	wg.Go(func() { require.NoError(t, sch.Run(ctx)) })
	go func() { wg.Wait(); close(srv.done) }()
	t.Cleanup(srv.stop)
	return srv
}

func (s *schedServer) stop() {
	s.cancel()
	<-s.done
}

// The test: two servers, a schedule every second; every tick fires
// exactly once.
func TestTwoServersFireEveryTickOfAScheduleOnce(t *testing.T) {
	t.Parallel()
	dsn := catalogtest.NewPostgresDSN(t)
	setup := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn, MaxOpenConns: 4})
	e := newSchedEnv(t, setup, false)
	sc := e.schedule(func(sc *catalog.Schedule) { sc.Cron = "* * * * * *" })

	startSchedServer(t, dsn, "srv-a", false)
	startSchedServer(t, dsn, "srv-b", false)
	secs := scheduleSeconds(t)
	time.Sleep(time.Duration(secs)*time.Second + 1500*time.Millisecond)

	// Every tick up to a second ago has fired once.
	ticks := requireEachTickOnce(t, setup, sc, secs)
	nodes := map[string]int{}
	for _, tk := range ticks {
		nodes[tk.Node]++
	}
	require.Len(t, nodes, 1, "one leader fired them all: %v", nodes)
	for _, tk := range ticks {
		require.Less(t, tk.RecordedAt.Sub(tk.Tick), 5*time.Second, "tick %s fired late", tk.Tick)
	}
	t.Logf("%d ticks in %ds, each fired once, by %v", len(ticks), secs, nodes)
}

// The leader dies without releasing its lease a third of the way: the other
// server takes over when the lease runs out and fires the ticks missed in
// between (within the grace) once, late; none fires twice.
func TestLeaderChangeMidwayNeitherDoublesNorLosesTicks(t *testing.T) {
	t.Parallel()
	dsn := catalogtest.NewPostgresDSN(t)
	setup := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn, MaxOpenConns: 4})
	e := newSchedEnv(t, setup, false)
	sc := e.schedule(func(sc *catalog.Schedule) { sc.Cron = "* * * * * *" })
	secs := scheduleSeconds(t)

	a := startSchedServer(t, dsn, "srv-a", true)
	require.Eventually(t, func() bool {
		l, err := setup.GetLease(e.ctx, catalog.LeaderLeaseName(schedRegion))
		return err == nil && l.Holder == "srv-a"
	}, 5*time.Second, 10*time.Millisecond)
	b := startSchedServer(t, dsn, "srv-b", false)
	time.Sleep(time.Duration(secs) * time.Second / 3)
	a.stop()
	killed := time.Now()
	time.Sleep(time.Duration(secs)*time.Second*2/3 + 2*time.Second)
	b.stop()

	ticks := requireEachTickOnce(t, setup, sc, secs)
	var late int
	var latest time.Duration
	for i, tk := range ticks {
		latest = max(latest, tk.RecordedAt.Sub(tk.Tick))
		if i > 0 && ticks[i-1].Node == "srv-b" {
			require.Equal(t, "srv-b", tk.Node, "srv-a fired %s after srv-b took over", tk.Tick)
		}
		if tk.RecordedAt.Sub(tk.Tick) > time.Second {
			late++
		}
	}
	require.Equal(t, "srv-a", ticks[0].Node)
	require.Equal(t, "srv-b", ticks[len(ticks)-1].Node)
	t.Logf("%d ticks, srv-a killed at %s, %d fired more than a second late by srv-b, the latest %s late", len(ticks), killed.Format("15:04:05.000"), late, latest)
}
