package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// Federation of regions.
//
// Each region has its own catalog. A mapping lives in the catalog of the
// region that owns it; the other regions know its name and owner from the
// mapping directory each region's leader pulls from its peers every
// SyncInterval (catalog.FederationMapping). A run request for a mapping
// this region does not own (a local mapping of another region, or a name
// only the directory knows) is forwarded to a live server of the owning
// region, found in the gossip pool (Membership), and answered with that
// region's run. A run_id carries the code of its region (catalog.RegionCode),
// so reading a run, its events, plan, tasks and manifest and canceling it
// work from any region: the code names the region, membership and the
// catalog name the regions, and the request is forwarded. Listing runs
// stays local.
//
// The owning region authenticates the forwarded request (federation_sign.go),
// resolves the original caller's token hash against its replica of the
// authoritative region's tokens and checks the caller's entitlements, from
// the caller's address, itself.
//
// When the owning region cannot be reached, the answer is 503 at once
// (no server alive in the pool) or within ForwardTimeout (servers listed but
// not answering), with a message naming the region; nothing is retried
// behind the caller's back except on a second server of that region, with
// the same idempotency key (added when the request had none), so that a run
// is never created twice. Forwarding needs no state: it resumes with the
// first request after the region is back.
//
// Users, tokens and entitlements are managed in the authoritative region
// and replicated whole to the others (Federation.Run); the other regions
// refuse writes to them with 409 and the authoritative region's name.

// Defaults of FederationConfig.
const (
	// ForwardTimeoutDefault bounds a forwarded request, every try included.
	ForwardTimeoutDefault = 10 * time.Second
	// DialTimeoutDefault bounds connecting to another region's server.
	DialTimeoutDefault = 2 * time.Second
	// ReplayWindowDefault is how far a federation request's signing time
	// may be from the receiver's clock.
	ReplayWindowDefault = 30 * time.Second
	// SyncIntervalDefault is the time between two replication pulls.
	SyncIntervalDefault = 5 * time.Second
	// LagAlertAfterDefault raises an alert when identities have not been
	// replicated for this long.
	LagAlertAfterDefault = time.Minute
	// MaxForwardResponseBytes bounds an answer relayed from another region.
	MaxForwardResponseBytes = 32 << 20
	// maxForwardTries is how many servers of a region one request tries.
	maxForwardTries = 2
)

// Error codes of federation answers.
const (
	// CodeNotAuthoritative: a write to users, tokens or entitlements in a
	// region that replicates them from the authoritative one.
	CodeNotAuthoritative = "not_authoritative"
	// CodeBadGateway: another region answered, but not verifiably.
	CodeBadGateway = "bad_gateway"
)

// Peer is a member of the gossip pool as the broker sees it (cmd/weir
// adapts the cluster package's members).
type Peer struct {
	Name      string    `json:"name"`
	Region    string    `json:"region"`
	Roles     []string  `json:"roles"`
	APIAddr   string    `json:"api_addr,omitempty"`
	AgentAddr string    `json:"agent_addr,omitempty"`
	Version   string    `json:"version,omitempty"`
	Capacity  int       `json:"capacity"`
	State     string    `json:"state"` // catalog.NodeAlive, NodeDead, NodeLeft
	Leaving   bool      `json:"leaving,omitempty"`
	Since     time.Time `json:"since"`
	Started   time.Time `json:"started"`
}

// Membership is the gossip pool as the broker needs it.
type Membership interface {
	// Peers returns every member known, this node included.
	Peers() []Peer
}

