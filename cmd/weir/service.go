package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
	"github.com/weirdata/weir/dispatcher"
	"github.com/weirdata/weir/monitor"
	"github.com/weirdata/weir/worker"
	"github.com/weirdata/weir/workload"
)

// serviceFlags are the flags of the commands that run Weir's roles.
type serviceFlags struct {
	catalog       string
	listen        string
	region        string
	nodeID        string
	logLevel      string
	logFormat     string
	maxActiveRuns int
	slots         int
	threads       int
	leaseTTL      time.Duration
	leaderTTL     time.Duration
	nodeDeadAfter time.Duration
	maxHold       time.Duration
	highLoad      float64
	probeInterval time.Duration
	// trustedProxies are the CIDRs of reverse proxies whose X-Forwarded-For
	// and X-Forwarded-Proto are believed.
	trustedProxies []string
	auditRetention time.Duration

	// Governance (governance.go).
	diskPaths        []string
	sampleInterval   time.Duration
	commands         []string
	catalogCommands  string // --catalog-commands: the directory of the catalog commands' executables
	webhooks         []string
	alertMinSeverity string
	agentListen      string
	agentAdvertise   string
	envErrs          []error // bad WEIR_* values behind flag defaults

	gossip gossipFlags // membership and federation (federation.go)
}

func (f *serviceFlags) bindCommon(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.catalog, "catalog", os.Getenv("WEIR_CATALOG"), "catalog database: postgres://user@host/db or a SQLite path ending in .db (env WEIR_CATALOG)")
	fl.StringVar(&f.region, "region", envOr("WEIR_REGION", RegionDefault), "region this node belongs to (env WEIR_REGION)")
	fl.StringVar(&f.nodeID, "node-id", os.Getenv("WEIR_NODE_ID"), "unique name of this node (env WEIR_NODE_ID; default HOSTNAME-PID)")
	fl.StringVar(&f.logLevel, "log-level", envOr("WEIR_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	fl.StringVar(&f.logFormat, "log-format", envOr("WEIR_LOG_FORMAT", "text"), "log format: text or json")
}

func (f *serviceFlags) bindServer(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", envOr("WEIR_LISTEN", ListenDefault), "address the REST API listens on (env WEIR_LISTEN)")
	fl.IntVar(&f.maxActiveRuns, "max-active-runs", workload.MaxActiveRunsDefault, "the region's maximum of queued and active runs")
	fl.DurationVar(&f.leaderTTL, "leader-lease", workload.LeaseTTLDefault, "leader lease time: another server takes over this long after the leader dies")
	fl.DurationVar(&f.nodeDeadAfter, "node-dead-after", workload.NodeDeadAfterDefault, "a node silent this long is dead and its queued runs are reassigned")
	fl.DurationVar(&f.maxHold, "max-hold", f.envDuration("WEIR_MAX_HOLD", workload.MaxHoldDefault),
		"a run held this long because a host it needs is red (or no healthy worker has room) is aborted with the hold reason (env WEIR_MAX_HOLD)")
	fl.StringArrayVar(&f.trustedProxies, "trusted-proxy", envList("WEIR_TRUSTED_PROXIES", func(s string) []string { return strings.Split(s, ",") }),
		"CIDR or address of a reverse proxy whose X-Forwarded-For and X-Forwarded-Proto are believed; repeat for several (env WEIR_TRUSTED_PROXIES, comma-separated)")
	fl.DurationVar(&f.auditRetention, "audit-retention", f.envDuration("WEIR_AUDIT_RETENTION", broker.AuditRetentionDefault),
		"audit log entries older than this are removed, hourly (env WEIR_AUDIT_RETENTION)")
	f.bindProbe(cmd, "age at which a system no agent is linked to is probed again; new systems are probed within "+RegistrationPollDefault.String())
}

func (f *serviceFlags) bindWorker(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&f.slots, "slots", runtime.NumCPU(), "runs this worker executes at once")
	fl.IntVar(&f.threads, "threads", runtime.NumCPU(), "maximum threads per run")
	fl.DurationVar(&f.leaseTTL, "run-lease", worker.LeaseTTLDefault, "lease on a run: if this worker dies, the run is retried this long after")
	fl.Float64Var(&f.highLoad, "high-load", f.envFloat("WEIR_HIGH_LOAD", worker.HighLoadDefault),
		"host load (1-minute load average per core) from which a run gets fewer threads: one per core not busy (env WEIR_HIGH_LOAD)")
}

