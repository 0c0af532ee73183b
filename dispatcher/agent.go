// Package dispatcher is the dispatcher agent that runs on every node: an
// authenticated HTTP endpoint that runs a fixed set of registered commands
// for the workload manager and the workers — count (files and bytes under a
// path, rows of a table or query), verify (a run's delivery manifest against
// what is at the target), probe (a system's attributes) and ls (files under
// a path) — each with validated arguments, never through a shell. Every call,
// allowed or refused, is written to the catalog's audit log. Client is the
// Go client the manager and workers call it with.
//
// It imports catalog (types and sentinels; the Store arrives through the
// Store interface), connector (the registry, its spi contract and the file
// formats' options) and gopsutil for host statistics.
package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
	"github.com/weirdata/weir/connector/spi"
)

// Defaults of AgentConfig.
const (
	ListenDefault          = "127.0.0.1:7071"
	MaxBodyBytesDefault    = 64 << 10
	CommandTimeoutDefault  = 30 * time.Minute
	ShutdownTimeoutDefault = 10 * time.Second
	MaxInFlightDefault     = 16
	ReportLimitDefault     = 1000
	ScanPartitionsDefault  = 4
	ScanBatchSizeDefault   = 10000
	ManifestMaxBytes       = 64 << 20 // the largest target manifest verify reads
	auditWriteTimeout      = 5 * time.Second
	readHeaderTimeout      = 10 * time.Second
	idleTimeout            = 2 * time.Minute
)

// VerifyThreadsDefault is how many files verify hashes at once: one per core, at most 4.
var VerifyThreadsDefault = min(4, runtime.NumCPU())

// AgentConfig configures an Agent. Its zero value, with NodeID set, works
// after WithDefaults.
type AgentConfig struct {
	// NodeID names this node in answers and audit entries; Region is shown
	// on /healthz.
	NodeID, Region string
	// Listen is the address Run listens on; ListenDefault.
	Listen string
	// Systems, when not empty, are the only systems this node serves (the
	// systems of the host a `weir agent` runs on); others are answered 421.
	Systems []string
	// MaxBodyBytes bounds a request body; MaxBodyBytesDefault.
	MaxBodyBytes int64
	// CommandTimeout bounds one command; CommandTimeoutDefault.
	CommandTimeout time.Duration
	// ShutdownTimeout is how long Run lets calls in flight finish once its
	// context ended; ShutdownTimeoutDefault.
	ShutdownTimeout time.Duration
	// MaxInFlight bounds the commands running at once; more are answered
	// 503 busy. MaxInFlightDefault.
	MaxInFlight int
	// ReportLimit bounds each list of a verify report; ReportLimitDefault.
	ReportLimit int
	// VerifyThreads is how many files verify hashes at once; VerifyThreadsDefault.
	VerifyThreads int
	// ScanPartitions and ScanBatchSize shape the row scan of count when the
	// connector cannot count itself; ScanPartitionsDefault, ScanBatchSizeDefault.
	ScanPartitions, ScanBatchSize int
	Logger                        *slog.Logger
}