// FederationStore is what federation needs from the catalog; *catalog.Store
// implements it.
type FederationStore interface {
	Now() time.Time
	GetMapping(ctx context.Context, name string) (*catalog.Mapping, error)
	AuthenticateTokenHash(ctx context.Context, hash string) (*catalog.Principal, error)
	IdentitySnapshot(ctx context.Context) (*catalog.IdentitySnapshot, error)
	ApplyIdentitySnapshot(ctx context.Context, snap *catalog.IdentitySnapshot) error
	OwnedMappings(ctx context.Context, region string) ([]catalog.FederationMapping, error)
	ReplaceDirectory(ctx context.Context, region string, entries []catalog.FederationMapping) error
	LookupMappingRegions(ctx context.Context, name string) ([]catalog.FederationMapping, error)
	KnownRegions(ctx context.Context) ([]string, error)
	RecordSync(ctx context.Context, p catalog.RecordSyncParams) error
	GetSync(ctx context.Context, region, stream string) (*catalog.FederationSync, error)
	ListSyncs(ctx context.Context) ([]catalog.FederationSync, error)
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (*catalog.Lease, error)
	ReleaseLease(ctx context.Context, name, holder string) error
	RaiseAlert(ctx context.Context, p catalog.RaiseAlertParams) (*catalog.Alert, bool, error)
	ResolveAlert(ctx context.Context, key string) (bool, error)
}

// FederationConfig configures Server.Federate. Its zero value serves
// GET /api/v1/cluster for a lone region.
type FederationConfig struct {
	// Secrets sign and verify the requests between regions (see
	// ParseFederationSecrets): the first signs, any verifies. Empty: no
	// forwarding and no federation API; runs of other regions' mappings are
	// refused as before.
	Secrets [][]byte
	// AuthoritativeRegion manages users, tokens and entitlements; the other
	// regions replicate them. Empty: this region manages its own.
	AuthoritativeRegion string
	// Membership is the gossip pool; nil when this node gossips with no one.
	Membership Membership
	// ForwardTimeout bounds one forwarded request (ForwardTimeoutDefault).
	ForwardTimeout time.Duration
	// DialTimeout bounds connecting to a server of another region (DialTimeoutDefault).
	DialTimeout time.Duration
	// ReplayWindow bounds the clock difference of signed requests (ReplayWindowDefault).
	ReplayWindow time.Duration
	// SyncInterval paces the replication pulls (SyncIntervalDefault).
	SyncInterval time.Duration
	// LagAlertAfter raises an alert when identities lag this much (LagAlertAfterDefault).
	LagAlertAfter time.Duration
	// Transport sends the requests to other regions; default an
	// http.Transport with DialTimeout.
	Transport http.RoundTripper
}

// WithDefaults returns c with zero fields set to their defaults.
func (c FederationConfig) WithDefaults() FederationConfig {
	if c.ForwardTimeout <= 0 {
		c.ForwardTimeout = ForwardTimeoutDefault
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DialTimeoutDefault
	}
	if c.ReplayWindow <= 0 {
		c.ReplayWindow = ReplayWindowDefault
	}
	if c.SyncInterval <= 0 {
		c.SyncInterval = SyncIntervalDefault
	}
	if c.LagAlertAfter <= 0 {
		c.LagAlertAfter = LagAlertAfterDefault
	}
	return c
}

// Federation is the broker's side of the federation of regions: forwarding,
// the federation API, the cluster view and, through Run, replication.
type Federation struct {
	s     *Server
	cfg   FederationConfig
	store FederationStore
	log   *slog.Logger
	http  *http.Client
	seen  *nonceCache

	mu        sync.Mutex
	sticky    map[string]string // region -> the server that answered last
	refreshed time.Time         // the last on-demand directory pull
}