// logger builds the process logger from --log-level and --log-format.
func (f *serviceFlags) logger(w *os.File) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, usageErr(withHint(fmt.Errorf("bad --log-level %q", f.logLevel), "use debug, info, warn or error"))
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch f.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErr(withHint(fmt.Errorf("bad --log-format %q", f.logFormat), "use text or json"))
}

func (f *serviceFlags) node() string {
	if f.nodeID != "" {
		return f.nodeID
	}
	h, _ := os.Hostname()
	if h == "" {
		h = "node"
	}
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}

func serviceCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{newDevCmd(g), newServerCmd(g), newWorkerCmd(g), newAgentCmd(g), newMigrateCmd(g), newBenchCmd(g)}
}

// openCatalog opens the catalog and, with migrate, brings its schema up to
// date; without, it refuses a catalog that is behind this binary.
func openCatalog(ctx context.Context, dsn string, log *slog.Logger, migrate bool) (*catalog.Store, error) {
	if dsn == "" {
		return nil, usageErr(withHint(errors.New("no catalog given"), "pass --catalog postgres://user@host:5432/db (or set WEIR_CATALOG, or catalog: in the --config file)"))
	}
	store, err := catalog.Open(ctx, catalog.StoreConfig{DSN: dsn, Logger: log})
	if err != nil {
		return nil, withHint(err, "check that the database is up and the --catalog URL is right")
	}
	if migrate {
		if err := store.Migrate(ctx); err != nil {
			_ = store.Close()
			return nil, err
		}
		return store, nil
	}
	applied, err := store.AppliedMigrations(ctx)
	if err != nil || len(applied) == 0 || applied[len(applied)-1] != catalog.LatestMigration() {
		_ = store.Close()
		return nil, withHint(errors.New("the catalog's schema is not up to date"), "run `weir migrate --catalog ...` first")
	}
	return store, nil
}

func newMigrateCmd(g *globals) *cobra.Command {
	f := &serviceFlags{}
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the catalog's schema migrations",
		Long: `Apply every pending catalog migration. Migrations are versioned and
forward-only; concurrent runs on PostgreSQL wait for each other.

  weir migrate --catalog postgres://postgres@127.0.0.1:5432/weir`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := f.logger(os.Stderr)
			if err != nil {
				return err
			}
			store, err := openCatalog(cmd.Context(), f.catalog, log, true)
			if err != nil {
				return err
			}
			defer store.Close()
			applied, err := store.AppliedMigrations(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.main.Stdout, "catalog is at migration %s (%d applied)\n", applied[len(applied)-1], len(applied))
			return nil
		},
	}
	f.bindCommon(cmd)
	return cmd
}

// ServiceAuditRetention removes audit log entries older than --audit-retention.
const ServiceAuditRetention = "audit-retention"

