// Package broker is Weir's REST API (echo v4, under /api/v1): the only
// component that talks to clients. It authenticates callers by API token
// or by the dashboard's session cookie with its CSRF token (sign-in and
// passwords in session.go), checks their entitlements (their own and their
// groups', groups.go), records admin changes and refusals in the audit log
// (audit.go), validates run requests against the mapping's
// declarations (parameters, date windows, path escapes), applies idempotency
// keys, and inserts runs as pending for the workload manager to admit. It
// also serves the catalog's systems, mappings, users, tokens and entitlements,
// the health of regions, nodes, systems, services and runs (health.go,
// nodes.go), health thresholds, and alerts (alerts.go), and it raises an
// alert when one address or token keeps failing to authenticate. The API's
// contract is openapi.yaml, served at /api/v1/openapi.json (openapi.go).
//
// broker imports only catalog (which holds the pure health rules:
// catalog.Evaluate, Thresholds, Health), the standard library and echo; it reaches the catalog
// through the small Store interface that *catalog.Store satisfies, wired by
// cmd/weir.
package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/weirdata/weir/catalog"
)

// Defaults of Config.
const (
	// MaxBodyBytesDefault bounds request bodies; larger ones are answered 413.
	MaxBodyBytesDefault int64 = 1 << 20
	// RegionDefault is the region of a server configured without one.
	RegionDefault = "local"
	// ReadyTimeoutDefault bounds the catalog ping of /readyz.
	ReadyTimeoutDefault = 2 * time.Second
)

// Config configures a Server. Its zero value works after WithDefaults.
type Config struct {
	// Region is this server's region: runs are accepted only for mappings
	// owned by it (runs of mappings owned elsewhere are refused until
	// federation forwards them).
	Region string
	// NodeID names this process in logs; default the host name.
	NodeID string
	// MaxBodyBytes bounds request bodies (default MaxBodyBytesDefault); beyond it, 413.
	MaxBodyBytes int64
	// TrustedProxies are CIDRs (or single addresses) of reverse proxies whose
	// X-Forwarded-For is believed. Default none: the client IP is the TCP peer.
	TrustedProxies []string
	// Logger receives one line per request and the details of internal errors.
	Logger *slog.Logger
	// Now is the clock used for parameter validation ("today"); default time.Now.
	Now func() time.Time
	// ReadyTimeout bounds the catalog ping of /readyz (default ReadyTimeoutDefault).
	ReadyTimeout time.Duration
	// AuthFailureLimit is how many refused credentials from one address (or
	// with one token) within AuthFailureWindow raise an alert (default
	// AuthFailureLimitDefault; negative: never).
	AuthFailureLimit int
	// AuthFailureWindow is the sliding window of AuthFailureLimit (default AuthFailureWindowDefault).
	AuthFailureWindow time.Duration
	// Metrics receives the request metrics (metrics.go); nil, none.
	Metrics prometheus.Registerer
	// Sessions configures sign-in and browser sessions (session.go).
	Sessions SessionConfig
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Region == "" {
		c.Region = RegionDefault
	}
	if c.NodeID == "" {
		if h, err := os.Hostname(); err == nil {
			c.NodeID = h
		} else {
			c.NodeID = "broker"
		}
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = MaxBodyBytesDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = ReadyTimeoutDefault
	}
	if c.AuthFailureLimit == 0 {
		c.AuthFailureLimit = AuthFailureLimitDefault
	}
	if c.AuthFailureWindow <= 0 {
		c.AuthFailureWindow = AuthFailureWindowDefault
	}
	return c
}

