package broker_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// *catalog.Store serves the schedule routes.
var _ broker.ScheduleStore = (*catalog.Store)(nil)

// scheduleEnv adds to env the users of schedules: op (operator: manage,
// submit and read on mapping:trades) and opread (operator: manage and read
// on mapping:trades, but not submit).
func scheduleEnv(t *testing.T, s *catalog.Store) *env {
	e := newEnv(t, s)
	e.addUser("op", catalog.RoleOperator, grant{"mapping:trades", catalog.ActionManage, nil},
		grant{"mapping:trades", catalog.ActionSubmit, nil}, grant{"mapping:trades", catalog.ActionRead, nil})
	e.addUser("opread", catalog.RoleOperator, grant{"mapping:trades", catalog.ActionManage, nil}, grant{"mapping:trades", catalog.ActionRead, nil})
	return e
}

func nightly() map[string]any {
	return map[string]any{"name": "nightly", "mapping": "trades", "cron": "0 2 * * *", "time_zone": "Europe/Paris",
		"params": map[string]any{"business_date": "${tick-1d:date}", "desk": "fx"}, "priority": 3}
}

func (e *env) createSchedule(user string, body any) response {
	return e.do(request{Method: http.MethodPost, Path: "/api/v1/schedules", Token: e.tokens[user], Body: body})
}

func TestSchedulesCreateReadUpdateDeleteWithEntitlements(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := scheduleEnv(t, s)

		// Who may create: manage and submit on the mapping.
		requireError(t, e.createSchedule("sub", nightly()), http.StatusForbidden, broker.CodeForbidden)
		d := requireError(t, e.createSchedule("opread", nightly()), http.StatusForbidden, broker.CodeForbidden)
		require.Contains(t, d.Message, "you may not submit mapping:trades")
		requireError(t, e.createSchedule("viewer", nightly()), http.StatusForbidden, broker.CodeForbidden)

		r := e.do(request{Method: http.MethodPost, Path: "/api/v1/schedules", Token: e.tokens["op"], Body: nightly(), RemoteAddr: "203.0.113.9:1234"})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		var v broker.ScheduleView
		r.decode(t, &v)
		require.Equal(t, "nightly", v.Name)
		require.Equal(t, "op", v.Owner)
		require.Equal(t, e.users["op"].ID, v.OwnerID)
		require.Equal(t, "203.0.113.9", v.OwnerIP, "runs are submitted as from where the owner defined it")
		require.Equal(t, testRegion, v.Region)
		require.True(t, v.Enabled)
		require.Equal(t, catalog.OverlapSkip, v.Overlap)
		require.Equal(t, catalog.CatchUpLatest, v.CatchUp)
		require.Equal(t, 3, v.Priority)
		require.Equal(t, map[string]string{"business_date": "${tick-1d:date}", "desk": "fx"}, v.Params.V)
		require.Len(t, v.Upcoming, broker.ScheduleUpcomingTicks)
		require.Equal(t, "2026-11-26T02:00:00+01:00", v.Upcoming[0].Format(time.RFC3339), "ticks shown in the schedule's zone")
		require.Equal(t, "2026-11-27T02:00:00+01:00", v.Upcoming[1].Format(time.RFC3339))
		require.True(t, v.NextTick.Equal(v.Upcoming[0]))
		require.Contains(t, r.String(), `"upcoming":["2026-11-26T02:00:00+01:00"`)

		requireError(t, e.createSchedule("op", nightly()), http.StatusConflict, broker.CodeConflict)

		// Who may read: read on the mapping.
		list := func(user, query string) []string {
			r := e.get("/api/v1/schedules"+query, user)
			require.Equal(t, http.StatusOK, r.Status, r.String())
			var out struct{ Schedules []broker.ScheduleView }
			r.decode(t, &out)
			names := []string{}
			for _, sc := range out.Schedules {
				names = append(names, sc.Name)
			}
			return names
		}
		require.Equal(t, []string{"nightly"}, list("viewer", ""))
		require.Equal(t, []string{"nightly"}, list("sub", ""))
		require.Equal(t, []string{}, list("other", ""), "other reads mapping:other only")
		require.Equal(t, []string{"nightly"}, list("sub", "?mapping=trades"))
		require.Equal(t, []string{}, list("admin", "?mapping=other"))
		requireError(t, e.get("/api/v1/schedules?mapping=other", "sub"), http.StatusForbidden, broker.CodeForbidden)
		requireError(t, e.get("/api/v1/schedules?mapping=Bad!", "sub"), http.StatusBadRequest, broker.CodeBadRequest)

		r = e.get("/api/v1/schedules/nightly", "sub")
		require.Equal(t, http.StatusOK, r.Status, r.String())
		requireError(t, e.get("/api/v1/schedules/nightly", "other"), http.StatusForbidden, broker.CodeForbidden)
		requireError(t, e.get("/api/v1/schedules/nope", "admin"), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, e.get("/api/v1/schedules/Bad%20Name", "admin"), http.StatusNotFound, broker.CodeNotFound)

		// A GET answer, changed, goes back with PUT; the changer becomes the owner.
		var got map[string]any
		r.decode(t, &got)
		got["cron"] = "30 6 * * 1-5"
		got["enabled"] = false
		requireError(t, e.do(request{Method: http.MethodPut, Path: "/api/v1/schedules/nightly", Token: e.tokens["sub"], Body: got}), http.StatusForbidden, broker.CodeForbidden)
		r = e.do(request{Method: http.MethodPut, Path: "/api/v1/schedules/nightly", Token: e.tokens["admin"], Body: got})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		v = broker.ScheduleView{}
		r.decode(t, &v)
		require.Equal(t, "30 6 * * 1-5", v.Cron)
		require.False(t, v.Enabled)
		require.Nil(t, v.NextTick)
		require.Empty(t, v.Upcoming)
		require.Equal(t, "admin", v.Owner, "whoever defines a schedule owns its runs")
		require.Equal(t, "op", v.CreatedBy)

		got["name"] = "renamed"
		d = requireError(t, e.do(request{Method: http.MethodPut, Path: "/api/v1/schedules/nightly", Body: got}), http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "name", d.Field)
		requireError(t, e.do(request{Method: http.MethodPut, Path: "/api/v1/schedules/ghost", Body: got}), http.StatusNotFound, broker.CodeNotFound)

		// Delete: manage on the mapping.
		requireError(t, e.do(request{Method: http.MethodDelete, Path: "/api/v1/schedules/nightly", Token: e.tokens["sub"]}), http.StatusForbidden, broker.CodeForbidden)
		r = e.do(request{Method: http.MethodDelete, Path: "/api/v1/schedules/nightly", Token: e.tokens["opread"]})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		requireError(t, e.get("/api/v1/schedules/nightly", "admin"), http.StatusNotFound, broker.CodeNotFound)
	})
}

