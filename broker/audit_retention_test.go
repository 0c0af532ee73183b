package broker_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestUnauthenticatedDenialsAreAuditedOncePerAddressAndMinute(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		forged := func(addr string) {
			requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/runs", Token: "weir_forged_token_value", RemoteAddr: addr}),
				http.StatusUnauthorized, broker.CodeUnauthenticated)
		}
		denied := func() []catalog.AuditEntry {
			es, _, err := s.ListAudit(e.ctx, catalog.AuditFilter{Action: "api.denied", Limit: 100})
			require.NoError(t, err)
			return es
		}
		for range 5 {
			forged("198.51.100.9:1")
		}
		forged("198.51.100.10:1")
		require.Len(t, denied(), 2, "one entry per address and minute")
		// A forbidden request of a signed-in user is always written.
		for range 2 {
			requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/systems", Token: e.tokens["viewer"], Body: map[string]any{"name": "x", "kind": "fs"}}), http.StatusForbidden, broker.CodeForbidden)
		}
		es, _, err := s.ListAudit(e.ctx, catalog.AuditFilter{Action: "system.create", Limit: 100})
		require.NoError(t, err)
		require.Len(t, es, 2)

		e.clock.Advance(time.Minute)
		forged("198.51.100.9:1")
		es = denied()
		require.Len(t, es, 3)
		require.Equal(t, "GET /api/v1/runs (and 4 more unauthenticated requests from this address left out of the audit log)", es[0].Detail)
	})
}

func TestPruneAuditRemovesEntriesPastTheRetention(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		old := &catalog.AuditEntry{At: testToday.Add(-broker.AuditRetentionDefault - time.Hour), Node: "n", Action: "user.create", Outcome: catalog.AuditOK}
		recent := &catalog.AuditEntry{At: testToday.Add(-broker.AuditRetentionDefault + time.Hour), Node: "n", Action: "user.update", Outcome: catalog.AuditOK}
		require.NoError(t, s.InsertAudit(e.ctx, old))
		require.NoError(t, s.InsertAudit(e.ctx, recent))
		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan error, 1)
		go func() { done <- e.srv.PruneAudit(ctx, 0, time.Hour) }()
		require.Eventually(t, func() bool {
			es, _, err := s.ListAudit(e.ctx, catalog.AuditFilter{Limit: 10})
			return err == nil && len(es) == 1
		}, 10*time.Second, 20*time.Millisecond)
		cancel()
		require.NoError(t, <-done)
		es, _, err := s.ListAudit(e.ctx, catalog.AuditFilter{Limit: 10})
		require.NoError(t, err)
		require.Equal(t, recent.ID, es[0].ID)
		require.Contains(t, e.logs.String(), "pruned the audit log")
	})
}
