// Package worker claims the runs the workload manager assigned to this node
// and executes them: it inspects the source, decides the degree of
// parallelism, writes the internal manifest, copies files (or reads, filters,
// maps and loads rows: see rows.go) in parallel into a staging area at the
// target, commits once and writes the delivery manifest last. It heartbeats its node row and the leases of its runs, flushes
// progress in batches, observes cancellation, and stops all work when it
// cannot reach the catalog for half its lease, so that a worker that may have
// lost a run never commits it.
//
// It imports catalog (types and sentinels; the Store itself arrives through
// the Store interface), connector, transform, and gopsutil for the host's load.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
)

// Defaults of Config.
const (
	LeaseTTLDefault          = 30 * time.Second
	HeartbeatIntervalDefault = time.Second
	ProgressIntervalDefault  = time.Second
	PollIntervalDefault      = time.Second
	DrainTimeoutDefault      = 10 * time.Second
	// BatchSizeDefault is the rows of one batch on the row path.
	BatchSizeDefault = 1024
	// QueueDepthDefault is the batches waiting between a thread's read and
	// write stages: reading the next batch overlaps writing the last.
	QueueDepthDefault = 2
	// HighLoadDefault is the node's CPU load (1-minute load average per
	// core) from which a run gets fewer threads: one per core not busy.
	HighLoadDefault = 0.75
)

// Defaults of Config that depend on the machine.
var (
	// SlotsDefault is the number of runs a worker executes at once: one per core.
	SlotsDefault = runtime.NumCPU()
	// ThreadsDefault is the most threads one run uses: one per core.
	ThreadsDefault = runtime.NumCPU()
)

// Config configures a Worker. Its zero value, with NodeID and Region set,
// works after WithDefaults.
type Config struct {
	// NodeID names this worker in the catalog (runs are assigned to it);
	// Region is where it runs; Address and Version are shown on its node row.
	NodeID, Region, Address, Version string
	// Roles are recorded on the node row; default ["worker"].
	Roles []string
	// Slots is how many runs execute at once; SlotsDefault.
	Slots int
	// Threads is the most threads one run uses; ThreadsDefault.
	Threads int
	// LeaseTTL is the lease on a claimed run: when this worker stops
	// renewing it, the run is retried elsewhere that long after.
	LeaseTTL time.Duration
	// HeartbeatInterval paces the node heartbeat, the lease renewal of every
	// held run (one catalog call for all) and the check for cancellation.
	// Default HeartbeatIntervalDefault, or LeaseTTL/4 when shorter. It may be
	// at most LeaseTTL/4, so that one slow or failed heartbeat does not reach
	// the LeaseTTL/2 without contact that stops every run.
	HeartbeatInterval time.Duration
	// ProgressInterval paces the batched progress writes of each run.
	ProgressInterval time.Duration
	// PollInterval is how often the worker looks for runs assigned to it
	// when no notification woke it.
	PollInterval time.Duration
	// DrainTimeout is how long Run lets the runs in flight finish after its
	// context ended, before it stops them and hands them back for retry.
	DrainTimeout time.Duration
	Logger       *slog.Logger

	// The row path (issue 3).

	// BatchSize is the most rows of a batch; BatchSizeDefault.
	BatchSize int
	// QueueDepth is the batches a thread's reader may be ahead of its
	// writer; QueueDepthDefault.
	QueueDepth int
	// Load returns the node's CPU load: its 1-minute load average and the
	// number of cores. Default: the host's, read with gopsutil.
	Load func(ctx context.Context) (load1 float64, cores int, err error)
	// HighLoad is the load per core from which runs get fewer threads;
	// HighLoadDefault.
	HighLoad float64
	// SpoolDir holds rejected rows until the run writes its reject file;
	// default the system's temporary directory.
	SpoolDir string
	// Metrics receives the worker's metrics (metrics.go); nil, none.
	Metrics prometheus.Registerer
}

