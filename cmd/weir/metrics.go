package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/weirdata/weir/catalog"
)

// MetricsPath is where every node serves its Prometheus metrics: on the
// API's listener (servers, dev) and on the dispatcher agent's (workers,
// agents).
const MetricsPath = "/metrics"

// newRegistry is the process's metrics registry: the Go runtime and process
// collectors, and the catalog's query metrics. The components add theirs.
func newRegistry(store *catalog.Store) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := store.Instrument(reg); err != nil {
		return nil, fmt.Errorf("instrument the catalog: %w", err)
	}
	return reg, nil
}

// authenticator resolves an API token; *catalog.Store is one.
type authenticator interface {
	Authenticate(ctx context.Context, raw string) (*catalog.Principal, error)
}

// metricsHandler serves reg to callers with the API token of any enabled
// user (Authorization: Bearer <token>); others get 401, and 503 when the
// catalog cannot tell.
func metricsHandler(reg *prometheus.Registry, auth authenticator, log *slog.Logger) http.Handler {
	serve := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn), Timeout: 30 * time.Second})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeMetricsError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET "+MetricsPath)
			return
		}
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="weir"`)
			writeMetricsError(w, http.StatusUnauthorized, "unauthenticated",
				"unauthenticated: send the header Authorization: Bearer <token> with the API token of an enabled user")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if _, err := auth.Authenticate(ctx, token); err != nil {
			if errors.Is(err, catalog.ErrUnauthenticated) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="weir", error="invalid_token"`)
				writeMetricsError(w, http.StatusUnauthorized, "unauthenticated", "unauthenticated: the token is unknown, expired or revoked, or its user disabled")
				return
			}
			log.Warn("metrics: authenticate", slog.String("error", err.Error()))
			writeMetricsError(w, http.StatusServiceUnavailable, "unavailable", "the catalog does not answer; try again")
			return
		}
		serve.ServeHTTP(w, r)
	})
}

// writeMetricsError answers with the API's error body.
func writeMetricsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// withMetrics serves metrics at MetricsPath and everything else with h.
func withMetrics(h, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, metrics)
	mux.Handle("/", h)
	return mux
}

// metrics is the node's /metrics handler.
func (s *stack) metrics() http.Handler {
	return metricsHandler(s.reg, s.store, s.log.With("component", "metrics"))
}
