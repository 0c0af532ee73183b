package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/catalog"
)

// Names of what `weir dev` creates.
const (
	AdminUserName   = "admin"
	AdminTokenFile  = "admin-token"
	DemoSourceName  = "demo-src"
	DemoTargetName  = "demo-dst"
	DemoMappingName = "demo-trades"
)

func newDevCmd(g *globals) *cobra.Command {
	f := &serviceFlags{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run every role in one process on an embedded SQLite catalog with demo data",
		Long: `Run the broker, workload manager and a worker in one process on an
embedded SQLite catalog under --data-dir (default ./weir-data).

On first start it creates an admin user and an API token (printed once and
written to <data-dir>/admin-token, mode 0600; WEIR_ADMIN_TOKEN, when set, is
used as that token instead) and a dashboard password (printed once and
written to <data-dir>/admin-password, mode 0600; WEIR_ADMIN_PASSWORD, when
set, is used instead), two filesystem systems demo-src and demo-dst
under the data dir, a few hundred sample CSV files of trades by symbol and
business date in demo-src, and the mapping demo-trades between them.

As on every node, the services (api, workload, worker, profiler, notifier
and the --command commands) run under the node's monitor, which restarts
what dies; the profiler samples this host every --sample-interval, and the
dispatcher agent's commands answer on the API's address.

The dashboard is at the API's address (http://127.0.0.1:8080/ by default).

  weir dev
  weir submit demo-trades -p business_date=2026-11-20 --wait`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), g, f)
		},
	}
	f.bindCommon(cmd)
	f.bindServer(cmd)
	f.bindWorker(cmd)
	f.bindNode(cmd, "the data dir and the roots of the fs systems on this host")
	f.bindAlerts(cmd)
	return cmd
}