// WithDefaults fills zero fields with their defaults.
func (c Config) WithDefaults() Config {
	if len(c.Roles) == 0 {
		c.Roles = []string{catalog.NodeRoleWorker}
	}
	if c.Slots == 0 {
		c.Slots = SlotsDefault
	}
	if c.Threads == 0 {
		c.Threads = ThreadsDefault
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = LeaseTTLDefault
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = min(HeartbeatIntervalDefault, c.LeaseTTL/4)
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = ProgressIntervalDefault
	}
	if c.PollInterval == 0 {
		c.PollInterval = PollIntervalDefault
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DrainTimeoutDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.BatchSize == 0 {
		c.BatchSize = BatchSizeDefault
	}
	if c.QueueDepth == 0 {
		c.QueueDepth = QueueDepthDefault
	}
	if c.Load == nil {
		c.Load = hostLoad
	}
	if c.HighLoad == 0 {
		c.HighLoad = HighLoadDefault
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.NodeID == "":
		return catalog.Invalid("worker.node_id", "is required")
	case c.Region == "":
		return catalog.Invalid("worker.region", "is required")
	case c.Slots < 1:
		return catalog.Invalid("worker.slots", "must be at least 1, got %d", c.Slots)
	case c.Threads < 1:
		return catalog.Invalid("worker.threads", "must be at least 1, got %d", c.Threads)
	case c.LeaseTTL <= 0 || c.ProgressInterval <= 0 || c.PollInterval <= 0 || c.DrainTimeout < 0:
		return catalog.Invalid("worker", "lease, progress and poll intervals must be positive")
	case c.HeartbeatInterval <= 0 || c.HeartbeatInterval > c.LeaseTTL/4:
		return catalog.Invalid("worker.heartbeat_interval", "must be positive and at most a quarter of the lease (%s), got %s", c.LeaseTTL/4, c.HeartbeatInterval)
	case c.BatchSize < 1:
		return catalog.Invalid("worker.batch_size", "must be at least 1, got %d", c.BatchSize)
	case c.QueueDepth < 1:
		return catalog.Invalid("worker.queue_depth", "must be at least 1, got %d", c.QueueDepth)
	case c.HighLoad <= 0:
		return catalog.Invalid("worker.high_load", "must be positive, got %v", c.HighLoad)
	}
	return nil
}

// Store is what the worker needs from the catalog; *catalog.Store implements it.
type Store interface {
	ClaimRuns(ctx context.Context, p catalog.ClaimParams) ([]catalog.Run, error)
	RenewLeases(ctx context.Context, leases []catalog.RunLease, ttl time.Duration) (catalog.RenewResult, error)
	SaveTasks(ctx context.Context, p catalog.SaveTasksParams) error
	FlushProgress(ctx context.Context, p catalog.FlushProgressParams) error
	FinishRun(ctx context.Context, p catalog.FinishParams) (catalog.RunState, error)
	GetMappingVersion(ctx context.Context, name string, version int) (*catalog.Mapping, error)
	GetSystem(ctx context.Context, name string) (*catalog.System, error)
	ListFunctions(ctx context.Context) ([]catalog.Function, error)
	AddEvent(ctx context.Context, ev *catalog.RunEvent) error
	UpsertNode(ctx context.Context, n *catalog.Node) error
	SetNodeState(ctx context.Context, id, state string) error
	Subscribe(ctx context.Context, channel string) <-chan struct{}
}

// Why an attempt was stopped: the cause of its context.
var (
	errLeaseLost   = errors.New("lease lost: the run was reaped or claimed again")
	errUnreachable = errors.New("catalog unreachable for half the lease")
	errStopping    = errors.New("worker stopping")
	errCanceled    = errors.New("canceled by request")
)

// Worker executes the runs assigned to one node.
type Worker struct {
	cfg     Config
	store   Store
	conns   *connector.Registry
	log     *slog.Logger
	started time.Time

	mu       sync.Mutex
	held     map[string]*attempt    // run_id -> the attempt this worker executes
	finishes []catalog.FinishParams // ends not yet recorded: the catalog did not answer

	lastContact atomic.Int64 // unix nanos at which the last successful heartbeat began
	cutOff      atomic.Bool  // the catalog was unreachable: every run stopped, no claims
	freed       chan struct{}
	runs        sync.WaitGroup
	metrics     *workerMetrics // nil without Config.Metrics
}

// New returns a worker; conns nil means connector.Default().
func New(cfg Config, store Store, conns *connector.Registry) *Worker {
	cfg = cfg.WithDefaults()
	if conns == nil {
		conns = connector.Default()
	}
	return &Worker{
		cfg:     cfg,
		store:   store,
		conns:   conns,
		log:     cfg.Logger.With(slog.String("node", cfg.NodeID)),
		started: time.Now().UTC(),
		held:    map[string]*attempt{},
		freed:   make(chan struct{}, 1),
		metrics: newWorkerMetrics(cfg.Metrics),
	}
}

// Run registers the node, then claims and executes runs until ctx ends. It
// then stops claiming, lets the runs in flight finish for up to
// DrainTimeout, stops and hands back those still going (failed, retryable),
// marks the node "left" and returns nil. It returns an error only for an
// invalid Config.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.cfg.validate(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	w.log.Info("worker starting", slog.String("region", w.cfg.Region), slog.Int("slots", w.cfg.Slots),
		slog.Int("threads", w.cfg.Threads), slog.Duration("lease", w.cfg.LeaseTTL))
	// The heartbeat and the watchdog outlive ctx: they keep the leases of
	// draining runs and the cut-off rule in force until the last run ends.
	svcCtx, stopSvc := context.WithCancel(context.WithoutCancel(ctx))
	var svc sync.WaitGroup
	w.lastContact.Store(time.Now().UnixNano())
	w.heartbeat(svcCtx)
	svc.Go(func() { w.heartbeatLoop(svcCtx) })
	svc.Go(func() { w.watchdog(svcCtx) })

	wake := w.store.Subscribe(ctx, catalog.ChannelRunsQueued)
	poll := time.NewTicker(w.cfg.PollInterval)
	w.claim(ctx)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case _, ok := <-wake:
			if !ok {
				wake = nil
				continue
			}
			w.claim(ctx)
		case <-poll.C:
			w.claim(ctx)
		case <-w.freed:
			w.claim(ctx)
		}
	}
	poll.Stop()
	w.drain()
	stopSvc()
	svc.Wait()

	end, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.LeaseTTL/2)
	defer cancel()
	w.flushFinishes(end)
	if err := w.store.SetNodeState(end, w.cfg.NodeID, catalog.NodeLeft); err != nil {
		w.log.Warn("mark node left", slog.String("error", err.Error()))
	}
	w.log.Info("worker stopped")
	return nil
}

