package broker_test

import (
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

func (e *env) raise(key, severity, region string) *catalog.Alert {
	e.t.Helper()
	a, _, err := e.store.RaiseAlert(e.ctx, catalog.RaiseAlertParams{Key: key, Severity: severity, Subject: "subject of " + key, Message: "message", Region: region})
	require.NoError(e.t, err)
	return a
}

func alertKeys(l broker.AlertList) []string {
	var out []string
	for _, a := range l.Alerts {
		out = append(out, a.Key)
	}
	return out
}

func TestAlertsListAckAndResolve(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.addUser("op", catalog.RoleOperator)
		e.raise("run-held:1", catalog.AlertWarning, testRegion)
		red := e.raise("node-red:w1", catalog.AlertCritical, testRegion)
		e.raise("node-red:far", catalog.AlertCritical, "us-east")
		info := e.raise("note", catalog.AlertInfo, testRegion)

		list := func(user, query string) broker.AlertList {
			t.Helper()
			r := e.get("/api/v1/alerts"+query, user)
			require.Equal(t, http.StatusOK, r.Status, r.String())
			var l broker.AlertList
			r.decode(t, &l)
			return l
		}
		require.Equal(t, []string{"note", "node-red:far", "node-red:w1", "run-held:1"}, alertKeys(list("op", "")), "newest first")
		require.Equal(t, []string{"node-red:far", "node-red:w1"}, alertKeys(list("op", "?severity=critical")))
		require.Equal(t, []string{"node-red:w1", "run-held:1"}, alertKeys(list("op", "?severity=warning&region="+testRegion)))
		require.Equal(t, []string{"node-red:w1"}, alertKeys(list("op", "?key=node-red:w1")))

		// Paging with a cursor.
		page := list("op", "?limit=3")
		require.Len(t, page.Alerts, 3)
		require.NotZero(t, page.NextCursor)
		rest := list("op", fmt.Sprintf("?limit=3&cursor=%d", page.NextCursor))
		require.Equal(t, []string{"run-held:1"}, alertKeys(rest))
		require.Zero(t, rest.NextCursor)

		// Acknowledge, then resolve.
		r := e.do(request{Method: http.MethodPost, Path: fmt.Sprintf("/api/v1/alerts/%d/ack", red.ID), Token: e.tokens["op"]})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		var a catalog.Alert
		r.decode(t, &a)
		require.Equal(t, "op", a.AckedBy)
		require.NotNil(t, a.AckedAt)
		require.True(t, a.Open())
		require.Equal(t, []string{"note", "node-red:far", "run-held:1"}, alertKeys(list("op", "?unacked=true")))

		r = e.do(request{Method: http.MethodPost, Path: fmt.Sprintf("/api/v1/alerts/%d/resolve", info.ID)})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		r.decode(t, &a)
		require.False(t, a.Open())
		require.Equal(t, []string{"node-red:far", "node-red:w1", "run-held:1"}, alertKeys(list("admin", "?open=true")))
		require.Len(t, list("admin", "?open=false").Alerts, 4)

		// A viewer of everything may read, not handle; a submitter may not even read.
		require.Len(t, list("viewer", "").Alerts, 4)
		requireError(t, e.do(request{Method: http.MethodPost, Path: fmt.Sprintf("/api/v1/alerts/%d/ack", red.ID), Token: e.tokens["viewer"]}), http.StatusForbidden, broker.CodeForbidden)
		requireError(t, e.do(request{Method: http.MethodPost, Path: fmt.Sprintf("/api/v1/alerts/%d/resolve", red.ID), Token: e.tokens["viewer"]}), http.StatusForbidden, broker.CodeForbidden)
		requireError(t, e.get("/api/v1/alerts", "sub"), http.StatusForbidden, broker.CodeForbidden)
		requireError(t, e.do(request{Method: http.MethodPost, Path: fmt.Sprintf("/api/v1/alerts/%d/resolve", red.ID), Token: e.tokens["sub"]}), http.StatusForbidden, broker.CodeForbidden)
		requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/alerts", Token: "-"}), http.StatusUnauthorized, broker.CodeUnauthenticated)
		got, err := s.GetAlert(e.ctx, red.ID)
		require.NoError(t, err)
		require.True(t, got.Open(), "refused calls changed nothing")

		// Bad input.
		requireError(t, e.get("/api/v1/alerts?severity=loud", "op"), http.StatusBadRequest, broker.CodeBadRequest)
		requireError(t, e.get("/api/v1/alerts?open=maybe", "op"), http.StatusBadRequest, broker.CodeBadRequest)
		requireError(t, e.get("/api/v1/alerts?limit=0", "op"), http.StatusBadRequest, broker.CodeBadRequest)
		requireError(t, e.get("/api/v1/alerts?cursor=-4", "op"), http.StatusBadRequest, broker.CodeBadRequest)
		requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/alerts/abc/ack", Token: e.tokens["op"]}), http.StatusBadRequest, broker.CodeBadRequest)
		requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/alerts/999999/ack", Token: e.tokens["op"]}), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/alerts/999999/resolve", Token: e.tokens["op"]}), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, e.do(request{Method: http.MethodGet, Path: fmt.Sprintf("/api/v1/alerts/%d/ack", red.ID), Token: e.tokens["op"]}), http.StatusMethodNotAllowed, broker.CodeMethodNotAllowed)
	})
}