// Federate adds federation to the server: GET /api/v1/cluster always; with
// Secrets, forwarding of other regions' runs, the federation API under
// /federation/v1 and, outside the authoritative region, the refusal of
// identity writes. Call it once, before serving. Run the returned
// Federation's Run to replicate.
func (s *Server) Federate(cfg FederationConfig, store FederationStore) (*Federation, error) {
	cfg = cfg.WithDefaults()
	if store == nil {
		return nil, errors.New("federate: no catalog store")
	}
	for i, sec := range cfg.Secrets {
		if len(sec) < FederationSecretMinLen {
			return nil, catalog.Invalid(fmt.Sprintf("federation.secrets[%d]", i), "must be at least %d bytes", FederationSecretMinLen)
		}
	}
	if a := cfg.AuthoritativeRegion; a != "" {
		if err := catalog.ValidateName("federation.authoritative_region", a); err != nil {
			return nil, err
		}
		if a != s.cfg.Region && len(cfg.Secrets) == 0 {
			return nil, catalog.Invalid("federation.secrets", "region %s replicates identities from %s, which needs the federation secret (WEIR_FEDERATION_SECRET)", s.cfg.Region, a)
		}
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{
			DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   cfg.DialTimeout,
			ResponseHeaderTimeout: cfg.ForwardTimeout,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
		}
	}
	f := &Federation{s: s, cfg: cfg, store: store, log: s.log.With(slog.String("part", "federation")),
		http: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		seen: newNonceCache(cfg.ReplayWindow), sticky: map[string]string{}}

	s.e.GET("/api/v1/cluster", f.clusterView, s.authenticate, s.checkBody)
	if !f.enabled() {
		return f, nil
	}
	s.e.Pre(f.route)
	fed := s.e.Group("/federation/v1")
	caller := []echo.MiddlewareFunc{f.verify(true), s.checkBody}
	server := []echo.MiddlewareFunc{f.verify(false)}
	fed.POST("/runs", s.submitRun, caller...)
	fed.GET("/runs/:run_id", s.getRun, caller...)
	fed.POST("/runs/:run_id/cancel", s.cancelRun, caller...)
	fed.GET("/runs/:run_id/events", s.runEvents, caller...)
	fed.GET("/runs/:run_id/manifest", s.runManifest, caller...)
	fed.GET("/runs/:run_id/plan", s.runPlan, caller...)
	fed.GET("/runs/:run_id/tasks", s.runTasks, caller...)
	fed.GET("/identity", f.serveIdentity, server...)
	fed.GET("/directory", f.serveDirectory, server...)
	return f, nil
}

// enabled reports whether this server forwards and serves the federation API.
func (f *Federation) enabled() bool { return len(f.cfg.Secrets) > 0 }

func (f *Federation) region() string { return f.s.cfg.Region }

// authoritative reports whether this region manages users, tokens and entitlements.
func (f *Federation) authoritative() bool {
	return f.cfg.AuthoritativeRegion == "" || f.cfg.AuthoritativeRegion == f.region()
}

func (f *Federation) peers() []Peer {
	if f.cfg.Membership == nil {
		return nil
	}
	return f.cfg.Membership.Peers()
}