// Validate reports the first invalid field of c, such as a trusted proxy that
// is not a CIDR. New skips such entries (logging them); call Validate first to
// refuse them at start-up.
func (c Config) Validate() error {
	for i, p := range c.TrustedProxies {
		if _, err := parseTrustedProxy(p); err != nil {
			return catalog.Invalid(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not a CIDR (10.0.0.0/8) or an IP address", p)
		}
	}
	return nil
}

func parseTrustedProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Store is what the broker needs from the catalog; *catalog.Store implements it.
type Store interface {
	Ping(ctx context.Context) error
	Authenticate(ctx context.Context, raw string) (*catalog.Principal, error)

	InsertRun(ctx context.Context, r *catalog.Run) (*catalog.Run, bool, error)
	GetRun(ctx context.Context, id string) (*catalog.Run, error)
	ListRuns(ctx context.Context, f catalog.RunFilter) ([]catalog.Run, string, error)
	RequestCancel(ctx context.Context, id, by string) (*catalog.Run, error)
	ListRunEvents(ctx context.Context, runID string, afterID int64) ([]catalog.RunEvent, error)
	ListRunTasks(ctx context.Context, runID string) ([]catalog.RunTask, error)

	CreateSystem(ctx context.Context, sys *catalog.System) error
	GetSystem(ctx context.Context, name string) (*catalog.System, error)
	ListSystems(ctx context.Context) ([]catalog.System, error)
	UpdateSystem(ctx context.Context, sys *catalog.System) error
	DeleteSystem(ctx context.Context, name string) error

	CreateMapping(ctx context.Context, m *catalog.Mapping) error
	PutMapping(ctx context.Context, m *catalog.Mapping) error
	GetMapping(ctx context.Context, name string) (*catalog.Mapping, error)
	GetMappingVersion(ctx context.Context, name string, version int) (*catalog.Mapping, error)
	ListMappings(ctx context.Context) ([]catalog.Mapping, error)
	DisableMapping(ctx context.Context, name, by string) error

	CreateUser(ctx context.Context, u *catalog.User) error
	GetUser(ctx context.Context, id int64) (*catalog.User, error)
	ListUsers(ctx context.Context) ([]catalog.User, error)
	UpdateUser(ctx context.Context, p catalog.UpdateUserParams) (*catalog.User, error)
	CreateToken(ctx context.Context, p catalog.CreateTokenParams) (string, *catalog.Token, error)
	ListTokens(ctx context.Context, userID int64) ([]catalog.Token, error)
	RevokeToken(ctx context.Context, id int64) error
	CreateEntitlement(ctx context.Context, e *catalog.Entitlement) error
	ListEntitlements(ctx context.Context, userID int64) ([]catalog.Entitlement, error)
	DeleteEntitlement(ctx context.Context, id int64) error

	GovernanceStore
	AccountStore
}

// Server is the broker: an echo instance with Weir's routes.
type Server struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	e       *echo.Echo
	ids     *catalog.RunIDGenerator
	proxies []netip.Prefix
	// failures counts refused credentials (nil when AuthFailureLimit < 0).
	failures *failureTracker
	metrics  *httpMetrics // nil without Config.Metrics
	// acct is the sign-in state (session.go).
	acct accountState
}