// addServer adds the region's broker (REST API, with the dispatcher agent's
// commands on the same listener) and workload manager, and the delivery of
// alerts. It returns the API's bound listener and advertised URL.
func (s *stack) addServer(f *serviceFlags, auth *nodeAuth) (*boundListener, string, error) {
	agent, err := s.newAgent(f, auth, nil, "")
	if err != nil {
		return nil, "", err
	}
	b := broker.New(broker.Config{Region: f.region, NodeID: s.node, Logger: s.base, Metrics: s.reg, TrustedProxies: f.trustedProxies}, s.store) // it names its component and node
	api, err := bindListener(f.listen, "--listen")
	if err != nil {
		return nil, "", err
	}
	url, err := advertiseURL("", api.Addr(), "--listen")
	if err == nil {
		err = s.addFederation(f, b, url)
	}
	if err != nil {
		api.close()
		return nil, "", err
	}
	if err := s.add(ServiceAPI, func() (func(context.Context) error, error) {
		h, err := withWeb(withAgent(b.Handler(), agent), b.Handler(), f.trustedProxies, s.log)
		if err != nil {
			return nil, err
		}
		return serveHTTP(api, withMetrics(h, s.metrics()), s.log.With("component", "http")), nil
	}); err != nil {
		api.close()
		return nil, "", err
	}
	retention := f.auditRetention
	if err := s.add(ServiceAuditRetention, func() (func(context.Context) error, error) {
		return func(ctx context.Context) error { return b.PruneAudit(ctx, retention, broker.AuditPruneEveryDefault) }, nil
	}); err != nil {
		api.close()
		return nil, "", err
	}
	wcfg := workload.Config{Region: f.region, NodeID: s.node, MaxActiveRuns: f.maxActiveRuns,
		LeaseTTL: f.leaderTTL, NodeDeadAfter: f.nodeDeadAfter, MaxHold: f.maxHold, Logger: s.log.With("component", "workload"), Metrics: s.reg}
	if err := s.add(ServiceWorkload, func() (func(context.Context) error, error) {
		return workload.New(wcfg, s.store).Run, nil
	}); err != nil {
		api.close()
		return nil, "", err
	}
	// The scheduler fires the region's schedules while this node holds the
	// manager's lease, through the broker's own submission path.
	scfg := workload.SchedulerConfig{Region: f.region, NodeID: s.node, Logger: s.base.With("component", "scheduler")} // it names its node
	if err := s.add(ServiceScheduler, func() (func(context.Context) error, error) {
		return workload.NewScheduler(scfg, s.store, b).Run, nil
	}); err != nil {
		api.close()
		return nil, "", err
	}
	if err := s.addNotifier(f); err != nil {
		api.close()
		return nil, "", err
	}
	if err := s.addAgentProber(f); err != nil {
		api.close()
		return nil, "", err
	}
	// Systems created through the API get their attributes from a probe.
	p := &prober{node: s.node, region: f.region, interval: f.probeInterval, poll: RegistrationPollDefault, store: s.store,
		client: dispatcher.NewClient(loopbackURL(api.Addr()), auth.secret), log: s.log.With("component", "prober")}
	if err := s.add(ServiceProber, func() (func(context.Context) error, error) { return p.Run, nil }); err != nil {
		api.close()
		return nil, "", err
	}
	return api, url, nil
}

// addWorker adds the worker, which heartbeats the node's row with roles and address.
func (s *stack) addWorker(f *serviceFlags, roles []string, address string) error {
	if err := s.joinPool(f, roles, address, f.slots); err != nil {
		return err
	}
	agents, err := s.agentsFor()
	if err != nil {
		return err
	}
	cfg := worker.Config{NodeID: s.node, Region: f.region, Address: address, Version: version(), Roles: roles,
		Slots: f.slots, Threads: f.threads, LeaseTTL: f.leaseTTL, HighLoad: f.highLoad, Logger: s.base.With("component", "worker"), Metrics: s.reg,
		Agents: agents}
	return s.add(ServiceWorker, func() (func(context.Context) error, error) {
		return worker.New(cfg, s.store, connector.Default()).Run, nil
	})
}

// addPresence adds the heartbeat of a node that runs no worker (which
// heartbeats itself).
func (s *stack) addPresence(f *serviceFlags, roles []string, address string) error {
	if err := s.joinPool(f, roles, address, 0); err != nil {
		return err
	}
	cfg := monitor.PresenceConfig{Node: catalog.Node{ID: s.node, Region: f.region, Roles: catalog.NewJSON(roles),
		Address: address, Version: version(), StartedAt: time.Now().UTC()}, Logger: s.log}
	return s.add(ServicePresence, func() (func(context.Context) error, error) {
		return monitor.NewPresence(cfg, s.store).Run, nil
	})
}

