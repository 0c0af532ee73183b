package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestHealthzAnswersWithoutAuthAndReadyzReflectsTheCatalog(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		for _, path := range []string{"/healthz", "/readyz"} {
			r := e.do(request{Method: http.MethodGet, Path: path, Token: "-"})
			require.Equal(t, http.StatusOK, r.Status, path)
			require.JSONEq(t, `{"status":"ok"}`, r.String())
		}
		require.NoError(t, s.Close())
		r := e.do(request{Method: http.MethodGet, Path: "/readyz", Token: "-"})
		requireError(t, r, http.StatusServiceUnavailable, broker.CodeUnavailable)
		r = e.do(request{Method: http.MethodGet, Path: "/healthz", Token: "-"})
		require.Equal(t, http.StatusOK, r.Status, "liveness does not depend on the catalog")
	})
}

func TestSubmitRunCreatesAPendingRunRecordingWhoWhatAndWhere(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		resp := e.do(request{Method: http.MethodPost, Path: "/api/v1/runs", Token: e.tokens["sub"], RemoteAddr: "203.0.113.7:5555",
			Body: map[string]any{"mapping": "trades", "params": map[string]any{"business_date": "2026-11-20"}, "priority": 7}})
		require.Equal(t, http.StatusCreated, resp.Status, resp.String())
		var v broker.RunView
		resp.decode(t, &v)
		_, _, err := catalog.ParseRunID(v.ID)
		require.NoError(t, err)
		require.Equal(t, catalog.StatePending, v.State)
		require.Equal(t, testRegion, v.Region)
		require.Equal(t, "trades", v.Mapping)
		require.Equal(t, 1, v.MappingVersion)
		require.Equal(t, map[string]string{"business_date": "2026-11-20", "desk": "main"}, v.Params.V, "the default of desk is filled in")
		require.Equal(t, catalog.RequestTransfer, v.RequestType)
		require.Equal(t, "sub", v.SubmittedBy)
		require.Equal(t, "203.0.113.7", v.ClientIP)
		require.Equal(t, 7, v.Priority)
		require.Equal(t, 4, v.MaxAttempts)
		require.Equal(t, 900, v.TimeoutSeconds)
		require.Equal(t, "src", v.SourceSystem)
		require.Equal(t, "dst", v.TargetSystem)
		require.Nil(t, v.ElapsedSeconds, "a run that has not started has no elapsed time")

		stored, err := s.GetRun(e.ctx, v.ID)
		require.NoError(t, err)
		require.Equal(t, e.users["sub"].ID, stored.UserID)
		require.NotNil(t, stored.TokenID)
		require.Equal(t, *v.TokenID, *stored.TokenID)
		toks, err := s.ListTokens(e.ctx, e.users["sub"].ID)
		require.NoError(t, err)
		require.Equal(t, toks[0].ID, *stored.TokenID)
		require.Len(t, stored.RequestHash, 64)
		require.Nil(t, stored.IdempotencyKey)

		got := e.get("/api/v1/runs/"+v.ID, "sub")
		require.Equal(t, http.StatusOK, got.Status, got.String())
		var gv broker.RunView
		got.decode(t, &gv)
		require.Equal(t, v.ID, gv.ID)
		require.Equal(t, catalog.StatePending, gv.State)
		require.NotContains(t, got.String(), stored.RequestHash, "the request hash stays internal")

		evs := e.get("/api/v1/runs/"+v.ID+"/events", "sub")
		require.Equal(t, http.StatusOK, evs.Status)
		var el struct{ Events []catalog.RunEvent }
		evs.decode(t, &el)
		require.Len(t, el.Events, 1)
		require.Equal(t, "submitted", el.Events[0].Kind)
		require.Contains(t, el.Events[0].Message, "203.0.113.7")
	})
}

