package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestParseCronScheduleRefusesBadInputPrecisely(t *testing.T) {
	t.Parallel()
	cases := []struct {
		expr, zone string
		field      string
		want       string
	}{
		{"", "", "cron", "is required"},
		{"* * * *", "", "cron", "expected 5 to 6 fields, found 4"},
		{"* * * * * * *", "", "cron", "expected 5 to 6 fields, found 7"},
		{"61 * * * *", "", "cron", "above maximum (59)"},
		{"* * * 13 *", "", "cron", "above maximum (12)"},
		{"@every", "", "cron", "unrecognized descriptor"},
		{"@reboot", "", "cron", "unrecognized descriptor"},
		{"@every 5 minutes", "", "cron", "is not a cron expression"},
		{"TZ=Europe/Paris 0 2 * * *", "", "cron", "give it in time_zone instead"},
		{"CRON_TZ=UTC @daily", "", "cron", "give it in time_zone instead"},
		{"0 0 30 2 *", "", "cron", "never fires"},
		{"0 0 31 4 *", "", "cron", "never fires"},
		{strings.Repeat("1,", 150) + "1 * * * *", "", "cron", "at most 200 characters"},
		{"@daily", "Mars/Olympus", "time_zone", `"Mars/Olympus" is not an IANA time zone`},
		{"@daily", "Local", "time_zone", "is not an IANA time zone"},
		{"@daily", "europe/paris", "time_zone", "is not an IANA time zone"},
		{"@daily", "../../etc/passwd", "time_zone", "is not an IANA time zone"},
	}
	for _, tc := range cases {
		t.Run(tc.expr+"|"+tc.zone, func(t *testing.T) {
			_, err := catalog.ParseCronSchedule(tc.expr, tc.zone)
			var ve *catalog.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.field, ve.Field)
			require.Contains(t, ve.Message, tc.want)
		})
	}
	for _, ok := range []string{"*/5 * * * *", "0 30 2 * * 1-5", "@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually", "@every 90m", "0 0 29 2 *", "0 9 * * MON-FRI", "0 0 1 JAN,JUL *"} {
		_, err := catalog.ParseCronSchedule(ok, "Europe/Paris")
		require.NoError(t, err, ok)
	}
}

