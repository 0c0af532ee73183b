package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
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
}

func (f *serviceFlags) bindWorker(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&f.slots, "slots", runtime.NumCPU(), "runs this worker executes at once")
	fl.IntVar(&f.threads, "threads", runtime.NumCPU(), "maximum threads per run")
	fl.DurationVar(&f.leaseTTL, "run-lease", worker.LeaseTTLDefault, "lease on a run: if this worker dies, the run is retried this long after")
}

// logger builds the process logger from --log-level and --log-format.
func (f *serviceFlags) logger(w *os.File) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, withHint(fmt.Errorf("bad --log-level %q", f.logLevel), "use debug, info, warn or error")
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch f.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, withHint(fmt.Errorf("bad --log-format %q", f.logFormat), "use text or json")
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

// version is the module version of this build, or "dev".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func serviceCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{newDevCmd(g), newServerCmd(g), newWorkerCmd(g), newMigrateCmd(g), newBenchCmd(g)}
}

// openCatalog opens the catalog and, with migrate, brings its schema up to
// date; without, it refuses a catalog that is behind this binary.
func openCatalog(ctx context.Context, dsn string, log *slog.Logger, migrate bool) (*catalog.Store, error) {
	if dsn == "" {
		return nil, withHint(errors.New("no catalog given"), "pass --catalog postgres://user@host:5432/db (or set WEIR_CATALOG)")
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
		Args: cobra.NoArgs,
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

// stack is the set of components one process runs, and their shutdown.
type stack struct {
	log   *slog.Logger
	store *catalog.Store
	http  *http.Server
	ln    net.Listener
	runs  []func(context.Context) error
}

// serve runs every component until ctx ends (SIGINT/SIGTERM), then shuts down
// gracefully: the API stops taking requests, components finish, the catalog closes.
func (s *stack) serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(s.runs)+1)
	for _, run := range s.runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- err
				cancel()
			}
		}()
	}
	if s.http != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
				cancel()
			}
		}()
	}
	<-ctx.Done()
	s.log.Info("shutting down")
	if s.http != nil {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_ = s.http.Shutdown(sctx)
		scancel()
	}
	wg.Wait()
	_ = s.store.Close()
	close(errc)
	for err := range errc {
		return err
	}
	s.log.Info("stopped")
	return nil
}

// listenAPI binds the REST API's address; it fails early and clearly when taken.
func (s *stack) listenAPI(addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return withHint(fmt.Errorf("listen on %s: %w", addr, err), "another process uses that address; pass --listen HOST:PORT")
	}
	s.ln = ln
	s.http = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return nil
}

func (s *stack) addServer(f *serviceFlags, node string) (*broker.Server, error) {
	b := broker.New(broker.Config{Region: f.region, NodeID: node, Logger: s.log.With("component", "broker")}, s.store)
	if err := s.listenAPI(f.listen, b.Handler()); err != nil {
		return nil, err
	}
	m := workload.New(workload.Config{Region: f.region, NodeID: node, MaxActiveRuns: f.maxActiveRuns,
		LeaseTTL: f.leaderTTL, NodeDeadAfter: f.nodeDeadAfter, Logger: s.log.With("component", "workload")}, s.store)
	s.runs = append(s.runs, m.Run)
	return b, nil
}

func (s *stack) addWorker(f *serviceFlags, node string, roles []string, address string) {
	w := worker.New(worker.Config{NodeID: node, Region: f.region, Address: address, Version: version(), Roles: roles,
		Slots: f.slots, Threads: f.threads, LeaseTTL: f.leaseTTL, Logger: s.log.With("component", "worker")},
		s.store, connector.Default())
	s.runs = append(s.runs, w.Run)
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

  export WEIR_CATALOG=postgres://postgres@127.0.0.1:5432/weir
  weir migrate
  WEIR_ADMIN_TOKEN=... weir server --listen 0.0.0.0:8080 --region us-east

WEIR_ADMIN_TOKEN, when set, makes sure an admin user with that token exists.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log, err := f.logger(os.Stderr)
			if err != nil {
				return err
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
			s := &stack{log: log.With("node", node), store: store}
			if _, err := s.addServer(f, node); err != nil {
				_ = store.Close()
				return err
			}
			p := monitor.NewPresence(monitor.PresenceConfig{Node: catalog.Node{ID: node, Region: f.region,
				Roles: catalog.NewJSON([]string{catalog.NodeRoleServer}), Address: "http://" + s.ln.Addr().String(), Version: version()},
				Logger: s.log}, store)
			s.runs = append(s.runs, p.Run)
			s.log.Info("server started", "listen", s.ln.Addr().String(), "region", f.region)
			return s.serve(ctx)
		},
	}
	f.bindCommon(cmd)
	f.bindServer(cmd)
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

  weir worker --catalog postgres://postgres@127.0.0.1:5432/weir --slots 4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log, err := f.logger(os.Stderr)
			if err != nil {
				return err
			}
			if f.slots < 1 || f.threads < 1 {
				return withHint(errors.New("--slots and --threads must be at least 1"), "leave them out to use one per CPU core")
			}
			store, err := openCatalog(ctx, f.catalog, log, false)
			if err != nil {
				return err
			}
			node := f.node()
			s := &stack{log: log.With("node", node), store: store}
			s.addWorker(f, node, []string{catalog.NodeRoleWorker}, "")
			s.log.Info("worker started", "region", f.region, "slots", f.slots)
			return s.serve(ctx)
		},
	}
	f.bindCommon(cmd)
	f.bindWorker(cmd)
	return cmd
}
