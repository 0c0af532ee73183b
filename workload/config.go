package workload

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/weirdata/weir/catalog"
)

// Defaults of Config.
const (
	// MaxActiveRunsDefault is a region's maximum of queued and active runs.
	MaxActiveRunsDefault = 64
	// LeaseTTLDefault is the leader lease time: another server takes over at
	// most this long after the leader dies. The lease is renewed every TTL/3.
	LeaseTTLDefault = 10 * time.Second
	// PollIntervalDefault is the fallback tick; notifications wake the manager sooner.
	PollIntervalDefault = time.Second
	// NodeDeadAfterDefault is how long a node may stay silent before it is dead.
	NodeDeadAfterDefault = 15 * time.Second
	// MaxHoldDefault is how long a run may stay held by health (a red host,
	// no healthy worker) before it is aborted with its hold reason.
	MaxHoldDefault = time.Hour
)

// Config configures a Manager. Its zero value, with Region and NodeID set,
// works after WithDefaults.
type Config struct {
	// Region is the region this manager governs.
	Region string
	// NodeID is this process's identity as the holder of the leader lease.
	NodeID string
	// MaxActiveRuns is the region's maximum of queued plus active runs.
	MaxActiveRuns int
	// LeaseTTL is the leader lease time; it is renewed every LeaseTTL/3, and a
	// server that is not leader tries to acquire it as often.
	LeaseTTL time.Duration
	// PollInterval is the fallback tick between wake-ups, and the cadence of
	// maintenance (dead nodes, orphans, expired leases, timeouts).
	PollInterval time.Duration
	// NodeDeadAfter is how long a node may go unseen before it counts as dead.
	NodeDeadAfter time.Duration
	// MaxHold is how long a run may stay pending because of health (its
	// source or target host red, or only red workers with free slots) before
	// it is aborted with its hold reason. Capacity holds (limits, full
	// workers) never abort a run. One value for the region for now.
	MaxHold time.Duration
	// Logger receives the manager's decisions; nil discards them.
	Logger *slog.Logger
	// Metrics receives the manager's metrics (metrics.go); nil, none.
	Metrics prometheus.Registerer
	// RunCountsCache is how long the run gauges reuse one count of the
	// region's runs; RunCountsCacheDefault.
	RunCountsCache time.Duration
}

// WithDefaults fills zero fields with their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxActiveRuns == 0 {
		c.MaxActiveRuns = MaxActiveRunsDefault
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = LeaseTTLDefault
	}
	if c.PollInterval == 0 {
		c.PollInterval = PollIntervalDefault
	}
	if c.NodeDeadAfter == 0 {
		c.NodeDeadAfter = NodeDeadAfterDefault
	}
	if c.MaxHold == 0 {
		c.MaxHold = MaxHoldDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RunCountsCache == 0 {
		c.RunCountsCache = RunCountsCacheDefault
	}
	return c
}

// validate checks a Config after WithDefaults.
func (c Config) validate() error {
	var err error
	switch {
	case c.Region == "":
		err = catalog.Invalid("region", "is required")
	case c.NodeID == "":
		err = catalog.Invalid("node_id", "is required: it identifies the holder of the leader lease")
	case c.MaxActiveRuns < 1:
		err = catalog.Invalid("max_active_runs", "must be at least 1, got %d", c.MaxActiveRuns)
	case c.LeaseTTL < 3*time.Millisecond:
		err = catalog.Invalid("lease_ttl", "must be at least 3ms, got %s", c.LeaseTTL)
	case c.PollInterval <= 0:
		err = catalog.Invalid("poll_interval", "must be positive, got %s", c.PollInterval)
	case c.NodeDeadAfter <= 0:
		err = catalog.Invalid("node_dead_after", "must be positive, got %s", c.NodeDeadAfter)
	case c.MaxHold <= 0:
		err = catalog.Invalid("max_hold", "must be positive, got %s", c.MaxHold)
	}
	if err != nil {
		return fmt.Errorf("check workload config: %w", err)
	}
	return nil
}