func runDev(ctx context.Context, g *globals, f *serviceFlags) error {
	log, err := f.logger(os.Stderr)
	if err != nil {
		return err
	}
	for _, check := range []func() error{f.checkNode, f.checkServer, f.checkWorker} {
		if err := check(); err != nil {
			return usageErr(err)
		}
	}
	dataDir, err := filepath.Abs(g.dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return withHint(fmt.Errorf("create data dir: %w", err), "pass --data-dir to a writable directory")
	}
	if f.catalog == "" {
		f.catalog = filepath.Join(dataDir, "catalog.db")
	}
	store, err := openCatalog(ctx, f.catalog, log, true)
	if err != nil {
		return err
	}
	token, err := devAdminToken(ctx, store, dataDir)
	if err != nil {
		_ = store.Close()
		return err
	}
	password, err := devAdminPassword(ctx, store, dataDir)
	if err != nil {
		_ = store.Close()
		return err
	}
	if err := seedDemo(ctx, store, dataDir, f.region, log); err != nil {
		_ = store.Close()
		return err
	}
	roots, err := fsRoots(ctx, store, nil)
	if err != nil {
		_ = store.Close()
		return err
	}
	diskPaths, err := f.diskPathsFor(append([]string{dataDir, catalogDir(f.catalog)}, roots...)...)
	if err != nil {
		_ = store.Close()
		return err
	}
	node := f.devNode()
	s, err := newStack(log, store, node, f.region, workerStopTimeout(f.leaseTTL), f.catalogCommands)
	if err != nil {
		_ = store.Close()
		return err
	}
	api, url, err := s.addServer(f, newNodeAuth(store, node))
	if err == nil {
		err = s.addWorker(f, []string{catalog.NodeRoleServer, catalog.NodeRoleWorker}, url)
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
	out := g.main.Stdout
	fmt.Fprintf(out, "Weir dev is listening on %s (catalog %s, region %s)\n", url, catalog.RedactDSN(f.catalog), f.region)
	if token != "" {
		fmt.Fprintf(out, "Admin API token (shown once, also in %s):\n  %s\n", filepath.Join(dataDir, AdminTokenFile), token)
	}
	printDashboard(out, url, dataDir, password)
	fmt.Fprintf(out, "Submit a run of the demo mapping and watch it:\n  go run ./cmd/weir submit %s -p business_date=2026-11-20 --wait --server %s --data-dir %s\n",
		DemoMappingName, url, g.dataDir)
	fmt.Fprintf(out, "or with curl:\n  curl -s -H \"Authorization: Bearer $(cat %s)\" -H 'Content-Type: application/json' -d '{\"mapping\":\"%s\",\"params\":{\"business_date\":\"2026-11-20\"}}' %s/api/v1/runs\n",
		filepath.Join(g.dataDir, AdminTokenFile), DemoMappingName, url)
	return s.serve(ctx)
}

// fsRoots returns the roots of the fs systems named (all fs systems when
// names is nil), for the profiler to report their disk space.
func fsRoots(ctx context.Context, store *catalog.Store, names []string) ([]string, error) {
	systems, err := store.ListSystems(ctx)
	if err != nil {
		return nil, fmt.Errorf("list systems: %w", err)
	}
	var roots []string
	for _, sys := range systems {
		if sys.Kind != catalog.KindFS || (names != nil && !slices.Contains(names, sys.Name)) {
			continue
		}
		if root := sys.Settings.V["root"]; root != "" {
			roots = append(roots, root)
		}
	}
	return roots, nil
}

// devAdminToken makes sure the admin user and its token exist. It returns
// the token when it was created now (to be printed once), "" otherwise.
func devAdminToken(ctx context.Context, store *catalog.Store, dataDir string) (string, error) {
	path := filepath.Join(dataDir, AdminTokenFile)
	if env := os.Getenv("WEIR_ADMIN_TOKEN"); env != "" {
		if _, err := ensureAdmin(ctx, store, env); err != nil {
			return "", err
		}
		if err := os.WriteFile(path, []byte(env+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("write %s: %w", path, err)
		}
		return "", nil // the caller chose it: never echo it
	}
	if b, err := os.ReadFile(path); err == nil {
		if _, err := store.Authenticate(ctx, string(trimNL(b))); err == nil {
			return "", nil
		}
	}
	tok := catalog.NewTokenSecret()
	if _, err := ensureAdmin(ctx, store, tok); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return tok, nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// ensureAdmin makes sure the admin user exists and that token authenticates
// as it, creating the user and the token as needed. created tells whether the
// token was new.
func ensureAdmin(ctx context.Context, store *catalog.Store, token string) (bool, error) {
	u, err := store.GetUserByName(ctx, AdminUserName)
	if errors.Is(err, catalog.ErrNotFound) {
		u = &catalog.User{Name: AdminUserName, Role: catalog.RoleAdmin}
		if err := store.CreateUser(ctx, u); err != nil {
			return false, fmt.Errorf("create admin user: %w", err)
		}
	} else if err != nil {
		return false, err
	}
	if p, err := store.Authenticate(ctx, token); err == nil {
		if p.User.ID != u.ID {
			return false, fmt.Errorf("WEIR_ADMIN_TOKEN belongs to user %s, not %s", p.User.Name, AdminUserName)
		}
		return false, nil
	} else if !errors.Is(err, catalog.ErrUnauthenticated) {
		return false, err
	}
	if _, _, err := store.CreateToken(ctx, catalog.CreateTokenParams{UserID: u.ID, Name: "admin", Secret: token}); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			return false, withHint(errors.New("the admin token was revoked or expired"), "set WEIR_ADMIN_TOKEN to a new value, or remove it to get a fresh token")
		}
		return false, fmt.Errorf("create admin token: %w", err)
	}
	return true, nil
}

// devNode is the node name of `weir dev` without --node-id: "dev-HOSTNAME",
// stable across restarts (one dev process owns its data directory), so that
// restarting it does not leave a dead node behind on the dashboard.
func (f *serviceFlags) devNode() string {
	if f.nodeID != "" {
		return f.nodeID
	}
	h, _ := os.Hostname()
	if h == "" {
		h = "localhost"
	}
	return "dev-" + h
}