func TestSubmitRunIdempotencyKeyReplaysTheSameRunAndRefusesAnotherBody(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		body := map[string]any{"mapping": "trades", "params": map[string]any{"business_date": "2026-11-20"}, "idempotency_key": "nightly-2026-11-20"}
		first := e.mustSubmit("sub", body)

		again := e.submit("sub", body)
		require.Equal(t, http.StatusOK, again.Status, again.String())
		var av broker.RunView
		again.decode(t, &av)
		require.Equal(t, first.ID, av.ID)
		require.Equal(t, int64(1), e.runCount())

		// The same parameters spelled differently (the default made explicit) are the same request.
		explicit := map[string]any{"mapping": "trades", "params": map[string]any{"business_date": "2026-11-20", "desk": "main"}, "idempotency_key": "nightly-2026-11-20"}
		r := e.submit("sub", explicit)
		require.Equal(t, http.StatusOK, r.Status, r.String())

		other := map[string]any{"mapping": "trades", "params": map[string]any{"business_date": "2026-11-19"}, "idempotency_key": "nightly-2026-11-20"}
		d := requireError(t, e.submit("sub", other), http.StatusConflict, broker.CodeConflict)
		require.Contains(t, d.Message, first.ID)
		prio := map[string]any{"mapping": "trades", "params": map[string]any{"business_date": "2026-11-20"}, "priority": 5, "idempotency_key": "nightly-2026-11-20"}
		requireError(t, e.submit("sub", prio), http.StatusConflict, broker.CodeConflict)
		require.Equal(t, int64(1), e.runCount(), "a refused replay creates nothing")

		// Keys belong to their user: another user's key of the same name is another run.
		second := e.mustSubmit("admin", body)
		require.NotEqual(t, first.ID, second.ID)
		require.Equal(t, int64(2), e.runCount())
	})
}