// serversIn returns the alive, not leaving servers of region that serve an
// API, the one that answered last first.
func (f *Federation) serversIn(region string) []Peer {
	var out []Peer
	for _, p := range f.peers() {
		if p.Region == region && p.State == catalog.NodeAlive && !p.Leaving && p.APIAddr != "" &&
			slices.Contains(p.Roles, catalog.NodeRoleServer) {
			out = append(out, p)
		}
	}
	f.mu.Lock()
	last := f.sticky[region]
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b Peer) int {
		switch {
		case a.Name == last:
			return -1
		case b.Name == last:
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// lastSeen describes when a server of region was last seen alive, for messages.
func (f *Federation) lastSeen(region string) string {
	var latest time.Time
	for _, p := range f.peers() {
		if p.Region == region && slices.Contains(p.Roles, catalog.NodeRoleServer) && p.State != catalog.NodeAlive && p.Since.After(latest) {
			latest = p.Since
		}
	}
	if latest.IsZero() {
		return ""
	}
	return fmt.Sprintf(" (its last server went away %s ago)", time.Since(latest).Round(time.Second))
}

// route is the Pre middleware that sends requests for other regions'
// mappings and runs to those regions, and refuses identity writes outside
// the authoritative region. Everything else goes on to the router.
func (f *Federation) route(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		p := req.URL.Path
		switch {
		case p == "/api/v1/runs" && req.Method == http.MethodPost:
			return f.routeSubmit(c, next)
		case strings.HasPrefix(p, "/api/v1/runs/"):
			return f.routeRun(c, next)
		case !f.authoritative() && isIdentityWrite(req.Method, p):
			return f.chain(c, "identity write (refused)", f.s.requireAdmin(f.refuseIdentityWrite))
		}
		return next(c)
	}
}

// chain runs h behind the middleware every routed request gets (request
// id, log line, panic recovery, authentication, body checks), for requests
// this server answers without the router.
func (f *Federation) chain(c echo.Context, route string, h echo.HandlerFunc) error {
	c.SetPath(route)
	s := f.s
	return s.requestID(s.logRequests(s.recoverPanics(s.authenticate(s.checkBody(h)))))(c)
}

func isIdentityWrite(method, path string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	for _, p := range []string{"/api/v1/users", "/api/v1/tokens", "/api/v1/entitlements"} {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// refuseIdentityWrite answers a write to users, tokens or entitlements
// outside the authoritative region.
func (f *Federation) refuseIdentityWrite(c echo.Context) error {
	a := f.cfg.AuthoritativeRegion
	where := ""
	if srv := f.serversIn(a); len(srv) > 0 {
		where = ", such as " + srv[0].APIAddr
	}
	return &apiError{Status: http.StatusConflict, Code: CodeNotAuthoritative, Message: fmt.Sprintf(
		"users, tokens and entitlements are managed in region %s (the authoritative region) and replicated to region %s; send this request to a server of region %s%s",
		a, f.region(), a, where)}
}

// routeSubmit forwards POST /api/v1/runs when the mapping belongs to
// another region. Anything it cannot read goes on to the local handler,
// which says precisely what is wrong.
func (f *Federation) routeSubmit(c echo.Context, next echo.HandlerFunc) error {
	req := c.Request()
	if req.ContentLength > f.s.cfg.MaxBodyBytes || req.Body == nil {
		return next(c)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, f.s.cfg.MaxBodyBytes+1))
	req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), req.Body))
	if err != nil || int64(len(body)) > f.s.cfg.MaxBodyBytes {
		return next(c)
	}
	var probe struct {
		Mapping string `json:"mapping"`
	}
	if json.Unmarshal(body, &probe) != nil || knownName("mapping", probe.Mapping) != nil {
		return next(c)
	}
	region, err := f.mappingRegion(req.Context(), probe.Mapping)
	if err != nil {
		return f.chain(c, "/api/v1/runs (federation)", func(echo.Context) error { return err })
	}
	if region == "" || region == f.region() {
		return next(c)
	}
	return f.chain(c, "/api/v1/runs (forwarded)", func(c echo.Context) error {
		fwd, err := withIdempotencyKey(body)
		if err != nil {
			return err
		}
		return f.forward(c, []string{region}, http.MethodPost, "/federation/v1/runs", fwd)
	})
}

// mappingRegion returns the region that owns mapping name: the local
// mapping's, else the directory's; "" when neither knows it (the local
// handler answers 404).
func (f *Federation) mappingRegion(ctx context.Context, name string) (string, error) {
	m, err := f.store.GetMapping(ctx, name)
	if err == nil {
		return m.Region, nil
	}
	if !errors.Is(err, catalog.ErrNotFound) {
		return "", nil // the local handler meets the same error and reports it
	}
	entries, err := f.store.LookupMappingRegions(ctx, name)
	if err == nil && len(entries) == 0 && f.refreshDirectory(ctx) {
		// Perhaps created since the last pull: ask the other regions now.
		entries, err = f.store.LookupMappingRegions(ctx, name)
	}
	if err != nil || len(entries) == 0 {
		return "", nil
	}
	if len(entries) > 1 {
		regions := make([]string, len(entries))
		for i, e := range entries {
			regions[i] = e.Region
		}
		return "", conflict("mapping %s is owned by several regions (%s); mapping names must be unique across the federation: rename one of them",
			name, strings.Join(regions, ", "))
	}
	return entries[0].Region, nil
}

