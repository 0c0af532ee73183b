package broker_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestRequestMetricsUseRouteTemplatesAndStatusCodes(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	e := newEnv(t, catalogtest.Open(t, catalog.DialectSQLite), func(c *broker.Config) { c.Metrics = reg })

	require.Equal(t, http.StatusOK, e.get("/api/v1/mappings/trades", "admin").Status)
	require.Equal(t, http.StatusOK, e.get("/api/v1/mappings/other", "admin").Status)
	require.Equal(t, http.StatusNotFound, e.get("/api/v1/mappings/nope", "admin").Status)
	require.Equal(t, http.StatusUnauthorized, e.do(request{Method: http.MethodGet, Path: "/api/v1/mappings/trades", Token: "-"}).Status)
	require.Equal(t, http.StatusNotFound, e.get("/no/such/secret-looking-path", "admin").Status)
	require.Equal(t, http.StatusCreated, e.submit("sub", tradesRequest("2026-11-20")).Status)

	want := `
# HELP weir_http_requests_total HTTP requests answered by the REST API, by method, route template and status code.
# TYPE weir_http_requests_total counter
weir_http_requests_total{code="201",method="POST",route="/api/v1/runs"} 1
weir_http_requests_total{code="200",method="GET",route="/api/v1/mappings/:name"} 2
weir_http_requests_total{code="401",method="GET",route="/api/v1/mappings/:name"} 1
weir_http_requests_total{code="404",method="GET",route="/api/v1/mappings/:name"} 1
weir_http_requests_total{code="404",method="GET",route="` + broker.RouteUnmatched + `"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "weir_http_requests_total"))
	require.Equal(t, 3, testutil.CollectAndCount(reg, "weir_http_request_duration_seconds"), "one histogram per method and route")

	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

func TestNoMetricsWithoutRegisterer(t *testing.T) {
	e := newEnv(t, catalogtest.Open(t, catalog.DialectSQLite))
	require.Equal(t, http.StatusOK, e.get("/api/v1/mappings/trades", "admin").Status)
}