// checkServer checks the flags of bindServer.
func (f *serviceFlags) checkServer() error {
	switch {
	case f.maxActiveRuns < 1:
		return withHint(fmt.Errorf("bad --max-active-runs %d: must be at least 1", f.maxActiveRuns), "leave it out for %d", workload.MaxActiveRunsDefault)
	case f.leaderTTL < 100*time.Millisecond:
		return withHint(fmt.Errorf("bad --leader-lease %s: must be at least 100ms", f.leaderTTL), "leave it out for %s", workload.LeaseTTLDefault)
	case f.nodeDeadAfter < 100*time.Millisecond:
		return withHint(fmt.Errorf("bad --node-dead-after %s: must be at least 100ms", f.nodeDeadAfter), "leave it out for %s", workload.NodeDeadAfterDefault)
	case f.maxHold < time.Second:
		return withHint(fmt.Errorf("bad --max-hold %s: must be at least 1s", f.maxHold), "leave it out for %s", workload.MaxHoldDefault)
	case f.auditRetention < time.Hour:
		return withHint(fmt.Errorf("bad --audit-retention %s: must be at least 1h", f.auditRetention), "leave it out for %s (90 days)", broker.AuditRetentionDefault)
	}
	for _, p := range f.trustedProxies {
		if err := (broker.Config{TrustedProxies: []string{p}}).Validate(); err != nil {
			return withHint(fmt.Errorf("bad --trusted-proxy %q: not a CIDR or an IP address", p), "give the proxy's network such as 10.0.0.0/8 or its address such as 10.1.2.3")
		}
	}
	if err := f.checkProbe(); err != nil {
		return err
	}
	_, err := f.alertWebhooks()
	return err
}

// checkWorker checks the flags of bindWorker.
func (f *serviceFlags) checkWorker() error {
	switch {
	case f.slots < 1 || f.threads < 1:
		return withHint(errors.New("--slots and --threads must be at least 1"), "leave them out to use one per CPU core")
	case f.leaseTTL < 100*time.Millisecond:
		return withHint(fmt.Errorf("bad --run-lease %s: must be at least 100ms", f.leaseTTL), "leave it out for %s", worker.LeaseTTLDefault)
	case !(f.highLoad > 0) || math.IsInf(f.highLoad, 0):
		return withHint(fmt.Errorf("bad --high-load %v: must be a positive number", f.highLoad), "leave it out for %v (load per core)", worker.HighLoadDefault)
	}
	return nil
}

// catalogDir is the directory of a SQLite catalog, "" for PostgreSQL.
func catalogDir(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") || dsn == ":memory:" {
		return ""
	}
	p := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "//")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return filepath.Dir(p)
}

// workDir is the process's working directory, "." when unknown.
func workDir() string {
	if d, err := os.Getwd(); err == nil {
		return d
	}
	return "."
}