// WithDefaults fills zero fields with their defaults.
func (c AgentConfig) WithDefaults() AgentConfig {
	if c.Listen == "" {
		c.Listen = ListenDefault
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = MaxBodyBytesDefault
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = CommandTimeoutDefault
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = ShutdownTimeoutDefault
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = MaxInFlightDefault
	}
	if c.ReportLimit == 0 {
		c.ReportLimit = ReportLimitDefault
	}
	if c.VerifyThreads == 0 {
		c.VerifyThreads = VerifyThreadsDefault
	}
	if c.ScanPartitions == 0 {
		c.ScanPartitions = ScanPartitionsDefault
	}
	if c.ScanBatchSize == 0 {
		c.ScanBatchSize = ScanBatchSizeDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c AgentConfig) validate() error {
	switch {
	case c.NodeID == "":
		return catalog.Invalid("dispatcher.node_id", "is required")
	case c.MaxBodyBytes < 256:
		return catalog.Invalid("dispatcher.max_body_bytes", "must be at least 256, got %d", c.MaxBodyBytes)
	case c.CommandTimeout < 0 || c.ShutdownTimeout < 0:
		return catalog.Invalid("dispatcher", "timeouts must not be negative")
	case c.MaxInFlight < 1:
		return catalog.Invalid("dispatcher.max_in_flight", "must be at least 1, got %d", c.MaxInFlight)
	case c.ReportLimit < 1:
		return catalog.Invalid("dispatcher.report_limit", "must be at least 1, got %d", c.ReportLimit)
	case c.VerifyThreads < 1:
		return catalog.Invalid("dispatcher.verify_threads", "must be at least 1, got %d", c.VerifyThreads)
	case c.ScanPartitions < 1 || c.ScanBatchSize < 1:
		return catalog.Invalid("dispatcher", "scan partitions and batch size must be at least 1")
	}
	for _, s := range c.Systems {
		if err := catalog.ValidateName("dispatcher.systems", s); err != nil {
			return err
		}
	}
	return nil
}

// Store is what the agent needs from the catalog; *catalog.Store implements it.
type Store interface {
	Authenticate(ctx context.Context, raw string) (*catalog.Principal, error)
	GetSystem(ctx context.Context, name string) (*catalog.System, error)
	GetRun(ctx context.Context, id string) (*catalog.Run, error)
	GetMappingVersion(ctx context.Context, name string, version int) (*catalog.Mapping, error)
	InsertAudit(ctx context.Context, e *catalog.AuditEntry) error
}

// Agent is the dispatcher agent of one node. It is an http.Handler; Run
// serves it on its own listener.
type Agent struct {
	cfg      AgentConfig
	store    Store
	conns    *connector.Registry
	log      *slog.Logger
	mux      *http.ServeMux
	commands map[string]*command
	slots    chan struct{}
	addr     atomic.Pointer[string]
	started  time.Time
}

// NewAgent returns the agent of a node; conns nil means connector.Default().
func NewAgent(cfg AgentConfig, store Store, conns *connector.Registry) (*Agent, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("configure dispatcher agent: %w", err)
	}
	if store == nil {
		return nil, errors.New("configure dispatcher agent: a Store is required")
	}
	if conns == nil {
		conns = connector.Default()
	}
	a := &Agent{
		cfg: cfg, store: store, conns: conns,
		log:     cfg.Logger.With(slog.String("component", "dispatcher"), slog.String("node", cfg.NodeID)),
		slots:   make(chan struct{}, cfg.MaxInFlight),
		started: time.Now().UTC(),
	}
	a.commands = map[string]*command{}
	for _, c := range []*command{a.countCommand(), a.verifyCommand(), a.probeCommand(), a.lsCommand()} {
		a.commands[c.info.Name] = c
	}
	a.mux = http.NewServeMux()
	a.mux.HandleFunc("GET "+HealthPath, a.health)
	a.mux.HandleFunc("GET "+CommandsPath, a.listCommands)
	a.mux.HandleFunc(CommandsPath+"/{name}", a.serveCommand)
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == CommandsPath {
			a.writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed, Message: "use GET " + CommandsPath})
			return
		}
		a.writeError(w, notFound("no such route %s %s; commands are POST %s/{name}", r.Method, r.URL.Path, CommandsPath))
	})
	return a, nil
}

// ServeHTTP serves the agent's endpoints.
func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Addr is the address Run or Serve listens on, "" before it listens.
func (a *Agent) Addr() string {
	if p := a.addr.Load(); p != nil {
		return *p
	}
	return ""
}

// Run listens on cfg.Listen and serves until ctx ends; see Serve.
func (a *Agent) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen for dispatcher agent on %s: %w", a.cfg.Listen, err)
	}
	return a.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then lets the calls in flight finish
// for up to ShutdownTimeout, stops the rest and returns nil. It closes ln.
func (a *Agent) Serve(ctx context.Context, ln net.Listener) error {
	addr := ln.Addr().String()
	a.addr.Store(&addr)
	srv := &http.Server{
		Handler:           a,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		// Commands outlive ctx by up to ShutdownTimeout, then Close stops them.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	a.log.Info("dispatcher agent listening", slog.String("addr", addr))
	select {
	case err := <-served:
		return fmt.Errorf("serve dispatcher agent: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		a.log.Warn("dispatcher agent: calls still running at shutdown were stopped", slog.String("error", err.Error()))
		_ = srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve dispatcher agent: %w", err)
	}
	a.log.Info("dispatcher agent stopped")
	return nil
}

// health answers GET /healthz without authentication.
func (a *Agent) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "node": a.cfg.NodeID, "region": a.cfg.Region,
		"started_at": a.started, "commands": a.commandNames()})
}