func TestSubmitRunRejectsBadInputPreciselyAndCreatesNothing(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		ctx := e.ctx
		expiring, _, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: e.users["sub"].ID, Name: "short", ExpiresAt: ptr(e.clock.Now().Add(time.Hour))})
		require.NoError(t, err)
		revoked, revTok, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: e.users["sub"].ID, Name: "revoked"})
		require.NoError(t, err)
		require.NoError(t, s.RevokeToken(ctx, revTok.ID))
		e.addUser("gone", catalog.RoleAdmin)
		_, err = s.UpdateUser(ctx, catalog.UpdateUserParams{ID: e.users["gone"].ID, Disabled: ptr(true)})
		require.NoError(t, err)
		require.NoError(t, s.DisableMapping(ctx, "other", "test"))
		e.clock.Advance(2 * time.Hour) // the short token has expired; still 2026-11-25
		good := tradesRequest("2026-11-20")
		huge := `{"mapping":"trades","params":{"business_date":"2026-11-20","desk":"` + strings.Repeat("a", int(broker.MaxBodyBytesDefault)) + `"}}`

		cases := []struct {
			name   string
			req    request
			status int
			code   string
			field  string
			says   string
		}{
			{name: "malformed JSON", req: request{Body: `{"mapping": "trades", `}, status: 400, code: broker.CodeBadRequest, says: "malformed JSON"},
			{name: "syntax error", req: request{Body: `{"mapping": trades}`}, status: 400, code: broker.CodeBadRequest, says: "malformed JSON"},
			{name: "unknown field", req: request{Body: `{"mapping":"trades","params":{"business_date":"2026-11-20"},"priorty":3}`}, status: 400, code: broker.CodeBadRequest, says: "priorty"},
			{name: "trailing data", req: request{Body: `{"mapping":"trades","params":{"business_date":"2026-11-20"}} {"mapping":"trades"}`}, status: 400, code: broker.CodeBadRequest, says: "after the JSON value"},
			{name: "empty body", req: request{Body: ``}, status: 400, code: broker.CodeBadRequest, says: "empty"},
			{name: "wrong JSON type", req: request{Body: `{"mapping":"trades","priority":"high"}`}, status: 400, code: broker.CodeBadRequest, field: "priority"},
			{name: "array body", req: request{Body: `[1,2]`}, status: 400, code: broker.CodeBadRequest},
			{name: "no mapping", req: request{Body: `{"params":{}}`}, status: 400, code: broker.CodeInvalid, field: "mapping"},
			{name: "unknown mapping", req: request{Body: map[string]any{"mapping": "nope"}}, status: 404, code: broker.CodeNotFound, says: "nope"},
			{name: "missing token", req: request{Token: "-", Body: good}, status: 401, code: broker.CodeUnauthenticated, says: "no token"},
			{name: "not a bearer token", req: request{Token: "-", Header: map[string]string{"Authorization": "Basic YWxpY2U6cHc="}, Body: good}, status: 401, code: broker.CodeUnauthenticated, says: "Bearer"},
			{name: "wrong token", req: request{Token: "weir_thisisnotarealtokenatall", Body: good}, status: 401, code: broker.CodeUnauthenticated, says: "unknown token"},
			{name: "expired token", req: request{Token: expiring, Body: good}, status: 401, code: broker.CodeUnauthenticated, says: "expired"},
			{name: "revoked token", req: request{Token: revoked, Body: good}, status: 401, code: broker.CodeUnauthenticated, says: "revoked"},
			{name: "disabled user", req: request{Token: e.tokens["gone"], Body: good}, status: 401, code: broker.CodeUnauthenticated, says: "disabled"},
			{name: "no entitlement", req: request{Token: e.tokens["nobody"], Body: good}, status: 403, code: broker.CodeForbidden, says: "mapping:trades"},
			{name: "entitlement on another mapping only", req: request{Token: e.tokens["other"], Body: good}, status: 403, code: broker.CodeForbidden, says: "submit"},
			{name: "role cannot submit", req: request{Token: e.tokens["viewer"], Body: good}, status: 403, code: broker.CodeForbidden},
			{name: "outside the allowed CIDR", req: request{Token: e.tokens["netsub"], RemoteAddr: "192.168.1.5:999", Body: good}, status: 403, code: broker.CodeForbidden},
			{name: "forged X-Forwarded-For from an untrusted peer", req: request{Token: e.tokens["netsub"], RemoteAddr: "192.168.1.5:999", Header: map[string]string{"X-Forwarded-For": "10.1.1.1"}, Body: good}, status: 403, code: broker.CodeForbidden},
			{name: "no entitlement on unknown mapping is 403 not 404", req: request{Token: e.tokens["nobody"], Body: map[string]any{"mapping": "secret-project"}}, status: 403, code: broker.CodeForbidden},
			{name: "date before the window", req: request{Body: tradesRequest("2025-12-31")}, status: 400, code: broker.CodeInvalid, field: "params.business_date", says: "window"},
			{name: "date in the future", req: request{Body: tradesRequest("2026-11-26")}, status: 400, code: broker.CodeInvalid, field: "params.business_date", says: "future"},
			{name: "not a date", req: request{Body: tradesRequest("20261120")}, status: 400, code: broker.CodeInvalid, field: "params.business_date"},
			{name: "missing required param", req: request{Body: map[string]any{"mapping": "trades"}}, status: 400, code: broker.CodeInvalid, field: "params.business_date", says: "required"},
			{name: "undeclared param", req: request{Body: map[string]any{"mapping": "trades", "params": map[string]any{"business_date": "2026-11-20", "bogus": "x"}}}, status: 400, code: broker.CodeInvalid, field: "params.bogus"},
			{name: "param of the wrong type", req: request{Body: map[string]any{"mapping": "trades", "params": map[string]any{"business_date": 20261120}}}, status: 400, code: broker.CodeInvalid, field: "params.business_date"},
			{name: "param escapes the root", req: request{Body: map[string]any{"mapping": "trades", "params": map[string]any{"business_date": "2026-11-20", "desk": "../../etc"}}}, status: 400, code: broker.CodeInvalid, field: "params.desk", says: "root"},
			{name: "param escapes with backslashes", req: request{Body: map[string]any{"mapping": "trades", "params": map[string]any{"business_date": "2026-11-20", "desk": `..\\..\\etc`}}}, status: 400, code: broker.CodeInvalid, field: "params.desk"},
			{name: "param escapes after a detour", req: request{Body: map[string]any{"mapping": "trades", "params": map[string]any{"business_date": "2026-11-20", "desk": "a/../../../etc"}}}, status: 400, code: broker.CodeInvalid, field: "params.desk"},
			{name: "priority too high", req: request{Body: map[string]any{"mapping": "trades", "params": map[string]any{"business_date": "2026-11-20"}, "priority": 1001}}, status: 400, code: broker.CodeInvalid, field: "priority"},
			{name: "priority too low", req: request{Body: map[string]any{"mapping": "trades", "params": map[string]any{"business_date": "2026-11-20"}, "priority": -1001}}, status: 400, code: broker.CodeInvalid, field: "priority"},
			{name: "idempotency key too long", req: request{Body: map[string]any{"mapping": "trades", "params": map[string]any{"business_date": "2026-11-20"}, "idempotency_key": strings.Repeat("k", 201)}}, status: 400, code: broker.CodeInvalid, field: "idempotency_key"},
			{name: "oversized body", req: request{Body: huge}, status: 413, code: broker.CodeTooLarge},
			{name: "wrong content type", req: request{ContentType: "text/plain", Body: `{"mapping":"trades","params":{"business_date":"2026-11-20"}}`}, status: 415, code: broker.CodeUnsupportedMedia},
			{name: "no content type", req: request{ContentType: "-", Body: `{"mapping":"trades","params":{"business_date":"2026-11-20"}}`}, status: 415, code: broker.CodeUnsupportedMedia},
			{name: "disabled mapping", req: request{Body: map[string]any{"mapping": "other"}}, status: 409, code: broker.CodeConflict, says: "disabled"},
			{name: "mapping of another region", req: request{Body: map[string]any{"mapping": "remote"}}, status: 409, code: broker.CodeConflict,
				says: "mapping remote is owned by region us-east; submit to a server of region us-east"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := e.runCount()
				tc.req.Method, tc.req.Path = http.MethodPost, "/api/v1/runs"
				r := e.do(tc.req)
				d := requireError(t, r, tc.status, tc.code)
				if tc.field != "" {
					require.Equal(t, tc.field, d.Field, r.String())
					require.Contains(t, d.Message, tc.field, "the message names the field")
				}
				if tc.says != "" {
					require.Contains(t, d.Message, tc.says)
				}
				if tc.status == http.StatusUnauthorized {
					require.True(t, strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer"), "401 asks for a bearer token")
				}
				require.Equal(t, before, e.runCount(), "nothing was created")
			})
		}
		require.Equal(t, int64(0), e.runCount())
		// The same good request passes, so the refusals above were about what they say.
		e.mustSubmit("sub", good)
	})
}

