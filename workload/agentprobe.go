package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/weirdata/weir/catalog"
)

// The agent prober keeps the attributes of the systems linked to a
// dispatcher agent fresh. An agent probes its own systems on its own
// schedule (`weir agent --systems`); when it has not recorded a probe of one
// of them for StaleAfter (it was busy, restarting, or the system was linked
// and never probed), the region's leader asks that agent to probe the
// system and records what it found. Systems with no agent linked are
// probed by each server's own prober, as before. It runs on every server
// and acts only while this node holds the region's leader lease, which it
// reads and never takes.

// Defaults of AgentProberConfig.
const (
	// AgentProbeIntervalDefault is how often the leader looks for stale systems.
	AgentProbeIntervalDefault = 30 * time.Second
	// AgentProbeStaleAfterDefault is the age from which a linked system's
	// attributes are stale.
	AgentProbeStaleAfterDefault = 10 * time.Minute
	// AgentProbeTimeoutDefault bounds the probe of one system.
	AgentProbeTimeoutDefault = 2 * time.Minute
)

// ErrNoAgent means no live dispatcher agent is linked to the system.
var ErrNoAgent = errors.New("no live dispatcher agent is linked to the system")

// SystemProber asks the dispatcher agent linked to a system to probe it;
// cmd/weir adapts the dispatcher's client to it. It returns ErrNoAgent
// when no live agent is linked.
type SystemProber interface {
	Probe(ctx context.Context, system string) (*AgentProbe, error)
}

// AgentProbe is what an agent discovered about a system.
type AgentProbe struct {
	// Node is the agent's node.
	Node       string
	ProbedAt   time.Time
	Attributes map[string]string
}

// AgentProberStore is what the agent prober needs from the catalog;
// *catalog.Store implements it.
type AgentProberStore interface {
	Now() time.Time
	GetLease(ctx context.Context, name string) (*catalog.Lease, error)
	ListSystems(ctx context.Context) ([]catalog.System, error)
	ListSystemAttributeValues(ctx context.Context, key string) (map[string]string, error)
	GetSystemAttributes(ctx context.Context, name string) (map[string]string, error)
	SetSystemAttributes(ctx context.Context, name string, attrs map[string]string) error
}

// AgentProberConfig configures an AgentProber. Its zero value, with Region
// and NodeID set, works after WithDefaults.
type AgentProberConfig struct {
	// Region is whose systems are kept fresh; NodeID this server, whose
	// manager campaigns for the region's leader lease.
	Region, NodeID string
	// Interval is how often the leader looks for stale systems;
	// AgentProbeIntervalDefault.
	Interval time.Duration
	// StaleAfter is the age of a linked system's last probe (or failed
	// probe) from which the leader probes it; AgentProbeStaleAfterDefault.
	StaleAfter time.Duration
	// Timeout bounds the probe of one system; AgentProbeTimeoutDefault.
	Timeout time.Duration
	Logger  *slog.Logger
}

