package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/catalog"
)

func TestClusterDecodesTheView(t *testing.T) {
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		require.Equal(t, "/api/v1/cluster", r.URL.Path)
		require.Equal(t, "Bearer "+testToken, r.Header.Get("Authorization"))
		if calls == 1 {
			writeErr(w, http.StatusServiceUnavailable, "unavailable", "the catalog does not answer", "")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"region":"west","node":"s1","authoritative_region":"east","federation":true,"gossip":true,
			"regions":[{"name":"east","code":"123","authoritative":true,"servers_alive":1,"nodes_alive":3,"reachable":true,
			  "replication":[{"stream":"identity","lag_seconds":1.5,"last_attempt_at":"2026-03-01T12:00:00Z","rows":12}]},
			  {"name":"west","code":"456","local":true,"reachable":true}],
			"nodes":[{"id":"w1","region":"west","roles":["worker"],"state":"dead","gossip_state":"dead",
			  "health":{"color":"red","reasons":[{"metric":"heartbeat","level":"red","text":"not heard from for 30s","value":30}]},"slots":2,"last_seen":"2026-03-01T12:00:00Z","source":"catalog+gossip"}],
			"generated_at":"2026-03-01T12:00:01Z"}`))
	}))
	defer srv.Close()
	c, waits := newTestClient(t, srv.URL)
	got, err := c.Cluster(context.Background())
	require.NoError(t, err)
	require.Len(t, *waits, 1, "503 is retried: the read is idempotent")
	require.Equal(t, "east", got.AuthoritativeRegion)
	require.Len(t, got.Regions, 2)
	require.Equal(t, 1.5, *got.Regions[0].Replication[0].LagSeconds)
	require.Equal(t, "red", got.Nodes[0].Health.Color)
	require.Equal(t, "not heard from for 30s", got.Nodes[0].Health.Reasons[0].Text)
	require.Equal(t, "catalog+gossip", got.Nodes[0].Source)

	deny := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusUnauthorized, "unauthenticated", "unauthenticated: unknown token", "")
	}))
	defer deny.Close()
	c2, _ := newTestClient(t, deny.URL)
	_, err = c2.Cluster(context.Background())
	require.True(t, errors.Is(err, catalog.ErrUnauthenticated), "%v", err)
}