func TestSubmitRunFromInsideTheAllowedCIDRIsAccepted(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		r := e.do(request{Method: http.MethodPost, Path: "/api/v1/runs", Token: e.tokens["netsub"], RemoteAddr: "10.20.30.40:1234", Body: tradesRequest("2026-11-20")})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		var v broker.RunView
		r.decode(t, &v)
		require.Equal(t, "10.20.30.40", v.ClientIP)
		// From outside, the same user may not even read it.
		requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/runs/" + v.ID, Token: e.tokens["netsub"], RemoteAddr: "192.0.2.1:1"}), http.StatusForbidden, broker.CodeForbidden)
	})
}

func TestSubmitRunBelievesXForwardedForOnlyFromTrustedProxies(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s, func(c *broker.Config) { c.TrustedProxies = []string{"127.0.0.1", "172.16.0.0/12"} })
		// Through two trusted proxies, the client is the right-most untrusted hop.
		r := e.do(request{Method: http.MethodPost, Path: "/api/v1/runs", Token: e.tokens["netsub"], RemoteAddr: "127.0.0.1:1234",
			Header: map[string]string{"X-Forwarded-For": "8.8.8.8, 10.9.8.7, 172.16.5.5"}, Body: tradesRequest("2026-11-20")})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		var v broker.RunView
		r.decode(t, &v)
		require.Equal(t, "10.9.8.7", v.ClientIP)
		// A client that prepends its own X-Forwarded-For gains nothing: the proxy appends the real address.
		r = e.do(request{Method: http.MethodPost, Path: "/api/v1/runs", Token: e.tokens["netsub"], RemoteAddr: "127.0.0.1:1234",
			Header: map[string]string{"X-Forwarded-For": "10.1.1.1, 198.51.100.9"}, Body: tradesRequest("2026-11-20")})
		requireError(t, r, http.StatusForbidden, broker.CodeForbidden)
		require.Equal(t, int64(1), e.runCount())
	})
}