// New returns a Server for cfg (defaults applied) on store, with every route registered.
func New(cfg Config, store Store) *Server {
	cfg = cfg.WithDefaults()
	s := &Server{
		cfg:   cfg,
		store: store,
		log:   cfg.Logger.With(slog.String("component", "broker"), slog.String("node", cfg.NodeID)),
		ids:   catalog.NewRunIDGenerator(cfg.Region),
	}
	s.metrics = newHTTPMetrics(cfg.Metrics)
	if cfg.AuthFailureLimit > 0 {
		s.failures = newFailureTracker(cfg.AuthFailureLimit, cfg.AuthFailureWindow)
	}
	for _, p := range cfg.TrustedProxies {
		pfx, err := parseTrustedProxy(p)
		if err != nil {
			s.log.Error("ignore trusted proxy that is not a CIDR", slog.String("proxy", p))
			continue
		}
		s.proxies = append(s.proxies, pfx)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = s.clientIP
	e.Use(s.countRequests) // outermost: counts the status the others answered
	e.Use(s.requestID, s.logRequests, s.recoverPanics)
	s.e = e
	s.routes()
	return s
}

// Handler returns the HTTP handler serving every route (the echo instance).
func (s *Server) Handler() http.Handler { return s.e }

// Echo returns the echo instance, so that other packages (web) can add routes.
func (s *Server) Echo() *echo.Echo { return s.e }

// routes registers the route table.
func (s *Server) routes() {
	e := s.e
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)

	// Middleware is attached per route rather than with Group.Use, whose
	// catch-all route would turn every 405 into a 404.
	api := e.Group("/api/v1")
	user := []echo.MiddlewareFunc{s.authenticate, s.checkBody}
	admin := []echo.MiddlewareFunc{s.authenticate, s.requireAdmin, s.checkBody}

	api.GET("/whoami", s.whoami, user...)
	api.GET("/openapi.json", s.openAPI, user...)

	api.POST("/runs", s.submitRun, user...)
	api.GET("/runs", s.listRuns, user...)
	api.GET("/runs/:run_id", s.getRun, user...)
	api.POST("/runs/:run_id/cancel", s.cancelRun, user...)
	api.GET("/runs/:run_id/events", s.runEvents, user...)
	api.GET("/runs/:run_id/manifest", s.runManifest, user...)
	api.GET("/runs/:run_id/plan", s.runPlan, user...)
	api.GET("/runs/:run_id/tasks", s.runTasks, user...)

	api.GET("/systems", s.listSystems, user...)
	api.POST("/systems", s.createSystem, user...)
	api.GET("/systems/:name", s.getSystem, user...)
	api.PUT("/systems/:name", s.updateSystem, user...)
	api.DELETE("/systems/:name", s.deleteSystem, user...)

	api.GET("/mappings", s.listMappings, user...)
	api.POST("/mappings", s.createMapping, user...)
	api.GET("/mappings/:name", s.getMapping, user...)
	api.GET("/mappings/:name/versions/:version", s.getMappingVersion, user...)
	api.PUT("/mappings/:name", s.updateMapping, user...)
	api.DELETE("/mappings/:name", s.disableMapping, user...)

	s.scheduleRoutes(api, user)
	s.dataplaneRoutes(api, user)

	api.GET("/users", s.listUsers, admin...)
	api.POST("/users", s.createUser, admin...)
	api.GET("/users/:id", s.getUser, admin...)
	api.PATCH("/users/:id", s.updateUser, admin...)
	api.POST("/users/:id/tokens", s.createToken, admin...)
	api.GET("/tokens", s.listTokens, admin...)
	api.DELETE("/tokens/:id", s.revokeToken, admin...)
	api.GET("/entitlements", s.listEntitlements, admin...)
	api.POST("/entitlements", s.createEntitlement, admin...)
	api.DELETE("/entitlements/:id", s.deleteEntitlement, admin...)
	api.PUT("/users/:id/password", s.setPassword, user...)
	api.POST("/session", s.signIn, s.checkBody)
	api.GET("/session", s.getSession)
	api.DELETE("/session", s.signOut)
	api.GET("/groups", s.listGroups, admin...)
	api.POST("/groups", s.createGroup, admin...)
	api.GET("/groups/:id", s.getGroup, admin...)
	api.DELETE("/groups/:id", s.deleteGroup, admin...)
	api.PUT("/groups/:id/members/:user_id", s.addGroupMember, admin...)
	api.DELETE("/groups/:id/members/:user_id", s.removeGroupMember, admin...)
	api.GET("/audit", s.listAudit, admin...)

	api.GET("/health", s.healthReport, user...)
	api.GET("/nodes", s.listNodes, user...)
	api.GET("/nodes/:id", s.getNode, user...)
	api.GET("/nodes/:id/history", s.nodeHistory, user...)
	api.GET("/thresholds", s.listThresholds, admin...)
	api.GET("/thresholds/:scope", s.getThresholds, admin...)
	api.PUT("/thresholds/:scope", s.putThresholds, admin...)
	api.DELETE("/thresholds/:scope", s.deleteThresholds, admin...)
	api.GET("/alerts", s.listAlerts, user...)
	api.POST("/alerts/:id/ack", s.ackAlert, user...)
	api.POST("/alerts/:id/resolve", s.resolveAlert, user...)
	s.commandRoutes(api, admin)
}

// healthz answers while the process serves HTTP.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the catalog answers, 503 otherwise.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.ReadyTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness check failed: catalog does not answer", slog.String("error", err.Error()))
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the catalog does not answer"}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}