// directoryRefreshEvery bounds how often a request for an unknown mapping
// makes this server pull the other regions' directories at once.
const directoryRefreshEvery = time.Second

// refreshDirectory pulls the directory of every other region with a live
// server, at most once per directoryRefreshEvery; it reports whether it did.
func (f *Federation) refreshDirectory(ctx context.Context) bool {
	f.mu.Lock()
	if time.Since(f.refreshed) < directoryRefreshEvery {
		f.mu.Unlock()
		return false
	}
	f.refreshed = time.Now()
	f.mu.Unlock()
	var regions []string
	for _, p := range f.peers() {
		if p.Region != f.region() && !slices.Contains(regions, p.Region) && len(f.serversIn(p.Region)) > 0 {
			regions = append(regions, p.Region)
		}
	}
	for _, r := range regions {
		f.syncDirectory(ctx, r)
	}
	return len(regions) > 0
}

// withIdempotencyKey returns the run request body with an idempotency key,
// added when it had none, so that trying a second server of the owning
// region after the first failed mid-way cannot create the run twice.
func withIdempotencyKey(body []byte) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, badRequest("malformed JSON body: %v", err)
	}
	if k, ok := fields["idempotency_key"]; ok && string(k) != `""` && string(k) != "null" {
		return body, nil
	}
	key, _ := json.Marshal("fwd-" + newNonce())
	fields["idempotency_key"] = key
	return json.Marshal(fields)
}

// runSubpaths are the run routes forwarded, with their method.
var runSubpaths = map[string]string{
	"":          http.MethodGet,
	"/cancel":   http.MethodPost,
	"/events":   http.MethodGet,
	"/manifest": http.MethodGet,
	"/plan":     http.MethodGet,
	"/tasks":    http.MethodGet,
}

// routeRun forwards /api/v1/runs/{run_id}[/...] when the run_id carries
// another region's code.
func (f *Federation) routeRun(c echo.Context, next echo.HandlerFunc) error {
	req := c.Request()
	rest := strings.TrimPrefix(req.URL.Path, "/api/v1/runs/")
	id, sub, _ := strings.Cut(rest, "/")
	if sub != "" {
		sub = "/" + sub
	}
	method, ok := runSubpaths[sub]
	if !ok || method != req.Method {
		return next(c)
	}
	_, code, err := catalog.ParseRunID(id)
	if err != nil || code == catalog.RegionCode(f.region()) {
		return next(c)
	}
	return f.chain(c, "/api/v1/runs/:run_id"+sub+" (forwarded)", func(c echo.Context) error {
		regions, err := f.regionsForCode(c.Request().Context(), code)
		if err != nil {
			return err
		}
		if len(regions) == 0 {
			return notFound("no run %s: it was created in a region of code %03d, which this server does not know (it knows %s)",
				id, code, strings.Join(f.knownRegionNames(c.Request().Context()), ", "))
		}
		uri := "/federation/v1/runs/" + id + sub
		if q := req.URL.RawQuery; q != "" {
			uri += "?" + q
		}
		var body []byte
		if req.Method == http.MethodPost && req.Body != nil {
			if body, err = io.ReadAll(req.Body); err != nil {
				return err
			}
		}
		return f.forward(c, regions, req.Method, uri, body)
	})
}