// listCommands answers GET /agent/v1/commands to an authenticated caller.
func (a *Agent) listCommands(w http.ResponseWriter, r *http.Request) {
	if _, err := a.authenticate(r); err != nil {
		a.writeError(w, toAPIError(err))
		return
	}
	out := make([]CommandInfo, 0, len(a.commands))
	for _, name := range a.commandNames() {
		out = append(out, a.commands[name].info)
	}
	writeJSON(w, http.StatusOK, map[string]any{"commands": out})
}

func (a *Agent) commandNames() []string {
	names := make([]string, 0, len(a.commands))
	for n := range a.commands {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// authenticate resolves the bearer token of r.
func (a *Agent) authenticate(r *http.Request) (*catalog.Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, &catalog.AuthError{Reason: "no token given: send Authorization: Bearer <token>"}
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return nil, &catalog.AuthError{Reason: "the Authorization header must be \"Bearer <token>\""}
	}
	p, err := a.store.Authenticate(r.Context(), strings.TrimSpace(tok))
	if err != nil {
		if errors.Is(err, catalog.ErrUnauthenticated) {
			return nil, err
		}
		return nil, catalogError("authenticate", err)
	}
	return p, nil
}

// clientAddr is the TCP peer of r. The agent is called directly by Weir's
// own processes, so no forwarding header is believed.
func clientAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// call is one command call as it is checked and carried out.
type call struct {
	name      string
	system    string
	args      any // the command's *XxxArgs once decoded
	principal *catalog.Principal
	ip        netip.Addr
	// target is the audited object ("system:NAME", "run:RUN_ID"); resource
	// is what the caller needs the read entitlement on.
	target, resource string
	// argsSummary is the audited summary of the arguments.
	argsSummary string
	// prepared holds what the command's prepare step loaded (a run).
	prepared any
}

// serveCommand answers POST /agent/v1/commands/{name} and audits the call.
func (a *Agent) serveCommand(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	c := &call{name: r.PathValue("name"), ip: clientAddr(r)}
	result, err := a.handle(w, r, c)
	took := time.Since(began)
	status := http.StatusOK
	var ae *apiError
	if err != nil {
		ae = toAPIError(err)
		status = ae.Status
	}
	a.audit(r.Context(), c, began, took, status, ae)
	if ae != nil {
		a.writeError(w, ae)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": result})
}

// handle checks and carries out one call, in the order: method,
// authentication, command, body, arguments, entitlement, execution.
func (a *Agent) handle(w http.ResponseWriter, r *http.Request, c *call) (any, error) {
	if r.Method != http.MethodPost {
		return nil, &apiError{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed, Message: "commands are called with POST"}
	}
	p, err := a.authenticate(r)
	if err != nil {
		return nil, err
	}
	c.principal = p
	cmd := a.commands[c.name]
	if cmd == nil {
		known := a.commandNames()
		return nil, &apiError{Status: http.StatusNotFound, Code: CodeUnknownCommand, Known: known,
			Message: fmt.Sprintf("unknown command %q; known commands: %s", clipText(c.name, 64), strings.Join(known, ", "))}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, &apiError{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia, Message: fmt.Sprintf("send application/json, not %q", ct)}
		}
	}
	body, err := readBody(w, r, a.cfg.MaxBodyBytes)
	if err != nil {
		c.argsSummary = `{"unread_body":true}`
		return nil, err
	}
	if err := a.decode(cmd, body, c); err != nil {
		return nil, err
	}
	if cmd.prepare != nil {
		if err := cmd.prepare(r.Context(), c); err != nil {
			return nil, err
		}
	}
	if !c.principal.Allowed(catalog.ActionRead, c.resource, c.ip) {
		return nil, &apiError{Status: http.StatusForbidden, Code: CodeForbidden,
			Message: fmt.Sprintf("user %s may not read %s (needs the read entitlement on it)", c.principal.User.Name, c.resource)}
	}
	select {
	case a.slots <- struct{}{}:
		defer func() { <-a.slots }()
	default:
		return nil, &apiError{Status: http.StatusServiceUnavailable, Code: CodeBusy,
			Message: fmt.Sprintf("node %s is running %d commands already; retry shortly", a.cfg.NodeID, a.cfg.MaxInFlight)}
	}
	ctx := r.Context()
	if a.cfg.CommandTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.cfg.CommandTimeout)
		defer cancel()
	}
	return cmd.run(ctx, c)
}

