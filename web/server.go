package web

import (
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"
)

// Defaults of Config.
const (
	// APITimeoutDefault bounds one in-process API call of a page.
	APITimeoutDefault = 15 * time.Second
	// RefreshIntervalDefault is how often live parts of a page poll for news.
	RefreshIntervalDefault = 2 * time.Second
	// formBodyLimit bounds a posted form, in bytes; beyond it, 413.
	formBodyLimit = 1 << 20
)

// Config configures the dashboard. Its zero value works after WithDefaults,
// but for API, which must be set.
type Config struct {
	// API serves Weir's REST API (/api/v1/...): cmd/weir passes the broker's
	// handler. Every page reads and writes through it, in process.
	API http.Handler
	// Logger receives one line per page request and the details of errors.
	Logger *slog.Logger
	// APITimeout bounds one API call of a page (default APITimeoutDefault).
	APITimeout time.Duration
	// RefreshInterval is how often live parts of pages poll (default RefreshIntervalDefault).
	RefreshInterval time.Duration
	// Now is the clock of the pages; default time.Now.
	Now func() time.Time
	// TrustedProxies are CIDRs (or addresses) of reverse proxies whose
	// X-Forwarded-Proto is believed, as the API's broker.Config.TrustedProxies
	// (pass the same list). Default none.
	TrustedProxies []string
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.APITimeout <= 0 {
		c.APITimeout = APITimeoutDefault
	}
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = RefreshIntervalDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Server is the dashboard: an http.Handler serving the pages at / (all but
// /api/, /healthz, /readyz and /metrics, which stay the API's).
type Server struct {
	cfg   Config
	log   *slog.Logger
	e     *echo.Echo
	pages map[string]*template.Template
	// routed holds the paths of the GET routes, for the navigation.
	routed map[string]bool
	// proxies are the parsed Config.TrustedProxies.
	proxies []netip.Prefix
}

// New returns the dashboard for cfg (defaults applied), with every page registered.
func New(cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if cfg.API == nil {
		return nil, errors.New("web: Config.API is nil: the dashboard needs the REST API's handler")
	}
	pages, err := parsePages()
	if err != nil {
		return nil, fmt.Errorf("web: parse templates: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With(slog.String("component", "web")), pages: pages}
	for _, p := range cfg.TrustedProxies {
		pfx, err := parsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("web: trusted proxy %q is not a CIDR (10.0.0.0/8) or an IP address", p)
		}
		s.proxies = append(s.proxies, pfx)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(s.securityHeaders, s.logRequests, s.recoverPanics, s.limitBody, s.loadViewer, s.checkCSRF)
	s.e = e
	s.routes()
	s.routed = s.registeredGETs()
	return s, nil
}

// ServeHTTP serves the dashboard's pages and static assets.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.e.ServeHTTP(w, r) }

// routes registers every page. Add a page's routes here, one group per page
// file (see doc.go). Middleware is attached per route:
//   - none: anyone (sign-in, static assets);
//   - signedIn: a live session, else a redirect to /signin;
//   - signedIn, role(r): the session's role must be r or above, else 403.
//
// Every request with an unsafe method (POST...) passes checkCSRF first,
// whatever its route (csrf.go): its form must carry the csrf_token field.
func (s *Server) routes() {
	e := s.e
	static, _ := fs.Sub(assets, "static")
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", staticHandler(static))))

	e.GET("/signin", s.signinForm)
	e.POST("/signin", s.signin)
	e.POST("/signout", s.signout)

	e.GET("/", s.overview, s.signedIn)
	e.GET("/overview/live", s.overviewLive, s.signedIn)
	e.GET("/diagnostics", s.diagnostics, s.signedIn)

	e.GET("/nodes/:id", s.nodePage, s.signedIn)
	e.GET("/nodes/:id/live", s.nodeLive, s.signedIn)

	e.GET("/alerts", s.alertsPage, s.signedIn) // the API decides who may read alerts
	e.POST("/alerts/:id/ack", s.ackAlert, s.signedIn, s.role(roleOperator))

	s.runRoutes()
	s.adminRoutes() // admin_*.go
}

// limitBody refuses (413) a request body over formBodyLimit, and bounds
// the reading of one whose length is not announced.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > formBodyLimit {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("the form is larger than %d bytes", formBodyLimit))
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, formBodyLimit)
		return next(c)
	}
}