func TestCronScheduleTicksInZonesAndAcrossDaylightSaving(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, expr, zone, from string
		want                   []string // RFC 3339 in the zone
	}{
		{"five fields, UTC", "30 2 * * *", "", "2026-03-01T12:00:00Z",
			[]string{"2026-03-02T02:30:00Z", "2026-03-03T02:30:00Z"}},
		{"seconds first", "*/20 * * * * *", "UTC", "2026-03-01T12:00:00.5Z",
			[]string{"2026-03-01T12:00:20Z", "2026-03-01T12:00:40Z", "2026-03-01T12:01:00Z"}},
		{"after is exclusive", "0 * * * *", "UTC", "2026-03-01T12:00:00Z",
			[]string{"2026-03-01T13:00:00Z"}},
		{"zone shifts the instant", "0 9 * * *", "Asia/Tokyo", "2026-02-28T23:00:00Z",
			[]string{"2026-03-01T09:00:00+09:00", "2026-03-02T09:00:00+09:00"}},
		{"weekdays", "0 9 * * MON-FRI", "Europe/Paris", "2026-03-06T12:00:00Z", // a Friday
			[]string{"2026-03-09T09:00:00+01:00", "2026-03-10T09:00:00+01:00"}},
		{"monthly descriptor", "@monthly", "Europe/Paris", "2026-01-15T00:00:00Z",
			[]string{"2026-02-01T00:00:00+01:00", "2026-03-01T00:00:00+01:00"}},
		{"every counts real time", "@every 90m", "UTC", "2026-03-01T00:00:00Z",
			[]string{"2026-03-01T01:30:00Z", "2026-03-01T03:00:00Z"}},
		// New York springs forward on 8 March 2026 at 02:00 to 03:00.
		{"fixed time in the spring gap fires at its end", "30 2 * * *", "America/New_York", "2026-03-07T00:00:00Z",
			[]string{"2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"fixed time at the gap's end fires once", "0 3 * * *", "America/New_York", "2026-03-08T00:00:00Z",
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T03:00:00-04:00"}},
		{"two fixed times in the gap fire once", "0,30 2 * * *", "America/New_York", "2026-03-08T06:00:00Z",
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"}},
		{"wildcard hour has no ticks in the gap", "30 * * * *", "America/New_York", "2026-03-08T05:00:00Z",
			[]string{"2026-03-08T00:30:00-05:00", "2026-03-08T01:30:00-05:00", "2026-03-08T03:30:00-04:00"}},
		// New York falls back on 1 November 2026 at 02:00 to 01:00.
		{"fixed time in the repeated hour fires once", "30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z",
			[]string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
		{"wildcard minutes tick in both passes", "*/30 * * * *", "America/New_York", "2026-11-01T05:00:00Z",
			[]string{"2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"}},
		// Berlin: forward on 29 March 2026 02:00 -> 03:00, back on 25 October 03:00 -> 02:00.
		{"Berlin spring gap", "0 2 * * *", "Europe/Berlin", "2026-03-28T00:00:00Z",
			[]string{"2026-03-28T02:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"}},
		{"Berlin autumn repeat", "0 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z",
			[]string{"2026-10-25T02:00:00+02:00", "2026-10-26T02:00:00+01:00"}},
		{"daily midnight across the gap", "@daily", "Europe/Berlin", "2026-03-28T12:00:00Z",
			[]string{"2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"}},
		// Sao Paulo (2018) skipped midnight itself: 00:00 -> 01:00.
		{"skipped midnight", "0 0 * * *", "America/Sao_Paulo", "2018-11-03T12:00:00Z",
			[]string{"2018-11-04T01:00:00-02:00", "2018-11-05T00:00:00-02:00"}},
		{"leap day", "0 0 29 2 *", "UTC", "2026-03-01T00:00:00Z",
			[]string{"2028-02-29T00:00:00Z"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := catalog.ParseCronSchedule(tc.expr, tc.zone)
			require.NoError(t, err)
			from, err := time.Parse(time.RFC3339Nano, tc.from)
			require.NoError(t, err)
			got := c.Upcoming(from, len(tc.want))
			require.Len(t, got, len(tc.want))
			for i, g := range got {
				require.Equal(t, time.UTC, g.Location(), "ticks are returned in UTC")
				require.Equal(t, tc.want[i], g.In(c.Location()).Format(time.RFC3339), "tick %d", i)
				require.Zero(t, g.Nanosecond(), "ticks are whole seconds")
			}
			// Next is a strict order: from a tick, the next one is later.
			for i := 1; i < len(got); i++ {
				require.True(t, got[i].After(got[i-1]))
				require.True(t, c.Next(got[i-1]).Equal(got[i]))
			}
		})
	}
}

func TestExpandTickTemplate(t *testing.T) {
	t.Parallel()
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	tick := time.Date(2026, 3, 1, 0, 30, 0, 0, paris) // 2026-02-28T23:30Z
	cases := []struct{ tmpl, want string }{
		{"plain", "plain"},
		{"", ""},
		{"${tick}", "2026-03-01T00:30:00+01:00"},
		{"${tick:date}", "2026-03-01"},
		{"${tick-1d:date}", "2026-02-28"},
		{"${tick+1d:date}", "2026-03-02"},
		{"${tick-1w:date}", "2026-02-22"},
		{"${tick-1mo:month}", "2026-02"},
		{"${tick-1y:year}", "2025"},
		{"${tick-1h:datetime}", "2026-02-28T23:30:00"},
		{"${tick-30m:time}", "00:00:00"},
		{"${tick+15s:time}", "00:30:15"},
		{"${tick-1d-12h:datetime}", "2026-02-27T12:30:00"},
		{"${tick:compact}", "20260301"},
		{"${tick:unix}", "1772321400"},
		{"${tick:rfc3339}", "2026-03-01T00:30:00+01:00"},
		{"${tick:2006/01/02 15h}", "2026/03/01 00h"},
		{"day=${tick-1d:date}/hour=${tick:15}", "day=2026-02-28/hour=00"},
		{"$${tick}", "${tick}"},
		{"cost $5 {x}", "cost $5 {x}"},
		{"${ tick:date }", "2026-03-01"},
	}
	for _, tc := range cases {
		got, err := catalog.ExpandTickTemplate("params.p", tc.tmpl, tick)
		require.NoError(t, err, tc.tmpl)
		require.Equal(t, tc.want, got, tc.tmpl)
	}

	// Months clamp to the last day; days keep the wall-clock time across DST.
	mar31 := time.Date(2026, 3, 31, 8, 0, 0, 0, paris)
	got, err := catalog.ExpandTickTemplate("p", "${tick-1mo:date} ${tick+1y-1mo:date}", mar31)
	require.NoError(t, err)
	require.Equal(t, "2026-02-28 2027-02-28", got)
	leap := time.Date(2028, 2, 29, 8, 0, 0, 0, time.UTC)
	got, err = catalog.ExpandTickTemplate("p", "${tick+1y:date} ${tick-4y:date}", leap)
	require.NoError(t, err)
	require.Equal(t, "2029-02-28 2024-02-29", got)
	afterGap := time.Date(2026, 3, 30, 2, 30, 0, 0, paris) // the day after Paris's spring change
	got, err = catalog.ExpandTickTemplate("p", "${tick-1d} ${tick-24h}", afterGap)
	require.NoError(t, err)
	require.Equal(t, "2026-03-29T03:30:00+02:00 2026-03-29T01:30:00+01:00", got, "-1d keeps the wall clock, and 02:30 did not exist that day: it is 03:30; -24h is real time")

	for _, bad := range []struct{ tmpl, want string }{
		{"${tick", "without its closing }"},
		{"${today}", "is not a tick template"},
		{"${tick-1x:date}", "is not a tick template"},
		{"${tick-d:date}", "is not a tick template"},
		{"${tick:}", "is not a tick template"},
		{"${tick:nonsense}", "neither a layout name"},
		{"${tick-1234567d}", "is not a tick template"},
		{"${}", "is not a tick template"},
	} {
		_, err := catalog.ExpandTickTemplate("params.business_date", bad.tmpl, tick)
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve, bad.tmpl)
		require.Equal(t, "params.business_date", ve.Field)
		require.Contains(t, ve.Message, bad.want, bad.tmpl)
	}
}

// scheduleFixture is a catalog with the fixture's user (alice), systems src
// and dst in testRegion, and the mapping daily (business_date: a date from
// 2026-01-01 up to today; desk: a string, default main; target path
// out/{desk}/{business_date}).
func scheduleFixture(t *testing.T, s *catalog.Store) *fixture {
	t.Helper()
	f := newFixture(t, s)
	for _, name := range []string{"src", "dst"} {
		require.NoError(t, s.CreateSystem(f.ctx, &catalog.System{Name: name, Kind: catalog.KindFS, Region: testRegion,
			Settings: catalog.NewJSON(map[string]string{"root": "/data/" + name})}))
	}
	require.NoError(t, s.CreateMapping(f.ctx, &catalog.Mapping{Name: "daily", Enabled: true,
		Source: catalog.NewJSON(catalog.Endpoint{System: "src", Path: "in/{business_date}"}),
		Target: catalog.NewJSON(catalog.Endpoint{System: "dst", Path: "out/{desk}/{business_date}"}),
		Params: catalog.NewJSON([]catalog.ParamSpec{
			{Name: "business_date", Type: catalog.ParamDate, Required: true, Window: &catalog.DateWindow{Min: "2026-01-01"}},
			{Name: "desk", Type: catalog.ParamString, Default: "main"},
		})}))
	return f
}

func (f *fixture) schedule(mod ...func(*catalog.Schedule)) *catalog.Schedule {
	sc := &catalog.Schedule{Name: "nightly", Mapping: "daily", Cron: "0 2 * * *", TimeZone: "Europe/Paris",
		Params:  catalog.NewJSON(map[string]string{"business_date": "${tick-1d:date}"}),
		Enabled: true, OwnerID: f.user.ID, Owner: f.user.Name, OwnerIP: "10.1.2.3"}
	for _, m := range mod {
		m(sc)
	}
	return sc
}

func TestCreateScheduleValidatesAgainstItsMapping(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := scheduleFixture(t, s)
		// Clock: 2026-03-01 12:00 UTC; the first tick of 02:00 Paris is 2026-03-02T01:00Z.
		sc := f.schedule()
		require.NoError(t, s.CreateSchedule(f.ctx, sc))
		require.NotZero(t, sc.ID)
		require.Equal(t, testRegion, sc.Region, "a schedule's region is its mapping's")
		require.Equal(t, catalog.OverlapSkip, sc.Overlap)
		require.Equal(t, catalog.CatchUpLatest, sc.CatchUp)
		require.NotNil(t, sc.NextTick)
		require.Equal(t, "2026-03-02T01:00:00Z", sc.NextTick.UTC().Format(time.RFC3339))

		got, err := s.GetSchedule(f.ctx, "nightly")
		require.NoError(t, err)
		require.Equal(t, sc.ID, got.ID)
		require.Equal(t, map[string]string{"business_date": "${tick-1d:date}"}, got.Params.V)
		require.True(t, got.NextTick.Equal(*sc.NextTick))
		require.Equal(t, "10.1.2.3", got.OwnerIP)

		err = s.CreateSchedule(f.ctx, f.schedule())
		require.ErrorIs(t, err, catalog.ErrConflict, "the name is taken")

		require.NoError(t, s.CreateMapping(f.ctx, &catalog.Mapping{Name: "off", Enabled: false,
			Source: catalog.NewJSON(catalog.Endpoint{System: "src"}), Target: catalog.NewJSON(catalog.Endpoint{System: "dst"})}))

		bad := []struct {
			name  string
			mod   func(*catalog.Schedule)
			field string
			want  string
		}{
			{"bad name", func(sc *catalog.Schedule) { sc.Name = "Nightly!" }, "name", "is not a valid name"},
			{"no mapping", func(sc *catalog.Schedule) { sc.Mapping = "" }, "mapping", "is required"},
			{"unknown mapping", func(sc *catalog.Schedule) { sc.Mapping = "nope" }, "mapping", `no mapping named "nope"`},
			{"disabled mapping", func(sc *catalog.Schedule) { sc.Mapping = "off"; sc.Params.V = nil }, "mapping", "mapping off is disabled"},
			{"bad cron", func(sc *catalog.Schedule) { sc.Cron = "0 25 * * *" }, "cron", "above maximum (23)"},
			{"bad zone", func(sc *catalog.Schedule) { sc.TimeZone = "Europe/Pariss" }, "time_zone", "is not an IANA time zone"},
			{"bad overlap", func(sc *catalog.Schedule) { sc.Overlap = "wait" }, "overlap", `got "wait"`},
			{"bad catch-up", func(sc *catalog.Schedule) { sc.CatchUp = "all" }, "catch_up", `got "all"`},
			{"bad priority", func(sc *catalog.Schedule) { sc.Priority = 5000 }, "priority", "between -1000 and 1000"},
			{"no owner", func(sc *catalog.Schedule) { sc.OwnerID = 0 }, "owner", "needs an owner"},
			{"bad template", func(sc *catalog.Schedule) { sc.Params.V["business_date"] = "${tick-1q:date}" }, "params.business_date", "is not a tick template"},
			{"undeclared param", func(sc *catalog.Schedule) { sc.Params.V["region"] = "x" }, "params.region", `declares no parameter "region"`},
			{"missing required", func(sc *catalog.Schedule) { delete(sc.Params.V, "business_date") }, "params.business_date", "is required"},
			{"not a date", func(sc *catalog.Schedule) { sc.Params.V["business_date"] = "${tick:compact}" }, "params.business_date", `"20260302" is not a date (YYYY-MM-DD) (for the tick 2026-03-02T02:00:00+01:00)`},
			{"in the future", func(sc *catalog.Schedule) { sc.Params.V["business_date"] = "${tick+1d:date}" }, "params.business_date", "is in the future"},
			{"before the window", func(sc *catalog.Schedule) { sc.Params.V["business_date"] = "${tick-1y:date}" }, "params.business_date", "before the data set's window, which starts 2026-01-01"},
			{"path escape", func(sc *catalog.Schedule) { sc.Params.V["desk"] = ".." }, "params.desk", `".." would make the mapping's target.path leave the system's root`},
			{"bad param name", func(sc *catalog.Schedule) { sc.Params.V["bad-name"] = "x" }, "params.bad-name", "is not a valid parameter name"},
		}
		for _, tc := range bad {
			sc := f.schedule(func(sc *catalog.Schedule) {
				sc.Name = "other"
				sc.Params.V = map[string]string{"business_date": "${tick-1d:date}"}
			}, tc.mod)
			err := s.CreateSchedule(f.ctx, sc)
			var ve *catalog.ValidationError
			require.ErrorAs(t, err, &ve, tc.name)
			require.Equal(t, tc.field, ve.Field, tc.name)
			require.Contains(t, ve.Message, tc.want, tc.name)
		}
		all, err := s.ListSchedules(f.ctx, catalog.ScheduleFilter{})
		require.NoError(t, err)
		require.Len(t, all, 1, "refused schedules store nothing")

		disabled := f.schedule(func(sc *catalog.Schedule) { sc.Name = "paused"; sc.Enabled = false })
		require.NoError(t, s.CreateSchedule(f.ctx, disabled))
		require.Nil(t, disabled.NextTick, "a disabled schedule has no next tick")
		due, err := s.ListSchedules(f.ctx, catalog.ScheduleFilter{Mappings: []string{}})
		require.NoError(t, err)
		require.Empty(t, due, "an empty mapping list lists nothing")
		mine, err := s.ListSchedules(f.ctx, catalog.ScheduleFilter{Mapping: "daily", Region: testRegion, Mappings: []string{"daily"}})
		require.NoError(t, err)
		require.Len(t, mine, 2)
		require.Equal(t, "nightly", mine[0].Name)
		require.Equal(t, "paused", mine[1].Name)
	})
}

