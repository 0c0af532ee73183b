package broker

import (
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/weirdata/weir/catalog"
)

// RouteUnmatched is the route label of requests that matched no route, so
// that their raw paths never become label values.
const RouteUnmatched = "unmatched"

// httpMetrics are the broker's request metrics.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newHTTPMetrics registers the request metrics with reg; nil reg, nil metrics.
func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	if reg == nil {
		return nil
	}
	return &httpMetrics{
		requests: catalog.MustRegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_http_requests_total",
			Help: "HTTP requests answered by the REST API, by method, route template and status code.",
		}, []string{"method", "route", "code"})),
		duration: catalog.MustRegisterCollector(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "weir_http_request_duration_seconds",
			Help:    "Time the REST API took to answer, by method and route template.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"})),
	}
}

// countRequests counts each request under its route template (never its
// raw URL) and status code. It is the outermost middleware: the inner ones
// have answered (logRequests writes errors) when it reads the status.
func (s *Server) countRequests(next echo.HandlerFunc) echo.HandlerFunc {
	if s.metrics == nil {
		return next
	}
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil && !c.Response().Committed {
			c.Error(err)
			err = nil
		}
		route := c.Path()
		if route == "" {
			route = RouteUnmatched
		}
		method := c.Request().Method
		switch method {
		case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		default:
			method = "other" // methods are client-chosen strings
		}
		s.metrics.requests.WithLabelValues(method, route, strconv.Itoa(c.Response().Status)).Inc()
		s.metrics.duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		return err
	}
}