func TestRepeatedAuthenticationFailuresRaiseAnAlert(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s, func(c *broker.Config) { c.AuthFailureLimit = 5; c.AuthFailureWindow = time.Minute })
		const attacker = "203.0.113.7:5000"
		const badToken = "weir_this-token-does-not-exist-0123456789"
		bad := func(peer, token string) {
			t.Helper()
			requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/runs", Token: token, RemoteAddr: peer}), http.StatusUnauthorized, broker.CodeUnauthenticated)
		}
		ipAlerts := func(ip string) []catalog.Alert {
			as, _, err := s.ListAlerts(e.ctx, catalog.AlertFilter{Key: broker.AlertKeyAuthFailures + ip})
			require.NoError(t, err)
			return as
		}
		for i := range 4 {
			bad(attacker, fmt.Sprintf("weir_guess-%d", i))
		}
		require.Empty(t, ipAlerts("203.0.113.7"), "below the limit")
		// Good calls and calls without any credential do not count.
		require.Equal(t, http.StatusOK, e.do(request{Method: http.MethodGet, Path: "/api/v1/runs", RemoteAddr: attacker}).Status)
		bad(attacker, "-")
		require.Empty(t, ipAlerts("203.0.113.7"))

		bad(attacker, "weir_guess-5")
		as := ipAlerts("203.0.113.7")
		require.Len(t, as, 1)
		require.Equal(t, catalog.AlertWarning, as[0].Severity)
		require.Equal(t, testRegion, as[0].Region)
		require.Equal(t, "repeated authentication failures from 203.0.113.7", as[0].Subject)
		require.Equal(t, "5 refused credentials within 1m0s; the last: unknown token", as[0].Message)

		// More failures in the same window: no new raise (one per window).
		for i := range 10 {
			bad(attacker, fmt.Sprintf("weir_more-%d", i))
		}
		require.Equal(t, int64(1), ipAlerts("203.0.113.7")[0].Count)
		// A malformed header counts too, and a window later the alert counts again.
		e.clock.Advance(time.Minute)
		for range 5 {
			requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/runs", RemoteAddr: attacker, Header: map[string]string{"Authorization": "Basic Zm9vOmJhcg=="}}),
				http.StatusUnauthorized, broker.CodeUnauthenticated)
		}
		as = ipAlerts("203.0.113.7")
		require.Len(t, as, 1)
		require.Equal(t, int64(2), as[0].Count)
		require.Contains(t, as[0].Message, "malformed Authorization header")

		// Failures spread over time never reach the limit in one window.
		for range 8 {
			bad("198.51.100.1:1", "weir_slow")
			e.clock.Advance(20 * time.Second)
		}
		require.Empty(t, ipAlerts("198.51.100.1"))

		// One token tried from many addresses.
		for i := range 5 {
			bad(fmt.Sprintf("192.0.2.%d:1", 100+i), badToken)
		}
		tokAlerts, _, err := s.ListAlerts(e.ctx, catalog.AlertFilter{Open: true})
		require.NoError(t, err)
		var tok *catalog.Alert
		for i := range tokAlerts {
			if strings.HasPrefix(tokAlerts[i].Key, broker.AlertKeyAuthFailures+"token:") {
				tok = &tokAlerts[i]
			}
		}
		require.NotNil(t, tok, "the token's failures raise an alert of their own")
		require.Contains(t, tok.Subject, "last from 192.0.2.104")

		// The token's secret appears nowhere: not in alerts, not in the logs.
		all, _, err := s.ListAlerts(e.ctx, catalog.AlertFilter{})
		require.NoError(t, err)
		for _, a := range all {
			require.NotContains(t, a.Key+a.Subject+a.Message, "this-token-does-not-exist")
			require.NotContains(t, a.Key+a.Subject+a.Message, "weir_guess")
		}
		require.NotContains(t, e.logs.String(), "this-token-does-not-exist")
		require.Contains(t, e.logs.String(), "repeated authentication failures")
	})
}

func TestAuthFailureAlertsCanBeTurnedOff(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s, func(c *broker.Config) { c.AuthFailureLimit = -1 })
		for range 30 {
			requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/runs", Token: "weir_nope"}), http.StatusUnauthorized, broker.CodeUnauthenticated)
		}
		as, _, err := s.ListAlerts(e.ctx, catalog.AlertFilter{})
		require.NoError(t, err)
		require.Empty(t, as)
	})
}

// TestAuthFailuresAreCountedAcrossBrokers: failures from one address spread
// over two brokers of one catalog reach the limit together; neither
// broker's own count reaches it.
func TestAuthFailuresAreCountedAcrossBrokers(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s, func(c *broker.Config) { c.AuthFailureLimit = 5; c.AuthFailureWindow = time.Minute })
		brokerA := e.handler
		brokerB := broker.New(e.cfg, s).Handler()
		const attacker = "203.0.113.9:5000"
		bad := func(h http.Handler, n int) {
			t.Helper()
			e.handler = h
			for i := range n {
				requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/runs", Token: fmt.Sprintf("weir_guess-%d", i), RemoteAddr: attacker}),
					http.StatusUnauthorized, broker.CodeUnauthenticated)
			}
		}
		alerts := func() []catalog.Alert {
			as, _, err := s.ListAlerts(e.ctx, catalog.AlertFilter{Key: broker.AlertKeyAuthFailures + "203.0.113.9"})
			require.NoError(t, err)
			return as
		}
		bad(brokerA, 3)
		bad(brokerB, 1)
		require.Empty(t, alerts(), "4 failures in all: below the limit")
		bad(brokerB, 1)
		as := alerts()
		require.Len(t, as, 1, "the fifth failure, on the second broker, reaches the limit of both together")
		require.Equal(t, "5 refused credentials within 1m0s; the last: unknown token", as[0].Message)

		// Further failures within the window raise nothing more, on either broker.
		bad(brokerA, 4)
		bad(brokerB, 4)
		require.Equal(t, int64(2), alerts()[0].Count, "at most once per broker and window")
	})
}