func TestUpdateScheduleKeepsOrResetsItsNextTick(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := scheduleFixture(t, s)
		sc := f.schedule()
		require.NoError(t, s.CreateSchedule(f.ctx, sc))
		first := *sc.NextTick

		// A day later, unprocessed: the next tick is due and stays when only
		// the parameters change.
		f.clock.Advance(24 * time.Hour)
		up := f.schedule(func(sc *catalog.Schedule) { sc.Params.V["desk"] = "fx"; sc.Priority = 5; sc.Owner = "alice" })
		require.NoError(t, s.UpdateSchedule(f.ctx, up))
		require.Equal(t, sc.ID, up.ID)
		require.True(t, up.NextTick.Equal(first), "unchanged expression: the due tick is not lost")
		require.Equal(t, 5, up.Priority)
		require.Equal(t, "fx", up.Params.V["desk"])
		require.True(t, up.CreatedAt.Equal(sc.CreatedAt))
		require.True(t, up.UpdatedAt.After(sc.UpdatedAt))

		// A new expression starts after now.
		up = f.schedule(func(sc *catalog.Schedule) { sc.Cron = "0 6 * * *" })
		require.NoError(t, s.UpdateSchedule(f.ctx, up))
		require.Equal(t, "2026-03-03T05:00:00Z", up.NextTick.UTC().Format(time.RFC3339))

		// Disabling clears it; enabling again starts after now: nothing is caught up.
		up = f.schedule(func(sc *catalog.Schedule) { sc.Cron = "0 6 * * *"; sc.Enabled = false })
		require.NoError(t, s.UpdateSchedule(f.ctx, up))
		require.Nil(t, up.NextTick)
		f.clock.Advance(72 * time.Hour)
		up = f.schedule(func(sc *catalog.Schedule) { sc.Cron = "0 6 * * *" })
		require.NoError(t, s.UpdateSchedule(f.ctx, up))
		require.Equal(t, "2026-03-06T05:00:00Z", up.NextTick.UTC().Format(time.RFC3339))

		// Invalid changes change nothing.
		before, err := s.GetSchedule(f.ctx, "nightly")
		require.NoError(t, err)
		err = s.UpdateSchedule(f.ctx, f.schedule(func(sc *catalog.Schedule) { sc.Cron = "bad" }))
		require.ErrorAs(t, err, new(*catalog.ValidationError))
		err = s.UpdateSchedule(f.ctx, f.schedule(func(sc *catalog.Schedule) { sc.Mapping = "nope" }))
		require.ErrorAs(t, err, new(*catalog.ValidationError))
		after, err := s.GetSchedule(f.ctx, "nightly")
		require.NoError(t, err)
		require.Equal(t, before.Cron, after.Cron)
		require.True(t, before.UpdatedAt.Equal(after.UpdatedAt))

		err = s.UpdateSchedule(f.ctx, f.schedule(func(sc *catalog.Schedule) { sc.Name = "ghost" }))
		require.ErrorIs(t, err, catalog.ErrNotFound)
	})
}