func TestScheduleRequestsAreValidatedPrecisely(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := scheduleEnv(t, s)
		with := func(k string, v any) map[string]any {
			b := nightly()
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
			return b
		}
		params := func(p map[string]any) map[string]any { return with("params", p) }
		cases := []struct {
			name  string
			body  any
			code  string
			field string
			want  string
		}{
			{"no mapping", with("mapping", nil), broker.CodeInvalid, "mapping", "is required"},
			{"unknown mapping", with("mapping", "nope"), broker.CodeInvalid, "mapping", `no mapping named "nope"`},
			{"bad name", with("name", "Nightly"), broker.CodeInvalid, "name", "is not a valid name"},
			{"bad cron", with("cron", "0 2 * *"), broker.CodeInvalid, "cron", "expected 5 to 6 fields, found 4"},
			{"cron with a zone", with("cron", "TZ=UTC 0 2 * * *"), broker.CodeInvalid, "cron", "give it in time_zone instead"},
			{"bad zone", with("time_zone", "Paris"), broker.CodeInvalid, "time_zone", `"Paris" is not an IANA time zone`},
			{"bad overlap", with("overlap", "parallel"), broker.CodeInvalid, "overlap", `got "parallel"`},
			{"bad catch-up", with("catch_up", "every"), broker.CodeInvalid, "catch_up", `got "every"`},
			{"bad priority", with("priority", 1001), broker.CodeInvalid, "priority", "between -1000 and 1000"},
			{"bad template", params(map[string]any{"business_date": "${tick-1day:date}"}), broker.CodeInvalid, "params.business_date", "is not a tick template"},
			{"undeclared param", params(map[string]any{"business_date": "${tick-1d:date}", "book": "x"}), broker.CodeInvalid, "params.book", `declares no parameter "book"`},
			{"future date", params(map[string]any{"business_date": "${tick+2d:date}"}), broker.CodeInvalid, "params.business_date", "is in the future"},
			{"escape", params(map[string]any{"business_date": "${tick-1d:date}", "desk": "../x"}), broker.CodeInvalid, "params.desk", `"../x" would make the mapping's target.path leave the system's root`},
			{"fractional number", params(map[string]any{"business_date": "${tick-1d:date}", "desk": 1.5}), broker.CodeInvalid, "params.desk", "must be a string or an integer"},
			{"boolean", params(map[string]any{"business_date": true}), broker.CodeInvalid, "params.business_date", "must be a string"},
			{"unknown field", with("schedule", "x"), broker.CodeBadRequest, "", `unknown field "schedule"`},
			{"wrong type", with("cron", 5), broker.CodeBadRequest, "cron", "must be a string"},
		}
		for _, tc := range cases {
			r := e.createSchedule("admin", tc.body)
			d := requireError(t, r, http.StatusBadRequest, tc.code)
			require.Equal(t, tc.field, d.Field, tc.name)
			require.Contains(t, d.Message, tc.want, tc.name)
		}
		r := e.createSchedule("admin", nightly())
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		scs, err := s.ListSchedules(e.ctx, catalog.ScheduleFilter{})
		require.NoError(t, err)
		require.Len(t, scs, 1, "refused requests store nothing")
	})
}

