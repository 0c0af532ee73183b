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
	AttrProbedAt = catalog.SystemProbedAt
	// AttrProbeError is why the last probe failed, and AttrProbeErrorAt
	// when; the attributes of the last successful probe are kept beside them.
	AttrProbeError   = catalog.SystemProbeError
	AttrProbeErrorAt = catalog.SystemProbeErrorAt
	// AttrProbedBy is the node that probed the system last.
	AttrProbedBy = catalog.SystemProbedBy
)

// RegistrationPollDefault is how often a server looks for systems to probe:
// a system created through the API has its attributes within this time.
const RegistrationPollDefault = 30 * time.Second

// probeTimeout bounds the probe of one system.
const probeTimeout = 2 * time.Minute

// minProbeInterval is the shortest --probe-interval.
const minProbeInterval = time.Second

// agentFlags are the flags of `weir agent` beyond the node's.
type agentFlags struct {
	systems []string
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

The attributes are in the catalog's system_attributes table; the health of
the systems (weir health) is judged on this node's host. Workers have this
agent count the rows delivered to its systems and verify the delivered
files against the run's delivery manifest; the region's leader has it probe
a system whose attributes are older than twice --probe-interval. Those calls
carry the calling node's token and are audited as node:<id>.`,
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
	f.bindProbe(cmd, "time between two probes of the systems")
	return cmd
}

// check checks the agent's own flags.
func (a *agentFlags) check(f *serviceFlags) error {
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
	return f.checkProbe()
}

// bindProbe binds --probe-interval (agents and servers).
func (f *serviceFlags) bindProbe(cmd *cobra.Command, usage string) {
	cmd.Flags().DurationVar(&f.probeInterval, "probe-interval", f.envDuration("WEIR_PROBE_INTERVAL", ProbeIntervalDefault),
		usage+" (env WEIR_PROBE_INTERVAL)")
}

// checkProbe checks --probe-interval.
func (f *serviceFlags) checkProbe() error {
	if f.probeInterval < minProbeInterval {
		return withHint(fmt.Errorf("bad --probe-interval %s: must be at least %s", f.probeInterval, minProbeInterval), "leave it out for %s", ProbeIntervalDefault)
	}
	return nil
}

func runAgent(ctx context.Context, f *serviceFlags, a *agentFlags) error {
	log, err := f.logger(os.Stderr)
	if err != nil {
		return err
	}
	if err := f.checkNode(); err != nil {
		return usageErr(err)
	}
	if err := a.check(f); err != nil {
		return usageErr(err)
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
	s, err := newStack(log, store, node, f.region, 0, f.catalogCommands)
	if err != nil {
		return fail(err)
	}
	auth := newNodeAuth(store, node)
	url, agent, err := s.addAgentListener(f, auth, a.systems)
	if err == nil {
		err = s.addPresence(f, []string{gossip.RoleAgent}, url)
	}
	if err == nil {
		p := &prober{node: node, region: f.region, systems: a.systems, interval: f.probeInterval, store: store,
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
	ListSystems(ctx context.Context) ([]catalog.System, error)
	ListSystemAttributeValues(ctx context.Context, key string) (map[string]string, error)
	GetSystemAttributes(ctx context.Context, name string) (map[string]string, error)
	SetSystemAttributes(ctx context.Context, name string, attrs map[string]string) error
}

// prober records what probe discovers about systems as their attributes,
// probing each through the node's own dispatcher agent (so that the probe
// is audited like any other call).
//
// On an agent node (systems set) it links the node to its systems: every
// interval it probes each of them and records the attributes with
// node=<its ID>. On a server (systems nil) it registers the region's other
// systems: every poll it probes those no agent is linked to whose last probe
// (or failed probe) is older than interval, so that a system created through
// the API has its attributes within a poll.
type prober struct {
	node     string
	region   string
	systems  []string
	interval time.Duration
	poll     time.Duration
	store    proberStore
	client   *dispatcher.Client
	log      *slog.Logger
}

// Run probes what is due now and then every poll until ctx ends.
func (p *prober) Run(ctx context.Context) error {
	if p.interval <= 0 {
		p.interval = ProbeIntervalDefault
	}
	poll := p.poll
	if p.systems != nil || poll <= 0 {
		poll = p.interval
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		due, err := p.due(ctx)
		if err != nil && ctx.Err() == nil {
			p.log.Warn("could not list the systems to probe", slog.String("error", err.Error()))
		}
		for _, sys := range due {
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

// due returns the systems to probe now.
func (p *prober) due(ctx context.Context) ([]string, error) {
	if p.systems != nil {
		return p.systems, nil
	}
	systems, err := p.store.ListSystems(ctx)
	if err != nil {
		return nil, err
	}
	linked, err := p.store.ListSystemAttributeValues(ctx, AttrNode)
	if err != nil {
		return nil, err
	}
	probed, err := p.store.ListSystemAttributeValues(ctx, AttrProbedAt)
	if err != nil {
		return nil, err
	}
	failed, err := p.store.ListSystemAttributeValues(ctx, AttrProbeErrorAt)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var due []string
	for _, sys := range systems {
		if sys.Region != p.region || linked[sys.Name] != "" {
			continue
		}
		last := latestTime(probed[sys.Name], failed[sys.Name])
		if last.IsZero() || now.Sub(last) >= p.interval {
			due = append(due, sys.Name)
		}
	}
	return due, nil
}

// latestTime is the latest of RFC 3339 times; zero when none parses.
func latestTime(vals ...string) time.Time {
	var out time.Time
	for _, v := range vals {
		if t, err := time.Parse(time.RFC3339, v); err == nil && t.After(out) {
			out = t
		}
	}
	return out
}

// probe probes one system and records its attributes.
func (p *prober) probe(ctx context.Context, sys string) error {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	res, err := p.client.Probe(pctx, sys, dispatcher.ProbeArgs{})
	cancel()
	attrs := map[string]string{}
	now := time.Now().UTC().Format(time.RFC3339)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, catalog.ErrNotFound) {
			return nil // deleted meanwhile
		}
		p.log.Warn("probe failed; keeping the system's last attributes", slog.String("system", sys), slog.String("error", err.Error()))
		old, gerr := p.store.GetSystemAttributes(ctx, sys)
		if gerr != nil {
			return fmt.Errorf("read attributes of %s: %w", sys, gerr)
		}
		maps.Copy(attrs, old)
		attrs[AttrProbeError] = clipRunes(err.Error(), catalog.SystemAttributeValueMax)
		attrs[AttrProbeErrorAt] = now
	} else {
		maps.Copy(attrs, res.Attributes)
		attrs[AttrProbedAt] = res.ProbedAt.UTC().Format(time.RFC3339)
		p.log.Debug("probed system", slog.String("system", sys), slog.Int("attributes", len(res.Attributes)))
	}
	attrs[AttrProbedBy] = p.node
	if p.systems != nil {
		attrs[AttrNode] = p.node
	} else {
		delete(attrs, AttrNode)
	}
	if err := p.store.SetSystemAttributes(context.WithoutCancel(ctx), sys, attrs); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return nil
		}
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
