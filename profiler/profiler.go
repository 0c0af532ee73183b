package profiler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/weirdata/weir/catalog"
)

// Store is what the Profiler needs of the catalog; *catalog.Store has it.
type Store interface {
	UpsertLatestSample(ctx context.Context, l *catalog.HostLatest) error
	InsertSamples(ctx context.Context, samples []catalog.HostSample) error
	Rollup(ctx context.Context, p catalog.RollupParams) (catalog.RollupResult, error)
	Prune(ctx context.Context, p catalog.PruneParams) (catalog.PruneResult, error)
	ListBaselines(ctx context.Context, nodeID string, hoursOfWeek ...int) ([]catalog.HostBaseline, error)
}

// Defaults of Config.
const (
	// IntervalDefault is the time between two samples.
	IntervalDefault = 5 * time.Second
	// FlushEveryDefault is how many samples are written in one batch: at 5 s
	// sampling, one transaction every 30 s. The latest row is upserted every
	// sample regardless, so readers of current health never wait for a flush;
	// a crash loses at most this many samples of history.
	FlushEveryDefault = 6
	// RawRetentionDefault is how long raw samples are kept.
	RawRetentionDefault = 24 * time.Hour
	// MinuteRetentionDefault is how long minute rollups are kept.
	MinuteRetentionDefault = 7 * 24 * time.Hour
	// HourRetentionDefault is how long hour rollups are kept.
	HourRetentionDefault = 90 * 24 * time.Hour
	// PruneEveryDefault is the time between two prunings.
	PruneEveryDefault = 10 * time.Minute
	// ForgetAfterDefault is how long a node may stay silent before its rows
	// (latest sample, baselines, history) are deleted: a node that is gone,
	// or was renamed (the default node ID changes with the process ID).
	ForgetAfterDefault = 7 * 24 * time.Hour
	// MinBaselineSamplesDefault is how many raw samples a baseline cell (one
	// hour of the week) needs before deviations are scored against it: half
	// an hour of 5 s samples (catalog.MinBaselineSamplesDefault).
	MinBaselineSamplesDefault = catalog.MinBaselineSamplesDefault
	// MaxBufferedDefault bounds the samples kept while the catalog cannot be
	// written (an hour at 5 s); the oldest are dropped beyond it.
	MaxBufferedDefault = 720
	// flushTimeout bounds the last flush when the Profiler stops.
	flushTimeout = 5 * time.Second
)

// DiskPathsDefault is the disk path reported when none is configured.
var DiskPathsDefault = []string{"/"}

// Config configures a Profiler. Its zero value, with NodeID and Region set,
// works after WithDefaults.
type Config struct {
	// NodeID and Region identify the node whose host is sampled.
	NodeID, Region string
	// Interval is the time between samples.
	Interval time.Duration
	// DiskPaths are the paths whose disk space is reported (for the
	// HostSampler; cmd/weir builds it from them).
	DiskPaths []string
	// FlushEvery is the number of samples written per batch.
	FlushEvery int
	// RawRetention, MinuteRetention and HourRetention bound how long raw
	// samples, minute rollups and hour rollups are kept.
	RawRetention, MinuteRetention, HourRetention time.Duration
	// PruneEvery is the time between prunings. Each profiler prunes the
	// expired rows of every node, so the rows of nodes that are gone go too.
	PruneEvery time.Duration
	// ForgetAfter is how long a node may stay silent before all its rows are deleted.
	ForgetAfter time.Duration
	// MinBaselineSamples is the count a baseline needs before it scores deviations.
	MinBaselineSamples int64
	// MaxBuffered bounds the samples kept while the catalog is unreachable.
	MaxBuffered int
	// Logger receives the profiler's problems; nil discards them.
	Logger *slog.Logger
	// Now is the clock samples are timed by; nil is time.Now (tests set it).
	Now func() time.Time
	// Metrics receives the gauges of the latest sample (metrics.go); nil, none.
	Metrics prometheus.Registerer
}

