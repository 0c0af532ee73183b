package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/catalog"
	gossip "github.com/weirdata/weir/cluster"
	"github.com/weirdata/weir/dispatcher"
)

// Attributes `weir agent` records on each of its systems, next to what the
// probe discovered.
const (
	// AttrNode is the ID of the agent node the system is linked to.
	AttrNode = catalog.SystemNodeAttribute
	// AttrProbedAt is when the attributes were last discovered (RFC 3339, UTC).
	AttrProbedAt = "probed_at"
	// AttrProbeError is why the last probe failed; the attributes of the
	// last successful probe are kept beside it.
	AttrProbeError = "probe_error"
)

// probeTimeout bounds the probe of one system.
const probeTimeout = 2 * time.Minute

// minProbeInterval is the shortest --probe-interval.
const minProbeInterval = time.Second

// agentFlags are the flags of `weir agent` beyond the node's.
type agentFlags struct {
	systems       []string
	probeInterval time.Duration
}

func newAgentCmd(g *globals) *cobra.Command {
	f := &serviceFlags{}
	a := &agentFlags{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the profiler, monitor and dispatcher agent on a source or target host",
		Long: `Run Weir's agent role on a host that holds data (a file server, a database
host): the profiler samples the host every --sample-interval, so that the
workload manager holds runs from or to it while it is overloaded; the
dispatcher agent answers count, verify, probe and ls for its --systems only;
and the monitor keeps these and the --command commands running.

The node is linked to its systems: at start and every --probe-interval the
agent probes each one (kind, version, size; for a file system its host's
cores, memory and free space) and records what it found as the system's
attributes in the catalog, with node=<this node's ID> and probed_at. A
failed probe keeps the last attributes and records probe_error. By default
the profiler reports the disk space of the file systems' roots.

  weir agent --catalog postgres://weir@db/weir --systems landing,archive \
      --agent-listen 0.0.0.0:7071
  weir systems show landing     # its attributes`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgent(cmd.Context(), f, a)
		},
	}
	f.bindCommon(cmd)
	f.bindNode(cmd, "the roots of the fs systems in --systems, or the working directory")
	f.bindAgentListen(cmd)
	fl := cmd.Flags()
	fl.StringSliceVar(&a.systems, "systems", envList("WEIR_SYSTEMS", func(s string) []string { return strings.Split(s, ",") }),
		"systems this host holds, comma-separated or repeated (env WEIR_SYSTEMS); required")
	fl.DurationVar(&a.probeInterval, "probe-interval", f.envDuration("WEIR_PROBE_INTERVAL", ProbeIntervalDefault),
		"time between two probes of the systems (env WEIR_PROBE_INTERVAL)")
	return cmd
}

// check checks the agent's own flags.
func (a *agentFlags) check() error {
	if len(a.systems) == 0 {
		return withHint(errNoSystems, "name the systems whose data this host holds, as `weir systems list` shows them")
	}
	seen := map[string]bool{}
	for _, s := range a.systems {
		if err := catalog.ValidateName("systems", s); err != nil {
			return withHint(fmt.Errorf("bad --systems %q: %w", s, err), "give system names as `weir systems list` shows them, comma-separated")
		}
		if seen[s] {
			return withHint(fmt.Errorf("bad --systems: %s is named twice", s), "name each system once")
		}
		seen[s] = true
	}
	if a.probeInterval < minProbeInterval {
		return withHint(fmt.Errorf("bad --probe-interval %s: must be at least %s", a.probeInterval, minProbeInterval), "leave it out for %s", ProbeIntervalDefault)
	}
	return nil
}

func runAgent(ctx context.Context, f *serviceFlags, a *agentFlags) error {
	log, err := f.logger(os.Stderr)
	if err != nil {
		return err
	}
	if err := f.checkNode(); err != nil {
		return err
	}
	if err := a.check(); err != nil {
		return err
	}
	store, err := openCatalog(ctx, f.catalog, log, false)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		_ = store.Close()
		return err
	}
	for _, name := range a.systems {
		if _, err := store.GetSystem(ctx, name); err != nil {
			if errors.Is(err, catalog.ErrNotFound) {
				return fail(withHint(fmt.Errorf("bad --systems: no system named %q in the catalog", name), "create it first (`weir systems create`), or check the name with `weir systems list`"))
			}
			return fail(err)
		}
	}
	roots, err := fsRoots(ctx, store, a.systems)
	if err != nil {
		return fail(err)
	}
	if len(roots) == 0 {
		roots = []string{workDir()}
	}
	diskPaths, err := f.diskPathsFor(roots...)
	if err != nil {
		return fail(err)
	}
	node := f.node()
	s, err := newStack(log, store, node, f.region, 0)
	if err != nil {
		return fail(err)
	}
	auth := newNodeAuth(store, node)
	url, agent, err := s.addAgentListener(f, auth, a.systems)
	if err == nil {
		err = s.addPresence(f, []string{gossip.RoleAgent}, url)
	}
	if err == nil {
		p := &prober{node: node, systems: a.systems, interval: a.probeInterval, store: store,
			client: dispatcher.NewClient(loopbackURL(agent.Addr()), auth.secret), log: s.log.With("component", "prober")}
		err = s.add(ServiceProber, func() (func(context.Context) error, error) { return p.Run, nil })
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
		return fail(err)
	}
	s.log.Info("agent started", "region", f.region, "systems", a.systems, "agent", url)
	return s.serve(ctx)
}

// proberStore is what the prober needs of the catalog.
type proberStore interface {
	GetSystemAttributes(ctx context.Context, name string) (map[string]string, error)
	SetSystemAttributes(ctx context.Context, name string, attrs map[string]string) error
}

// prober links an agent node to its systems: it probes each through the
// node's own dispatcher agent (so that the probe is audited like any other
// call) and records the attributes found, with the node's ID.
type prober struct {
	node     string
	systems  []string
	interval time.Duration
	store    proberStore
	client   *dispatcher.Client
	log      *slog.Logger
}

// Run probes every system now and then every interval until ctx ends.
func (p *prober) Run(ctx context.Context) error {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		for _, sys := range p.systems {
			if ctx.Err() != nil {
				return nil
			}
			if err := p.probe(ctx, sys); err != nil && ctx.Err() == nil {
				p.log.Warn("could not record a system's attributes", slog.String("system", sys), slog.String("error", err.Error()))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// probe probes one system and records its attributes.
func (p *prober) probe(ctx context.Context, sys string) error {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	res, err := p.client.Probe(pctx, sys, dispatcher.ProbeArgs{})
	cancel()
	attrs := map[string]string{}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		p.log.Warn("probe failed; keeping the system's last attributes", slog.String("system", sys), slog.String("error", err.Error()))
		old, gerr := p.store.GetSystemAttributes(ctx, sys)
		if gerr != nil {
			return fmt.Errorf("read attributes of %s: %w", sys, gerr)
		}
		maps.Copy(attrs, old)
		attrs[AttrProbeError] = clipRunes(err.Error(), catalog.SystemAttributeValueMax)
	} else {
		maps.Copy(attrs, res.Attributes)
		attrs[AttrProbedAt] = res.ProbedAt.UTC().Format(time.RFC3339)
		p.log.Debug("probed system", slog.String("system", sys), slog.Int("attributes", len(res.Attributes)))
	}
	attrs[AttrNode] = p.node
	if err := p.store.SetSystemAttributes(context.WithoutCancel(ctx), sys, attrs); err != nil {
		return fmt.Errorf("record attributes of %s: %w", sys, err)
	}
	return nil
}

// clipRunes cuts s to at most n runes.
func clipRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