// regionsForCode returns the regions other than this one whose code is
// code: from the gossip pool, else from the catalog's knowledge.
func (f *Federation) regionsForCode(ctx context.Context, code int) ([]string, error) {
	var out []string
	for _, p := range f.peers() {
		if p.Region != f.region() && catalog.RegionCode(p.Region) == code && !slices.Contains(out, p.Region) {
			out = append(out, p.Region)
		}
	}
	if len(out) > 0 {
		slices.Sort(out)
		return out, nil
	}
	known, err := f.store.KnownRegions(ctx)
	if err != nil {
		return nil, fmt.Errorf("find the region of code %03d: %w", code, err)
	}
	for _, r := range known {
		if r != f.region() && catalog.RegionCode(r) == code {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *Federation) knownRegionNames(ctx context.Context) []string {
	names := []string{f.region()}
	for _, p := range f.peers() {
		names = append(names, p.Region)
	}
	if known, err := f.store.KnownRegions(ctx); err == nil {
		names = append(names, known...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// unavailable is the 503 of a region that cannot be reached.
func unavailable(region, format string, args ...any) error {
	return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: fmt.Sprintf(
		"region %s is unreachable: %s; its runs go on there, retry later", region, fmt.Sprintf(format, args...))}
}

// forward sends the request to a server of the first of regions that
// answers other than 404, and relays its answer.
func (f *Federation) forward(c echo.Context, regions []string, method, uri string, body []byte) error {
	var err error
	for i, region := range regions {
		var status int
		status, err = f.forwardTo(c, region, method, uri, body, i < len(regions)-1)
		if err == nil && status != 0 {
			return nil
		}
	}
	return err
}

// forwardTo tries the servers of region. It relays the answer and returns
// its status, or returns 0 without relaying when the answer is a 404 and
// skip404 is set (another region of the same code may have the run).
func (f *Federation) forwardTo(c echo.Context, region, method, uri string, body []byte, skip404 bool) (int, error) {
	servers := f.serversIn(region)
	if len(servers) == 0 {
		return 0, unavailable(region, "no server of region %s is alive in the gossip pool%s", region, f.lastSeen(region))
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), f.cfg.ForwardTimeout)
	defer cancel()
	cred := fedCredentials{Region: f.region(), Node: f.s.cfg.NodeID, ClientIP: f.s.ipOf(c).String()}
	if tok := bearerToken(c.Request()); tok != "" {
		cred.Principal = catalog.HashToken(tok)
	}
	var tried []string
	var lastErr error
	for _, srv := range servers[:min(len(servers), maxForwardTries)] {
		tried = append(tried, srv.Name)
		resp, err := f.sendWith(ctx, srv, method, uri, body, cred, requestIDOf(c), nil)
		if err != nil {
			lastErr = err
			f.log.Warn("forward failed", slog.String("region", region), slog.String("server", srv.Name),
				slog.String("uri", uri), slog.String("request_id", requestIDOf(c)), slog.Any("error", err))
			if errors.Is(err, errBadAnswer) {
				return 0, &apiError{Status: http.StatusBadGateway, Code: CodeBadGateway, Err: err, Message: fmt.Sprintf(
					"region %s answered, but not with this federation's signature: check that WEIR_FEDERATION_SECRET is the same in every region", region)}
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		f.mu.Lock()
		f.sticky[region] = srv.Name
		f.mu.Unlock()
		if resp.status == http.StatusNotFound && skip404 {
			return 0, nil
		}
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, resp.contentType)
		h.Set(HeaderRegion, region)
		return resp.status, c.Blob(resp.status, resp.contentType, resp.body)
	}
	why := "no answer"
	if lastErr != nil {
		why = shortNetError(lastErr)
	}
	return 0, unavailable(region, "its servers did not answer within %s (tried %s: %s)", f.cfg.ForwardTimeout, strings.Join(tried, ", "), why)
}

// errBadAnswer marks an answer that does not carry a valid signature.
var errBadAnswer = errors.New("answer not signed with the federation secret")

type fedAnswer struct {
	status      int
	contentType string
	body        []byte
}

// sendWith makes one signed request to srv, with the extra headers hdr, and
// reads its verified answer.
func (f *Federation) sendWith(ctx context.Context, srv Peer, method, uri string, body []byte, cred fedCredentials, requestID string, hdr http.Header) (*fedAnswer, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(srv.APIAddr, "/")+uri, rd)
	if err != nil {
		return nil, fmt.Errorf("build request to %s: %w", srv.Name, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	}
	if requestID != "" {
		req.Header.Set(HeaderRequestID, requestID)
	}
	cred.Time, cred.Nonce = time.Now().UnixMilli(), newNonce()
	signRequest(req, f.cfg.Secrets[0], body, cred)
	resp, err := f.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("send to %s (%s): %w", srv.Name, srv.APIAddr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxForwardResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s: %w", srv.Name, err)
	}
	if len(b) > MaxForwardResponseBytes {
		return nil, fmt.Errorf("the answer of %s is over %d bytes", srv.Name, MaxForwardResponseBytes)
	}
	if !verifyResponse(f.cfg.Secrets, resp.Header.Get(HeaderFedSignature), cred.Nonce, resp.StatusCode, b) {
		return nil, fmt.Errorf("%w: %s answered %d", errBadAnswer, srv.Name, resp.StatusCode)
	}
	ct := resp.Header.Get(echo.HeaderContentType)
	if ct == "" {
		ct = echo.MIMEApplicationJSON
	}
	return &fedAnswer{status: resp.StatusCode, contentType: ct, body: b}, nil
}

// shortNetError says why a request failed without the URL noise.
func shortNetError(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	}
	return err.Error()
}

func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get(echo.HeaderAuthorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// verify is the middleware of the federation API: it checks the signature,
// the replay window and the nonce, and with caller set resolves the
// original caller (token hash and address) into the request's principal.
// The answer, errors included, is signed.
func (f *Federation) verify(caller bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			buf := &bufferedWriter{header: http.Header{}}
			orig := c.Response().Writer
			c.Response().Writer = buf
			nonce := c.Request().Header.Get(HeaderFedNonce)
			if err := f.admit(c, caller); err != nil {
				c.Error(err)
			} else if err := next(c); err != nil {
				c.Error(err)
			}
			c.Response().Writer = orig
			status := buf.status
			if status == 0 {
				status = http.StatusOK
			}
			h := orig.Header()
			for k, v := range buf.header {
				h[k] = v
			}
			h.Set(HeaderFedSignature, signResponse(f.cfg.Secrets[0], nonce, status, buf.body.Bytes()))
			h.Set(HeaderRegion, f.region())
			orig.WriteHeader(status)
			_, _ = orig.Write(buf.body.Bytes())
			return nil
		}
	}
}

// admit checks a federation request's credentials; with caller, it sets
// the principal and client address of the original caller.
func (f *Federation) admit(c echo.Context, caller bool) error {
	req := c.Request()
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(req.Body, f.s.cfg.MaxBodyBytes+1))
		if err != nil {
			return fmt.Errorf("read federation request: %w", err)
		}
		if int64(len(b)) > f.s.cfg.MaxBodyBytes {
			return &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
				Message: fmt.Sprintf("request body is larger than %d bytes", f.s.cfg.MaxBodyBytes)}
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	cred, err := verifyRequest(req, f.cfg.Secrets, body)
	if err == nil {
		err = f.seen.admit(cred.Nonce, time.UnixMilli(cred.Time), time.Now())
	}
	if err != nil {
		f.log.Warn("federation request refused", slog.String("from_region", cred.Region), slog.String("from_node", cred.Node),
			slog.String("client_ip", f.s.ipOf(c).String()), slog.String("uri", req.URL.RequestURI()), slog.Any("error", err))
		return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: "unauthenticated: " + err.Error()}
	}
	if !caller {
		return nil
	}
	if cred.Principal == "" {
		return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthenticated,
			Message: "unauthenticated: a forwarded request must name its caller's token hash in " + HeaderFedPrincipal}
	}
	ip, perr := netip.ParseAddr(cred.ClientIP)
	if perr != nil {
		return badRequest("%s %q is not an IP address", HeaderFedClientIP, cred.ClientIP)
	}
	p, err := f.store.AuthenticateTokenHash(req.Context(), cred.Principal)
	if err != nil {
		var ae *catalog.AuthError
		if errors.As(err, &ae) && ae.Reason == "unknown token" && !f.authoritative() {
			return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: fmt.Sprintf(
				"unauthenticated: unknown token in region %s; a token created in region %s only now works here once it is replicated (%s)",
				f.region(), f.cfg.AuthoritativeRegion, f.identityLag(req.Context()))}
		}
		return fmt.Errorf("authenticate forwarded caller: %w", err)
	}
	c.Set(ctxPrincipal, p)
	c.Set(ctxClientIP, ip.Unmap())
	return nil
}