// WithDefaults fills zero fields with their defaults.
func (c AgentProberConfig) WithDefaults() AgentProberConfig {
	if c.Interval == 0 {
		c.Interval = AgentProbeIntervalDefault
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = AgentProbeStaleAfterDefault
	}
	if c.Timeout == 0 {
		c.Timeout = AgentProbeTimeoutDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c AgentProberConfig) validate() error {
	switch {
	case c.Region == "":
		return catalog.Invalid("region", "is required")
	case c.NodeID == "":
		return catalog.Invalid("node_id", "is required: the agent prober acts while this node holds the leader lease")
	case c.Interval <= 0 || c.StaleAfter <= 0 || c.Timeout <= 0:
		return catalog.Invalid("agent_prober", "interval, stale_after and timeout must be positive")
	}
	return nil
}

// AgentProber refreshes, on the region's leader, the attributes of systems
// whose linked agent has not probed them for StaleAfter.
type AgentProber struct {
	cfg    AgentProberConfig
	store  AgentProberStore
	prober SystemProber
	log    *slog.Logger
}

// NewAgentProber returns the agent prober of a server.
func NewAgentProber(cfg AgentProberConfig, store AgentProberStore, prober SystemProber) *AgentProber {
	cfg = cfg.WithDefaults()
	return &AgentProber{cfg: cfg, store: store, prober: prober,
		log: cfg.Logger.With(slog.String("component", "agent-prober"), slog.String("node", cfg.NodeID))}
}

// Run refreshes stale systems every Interval until ctx ends.
func (p *AgentProber) Run(ctx context.Context) error {
	if err := p.cfg.validate(); err != nil {
		return fmt.Errorf("start the agent prober: %w", err)
	}
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := p.Pass(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("agent prober pass failed", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Pass probes, while this node leads the region, every system of the region
// linked to an agent whose attributes are stale, and returns the systems it
// recorded a probe (or a failed probe) of.
func (p *AgentProber) Pass(ctx context.Context) ([]string, error) {
	l, err := p.store.GetLease(ctx, catalog.LeaderLeaseName(p.cfg.Region))
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the leader lease: %w", err)
	}
	now := p.store.Now()
	if l.Holder != p.cfg.NodeID || !l.ExpiresAt.After(now) {
		return nil, nil
	}
	systems, err := p.store.ListSystems(ctx)
	if err != nil {
		return nil, fmt.Errorf("list systems: %w", err)
	}
	linked, err := p.store.ListSystemAttributeValues(ctx, catalog.SystemNodeAttribute)
	if err != nil {
		return nil, fmt.Errorf("list linked systems: %w", err)
	}
	probed, err := p.store.ListSystemAttributeValues(ctx, catalog.SystemProbedAt)
	if err != nil {
		return nil, fmt.Errorf("list probe times: %w", err)
	}
	failed, err := p.store.ListSystemAttributeValues(ctx, catalog.SystemProbeErrorAt)
	if err != nil {
		return nil, fmt.Errorf("list failed probe times: %w", err)
	}
	var done []string
	for _, sys := range systems {
		if sys.Region != p.cfg.Region || linked[sys.Name] == "" {
			continue
		}
		if last := latest(probed[sys.Name], failed[sys.Name]); !last.IsZero() && now.Sub(last) < p.cfg.StaleAfter {
			continue
		}
		if ctx.Err() != nil {
			return done, nil
		}
		ok, err := p.probe(ctx, sys.Name, linked[sys.Name])
		if err != nil {
			return done, err
		}
		if ok {
			done = append(done, sys.Name)
		}
	}
	return done, nil
}

// probe has the agent of sys probe it and records the outcome; ok is false
// when nothing was recorded (no live agent, or the system is gone).
func (p *AgentProber) probe(ctx context.Context, sys, agent string) (bool, error) {
	pctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	res, err := p.prober.Probe(pctx, sys)
	cancel()
	switch {
	case errors.Is(err, ErrNoAgent) || errors.Is(err, catalog.ErrNotFound):
		p.log.Debug("system not probed: no live agent", slog.String("system", sys), slog.String("agent", agent))
		return false, nil
	case err != nil && ctx.Err() != nil:
		return false, nil
	}
	attrs := map[string]string{}
	now := p.store.Now().UTC().Format(time.RFC3339)
	if err != nil {
		p.log.Warn("probe through the system's agent failed; keeping its last attributes", slog.String("system", sys),
			slog.String("agent", agent), slog.String("error", err.Error()))
		old, gerr := p.store.GetSystemAttributes(ctx, sys)
		if gerr != nil {
			return false, fmt.Errorf("read attributes of %s: %w", sys, gerr)
		}
		maps.Copy(attrs, old)
		attrs[catalog.SystemProbeError] = clip(err.Error(), catalog.SystemAttributeValueMax)
		attrs[catalog.SystemProbeErrorAt] = now
	} else {
		maps.Copy(attrs, res.Attributes)
		attrs[catalog.SystemProbedAt] = res.ProbedAt.UTC().Format(time.RFC3339)
		p.log.Info("probed a stale system through its agent", slog.String("system", sys), slog.String("agent", res.Node),
			slog.Int("attributes", len(res.Attributes)))
	}
	attrs[catalog.SystemProbedBy] = p.cfg.NodeID
	attrs[catalog.SystemNodeAttribute] = agent
	if err := p.store.SetSystemAttributes(context.WithoutCancel(ctx), sys, attrs); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("record attributes of %s: %w", sys, err)
	}
	return true, nil
}

// latest is the latest of RFC 3339 times; zero when none parses.
func latest(vals ...string) time.Time {
	var out time.Time
	for _, v := range vals {
		if t, err := time.Parse(time.RFC3339, v); err == nil && t.After(out) {
			out = t
		}
	}
	return out
}

// clip cuts s to at most n runes.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