func TestSubmitScheduledTakesTheRunRequestPathAsTheOwner(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := scheduleEnv(t, s)
		r := e.do(request{Method: http.MethodPost, Path: "/api/v1/schedules", Token: e.tokens["op"], Body: nightly(), RemoteAddr: "10.9.8.7:1"})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		var sc broker.ScheduleView
		r.decode(t, &sc)
		tick := time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)
		req := catalog.ScheduledRun{ScheduleID: sc.ID, Schedule: sc.Name, Tick: tick, OwnerID: sc.OwnerID, Mapping: "trades",
			Params: map[string]string{"business_date": "2026-11-24", "desk": "fx"}, Priority: 3,
			IdempotencyKey: catalog.ScheduleIdempotencyKey(sc.ID, tick), ClientIP: sc.OwnerIP}

		run, created, err := e.srv.SubmitScheduled(e.ctx, req)
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, "op", run.SubmittedBy)
		require.Equal(t, "10.9.8.7", run.ClientIP)
		require.Nil(t, run.TokenID, "no token: the scheduler submits")
		require.Equal(t, map[string]string{"business_date": "2026-11-24", "desk": "fx"}, run.Params.V)
		require.Equal(t, 3, run.Priority)
		require.Equal(t, catalog.StatePending, run.State)

		again, created, err := e.srv.SubmitScheduled(e.ctx, req)
		require.NoError(t, err)
		require.False(t, created, "the tick's key returns the first run")
		require.Equal(t, run.ID, again.ID)

		refused := func(mod func(*catalog.ScheduledRun), want string) {
			t.Helper()
			r := req
			r.IdempotencyKey = ""
			r.Params = map[string]string{"business_date": "2026-11-23", "desk": "fx"}
			mod(&r)
			_, _, err := e.srv.SubmitScheduled(e.ctx, r)
			require.ErrorIs(t, err, catalog.ErrRefused)
			require.Contains(t, err.Error(), want)
		}
		refused(func(r *catalog.ScheduledRun) { r.Params["business_date"] = "2026-12-24" }, "params.business_date: 2026-12-24 is in the future")
		refused(func(r *catalog.ScheduledRun) { r.Params["desk"] = ".." }, "params.desk")
		refused(func(r *catalog.ScheduledRun) { r.OwnerID = e.users["opread"].ID }, "you may not submit mapping:trades")
		refused(func(r *catalog.ScheduledRun) { r.OwnerID = 99999 }, "the schedule's owner (user 99999) no longer exists")
		refused(func(r *catalog.ScheduledRun) { r.Mapping = "remote"; r.Params = nil; r.OwnerID = e.users["admin"].ID }, "owned by region us-east")
		// Network-bound grants hold for schedules too: the owner's address decides.
		refused(func(r *catalog.ScheduledRun) { r.OwnerID = e.users["netsub"].ID; r.ClientIP = "192.0.2.1" }, "you may not submit mapping:trades")
		ok := req
		ok.OwnerID, ok.ClientIP, ok.IdempotencyKey = e.users["netsub"].ID, "10.1.1.1", ""
		_, created, err = e.srv.SubmitScheduled(e.ctx, ok)
		require.NoError(t, err)
		require.True(t, created)

		disabled := true
		_, err = s.UpdateUser(e.ctx, catalog.UpdateUserParams{ID: e.users["op"].ID, Disabled: &disabled})
		require.NoError(t, err)
		refused(func(*catalog.ScheduledRun) {}, "the schedule's owner op is disabled")

		// An outage is not a refusal: the scheduler retries it.
		require.NoError(t, s.Close())
		_, _, err = e.srv.SubmitScheduled(e.ctx, req)
		require.Error(t, err)
		require.False(t, errors.Is(err, catalog.ErrRefused), "%v", err)
	})
}