func TestSubmitRunDrawsANewRunIDWhenAnotherServerTookIt(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		cs := &collidingStore{Store: s}
		e := newEnv(t, s)
		e.rewire(cs)
		v := e.mustSubmit("sub", tradesRequest("2026-11-20"))
		require.Equal(t, 2, cs.calls, "the first insert collided and the broker drew again")
		require.NotEqual(t, cs.stolen, v.ID)
		require.Equal(t, int64(2), e.runCount(), "the other server's run and ours")
	})
}

// collidingStore makes the first InsertRun collide: another "server" inserts
// a run with the same run_id just before.
type collidingStore struct {
	*catalog.Store
	calls  int
	stolen string
}

func (c *collidingStore) InsertRun(ctx context.Context, r *catalog.Run) (*catalog.Run, bool, error) {
	c.calls++
	if c.calls == 1 {
		other := *r
		other.IdempotencyKey, other.SubmittedBy = nil, "elsewhere"
		if _, _, err := c.Store.InsertRun(ctx, &other); err != nil {
			return nil, false, err
		}
		c.stolen = r.ID
	}
	return c.Store.InsertRun(ctx, r)
}

func TestGetRunRefusesMalformedIDsAndAnswersUnknownWith404(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		d := requireError(t, e.get("/api/v1/runs/123", "admin"), http.StatusBadRequest, broker.CodeBadRequest)
		require.Equal(t, "run_id", d.Field)
		requireError(t, e.get("/api/v1/runs/12345678901234567890123x", "admin"), http.StatusBadRequest, broker.CodeBadRequest)
		requireError(t, e.get("/api/v1/runs/000000000000000000000000", "admin"), http.StatusNotFound, broker.CodeNotFound)
		for _, sub := range []string{"events", "manifest", "plan", "tasks"} {
			requireError(t, e.get("/api/v1/runs/42/"+sub, "admin"), http.StatusBadRequest, broker.CodeBadRequest)
			requireError(t, e.get("/api/v1/runs/000000000000000000000000/"+sub, "admin"), http.StatusNotFound, broker.CodeNotFound)
		}
		requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/runs/000000000000000000000000/cancel"}), http.StatusNotFound, broker.CodeNotFound)

		v := e.mustSubmit("admin", tradesRequest("2026-11-20"))
		for _, sub := range []string{"", "/events", "/manifest", "/plan", "/tasks"} {
			d := requireError(t, e.get("/api/v1/runs/"+v.ID+sub, "other"), http.StatusForbidden, broker.CodeForbidden)
			require.Contains(t, d.Message, "read")
		}
		require.Equal(t, http.StatusOK, e.get("/api/v1/runs/"+v.ID, "viewer").Status)
	})
}

func TestListRunsPaginatesWithACursorNewestFirst(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		var ids []string
		for i := range 7 {
			v := e.mustSubmit("sub", map[string]any{"mapping": "trades", "params": map[string]any{"business_date": fmt.Sprintf("2026-11-%02d", 10+i)}})
			ids = append(ids, v.ID)
		}
		var seen []string
		cursor, pages := "", 0
		for {
			path := "/api/v1/runs?limit=3"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			r := e.get(path, "sub")
			require.Equal(t, http.StatusOK, r.Status, r.String())
			var page broker.RunList
			r.decode(t, &page)
			pages++
			for _, v := range page.Runs {
				seen = append(seen, v.ID)
			}
			if page.NextCursor == "" {
				require.Len(t, page.Runs, 1)
				break
			}
			require.Len(t, page.Runs, 3)
			cursor = page.NextCursor
		}
		require.Equal(t, 3, pages)
		want := make([]string, len(ids))
		for i, id := range ids {
			want[len(ids)-1-i] = id
		}
		require.Equal(t, want, seen, "every run once, newest first")
	})
}

