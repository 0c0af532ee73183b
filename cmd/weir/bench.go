package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// BenchSlotsDefault is the embedded worker's slots in `weir bench --embedded`:
// no-op runs hold a slot for milliseconds, so more than one per core helps.
const BenchSlotsDefault = 16

func newBenchCmd(g *globals) *cobra.Command {
	var (
		o        BenchOptions
		embedded bool
		f        = &serviceFlags{}
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure orchestration overhead: runs per second and pending-to-active latency",
		Long: `Submit N runs of a no-op mapping (a null system that yields and accepts
nothing) and report runs per second end to end and the pending-to-active
latency p50/p95/p99. The runs end "empty": they measure Weir, not data.

Against a running server (--server, --token as for every client command):

  weir bench --runs 500 --concurrency 16

Against an embedded server and worker on a fresh SQLite catalog in a
temporary directory, or on the PostgreSQL catalog given with --catalog:

  weir bench --embedded --runs 500
  weir bench --embedded --catalog postgres://postgres@127.0.0.1:5432/weirbench --runs 500`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			ctx := cmd.Context()
			var (
				c   *client.Client
				err error
			)
			if embedded {
				var stop func()
				c, stop, err = startEmbedded(ctx, f)
				if err != nil {
					return err
				}
				defer stop()
			} else if c, err = g.newClient(); err != nil {
				return err
			}
			res, err := runBench(ctx, c, o)
			if err != nil {
				return g.explain(err, "")
			}
			if g.jsonOut() {
				enc := json.NewEncoder(g.main.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			writeBenchReport(g.main.Stdout, res)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.Runs, "runs", BenchRunsDefault, "runs to submit")
	fl.IntVar(&o.Concurrency, "concurrency", BenchConcurrencyDefault, "concurrent submitters")
	fl.StringVar(&o.Mapping, "mapping", BenchTargetName, "mapping to run (the default null mapping is created when missing)")
	fl.BoolVar(&embedded, "embedded", false, "run against an in-process server and worker instead of --server")
	fl.StringVar(&f.catalog, "catalog", "", "with --embedded: the catalog to use (default: a new SQLite file in a temp dir)")
	fl.IntVar(&f.slots, "slots", BenchSlotsDefault, "with --embedded: the worker's slots")
	fl.IntVar(&f.maxActiveRuns, "max-active-runs", 64, "with --embedded: the region's maximum of active runs")
	return cmd
}

// startEmbedded starts a server and a worker in this process on a catalog
// and a free loopback port, and returns a client of it and its stop function.
func startEmbedded(ctx context.Context, f *serviceFlags) (*client.Client, func(), error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tmp, err := os.MkdirTemp("", "weir-bench-")
	if err != nil {
		return nil, nil, err
	}
	if f.catalog == "" {
		f.catalog = filepath.Join(tmp, "catalog.db")
	}
	f.listen, f.region, f.threads = "127.0.0.1:0", RegionDefault, 1
	store, err := openCatalog(ctx, f.catalog, log, true)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, nil, err
	}
	token := catalog.NewTokenSecret()
	if _, err := ensureAdmin(ctx, store, token); err != nil {
		_ = store.Close()
		_ = os.RemoveAll(tmp)
		return nil, nil, err
	}
	node := "bench-" + fmt.Sprint(os.Getpid())
	s, err := newStack(log, store, node, f.region, workerStopTimeout(f.leaseTTL), "")
	if err != nil {
		_ = store.Close()
		_ = os.RemoveAll(tmp)
		return nil, nil, err
	}
	api, url, err := s.addServer(f, newNodeAuth(store, node))
	if err == nil {
		err = s.addWorker(f, []string{catalog.NodeRoleServer, catalog.NodeRoleWorker}, url)
	}
	if err != nil {
		if api != nil {
			api.close()
		}
		_ = store.Close()
		_ = os.RemoveAll(tmp)
		return nil, nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { _ = s.serve(sctx); close(done) }()
	stop := func() {
		cancel()
		<-done
		_ = os.RemoveAll(tmp)
	}
	c, err := client.New(url, token)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return c, stop, nil
}