func TestTriggerScheduleRunsItNowAsTheCaller(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := scheduleEnv(t, s)
		r := e.createSchedule("admin", nightly())
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		var sc broker.ScheduleView
		r.decode(t, &sc)

		trigger := func(user string, body any) response {
			return e.do(request{Method: http.MethodPost, Path: "/api/v1/schedules/nightly/trigger", Token: e.tokens[user], Body: body})
		}
		requireError(t, trigger("sub", nil), http.StatusForbidden, broker.CodeForbidden)
		d := requireError(t, trigger("opread", nil), http.StatusForbidden, broker.CodeForbidden)
		require.Contains(t, d.Message, "submit")

		// Now (2026-11-25 12:00 UTC, 13:00 in Paris): business_date is the 24th.
		r = trigger("op", nil)
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		var run broker.RunView
		r.decode(t, &run)
		require.Equal(t, "op", run.SubmittedBy, "a trigger runs as the caller")
		require.Equal(t, map[string]string{"business_date": "2026-11-24", "desk": "fx"}, run.Params.V)
		require.Equal(t, 3, run.Priority)
		evs, err := s.ListRunEvents(e.ctx, run.ID, 0)
		require.NoError(t, err)
		require.Equal(t, "triggered by op from schedule nightly for the tick 2026-11-25T13:00:00+01:00", evs[len(evs)-1].Message)
		got, err := s.GetSchedule(e.ctx, "nightly")
		require.NoError(t, err)
		require.Equal(t, run.ID, got.LastRunID)
		require.True(t, got.NextTick.Equal(*sc.NextTick), "a trigger does not move the ticks")

		// For a given tick, idempotently.
		body := map[string]any{"tick": "2026-11-02T02:00:00+01:00", "idempotency_key": "backfill-1102"}
		r = trigger("op", body)
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		r.decode(t, &run)
		require.Equal(t, "2026-11-01", run.Params.V["business_date"])
		r2 := trigger("op", body)
		require.Equal(t, http.StatusOK, r2.Status, r2.String())
		var again broker.RunView
		r2.decode(t, &again)
		require.Equal(t, run.ID, again.ID)

		// The run path's checks hold: a tick whose date leaves the window is refused.
		d = requireError(t, trigger("op", map[string]any{"tick": "2025-06-01T02:00:00Z"}), http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "params.business_date", d.Field)
		require.Contains(t, d.Message, "before the data set's window")
		requireError(t, trigger("op", map[string]any{"tick": "yesterday"}), http.StatusBadRequest, broker.CodeBadRequest)
		requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/schedules/nope/trigger", Token: e.tokens["op"]}), http.StatusNotFound, broker.CodeNotFound)
	})
}

func TestScheduleRoutesNeedAToken(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := scheduleEnv(t, s)
		for _, rq := range []request{
			{Method: http.MethodGet, Path: "/api/v1/schedules"},
			{Method: http.MethodPost, Path: "/api/v1/schedules", Body: nightly()},
			{Method: http.MethodPost, Path: "/api/v1/schedules/nightly/trigger"},
		} {
			rq.Token = "-"
			requireError(t, e.do(rq), http.StatusUnauthorized, broker.CodeUnauthenticated)
		}
		requireError(t, e.do(request{Method: http.MethodPatch, Path: "/api/v1/schedules/nightly"}), http.StatusMethodNotAllowed, broker.CodeMethodNotAllowed)
	})
}