func TestRecordScheduleTickMovesTheNextTickOnce(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := scheduleFixture(t, s)
		sc := f.schedule(func(sc *catalog.Schedule) { sc.Cron = "0 * * * *"; sc.TimeZone = "UTC" })
		require.NoError(t, s.CreateSchedule(f.ctx, sc))
		t1 := *sc.NextTick // 13:00
		require.Equal(t, "2026-03-01T13:00:00Z", t1.Format(time.RFC3339))

		due, err := s.ListDueSchedules(f.ctx, testRegion, 10)
		require.NoError(t, err)
		require.Empty(t, due, "not due before its tick")
		f.clock.Advance(time.Hour)
		due, err = s.ListDueSchedules(f.ctx, testRegion, 10)
		require.NoError(t, err)
		require.Len(t, due, 1)
		require.True(t, due[0].NextTick.Equal(t1))
		other, err := s.ListDueSchedules(f.ctx, "elsewhere", 10)
		require.NoError(t, err)
		require.Empty(t, other, "only the region's schedules")

		run := f.pending(func(r *catalog.Run) { r.Mapping = "daily" })
		t2 := t1.Add(time.Hour)
		p := catalog.RecordTickParams{ScheduleID: sc.ID, Expect: *due[0].NextTick, Tick: t1, Next: t2, Outcome: catalog.TickFired,
			RunID: run.ID, Node: "srv1", LeaseName: f.lease.Name, LeaseHolder: f.lease.Holder, LeaseToken: f.lease.Token}

		// A stale leader changes nothing.
		stale := p
		stale.LeaseToken++
		_, err = s.RecordScheduleTick(f.ctx, stale)
		require.ErrorIs(t, err, catalog.ErrNotLeader)

		recorded, err := s.RecordScheduleTick(f.ctx, p)
		require.NoError(t, err)
		require.True(t, recorded)
		got, err := s.GetSchedule(f.ctx, "nightly")
		require.NoError(t, err)
		require.True(t, got.NextTick.Equal(t2))
		require.True(t, got.LastTick.Equal(t1))
		require.Equal(t, catalog.TickFired, got.LastOutcome)
		require.Equal(t, run.ID, got.LastRunID)
		require.Equal(t, []string{"submitted", "scheduled"}, f.events(run.ID))
		evs, err := s.ListRunEvents(f.ctx, run.ID, 0)
		require.NoError(t, err)
		require.Equal(t, "created by schedule nightly for the tick 2026-03-01T13:00:00Z", evs[1].Message)
		require.Equal(t, "srv1", evs[1].Node)

		// The same record again: the schedule moved on, so it is a conflict
		// and nothing changes (no second event).
		_, err = s.RecordScheduleTick(f.ctx, p)
		require.ErrorIs(t, err, catalog.ErrConflict)
		require.Equal(t, []string{"submitted", "scheduled"}, f.events(run.ID))

		// A failed tick keeps the last run and records the error.
		f.clock.Advance(time.Hour)
		_, err = s.RecordScheduleTick(f.ctx, catalog.RecordTickParams{ScheduleID: sc.ID, Expect: t2, Tick: t2, Next: t2.Add(time.Hour),
			Outcome: catalog.TickFailed, Reason: "refused: mapping daily is disabled", Node: "srv1"})
		require.NoError(t, err)
		got, err = s.GetSchedule(f.ctx, "nightly")
		require.NoError(t, err)
		require.Equal(t, catalog.TickFailed, got.LastOutcome)
		require.Equal(t, run.ID, got.LastRunID)
		require.Equal(t, "refused: mapping daily is disabled", got.LastError)

		ticks, err := s.ListScheduleTicks(f.ctx, sc.ID, 10)
		require.NoError(t, err)
		require.Len(t, ticks, 2)
		require.True(t, ticks[0].Tick.Equal(t2), "newest first")
		require.Equal(t, catalog.TickFailed, ticks[0].Outcome)
		require.Equal(t, run.ID, ticks[1].RunID)

		// Bad records are refused up front.
		for _, bad := range []catalog.RecordTickParams{
			{ScheduleID: sc.ID, Expect: t2, Tick: t2, Outcome: "done"},
			{ScheduleID: sc.ID, Expect: t2, Tick: t1, Outcome: catalog.TickSkipped},
			{ScheduleID: sc.ID, Expect: t2, Tick: t2, Next: t2, Outcome: catalog.TickSkipped},
			{ScheduleID: sc.ID, Expect: t2, Tick: t2, Outcome: catalog.TickFired},
		} {
			_, err := s.RecordScheduleTick(f.ctx, bad)
			require.ErrorAs(t, err, new(*catalog.ValidationError), "%+v", bad)
		}
		_, err = s.RecordScheduleTick(f.ctx, catalog.RecordTickParams{ScheduleID: 9999, Expect: t2, Tick: t2, Outcome: catalog.TickSkipped})
		require.ErrorIs(t, err, catalog.ErrNotFound)

		// A tick with no successor stops the schedule.
		t3 := t2.Add(time.Hour)
		_, err = s.RecordScheduleTick(f.ctx, catalog.RecordTickParams{ScheduleID: sc.ID, Expect: t3, Tick: t3, Outcome: catalog.TickSkipped})
		require.NoError(t, err)
		got, err = s.GetSchedule(f.ctx, "nightly")
		require.NoError(t, err)
		require.Nil(t, got.NextTick)
		f.clock.Advance(24 * time.Hour)
		due, err = s.ListDueSchedules(f.ctx, testRegion, 10)
		require.NoError(t, err)
		require.Empty(t, due)
	})
}