// drain waits for the runs in flight, stopping them after DrainTimeout.
func (w *Worker) drain() {
	if n := w.heldCount(); n > 0 {
		w.log.Info("draining runs in flight", slog.Int("runs", n), slog.Duration("timeout", w.cfg.DrainTimeout))
	}
	done := make(chan struct{})
	go func() { w.runs.Wait(); close(done) }()
	t := time.NewTimer(w.cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		w.log.Warn("drain timed out; handing runs back", slog.Int("runs", w.heldCount()))
		w.stopAll(errStopping)
		<-done
	}
}

func (w *Worker) node() *catalog.Node {
	return &catalog.Node{ID: w.cfg.NodeID, Region: w.cfg.Region, Roles: catalog.NewJSON(w.cfg.Roles),
		Address: w.cfg.Address, Slots: w.cfg.Slots, Version: w.cfg.Version, StartedAt: w.started}
}

func (w *Worker) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.heartbeat(ctx)
		}
	}
}

// heartbeat records the node's presence and renews the leases of every held
// run in one call, stopping runs whose lease was lost and canceling those
// whose cancellation was requested.
func (w *Worker) heartbeat(ctx context.Context) {
	began := time.Now()
	cctx, cancel := context.WithTimeout(ctx, w.cfg.LeaseTTL/2)
	defer cancel()
	err := w.store.UpsertNode(cctx, w.node())
	if err == nil {
		err = w.renew(cctx)
	}
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("heartbeat failed", slog.String("error", err.Error()),
				slog.Duration("since_last_contact", time.Since(time.Unix(0, w.lastContact.Load()))))
		}
		return
	}
	w.lastContact.Store(began.UnixNano())
	if time.Since(began) < w.cfg.LeaseTTL/2 && w.cutOff.CompareAndSwap(true, false) {
		w.log.Info("catalog reachable again; claiming resumes")
		w.signalFreed()
	}
	w.flushFinishes(cctx)
}