// identityLag describes how current this region's copy of the identities is.
func (f *Federation) identityLag(ctx context.Context) string {
	st, err := f.store.GetSync(ctx, f.cfg.AuthoritativeRegion, catalog.SyncIdentity)
	if err != nil {
		return "not replicated yet"
	}
	lag, ok := st.Lag(f.store.Now())
	if !ok {
		return "not replicated yet"
	}
	return "last replicated " + lag.Round(time.Second).String() + " ago"
}

// bufferedWriter holds an answer until it is signed.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// IdentityAnswer is the body of GET /federation/v1/identity.
type IdentityAnswer struct {
	Region   string                    `json:"region"`
	Snapshot *catalog.IdentitySnapshot `json:"snapshot"`
}

// serveIdentity answers GET /federation/v1/identity (authoritative region
// only): every user, token hash and entitlement, 304 when the caller's
// If-None-Match is the current digest.
func (f *Federation) serveIdentity(c echo.Context) error {
	if !f.authoritative() {
		return &apiError{Status: http.StatusConflict, Code: CodeNotAuthoritative, Message: fmt.Sprintf(
			"region %s is not the authoritative region; identities are managed in region %s", f.region(), f.cfg.AuthoritativeRegion)}
	}
	snap, err := f.store.IdentitySnapshot(c.Request().Context())
	if err != nil {
		return err
	}
	etag := `"` + snap.Digest + `"`
	c.Response().Header().Set("ETag", etag)
	if c.Request().Header.Get("If-None-Match") == etag {
		return c.NoContent(http.StatusNotModified)
	}
	return c.JSON(http.StatusOK, IdentityAnswer{Region: f.region(), Snapshot: snap})
}

