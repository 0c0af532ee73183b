package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
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

// metricsHandler serves reg to callers with the API token of an enabled
// user (Authorization: Bearer <token>) allowed to read everything: the
// admin role, or an entitlement to read "*" (from the caller's network when
// it lists networks), since the metrics name every mapping and host. A
// missing or refused token gets 401, a user without that entitlement 403,
// and 503 when the catalog cannot tell.
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
		p, err := auth.Authenticate(ctx, token)
		if err != nil {
			if errors.Is(err, catalog.ErrUnauthenticated) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="weir", error="invalid_token"`)
				writeMetricsError(w, http.StatusUnauthorized, "unauthenticated", "unauthenticated: the token is unknown, expired or revoked, or its user disabled")
				return
			}
			log.Warn("metrics: authenticate", slog.String("error", err.Error()))
			writeMetricsError(w, http.StatusServiceUnavailable, "unavailable", "the catalog does not answer; try again")
			return
		}
		if !p.Allowed(catalog.ActionRead, "*", remoteAddr(r)) {
			writeMetricsError(w, http.StatusForbidden, "forbidden",
				fmt.Sprintf("forbidden: user %s may not read the metrics, which name every mapping and host; grant it read on \"*\" (or the admin role)", p.User.Name))
			return
		}
		serve.ServeHTTP(w, r)
	})
}

// remoteAddr is the TCP peer's address (the metrics listener trusts no
// proxy), the zero Addr when it cannot be parsed.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
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