func (w *Worker) renew(ctx context.Context) error {
	w.mu.Lock()
	leases := make([]catalog.RunLease, 0, len(w.held))
	for _, a := range w.held {
		if !a.finishing.Load() && a.fenceCtx.Err() == nil {
			leases = append(leases, catalog.RunLease{RunID: a.run.ID, FencingToken: a.run.FencingToken})
		}
	}
	w.mu.Unlock()
	if len(leases) == 0 {
		return nil
	}
	res, err := w.store.RenewLeases(ctx, leases, w.cfg.LeaseTTL)
	if err != nil {
		return err
	}
	for _, id := range res.Lost {
		if a := w.attempt(id); a != nil && !a.finishing.Load() {
			a.log.Warn("lease lost; abandoning the attempt without committing")
			a.fence(errLeaseLost)
		}
	}
	for _, id := range res.Cancel {
		if a := w.attempt(id); a != nil && a.runCtx.Err() == nil {
			a.log.Info("cancellation requested; stopping")
			a.cancel(errCanceled)
		}
	}
	return nil
}

// watchdog stops every run once the catalog has not answered a heartbeat
// for half the lease: past that point another worker may soon own them.
func (w *Worker) watchdog(ctx context.Context) {
	t := time.NewTicker(min(w.cfg.HeartbeatInterval, w.cfg.LeaseTTL/10))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			since := time.Since(time.Unix(0, w.lastContact.Load()))
			if since > w.cfg.LeaseTTL/2 && w.cutOff.CompareAndSwap(false, true) {
				w.log.Error("catalog unreachable for half the lease; stopping every run without committing",
					slog.Duration("since_last_contact", since), slog.Int("runs", w.heldCount()))
				w.stopAll(errUnreachable)
			}
		}
	}
}

// claim takes as many runs assigned to this node as it has free slots.
func (w *Worker) claim(ctx context.Context) {
	if ctx.Err() != nil || w.cutOff.Load() {
		return
	}
	free := w.cfg.Slots - w.heldCount()
	if free <= 0 {
		return
	}
	// Not canceled with ctx: a claim that committed must reach us, or its
	// runs would wait for their lease to expire.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.LeaseTTL/2)
	defer cancel()
	runs, err := w.store.ClaimRuns(cctx, catalog.ClaimParams{Worker: w.cfg.NodeID, Limit: free, LeaseTTL: w.cfg.LeaseTTL})
	if err != nil {
		w.log.Warn("claim runs", slog.String("error", err.Error()))
		return
	}
	for i := range runs {
		w.start(runs[i])
	}
}

func (w *Worker) start(r catalog.Run) {
	a := newAttempt(r, w.log)
	w.mu.Lock()
	w.held[r.ID] = a
	w.mu.Unlock()
	w.runs.Go(func() {
		defer func() {
			a.fence(nil)
			w.mu.Lock()
			delete(w.held, r.ID)
			w.mu.Unlock()
			w.signalFreed()
		}()
		w.runAttempt(a)
	})
}

func (w *Worker) signalFreed() {
	select {
	case w.freed <- struct{}{}:
	default:
	}
}

func (w *Worker) heldCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.held)
}

func (w *Worker) attempt(id string) *attempt {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.held[id]
}

func (w *Worker) stopAll(cause error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.held {
		a.fence(cause)
	}
}

// deferFinish keeps the end of an attempt that the catalog could not record
// (unreachable), to record it once the catalog answers again. It stays
// fenced: if the run was reaped in between, the record is dropped.
func (w *Worker) deferFinish(p catalog.FinishParams) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.finishes = append(w.finishes, p)
}

func (w *Worker) flushFinishes(ctx context.Context) {
	w.mu.Lock()
	pending := w.finishes
	w.finishes = nil
	w.mu.Unlock()
	for i, p := range pending {
		st, err := w.store.FinishRun(ctx, p)
		switch {
		case err == nil:
			w.log.Info("recorded the end of a run once the catalog answered again", slog.String("run_id", p.RunID), slog.String("state", string(st)))
		case errors.Is(err, catalog.ErrStaleLease) || errors.Is(err, catalog.ErrIllegalTransition) || errors.Is(err, catalog.ErrNotFound):
			w.log.Info("end of a run not recorded: it was reaped meanwhile", slog.String("run_id", p.RunID), slog.String("error", err.Error()))
		default:
			w.mu.Lock()
			w.finishes = append(w.finishes, pending[i:]...)
			w.mu.Unlock()
			return
		}
	}
}