// openSystem loads a system from the catalog and connects to it. The
// caller closes the connection.
func (a *Agent) openSystem(ctx context.Context, name string) (*catalog.System, spi.Conn, error) {
	sys, err := a.store.GetSystem(ctx, name)
	if err != nil {
		return nil, nil, catalogError(fmt.Sprintf("no system named %q", name), err)
	}
	if len(a.cfg.Systems) > 0 && !slices.Contains(a.cfg.Systems, name) {
		return nil, nil, &apiError{Status: http.StatusMisdirectedRequest, Code: CodeWrongNode,
			Message: fmt.Sprintf("node %s does not serve system %s (it serves %s)", a.cfg.NodeID, name, strings.Join(a.cfg.Systems, ", "))}
	}
	conn, err := a.conns.Open(ctx, spi.System{Name: sys.Name, Kind: sys.Kind, Settings: sys.Settings.V, Secrets: sys.Secrets.V})
	if err != nil {
		if errors.Is(err, spi.ErrUnknownKind) {
			return nil, nil, unsupported("node %s has no connector for system %s of kind %s", a.cfg.NodeID, sys.Name, sys.Kind)
		}
		return nil, nil, &apiError{Status: http.StatusBadGateway, Code: CodeSystemError, Message: err.Error(), Err: err}
	}
	return sys, conn, nil
}

// audit writes the audit entry of a call; a failure is logged, since the
// answer must still reach the caller.
func (a *Agent) audit(ctx context.Context, c *call, began time.Time, took time.Duration, status int, ae *apiError) {
	e := &catalog.AuditEntry{
		At: began.UTC(), Node: a.cfg.NodeID, Action: "dispatcher." + clipText(c.name, 40), Target: c.target,
		Args: c.argsSummary, Status: status, DurationMS: took.Milliseconds(), Outcome: outcome(status),
	}
	if c.ip.IsValid() {
		e.ClientIP = c.ip.String()
	}
	if c.principal != nil {
		e.Actor = c.principal.User.Name
		if id := c.principal.TokenID; id != 0 { // 0: a node's credential, not an API token
			e.TokenID = &id
		}
	}
	if ae != nil {
		e.Detail = ae.Message
		if ae.Status >= 500 && ae.Err != nil {
			e.Detail = ae.Error()
		}
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditWriteTimeout)
	defer cancel()
	if err := a.store.InsertAudit(actx, e); err != nil {
		a.log.Error("write audit entry", slog.String("action", e.Action), slog.String("error", err.Error()))
	}
	lvl := slog.LevelInfo
	if status >= 500 {
		lvl = slog.LevelError
	}
	attrs := []slog.Attr{slog.String("command", c.name), slog.String("target", c.target), slog.String("actor", e.Actor),
		slog.String("client_ip", e.ClientIP), slog.Int("status", status), slog.String("outcome", e.Outcome), slog.Duration("took", took)}
	if ae != nil {
		attrs = append(attrs, slog.String("error", e.Detail))
	}
	a.log.LogAttrs(ctx, lvl, "dispatcher call", attrs...)
}

// outcome classifies an HTTP status for the audit log.
func outcome(status int) string {
	switch {
	case status < 400:
		return catalog.AuditOK
	case status == http.StatusUnauthorized:
		return catalog.AuditUnauthenticated
	case status == http.StatusForbidden:
		return catalog.AuditForbidden
	case status < 500:
		return catalog.AuditRejected
	}
	return catalog.AuditFailed
}

func (a *Agent) writeError(w http.ResponseWriter, ae *apiError) {
	if ae.Status >= 500 && ae.Err != nil {
		a.log.Error("dispatcher command failed", slog.String("code", ae.Code), slog.String("error", ae.Error()))
	}
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="weir"`)
	}
	if ae.Code == CodeBusy {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, ae.Status, ErrorBody{Error: ErrorDetail{Code: ae.Code, Message: ae.Message, Field: ae.Field, Known: ae.Known}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// clipText cuts s to n bytes at a rune boundary.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