func TestListRunsFiltersAndRefusesBadQueries(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		a := e.mustSubmit("sub", tradesRequest("2026-11-20"))
		b := e.mustSubmit("admin", tradesRequest("2026-11-21"))
		c := e.mustSubmit("admin", map[string]any{"mapping": "other"})
		require.Equal(t, http.StatusOK, e.do(request{Method: http.MethodPost, Path: "/api/v1/runs/" + b.ID + "/cancel"}).Status)

		list := func(query, user string) []string {
			t.Helper()
			r := e.get("/api/v1/runs?"+query, user)
			require.Equal(t, http.StatusOK, r.Status, r.String())
			var page broker.RunList
			r.decode(t, &page)
			var out []string
			for _, v := range page.Runs {
				out = append(out, v.ID)
			}
			return out
		}
		require.Equal(t, []string{c.ID, b.ID, a.ID}, list("", "admin"))
		require.Equal(t, []string{c.ID, a.ID}, list("state=pending", "admin"))
		require.Equal(t, []string{c.ID, b.ID, a.ID}, list("state=pending,canceled", "admin"))
		require.Equal(t, []string{b.ID, a.ID}, list("mapping=trades", "admin"))
		require.Equal(t, []string{a.ID}, list("submitted_by=sub", "admin"))
		require.Equal(t, []string{b.ID}, list("state=canceled&mapping=trades&submitted_by=admin", "admin"))

		for _, q := range []string{"state=running", "state=pending,", "limit=0", "limit=-1", "limit=abc", "limit=100000", "cursor=abc", "cursor=" + strings.Repeat("9", 25)} {
			r := e.get("/api/v1/runs?"+q, "admin")
			requireError(t, r, http.StatusBadRequest, broker.CodeBadRequest)
		}
	})
}

func TestListRunsShowsOnlyRunsOfMappingsTheCallerMayRead(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		tr := e.mustSubmit("admin", tradesRequest("2026-11-20"))
		ot := e.mustSubmit("admin", map[string]any{"mapping": "other"})
		ids := func(user, query string) []string {
			t.Helper()
			r := e.get("/api/v1/runs"+query, user)
			require.Equal(t, http.StatusOK, r.Status, r.String())
			var page broker.RunList
			r.decode(t, &page)
			out := []string{}
			for _, v := range page.Runs {
				out = append(out, v.ID)
			}
			return out
		}
		require.Equal(t, []string{tr.ID}, ids("sub", ""))
		require.Equal(t, []string{ot.ID}, ids("other", ""))
		require.Equal(t, []string{ot.ID, tr.ID}, ids("viewer", ""), "read on * sees all")
		require.Equal(t, []string{ot.ID, tr.ID}, ids("admin", ""))
		require.Empty(t, ids("nobody", ""))
		require.Empty(t, ids("netsub", ""), "outside its network, netsub reads nothing")
		requireError(t, e.get("/api/v1/runs?mapping=other", "sub"), http.StatusForbidden, broker.CodeForbidden)
	})
}

func TestCancelRunCancelsAPendingRunOnceAndNeedsTheCancelEntitlement(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		v := e.mustSubmit("sub", tradesRequest("2026-11-20"))
		cancelAs := func(user string) response {
			return e.do(request{Method: http.MethodPost, Path: "/api/v1/runs/" + v.ID + "/cancel", Token: e.tokens[user]})
		}
		d := requireError(t, cancelAs("sub"), http.StatusForbidden, broker.CodeForbidden)
		require.Contains(t, d.Message, "cancel")
		e.addUser("op", catalog.RoleOperator, grant{"mapping:trades", catalog.ActionCancel, nil})
		r := cancelAs("op")
		require.Equal(t, http.StatusOK, r.Status, r.String())
		var cv broker.RunView
		r.decode(t, &cv)
		require.Equal(t, catalog.StateCanceled, cv.State)
		require.True(t, cv.CancelRequested)
		stored, err := s.GetRun(e.ctx, v.ID)
		require.NoError(t, err)
		require.Equal(t, catalog.StateCanceled, stored.State)

		d = requireError(t, cancelAs("op"), http.StatusConflict, broker.CodeIllegalTransition)
		require.Contains(t, d.Message, "canceled")

		// A cancel with a JSON body of the wrong type is refused like any other POST.
		r = e.do(request{Method: http.MethodPost, Path: "/api/v1/runs/" + v.ID + "/cancel", ContentType: "text/plain", Body: "please"})
		requireError(t, r, http.StatusUnsupportedMediaType, broker.CodeUnsupportedMedia)
	})
}