// A schedule whose next tick went back (its clock or expression changed)
// meets a tick it processed before: it moves on without a second row or event.
func TestRecordScheduleTickOfAProcessedTickOnlyMovesOn(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := scheduleFixture(t, s)
		sc := f.schedule(func(sc *catalog.Schedule) { sc.Cron = "0 * * * *"; sc.TimeZone = "UTC" })
		require.NoError(t, s.CreateSchedule(f.ctx, sc))
		t1 := *sc.NextTick
		run := f.pending()
		_, err := s.RecordScheduleTick(f.ctx, catalog.RecordTickParams{ScheduleID: sc.ID, Expect: t1, Tick: t1, Next: t1.Add(time.Hour), Outcome: catalog.TickFired, RunID: run.ID})
		require.NoError(t, err)
		// Move it back by changing the expression and back again at the same time.
		f.clock.Advance(-2 * time.Hour)
		require.NoError(t, s.UpdateSchedule(f.ctx, f.schedule(func(sc *catalog.Schedule) { sc.Cron = "0 */1 * * *"; sc.TimeZone = "UTC" })))
		got, err := s.GetSchedule(f.ctx, "nightly")
		require.NoError(t, err)
		require.True(t, got.NextTick.Before(t1.Add(time.Second)))
		// Walk it to t1 again.
		for got.NextTick.Before(t1) {
			n := got.NextTick.Add(time.Hour)
			_, err := s.RecordScheduleTick(f.ctx, catalog.RecordTickParams{ScheduleID: sc.ID, Expect: *got.NextTick, Tick: *got.NextTick, Next: n, Outcome: catalog.TickSkipped})
			require.NoError(t, err)
			got.NextTick = &n
		}
		recorded, err := s.RecordScheduleTick(f.ctx, catalog.RecordTickParams{ScheduleID: sc.ID, Expect: t1, Tick: t1, Next: t1.Add(time.Hour), Outcome: catalog.TickFired, RunID: run.ID})
		require.NoError(t, err)
		require.False(t, recorded, "the tick row exists: not recorded twice")
		require.Equal(t, []string{"submitted", "scheduled"}, f.events(run.ID))
		got, err = s.GetSchedule(f.ctx, "nightly")
		require.NoError(t, err)
		require.True(t, got.NextTick.Equal(t1.Add(time.Hour)), "but the schedule moves on")
	})
}