func newServerCmd(g *globals) *cobra.Command {
	f := &serviceFlags{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the broker (REST API) and the workload manager against a shared catalog",
		Long: `Run the request broker (REST API) and the workload manager of a region.
Any number of servers may run against one catalog: one is elected leader
through a lease row and dispatches; the others take over within the lease
time when it dies.

Every service of the node (api, workload, profiler, presence, notifier and
the --command commands) runs under the node's monitor: one that dies or
panics is restarted with backoff, and the catalog's services table shows
its status, restarts and last error. The dispatcher agent's commands answer
on the API's address under /agent/v1/commands. The profiler samples this
host every --sample-interval; alerts go to each --alert-webhook.

  export WEIR_CATALOG=postgres://postgres@127.0.0.1:5432/weir
  weir migrate
  WEIR_ADMIN_TOKEN=... weir server --listen 0.0.0.0:8080 --region us-east \
      --alert-webhook https://hooks.example.com/weir --alert-min-severity warning

WEIR_ADMIN_TOKEN, when set, makes sure an admin user with that token exists.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log, err := f.logger(os.Stderr)
			if err != nil {
				return err
			}
			if err := f.checkNode(); err != nil {
				return usageErr(err)
			}
			if err := f.checkServer(); err != nil {
				return usageErr(err)
			}
			diskPaths, err := f.diskPathsFor(catalogDir(f.catalog), workDir())
			if err != nil {
				return usageErr(err)
			}
			store, err := openCatalog(ctx, f.catalog, log, false)
			if err != nil {
				return err
			}
			if tok := os.Getenv("WEIR_ADMIN_TOKEN"); tok != "" {
				if _, err := ensureAdmin(ctx, store, tok); err != nil {
					_ = store.Close()
					return err
				}
			}
			node := f.node()
			s, err := newStack(log, store, node, f.region, 0, f.catalogCommands)
			if err != nil {
				_ = store.Close()
				return err
			}
			api, url, err := s.addServer(f, newNodeAuth(store, node))
			if err == nil {
				err = s.addPresence(f, []string{catalog.NodeRoleServer}, url)
			}
			if err == nil {
				err = s.addProfiler(f, diskPaths)
			}
			if err == nil {
				err = s.addCommands(f)
			}
			if err != nil {
				if api != nil {
					api.close()
				}
				_ = store.Close()
				return err
			}
			s.log.Info("server started", "listen", api.Addr(), "region", f.region)
			return s.serve(ctx)
		},
	}
	f.bindCommon(cmd)
	f.bindServer(cmd)
	f.bindNode(cmd, "the working directory and a SQLite catalog's directory")
	f.bindAlerts(cmd)
	return cmd
}

func newWorkerCmd(g *globals) *cobra.Command {
	f := &serviceFlags{}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a worker that claims and executes runs",
		Long: `Run a worker: it registers its node in the catalog, claims the runs the
workload manager assigns to it, moves their data with parallel threads,
reports progress and writes the delivery manifest. Run as many as you like.

The worker, its profiler, its dispatcher agent and the --command commands
run under the node's monitor, which restarts what dies and records it in
the catalog's services table. The dispatcher agent listens on --agent-listen
(default a free loopback port) and its URL is the node's address in the
catalog; give --agent-listen 0.0.0.0:7071 (and --agent-advertise when the
host name is not how others reach it) to let other hosts call it.

  weir worker --catalog postgres://postgres@127.0.0.1:5432/weir --slots 4
  weir worker --agent-listen 0.0.0.0:7071 --disk-path /data --command exporter=/usr/bin/node_exporter`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log, err := f.logger(os.Stderr)
			if err != nil {
				return err
			}
			if err := f.checkNode(); err != nil {
				return usageErr(err)
			}
			if err := f.checkWorker(); err != nil {
				return usageErr(err)
			}
			diskPaths, err := f.diskPathsFor(workDir())
			if err != nil {
				return usageErr(err)
			}
			store, err := openCatalog(ctx, f.catalog, log, false)
			if err != nil {
				return err
			}
			node := f.node()
			s, err := newStack(log, store, node, f.region, workerStopTimeout(f.leaseTTL), f.catalogCommands)
			if err != nil {
				_ = store.Close()
				return err
			}
			url, agent, err := s.addAgentListener(f, newNodeAuth(store, node), nil)
			if err == nil {
				err = s.addWorker(f, []string{catalog.NodeRoleWorker}, url)
			}
			if err == nil {
				err = s.addProfiler(f, diskPaths)
			}
			if err == nil {
				err = s.addCommands(f)
			}
			if err != nil {
				if agent != nil {
					agent.close()
				}
				_ = store.Close()
				return err
			}
			s.log.Info("worker started", "region", f.region, "slots", f.slots, "agent", url)
			return s.serve(ctx)
		},
	}
	f.bindCommon(cmd)
	f.bindWorker(cmd)
	f.bindNode(cmd, "the working directory")
	f.bindAgentListen(cmd)
	return cmd
}