func TestRunPlanTasksManifestAndProgressFollowTheRunsLife(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		ctx := e.ctx
		v := e.mustSubmit("sub", tradesRequest("2026-11-20"))
		base := "/api/v1/runs/" + v.ID

		d := requireError(t, e.get(base+"/manifest", "sub"), http.StatusNotFound, broker.CodeNotFound)
		require.Contains(t, d.Message, "no manifest yet")
		d = requireError(t, e.get(base+"/plan", "sub"), http.StatusNotFound, broker.CodeNotFound)
		require.Contains(t, d.Message, "no plan yet")
		r := e.get(base+"/tasks", "sub")
		require.Equal(t, http.StatusOK, r.Status)
		require.JSONEq(t, `{"tasks":[]}`, r.String())

		// The workload manager plans and assigns it; a worker claims it.
		lease, err := s.AcquireLease(ctx, catalog.LeaderLeaseName(testRegion), "leader", time.Hour)
		require.NoError(t, err)
		require.NoError(t, s.UpsertNode(ctx, &catalog.Node{ID: "w1", Region: testRegion, Roles: catalog.NewJSON([]string{catalog.NodeRoleWorker}), Slots: 2}))
		plan := &catalog.Plan{SchemaVersion: catalog.PlanSchemaVersion, RunID: v.ID, Mapping: "trades", MappingVersion: 1, Worker: "w1", MaxThreads: 4, Steps: []string{"list", "copy"}}
		require.NoError(t, s.DispatchRun(ctx, catalog.DispatchParams{RunID: v.ID, Worker: "w1", Plan: plan, LeaseName: lease.Name, LeaseHolder: "leader", LeaseToken: lease.Token}))
		r = e.get(base+"/plan", "sub")
		require.Equal(t, http.StatusOK, r.Status, r.String())
		var gotPlan catalog.Plan
		r.decode(t, &gotPlan)
		require.Equal(t, v.ID, gotPlan.RunID)
		require.Equal(t, "w1", gotPlan.Worker)

		claimed, err := s.ClaimRuns(ctx, catalog.ClaimParams{Worker: "w1", Limit: 1, LeaseTTL: time.Minute})
		require.NoError(t, err)
		require.Len(t, claimed, 1)
		tok := claimed[0].FencingToken
		tasks := []catalog.RunTask{
			{Seq: 0, Thread: 0, Attempt: 1, Files: catalog.NewJSON([]string{"a.csv"}), Progress: catalog.Progress{FilesTotal: 1, BytesTotal: 600}},
			{Seq: 1, Thread: 1, Attempt: 1, Files: catalog.NewJSON([]string{"b.csv"}), Progress: catalog.Progress{FilesTotal: 1, BytesTotal: 400}},
		}
		require.NoError(t, s.SaveTasks(ctx, catalog.SaveTasksParams{RunID: v.ID, FencingToken: tok, Plan: plan, Tasks: tasks}))
		e.clock.Advance(10 * time.Second)
		require.NoError(t, s.FlushProgress(ctx, catalog.FlushProgressParams{RunID: v.ID, FencingToken: tok,
			Run:   catalog.Progress{TasksDone: 1, FilesDone: 1, BytesDone: 250},
			Tasks: []catalog.TaskUpdate{{Seq: 0, State: catalog.TaskDone, Progress: catalog.Progress{FilesDone: 1, BytesDone: 250}}}}))

		r = e.get(base+"/tasks", "sub")
		require.Equal(t, http.StatusOK, r.Status)
		var tl struct{ Tasks []catalog.RunTask }
		r.decode(t, &tl)
		require.Len(t, tl.Tasks, 2)
		require.Equal(t, catalog.TaskDone, tl.Tasks[0].State)
		require.Equal(t, []string{"b.csv"}, tl.Tasks[1].Files.V)

		r = e.get(base, "sub")
		var active broker.RunView
		r.decode(t, &active)
		require.Equal(t, catalog.StateActive, active.State)
		require.Equal(t, int64(250), active.BytesDone)
		require.Equal(t, int64(1000), active.BytesTotal)
		require.NotNil(t, active.ElapsedSeconds)
		require.InDelta(t, 10, *active.ElapsedSeconds, 0.001)
		require.NotNil(t, active.RateBytesPerSecond)
		require.InDelta(t, 25, *active.RateBytesPerSecond, 0.001)
		require.NotNil(t, active.ETASeconds)
		require.InDelta(t, 30, *active.ETASeconds, 0.001, "750 bytes left at 25 B/s")

		e.clock.Advance(10 * time.Second)
		manifest := &catalog.Manifest{SchemaVersion: catalog.ManifestSchemaVersion, RunID: v.ID, Mapping: "trades", MappingVersion: 1, State: catalog.StateSucceeded,
			Files: []catalog.ManifestFile{{Path: "a.csv", Size: 600, SHA256: strings.Repeat("a", 64)}, {Path: "b.csv", Size: 400, SHA256: strings.Repeat("b", 64)}}, TotalFiles: 2, TotalBytes: 1000}
		_, err = s.FinishRun(ctx, catalog.FinishParams{RunID: v.ID, FencingToken: tok, Worker: "w1", State: catalog.StateSucceeded, Manifest: manifest,
			Progress: &catalog.Progress{TasksDone: 2, FilesDone: 2, BytesDone: 1000}})
		require.NoError(t, err)

		r = e.get(base+"/manifest", "sub")
		require.Equal(t, http.StatusOK, r.Status, r.String())
		var gotM catalog.Manifest
		r.decode(t, &gotM)
		require.Equal(t, int64(2), gotM.TotalFiles)
		require.Len(t, gotM.Files, 2)

		e.clock.Advance(time.Hour) // a finished run's figures stop at its end
		r = e.get(base, "sub")
		var done broker.RunView
		r.decode(t, &done)
		require.Equal(t, catalog.StateSucceeded, done.State)
		require.InDelta(t, 20, *done.ElapsedSeconds, 0.001)
		require.InDelta(t, 50, *done.RateBytesPerSecond, 0.001)
		require.Nil(t, done.ETASeconds, "a finished run has no ETA")
		var raw map[string]any
		require.NoError(t, json.Unmarshal(r.Body, &raw))
		require.NotContains(t, raw, "eta_seconds")

		// Events after an id return only the newer ones.
		r = e.get(base+"/events", "sub")
		var all struct{ Events []catalog.RunEvent }
		r.decode(t, &all)
		require.GreaterOrEqual(t, len(all.Events), 3)
		mid := all.Events[0].ID
		r = e.get(fmt.Sprintf("%s/events?after=%d", base, mid), "sub")
		var rest struct{ Events []catalog.RunEvent }
		r.decode(t, &rest)
		require.Len(t, rest.Events, len(all.Events)-1)
		r = e.get(fmt.Sprintf("%s/events?after=%d", base, all.Events[len(all.Events)-1].ID), "sub")
		require.JSONEq(t, `{"events":[]}`, r.String())
		requireError(t, e.get(base+"/events?after=x", "sub"), http.StatusBadRequest, broker.CodeBadRequest)
		requireError(t, e.get(base+"/events?after=-3", "sub"), http.StatusBadRequest, broker.CodeBadRequest)
		// Cancelling a finished run is an illegal transition.
		requireError(t, e.do(request{Method: http.MethodPost, Path: base + "/cancel"}), http.StatusConflict, broker.CodeIllegalTransition)
	})
}

func ptr[T any](v T) *T { return &v }
