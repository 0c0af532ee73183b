package monitor

import (
	"context"
	"log/slog"
	"time"

	"github.com/weirdata/weir/catalog"
)

// PresenceIntervalDefault is how often a node's row is refreshed.
const PresenceIntervalDefault = 2 * time.Second

// Store is what Presence needs of the catalog.
type Store interface {
	UpsertNode(ctx context.Context, n *catalog.Node) error
	SetNodeState(ctx context.Context, id, state string) error
}

// PresenceConfig configures a Presence.
type PresenceConfig struct {
	Node     catalog.Node // ID, Region, Roles, Address, Version, Slots
	Interval time.Duration
	Logger   *slog.Logger
}

// WithDefaults fills zero fields with their defaults.
func (c PresenceConfig) WithDefaults() PresenceConfig {
	if c.Interval <= 0 {
		c.Interval = PresenceIntervalDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Presence heartbeats one node's row and marks it left when it stops.
type Presence struct {
	cfg   PresenceConfig
	store Store
}

// NewPresence returns a Presence for cfg.Node.
func NewPresence(cfg PresenceConfig, store Store) *Presence {
	return &Presence{cfg: cfg.WithDefaults(), store: store}
}

// Run refreshes the node row every interval until ctx ends, then marks the
// node left. A failed refresh is logged and retried on the next tick.
func (p *Presence) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		n := p.cfg.Node
		n.State = catalog.NodeAlive
		if err := p.store.UpsertNode(ctx, &n); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Warn("node heartbeat failed", slog.String("node", n.ID), slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return p.store.SetNodeState(sctx, p.cfg.Node.ID, catalog.NodeLeft)
		case <-t.C:
		}
	}
}