func TestConcurrentRecordsOfOneTickRecordItOnce(t *testing.T) {
	for _, d := range catalogtest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			// Two Stores on one catalog: two servers' connection pools.
			dsn := catalogtest.DSN(t, d)
			s := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn, MaxOpenConns: 4})
			s2 := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn, MaxOpenConns: 4})
			f := scheduleFixture(t, s)
			s2.SetClock(f.clock.Now)
			sc := f.schedule(func(sc *catalog.Schedule) { sc.Cron = "* * * * * *"; sc.TimeZone = "UTC" })
			require.NoError(t, s.CreateSchedule(f.ctx, sc))
			run := f.pending()
			tick := *sc.NextTick
			const racers = 8
			var wg sync.WaitGroup
			results := make([]error, racers)
			recorded := make([]bool, racers)
			start := make(chan struct{})
			for i := range racers {
				st := []*catalog.Store{s, s2}[i%2]
				wg.Go(func() {
					<-start
					recorded[i], results[i] = st.RecordScheduleTick(context.Background(), catalog.RecordTickParams{
						ScheduleID: sc.ID, Expect: tick, Tick: tick, Next: tick.Add(time.Second),
						Outcome: catalog.TickFired, RunID: run.ID, Node: fmt.Sprintf("srv%d", i)})
				})
			}
			close(start)
			wg.Wait()
			wins := 0
			for i, err := range results {
				if err == nil {
					wins++
					require.True(t, recorded[i])
					continue
				}
				require.True(t, errors.Is(err, catalog.ErrConflict), "a loser is told it lost: %v", err)
			}
			require.Equal(t, 1, wins)
			rows, err := s.RawRows("schedule_ticks")
			require.NoError(t, err)
			require.Len(t, rows, 1)
			require.Equal(t, []string{"submitted", "scheduled"}, f.events(run.ID))
		})
	}
}

