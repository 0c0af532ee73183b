package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/monitor"
	"github.com/weirdata/weir/worker"
)

// Names of the in-process services a node runs, as the catalog's services
// table shows them.
const (
	ServiceAPI        = "api"        // the broker's REST API (and, on servers, the dispatcher agent)
	ServiceWorkload   = "workload"   // the workload manager
	ServiceScheduler  = "scheduler"  // the schedules, fired on the region's leader
	ServiceWorker     = "worker"     // the worker
	ServiceProfiler   = "profiler"   // host sampling
	ServicePresence   = "presence"   // the node's heartbeat, on nodes without a worker
	ServiceNotifier   = "notifier"   // alert delivery to webhooks
	ServiceDispatcher = "dispatcher" // the dispatcher agent on its own listener
	ServiceProber     = "prober"     // `weir agent`: probes its systems
)

// httpShutdownTimeout is how long an HTTP service lets requests in flight
// finish when the node stops.
const httpShutdownTimeout = 10 * time.Second

// stack is the set of services one process runs under its supervisor, and
// the catalog they share.
type stack struct {
	base  *slog.Logger // the process's logger, for components that name the node themselves
	log   *slog.Logger // base with the node's ID
	store *catalog.Store
	node  string
	sup   *monitor.Supervisor
	reg   *prometheus.Registry // the process's metrics, served at MetricsPath (metrics.go)
	token *nodeToken           // the node's token toward other agents, once issued (agentcall.go)
}

// newStack returns the stack of node, whose supervisor records the
// services in the catalog. stopTimeout bounds how long the services may take
// to stop (the worker drains its runs first). commandsDir is
// --catalog-commands: when set, the node also runs its external commands
// registered in the catalog (weir nodes commands) whose executables are
// inside that directory; when empty it runs none of them.
func newStack(log *slog.Logger, store *catalog.Store, node, region string, stopTimeout time.Duration, commandsDir string) (*stack, error) {
	cfg := monitor.SupervisorConfig{NodeID: node, Region: region,
		StopTimeout: max(stopTimeout, monitor.StopTimeoutDefault), Logger: log.With("component", "monitor")}
	if commandsDir != "" {
		cfg.Commands, cfg.CommandsDir = store, commandsDir
	}
	sup, err := monitor.NewSupervisor(cfg, store)
	if err != nil {
		return nil, fmt.Errorf("configure the monitor: %w", err)
	}
	if commandsDir != "" {
		log.Info("running the catalog's commands for this node", "node", node, "catalog_commands", commandsDir)
	}
	reg, err := newRegistry(store)
	if err != nil {
		return nil, err
	}
	return &stack{base: log, log: log.With("node", node), store: store, node: node, sup: sup, reg: reg}, nil
}

// add supervises an in-process service. fresh builds the component for each
// life: Weir's components may be Run once, so a service that died is
// restarted as a new instance of its component.
func (s *stack) add(name string, fresh func() (func(context.Context) error, error)) error {
	return s.sup.Add(monitor.Service{Name: name, Run: func(ctx context.Context) error {
		run, err := fresh()
		if err != nil {
			return err
		}
		return run(ctx)
	}})
}

// addRun supervises a service whose first instance is already built (it was
// checked at start); later lives build a new one with fresh.
func (s *stack) addRun(name string, first func(context.Context) error, fresh func() (func(context.Context) error, error)) error {
	var once sync.Once
	return s.add(name, func() (func(context.Context) error, error) {
		var run func(context.Context) error
		once.Do(func() { run = first })
		if run != nil {
			return run, nil
		}
		return fresh()
	})
}

// serve runs every service until ctx ends (SIGINT/SIGTERM), restarting those
// that die, then stops them gracefully, records their final status, revokes
// the node's token (once no service may call an agent with it any more) and
// closes the catalog.
func (s *stack) serve(ctx context.Context) error {
	err := s.sup.Run(ctx)
	if s.token != nil {
		s.token.revoke(ctx)
	}
	_ = s.store.Close()
	if err != nil {
		return err
	}
	s.log.Info("stopped")
	return nil
}

// workerStopTimeout is how long a worker may take to stop: drain its runs,
// then record their ends within half its lease.
func workerStopTimeout(lease time.Duration) time.Duration {
	if lease <= 0 {
		lease = worker.LeaseTTLDefault
	}
	return worker.DrainTimeoutDefault + lease/2 + 5*time.Second
}

// boundListener is a TCP address a service serves on. It is bound when the
// node starts, so that a taken address fails the start with a clear error and
// the address (with the port the system chose for ":0") is known before the
// node records it; a service restarted after dying listens again on that
// same address.
type boundListener struct {
	addr string

	mu sync.Mutex
	ln net.Listener // bound at start, taken by the first life
}

// bindListener binds addr; flag names the flag that set it, for the hint.
func bindListener(addr, flag string) (*boundListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, withHint(fmt.Errorf("listen on %s: %w", addr, err), "another process uses that address; pass %s HOST:PORT", flag)
	}
	return &boundListener{addr: ln.Addr().String(), ln: ln}, nil
}

// Addr is the bound address, with the port chosen for ":0".
func (b *boundListener) Addr() string { return b.addr }

// take returns the listener bound at start the first time, then a new one on the same address.
func (b *boundListener) take() (net.Listener, error) {
	b.mu.Lock()
	ln := b.ln
	b.ln = nil
	b.mu.Unlock()
	if ln != nil {
		return ln, nil
	}
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		return nil, fmt.Errorf("listen again on %s: %w", b.addr, err)
	}
	return ln, nil
}

// close releases the listener when the node does not start after all.
func (b *boundListener) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln != nil {
		_ = b.ln.Close()
		b.ln = nil
	}
}

// serveHTTP returns a service that serves h on b until ctx ends, then shuts
// down gracefully, letting requests in flight finish for httpShutdownTimeout.
func serveHTTP(b *boundListener, h http.Handler, log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		ln, err := b.take()
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		select {
		case err := <-served:
			return fmt.Errorf("serve HTTP on %s: %w", b.addr, err)
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), httpShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve HTTP on %s: %w", b.addr, err)
		}
		return nil
	}
}

// advertiseURL is the http URL others reach a listener bound on addr at:
// given (checked) when not empty, else addr with an unspecified host
// (0.0.0.0, ::) replaced by this host's name.
func advertiseURL(given, addr, flag string) (string, error) {
	if given != "" {
		u, err := url.Parse(given)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return "", withHint(fmt.Errorf("bad %s %q", flag, given), "give the URL others reach this node at, such as http://worker-3.example.com:7071 (no path, no credentials)")
		}
		u.Path = ""
		return u.String(), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("advertise %s: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		name, err := os.Hostname()
		if err != nil || name == "" {
			return "", withHint(fmt.Errorf("listening on %s, and this host has no name to advertise", addr), "pass %s with the URL others reach this node at", flag)
		}
		host = name
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// loopbackURL is a URL this process reaches a listener bound on addr at.
func loopbackURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if ip != nil && ip.To4() == nil {
			host = "::1"
		} else {
			host = "127.0.0.1"
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}