// WithDefaults fills zero fields with their defaults.
func (c Config) WithDefaults() Config {
	if c.Interval == 0 {
		c.Interval = IntervalDefault
	}
	if len(c.DiskPaths) == 0 {
		c.DiskPaths = append([]string(nil), DiskPathsDefault...)
	}
	if c.FlushEvery == 0 {
		c.FlushEvery = FlushEveryDefault
	}
	if c.RawRetention == 0 {
		c.RawRetention = RawRetentionDefault
	}
	if c.MinuteRetention == 0 {
		c.MinuteRetention = MinuteRetentionDefault
	}
	if c.HourRetention == 0 {
		c.HourRetention = HourRetentionDefault
	}
	if c.PruneEvery == 0 {
		c.PruneEvery = PruneEveryDefault
	}
	if c.ForgetAfter == 0 {
		c.ForgetAfter = ForgetAfterDefault
	}
	if c.MinBaselineSamples == 0 {
		c.MinBaselineSamples = MinBaselineSamplesDefault
	}
	if c.MaxBuffered == 0 {
		c.MaxBuffered = MaxBufferedDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validate checks a Config after WithDefaults.
func (c Config) validate() error {
	// A raw sample is rolled up at the first flush after its minute ended:
	// it must live at least that long.
	rollupLag := time.Duration(c.FlushEvery)*c.Interval + time.Minute
	switch {
	case c.NodeID == "":
		return catalog.Invalid("node_id", "is required")
	case c.Region == "":
		return catalog.Invalid("region", "is required")
	case c.Interval < 10*time.Millisecond:
		return catalog.Invalid("interval", "must be at least 10ms, got %s", c.Interval)
	case c.FlushEvery < 1:
		return catalog.Invalid("flush_every", "must be at least 1 sample, got %d", c.FlushEvery)
	case c.RawRetention < rollupLag+time.Minute:
		return catalog.Invalid("raw_retention", "must be at least %s (a flush, a minute and a minute to spare), got %s", rollupLag+time.Minute, c.RawRetention)
	case c.MinuteRetention < 2*time.Hour:
		return catalog.Invalid("minute_retention", "must be at least 2h, so that every hour is rolled up from its minutes, got %s", c.MinuteRetention)
	case c.HourRetention < time.Hour:
		return catalog.Invalid("hour_retention", "must be at least 1h, got %s", c.HourRetention)
	case c.PruneEvery <= 0:
		return catalog.Invalid("prune_every", "must be positive, got %s", c.PruneEvery)
	case c.ForgetAfter < time.Hour:
		return catalog.Invalid("forget_after", "must be at least 1h, got %s", c.ForgetAfter)
	case c.MinBaselineSamples < 2:
		return catalog.Invalid("min_baseline_samples", "must be at least 2, got %d", c.MinBaselineSamples)
	case c.MaxBuffered < c.FlushEvery:
		return catalog.Invalid("max_buffered", "must hold at least one batch (%d), got %d", c.FlushEvery, c.MaxBuffered)
	}
	if err := catalog.ValidateName("region", c.Region); err != nil {
		return err
	}
	return nil
}

// Profiler samples one node's host and keeps its statistics in the catalog.
type Profiler struct {
	cfg     Config
	store   Store
	sampler Sampler
	log     *slog.Logger
	running atomic.Bool
	metrics *hostMetrics // nil without Config.Metrics

	mu     sync.Mutex
	latest catalog.Sample

	// Owned by the Run goroutine (or a test driving step).
	buf             []catalog.HostSample
	lastAt          time.Time
	baselines       map[int]map[string]catalog.MetricAgg // hour of week -> metric -> aggregate
	baselinesLoaded bool
	staleHours      []int // cells a rollup changed, to read again
	rolledThrough   time.Time
	lastPrune       time.Time
	lastProblem     string
}

// New returns a Profiler of cfg.NodeID that measures with sampler and
// writes to store; a bad configuration is a *catalog.ValidationError.
func New(cfg Config, store Store, sampler Sampler) (*Profiler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new profiler: %w", err)
	}
	if store == nil || sampler == nil {
		return nil, errors.New("new profiler: a store and a sampler are required")
	}
	return &Profiler{cfg: cfg, store: store, sampler: sampler, baselines: map[int]map[string]catalog.MetricAgg{},
		log: cfg.Logger.With(slog.String("node_id", cfg.NodeID)), metrics: newHostMetrics(cfg.Metrics)}, nil
}

// Config returns the profiler's configuration, defaults filled in.
func (p *Profiler) Config() Config { return p.cfg }

// Latest returns the newest sample, with its deviations; its At is zero
// before the first sample.
func (p *Profiler) Latest() catalog.Sample {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latest
}

// Run samples every Interval until ctx ends, then writes the samples still
// buffered and returns nil. Catalog errors are logged and retried, never
// fatal: the catalog may blip. Run may be called once.
func (p *Profiler) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("run profiler: already running")
	}
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	p.step(ctx, p.cfg.Now())
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
			defer cancel()
			p.flush(fctx, p.cfg.Now())
			return nil
		case <-t.C:
			p.step(ctx, p.cfg.Now())
		}
	}
}