func TestDeleteScheduleTriggerAndPruneTicks(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := scheduleFixture(t, s)
		sc := f.schedule(func(sc *catalog.Schedule) { sc.Cron = "0 * * * *"; sc.TimeZone = "UTC" })
		require.NoError(t, s.CreateSchedule(f.ctx, sc))
		t1 := *sc.NextTick
		_, err := s.RecordScheduleTick(f.ctx, catalog.RecordTickParams{ScheduleID: sc.ID, Expect: t1, Tick: t1, Next: t1.Add(time.Hour), Outcome: catalog.TickSkipped})
		require.NoError(t, err)
		f.clock.Advance(48 * time.Hour)
		t2 := t1.Add(time.Hour)
		_, err = s.RecordScheduleTick(f.ctx, catalog.RecordTickParams{ScheduleID: sc.ID, Expect: t2, Tick: t2, Next: t2.Add(time.Hour), Outcome: catalog.TickSkipped})
		require.NoError(t, err)

		n, err := s.PruneScheduleTicks(f.ctx, f.clock.Now().Add(-24*time.Hour))
		require.NoError(t, err)
		require.Equal(t, int64(1), n, "only the tick recorded two days ago")
		ticks, err := s.ListScheduleTicks(f.ctx, sc.ID, 0)
		require.NoError(t, err)
		require.Len(t, ticks, 1)
		require.True(t, ticks[0].Tick.Equal(t2))

		run := f.pending()
		tick := time.Date(2026, 3, 2, 23, 0, 0, 0, time.UTC)
		require.NoError(t, s.RecordScheduleTrigger(f.ctx, catalog.ScheduleTriggerParams{ScheduleID: sc.ID, RunID: run.ID, Tick: tick, By: "bob"}))
		got, err := s.GetSchedule(f.ctx, "nightly")
		require.NoError(t, err)
		require.Equal(t, run.ID, got.LastRunID, "the overlap policy looks at triggered runs too")
		require.True(t, got.NextTick.Equal(t2.Add(time.Hour)), "a trigger leaves the ticks alone")
		evs, err := s.ListRunEvents(f.ctx, run.ID, 0)
		require.NoError(t, err)
		require.Equal(t, "triggered by bob from schedule nightly for the tick 2026-03-02T23:00:00Z", evs[len(evs)-1].Message)
		require.ErrorIs(t, s.RecordScheduleTrigger(f.ctx, catalog.ScheduleTriggerParams{ScheduleID: 999, RunID: run.ID, Tick: tick, By: "bob"}), catalog.ErrNotFound)

		require.NoError(t, s.DeleteSchedule(f.ctx, "nightly"))
		_, err = s.GetSchedule(f.ctx, "nightly")
		require.ErrorIs(t, err, catalog.ErrNotFound)
		rows, err := s.RawRows("schedule_ticks")
		require.NoError(t, err)
		require.Empty(t, rows, "its ticks go with it")
		_, err = s.GetRun(f.ctx, run.ID)
		require.NoError(t, err, "its runs stay")
		require.ErrorIs(t, s.DeleteSchedule(f.ctx, "nightly"), catalog.ErrNotFound)
	})
}

func TestScheduleIdempotencyKeyNamesScheduleAndTick(t *testing.T) {
	t.Parallel()
	k := catalog.ScheduleIdempotencyKey(42, time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC))
	require.Equal(t, "schedule:42:1772326800", k)
	require.LessOrEqual(t, len(k), catalog.IdempotencyKeyMaxLength)
}
