package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/catalog"
)

// recorder is a server that answers every request with its handler's JSON
// and records what it was asked.
type recorder struct {
	mu     sync.Mutex
	asked  []string // "METHOD escaped-path?query"
	bodies []string
}

func (rec *recorder) server(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		q := ""
		if r.URL.RawQuery != "" {
			q = "?" + r.URL.RawQuery
		}
		rec.asked = append(rec.asked, r.Method+" "+r.URL.EscapedPath()+q)
		rec.bodies = append(rec.bodies, string(b))
		rec.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHealthNodesRequests(t *testing.T) {
	rec := &recorder{}
	srv := rec.server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/health":
			writeJSON(w, 200, map[string]any{"health": map[string]any{"color": "red", "reasons": []any{
				map[string]any{"subject": "node w1", "metric": "memory", "level": "red", "text": "memory 40% > 0.1% critical"}}},
				"nodes": []any{map[string]any{"id": "w1", "roles": []string{"worker"}, "health": map[string]any{"color": "red"}}},
				"runs":  map[string]any{"pending": 2, "held": 1}})
		case "/api/v1/nodes":
			writeJSON(w, 200, map[string]any{"nodes": []any{map[string]any{"id": "w1", "address": "http://127.0.0.1:7071", "health": map[string]any{"color": "green"}}}})
		case "/api/v1/nodes/w 1":
			writeJSON(w, 200, map[string]any{"id": "w 1", "health": map[string]any{"color": "green"},
				"sample":     map[string]any{"cpu_pct": 12.5, "disks": []any{map[string]any{"path": "/data", "free_bytes": 5, "used_pct": 50}}},
				"thresholds": map[string]any{"cpu": map[string]any{"warn": 85, "crit": 95}},
				"services":   []any{map[string]any{"node": "w 1", "name": "worker", "status": "running", "health": map[string]any{"color": "green"}}}})
		default:
			writeErr(w, 404, "not_found", "no node", "")
		}
	})
	c, _ := newTestClient(t, srv.URL)
	ctx := context.Background()

	rep, err := c.Health(ctx, "us-east")
	require.NoError(t, err)
	require.Equal(t, Red, rep.Health.Color)
	require.Equal(t, "red: node w1: memory 40% > 0.1% critical", rep.Health.String())
	require.Equal(t, []string{"worker"}, rep.Nodes[0].Roles.V)
	require.EqualValues(t, 1, rep.Runs.Held)

	nodes, err := c.ListNodes(ctx, "")
	require.NoError(t, err)
	require.Len(t, nodes, 1)
	require.Equal(t, "http://127.0.0.1:7071", nodes[0].Address)

	n, err := c.GetNode(ctx, "w 1")
	require.NoError(t, err)
	require.Equal(t, 12.5, n.Sample.CPUPct)
	require.Equal(t, "/data", n.Sample.Disks[0].Path)
	require.Equal(t, ThresholdLevels{Warn: 85, Crit: 95}, n.Thresholds["cpu"])
	require.Equal(t, "running", n.Services[0].Status)

	_, err = c.GetNode(ctx, "gone")
	require.ErrorIs(t, err, catalog.ErrNotFound)
	_, err = c.GetNode(ctx, " ")
	require.Error(t, err)

	require.Equal(t, []string{"GET /api/v1/health?region=us-east", "GET /api/v1/nodes", "GET /api/v1/nodes/w%201", "GET /api/v1/nodes/gone"}, rec.asked)
}

func TestThresholdRequests(t *testing.T) {
	rec := &recorder{}
	srv := rec.server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, 200, map[string]any{"scope": "node:w1", "thresholds": []any{map[string]any{"scope": "node:w1", "metric": "cpu", "warn": 80, "crit": 90}},
			"effective": map[string]any{"cpu": map[string]any{"warn": 80, "crit": 90, "from": "node:w1"}}})
	})
	c, _ := newTestClient(t, srv.URL)
	ctx := context.Background()

	st, err := c.SetThresholds(ctx, "node:w1", map[string]ThresholdLevels{"cpu": {Warn: 80, Crit: 90}})
	require.NoError(t, err)
	require.Equal(t, EffectiveThreshold{ThresholdLevels{80, 90}, "node:w1"}, st.Effective["cpu"])
	_, err = c.GetThresholds(ctx, "default")
	require.NoError(t, err)
	require.NoError(t, c.DeleteThresholds(ctx, "node:w1", "cpu"))
	require.NoError(t, c.DeleteThresholds(ctx, "system:db", ""))

	// Bad scopes and empty sets are refused before anything is sent.
	var ve *catalog.ValidationError
	_, err = c.GetThresholds(ctx, "cluster:x")
	require.True(t, errors.As(err, &ve), "%v", err)
	_, err = c.SetThresholds(ctx, "node:w1", nil)
	require.Error(t, err)

	require.Equal(t, []string{"PUT /api/v1/thresholds/node:w1", "GET /api/v1/thresholds/default",
		"DELETE /api/v1/thresholds/node:w1?metric=cpu", "DELETE /api/v1/thresholds/system:db"}, rec.asked)
	var body map[string]ThresholdLevels
	require.NoError(t, json.Unmarshal([]byte(rec.bodies[0]), &body))
	require.Equal(t, map[string]ThresholdLevels{"cpu": {80, 90}}, body)
}

func TestAlertRequests(t *testing.T) {
	rec := &recorder{}
	srv := rec.server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/alerts":
			writeJSON(w, 200, map[string]any{"alerts": []any{map[string]any{"id": 7, "key": "run-held:1", "severity": "warning", "subject": "held", "count": 1}}, "next_cursor": 7})
		case "/api/v1/alerts/7/ack":
			writeJSON(w, 200, map[string]any{"id": 7, "acked_by": "admin", "acked_at": "2026-11-20T10:00:00Z"})
		case "/api/v1/alerts/7/resolve":
			writeJSON(w, 200, map[string]any{"id": 7, "resolved_at": "2026-11-20T10:00:00Z"})
		default:
			writeErr(w, 403, "forbidden", "you may not", "")
		}
	})
	c, _ := newTestClient(t, srv.URL)
	ctx := context.Background()

	page, err := c.ListAlerts(ctx, ListAlertsOptions{Open: true, Unacked: true, Severity: "warning", Region: "eu", Key: "run-held:1", Limit: 5, Cursor: 9})
	require.NoError(t, err)
	require.Len(t, page.Alerts, 1)
	require.EqualValues(t, 7, page.NextCursor)
	require.Equal(t, "run-held:1", page.Alerts[0].Key)
	a, err := c.AckAlert(ctx, 7)
	require.NoError(t, err)
	require.Equal(t, "admin", a.AckedBy)
	a, err = c.ResolveAlert(ctx, 7)
	require.NoError(t, err)
	require.NotNil(t, a.ResolvedAt)
	_, err = c.AckAlert(ctx, 8)
	var ae *APIError
	require.True(t, errors.As(err, &ae) && ae.Status == 403, "%v", err)

	// Refused before sending.
	_, err = c.ListAlerts(ctx, ListAlertsOptions{Severity: "loud"})
	require.Error(t, err)
	_, err = c.ResolveAlert(ctx, 0)
	require.Error(t, err)

	require.Equal(t, []string{
		"GET /api/v1/alerts?cursor=9&key=run-held%3A1&limit=5&open=true&region=eu&severity=warning&unacked=true",
		"POST /api/v1/alerts/7/ack", "POST /api/v1/alerts/7/resolve", "POST /api/v1/alerts/8/ack"}, rec.asked)
}