// DirectoryAnswer is the body of GET /federation/v1/directory.
type DirectoryAnswer struct {
	Region   string                      `json:"region"`
	Mappings []catalog.FederationMapping `json:"mappings"`
	Digest   string                      `json:"digest"`
}

// directoryDigest identifies a directory's content (not its sync times).
func directoryDigest(ms []catalog.FederationMapping) string {
	var sb strings.Builder
	for _, m := range ms {
		sb.WriteString(m.Name + "\x00" + strconv.Itoa(m.Version) + "\x00" + strconv.FormatBool(m.Enabled) + "\n")
	}
	return sha256Hex([]byte(sb.String()))
}

// serveDirectory answers GET /federation/v1/directory: the mappings this
// region owns, 304 when the caller's If-None-Match is the current digest.
func (f *Federation) serveDirectory(c echo.Context) error {
	ms, err := f.store.OwnedMappings(c.Request().Context(), f.region())
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []catalog.FederationMapping{}
	}
	d := directoryDigest(ms)
	etag := `"` + d + `"`
	c.Response().Header().Set("ETag", etag)
	if c.Request().Header.Get("If-None-Match") == etag {
		return c.NoContent(http.StatusNotModified)
	}
	return c.JSON(http.StatusOK, DirectoryAnswer{Region: f.region(), Mappings: ms, Digest: d})
}