// step takes one sample at now, records it as the latest, buffers it, and
// flushes a full batch.
func (p *Profiler) step(ctx context.Context, now time.Time) {
	s, err := p.sampler.Sample(ctx)
	var partial *PartialSampleError
	switch {
	case err != nil && !errors.As(err, &partial):
		p.problem("sample host", err)
		return
	case err != nil:
		p.problem("sample host", err)
	default:
		p.lastProblem = ""
	}
	at := now.UTC().Truncate(time.Millisecond)
	if !at.After(p.lastAt) {
		at = p.lastAt.Add(time.Millisecond) // the clock stepped back: keep times unique and rising
	}
	p.lastAt = at
	s.NodeID, s.Region, s.At = p.cfg.NodeID, p.cfg.Region, at
	m := s.Metrics()
	p.loadBaselines(ctx)
	s.Deviations = catalog.Deviations(m, p.baselines[catalog.HourOfWeek(at)], p.cfg.MinBaselineSamples)

	p.mu.Lock()
	p.latest = s
	p.mu.Unlock()
	p.metrics.observe(s)

	if err := p.store.UpsertLatestSample(ctx, &catalog.HostLatest{NodeID: s.NodeID, Region: s.Region, At: at,
		Metrics: catalog.NewJSON(m), Deviations: catalog.NewJSON(s.Deviations)}); err != nil {
		p.log.Warn("profiler: record latest sample", slog.Any("error", err))
	}
	p.buf = append(p.buf, catalog.HostSample{NodeID: s.NodeID, At: at, Metrics: catalog.NewJSON(m)})
	if len(p.buf) >= p.cfg.FlushEvery {
		p.flush(ctx, now)
	}
}

// problem logs a sampling problem once until it changes.
func (p *Profiler) problem(what string, err error) {
	if msg := err.Error(); msg != p.lastProblem {
		p.lastProblem = msg
		p.log.Warn("profiler: "+what, slog.Any("error", err))
	}
}

// flush writes the buffered samples in one batch, then rolls up the minutes
// that ended and, when due, prunes. A failed write keeps the samples for the
// next flush, at most MaxBuffered of them.
func (p *Profiler) flush(ctx context.Context, now time.Time) {
	if len(p.buf) == 0 {
		return
	}
	if err := p.store.InsertSamples(ctx, p.buf); err != nil {
		p.log.Warn("profiler: write samples", slog.Int("samples", len(p.buf)), slog.Any("error", err))
		if over := len(p.buf) - p.cfg.MaxBuffered; over > 0 {
			p.buf = append(p.buf[:0], p.buf[over:]...)
		}
		return
	}
	// Every sample up to the last one written is in the catalog.
	through := p.buf[len(p.buf)-1].At.Add(time.Millisecond)
	p.buf = p.buf[:0]
	if through.Truncate(time.Minute).After(p.rolledThrough) {
		res, err := p.store.Rollup(ctx, catalog.RollupParams{NodeID: p.cfg.NodeID, Through: through})
		if err != nil {
			p.log.Warn("profiler: roll up samples", slog.Any("error", err))
		} else {
			p.rolledThrough = res.RolledThrough
			p.staleHours = append(p.staleHours, res.BaselineHours...)
		}
	}
	if now.Sub(p.lastPrune) >= p.cfg.PruneEvery {
		// Every node's expired rows, not only ours: idempotent, cheap (index
		// ranges), and nodes that are gone leave nothing behind.
		res, err := p.store.Prune(ctx, catalog.PruneParams{Now: now, ForgetAfter: p.cfg.ForgetAfter,
			Raw: p.cfg.RawRetention, Minute: p.cfg.MinuteRetention, Hour: p.cfg.HourRetention})
		if err != nil {
			p.log.Warn("profiler: prune samples", slog.Any("error", err))
		} else {
			p.lastPrune = now
			if len(res.Forgotten) > 0 {
				p.log.Info("profiler: forgot silent nodes", slog.Any("nodes", res.Forgotten), slog.Duration("silent_for", p.cfg.ForgetAfter))
			}
		}
	}
}

// loadBaselines keeps p.baselines equal to the node's baseline cells in the
// catalog: all of them once, then those a rollup changed. One read per
// rollup, none per sample; a failed read is tried again next sample.
func (p *Profiler) loadBaselines(ctx context.Context) {
	if p.baselinesLoaded && len(p.staleHours) == 0 {
		return
	}
	var hours []int
	if p.baselinesLoaded {
		hours = p.staleHours
	}
	cells, err := p.store.ListBaselines(ctx, p.cfg.NodeID, hours...)
	if err != nil {
		p.log.Warn("profiler: read baselines", slog.Any("error", err))
		return
	}
	for _, c := range cells {
		p.baselines[c.HourOfWeek] = c.Metrics.V
	}
	p.baselinesLoaded = true
	p.staleHours = nil
}
