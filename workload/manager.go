package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/weirdata/weir/catalog"
)

// Store is what the workload manager needs from the catalog; *catalog.Store implements it.
type Store interface {
	Now() time.Time
	Subscribe(ctx context.Context, channel string) <-chan struct{}

	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (*catalog.Lease, error)
	ReleaseLease(ctx context.Context, name, holder string) error

	MarkDeadNodes(ctx context.Context, region string, deadline time.Time) ([]string, error)
	RequeueOrphans(ctx context.Context, region string) ([]string, error)
	ReapExpiredLeases(ctx context.Context, region string) ([]string, error)
	AbortTimedOut(ctx context.Context, region string) ([]string, error)

	CountActive(ctx context.Context, region string) (catalog.ActiveCounts, error)
	ListNodes(ctx context.Context, region string) ([]catalog.Node, error)
	ListSystems(ctx context.Context) ([]catalog.System, error)
	ListDispatchable(ctx context.Context, region string, limit int) ([]catalog.Run, error)
	GetMappingVersion(ctx context.Context, name string, version int) (*catalog.Mapping, error)

	DispatchRun(ctx context.Context, p catalog.DispatchParams) error
	SetHoldReasons(ctx context.Context, reasons map[string]string) error
	AbortPending(ctx context.Context, p catalog.AbortPendingParams) error

	// Health admission control.
	ListLatestSamples(ctx context.Context, region string) ([]catalog.HostLatest, error)
	ListThresholds(ctx context.Context, scope string) ([]catalog.HealthThreshold, error)
	ListSystemAttributeValues(ctx context.Context, key string) (map[string]string, error)
	ListRunHolds(ctx context.Context, region string) ([]catalog.RunHold, error)
	StartRunHolds(ctx context.Context, holds []catalog.RunHold) error
	ClearRunHolds(ctx context.Context, ids []string) error

	// Alerts.
	RaiseAlert(ctx context.Context, p catalog.RaiseAlertParams) (*catalog.Alert, bool, error)
	LatestAlert(ctx context.Context, key string) (*catalog.Alert, error)
	ResolveAlert(ctx context.Context, key string) (bool, error)
	ListAlerts(ctx context.Context, f catalog.AlertFilter) ([]catalog.Alert, int64, error)
	ListRunsEnded(ctx context.Context, region string, since time.Time, limit int) ([]catalog.Run, error)
}

// dispatchBatch is how many pending runs one tick considers, by priority
// then age. Runs beyond it wait for a later tick, without a hold reason.
const dispatchBatch = 1000

// releaseTimeout bounds the lease release at shutdown.
const releaseTimeout = 5 * time.Second

// Manager is a region's workload manager. Run it on every server of the
// region: one of them at a time is leader and governs.
type Manager struct {
	cfg   Config
	store Store
	log   *slog.Logger
	el    *elector

	// Owned by the Run goroutine.
	maintTerm *term
	maintAt   time.Time
	failing   bool // the last tick failed
	alerts    *alertState
	metrics   *managerMetrics // nil without Config.Metrics
}

// New returns a Manager for cfg (defaults filled) on store. Run checks cfg.
func New(cfg Config, store Store) *Manager {
	cfg = cfg.WithDefaults()
	log := cfg.Logger.With(slog.String("region", cfg.Region))
	m := &Manager{
		cfg:   cfg,
		store: store,
		log:   log,
		el:    newElector(store, cfg.Region, cfg.NodeID, cfg.LeaseTTL, log),
	}
	m.metrics = newManagerMetrics(cfg.Metrics, m)
	return m
}

// IsLeader reports whether this manager holds the region's leader lease now.
func (m *Manager) IsLeader() bool { return m.el.current() != nil }

// Run campaigns for the region's leader lease and, while it holds it,
// governs the region. It returns nil when ctx ends, after it stopped
// governing and released the lease, and an error only for a bad Config.
// Catalog errors are logged and retried on the next tick. Call Run once.
func (m *Manager) Run(ctx context.Context) error {
	if err := m.cfg.validate(); err != nil {
		return fmt.Errorf("start workload manager: %w", err)
	}
	if m.store == nil {
		return errors.New("start workload manager: no catalog store")
	}
	ctx, cancel := context.WithCancel(ctx)
	pending := m.store.Subscribe(ctx, catalog.ChannelRunsPending)
	finished := m.store.Subscribe(ctx, catalog.ChannelRunsFinished)
	var wg sync.WaitGroup
	wg.Go(func() { m.el.run(ctx) })
	defer func() {
		cancel()
		wg.Wait()
		for range pending { // the Store closes them once its listeners stopped
		}
		for range finished {
		}
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer rcancel()
		m.el.release(rctx)
	}()

	poll := time.NewTicker(m.cfg.PollInterval)
	defer poll.Stop()
	m.log.Debug("workload manager started", slog.String("node_id", m.cfg.NodeID))
	for {
		fromPoll := false
		select {
		case <-ctx.Done():
			return nil
		case <-m.el.changed:
		case <-pending:
		case <-finished:
		case <-poll.C:
			fromPoll = true
		}
		if ctx.Err() != nil {
			return nil
		}
		if t := m.el.current(); t != nil {
			m.tick(t, fromPoll)
		}
	}
}

// tick does one round of a leader's work: maintenance when it is due, then governing.
//
// A full tick (the poll tick, the first tick of a term, or any tick once a
// poll interval passed without one) does maintenance and writes changed hold
// reasons; a wake-up only governs. Maintenance does not run on every wake-up: it deals with time passing (silent nodes, expired leases,
// timeouts), and RequeueOrphans notifies ChannelRunsPending on each call,
// which would otherwise wake the manager again and again.
func (m *Manager) tick(t *term, fromPoll bool) {
	ctx := t.ctx
	var errs []error
	newTerm := t != m.maintTerm
	full := fromPoll || newTerm || time.Since(m.maintAt) >= m.cfg.PollInterval
	var hv *healthView
	if full {
		m.maintTerm, m.maintAt = t, time.Now()
		if newTerm {
			m.alerts = newAlertState(m.store.Now().Add(-endedLookback))
		}
		if err := m.maintain(ctx); err != nil {
			errs = append(errs, err)
		}
		var err error
		if hv, err = m.loadHealth(ctx); err != nil {
			errs = append(errs, err)
		} else if err := m.watch(ctx, hv); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.govern(ctx, t, full, hv); err != nil {
		if errors.Is(err, catalog.ErrNotLeader) {
			m.el.stepDown(t, "the catalog refused a dispatch: the lease is no longer ours")
			return
		}
		errs = append(errs, err)
	}
	if ctx.Err() != nil {
		return // leadership ended or the manager stops: nothing to report
	}
	m.reportTick(errors.Join(errs...))
}

// reportTick logs the first failing tick of a streak as a warning, the ones
// after it at debug level, and the recovery: a catalog outage is one warning,
// not one per tick.
func (m *Manager) reportTick(err error) {
	switch {
	case err != nil && !m.failing:
		m.failing = true
		m.log.Warn("tick failed; retrying on every tick", slog.String("error", err.Error()))
	case err != nil:
		m.log.Debug("tick failed again", slog.String("error", err.Error()))
	case m.failing:
		m.failing = false
		m.log.Info("ticks succeed again")
	}
}

// maintain marks silent nodes dead, sends queued runs of gone workers back
// to pending, reaps expired run leases and aborts runs past their timeout.
func (m *Manager) maintain(ctx context.Context) error {
	region := m.cfg.Region
	var errs []error
	dead, err := m.store.MarkDeadNodes(ctx, region, m.store.Now().Add(-m.cfg.NodeDeadAfter))
	if err != nil {
		errs = append(errs, fmt.Errorf("mark dead nodes: %w", err))
	}
	for _, id := range dead {
		m.log.Info("node is dead: not seen for too long", slog.String("node_id", id), slog.Duration("dead_after", m.cfg.NodeDeadAfter))
	}
	requeued, err := m.store.RequeueOrphans(ctx, region)
	if err != nil {
		errs = append(errs, fmt.Errorf("requeue orphans: %w", err))
	}
	for _, id := range requeued {
		m.log.Info("run back to pending: its worker is gone", slog.String("run_id", id))
	}
	reaped, err := m.store.ReapExpiredLeases(ctx, region)
	if err != nil {
		errs = append(errs, fmt.Errorf("reap expired leases: %w", err))
	}
	for _, id := range reaped {
		m.log.Info("run lease expired: attempt ended, retried or failed", slog.String("run_id", id))
	}
	aborted, err := m.store.AbortTimedOut(ctx, region)
	if err != nil {
		errs = append(errs, fmt.Errorf("abort timed-out runs: %w", err))
	}
	for _, id := range aborted {
		m.log.Info("run aborted: past its timeout", slog.String("run_id", id))
	}
	return errors.Join(errs...)
}

// candidate is a pending run with its draft plan.
type candidate struct {
	run   *catalog.Run
	draft planDraft
	// maxHold is how long the run may stay held by health: its mapping's
	// maximum hold time, else the region's.
	maxHold time.Duration
}

// govern admits the region's pending runs that fit, writes their plans and
// assigns them to workers, and records why the others wait.
//
// A run's first hold reason is written at once. A change of reason (the
// region was full, now its system is) is written only on a full tick (the
// poll cadence): as capacity comes and goes, the reasons of many waiting runs
// flip back and forth, and writing each flip on every wake-up would cost more
// than the dispatching itself.
func (m *Manager) govern(ctx context.Context, t *term, full bool, hv *healthView) error {
	region := m.cfg.Region
	runs, err := m.store.ListDispatchable(ctx, region, dispatchBatch)
	if err != nil {
		return fmt.Errorf("list dispatchable runs: %w", err)
	}
	if len(runs) == 0 {
		m.metrics.governed(nil)
		return m.syncHoldAlerts(ctx, nil)
	}
	counts, err := m.store.CountActive(ctx, region)
	if err != nil {
		return fmt.Errorf("count active runs: %w", err)
	}
	if hv == nil {
		if hv, err = m.loadHealth(ctx); err != nil {
			return err
		}
	}
	var nodes []catalog.Node
	for _, n := range hv.Nodes {
		if n.Region == region {
			nodes = append(nodes, n)
		}
	}
	systemList, err := m.store.ListSystems(ctx)
	if err != nil {
		return fmt.Errorf("list systems: %w", err)
	}
	systems := make(map[string]*catalog.System, len(systemList))
	limits := make(map[string]int, len(systemList))
	for i := range systemList {
		s := &systemList[i]
		systems[s.Name] = s
		limits[s.Name] = s.MaxConcurrentRuns
	}
	workers := liveWorkers(nodes, counts.Workers, m.store.Now(), m.cfg.NodeDeadAfter)
	for i := range workers {
		workers[i] = hv.worker(workers[i])
	}

	cands := make(map[string]candidate, len(runs))
	in := GovernInput{
		Region:        region,
		MaxActiveRuns: m.cfg.MaxActiveRuns,
		Active:        counts.Region,
		SystemLimits:  limits,
		SystemActive:  counts.Systems,
		SystemHosts:   map[string]SystemHost{},
		Workers:       workers,
		Pending:       make([]PendingRun, 0, len(runs)),
	}
	mappings := map[mappingKey]*catalog.Mapping{}
	for i := range runs {
		r := &runs[i]
		draft, err := m.draft(ctx, r, mappings, systems)
		if err != nil {
			var pe *planError
			if !errors.As(err, &pe) {
				return err
			}
			if err := m.abort(ctx, t, r, pe.Error(), "run aborted: it cannot be planned"); err != nil {
				return err
			}
			continue
		}
		maxHold := m.cfg.MaxHold
		if mp := mappings[mappingKey{r.Mapping, r.MappingVersion}]; mp != nil {
			maxHold = mp.HoldLimit(maxHold)
		}
		cands[r.ID] = candidate{run: r, draft: draft, maxHold: maxHold}
		in.Pending = append(in.Pending, PendingRun{ID: r.ID, Priority: r.Priority, CreatedAt: r.CreatedAt, Source: r.SourceSystem, Target: r.TargetSystem})
		for _, name := range []string{r.SourceSystem, r.TargetSystem} {
			if _, done := in.SystemHosts[name]; !done {
				in.SystemHosts[name] = hv.system(systems[name])
			}
		}
	}

	decisions := Govern(in)
	m.metrics.governed(decisions)
	decisions, err = m.enforceHolds(ctx, t, decisions, cands, hv.Now)
	if err != nil {
		return err
	}
	byID := make(map[string]WorkerLoad, len(workers))
	for _, w := range workers {
		byID[w.ID] = w
	}
	dispatched := 0
	for _, d := range decisions {
		if !d.Admitted() {
			continue
		}
		c := cands[d.RunID]
		plan := c.draft.finish(byID[d.Worker], m.store.Now())
		err := m.store.DispatchRun(ctx, catalog.DispatchParams{
			RunID: d.RunID, Worker: d.Worker, Plan: plan,
			LeaseName: m.el.name, LeaseHolder: m.el.holder, LeaseToken: t.token,
		})
		switch {
		case err == nil:
			dispatched++
			m.metrics.dispatched(c.run, m.store.Now())
			m.log.Info("run dispatched", slog.String("run_id", d.RunID), slog.String("worker", d.Worker),
				slog.String("mapping", c.run.Mapping), slog.Int("priority", c.run.Priority), slog.Int("max_threads", plan.MaxThreads))
		case noLongerPending(err):
			// Canceled since it was listed: its capacity stays counted
			// until the next tick, which errs on the safe side.
			m.log.Debug("run no longer dispatchable", slog.String("run_id", d.RunID), slog.String("error", err.Error()))
		default:
			return err
		}
	}
	holds := map[string]string{}
	var fresh []string // runs held for the first time
	held := 0
	for _, d := range decisions {
		if d.Admitted() {
			continue
		}
		held++
		r := cands[d.RunID].run
		switch {
		case r.HoldReason == d.Hold:
		case r.HoldReason == "":
			holds[d.RunID] = d.Hold
			fresh = append(fresh, d.RunID)
		case full:
			holds[d.RunID] = d.Hold
		}
	}
	if err := m.store.SetHoldReasons(ctx, holds); err != nil {
		return err
	}
	for _, id := range fresh {
		m.log.Info("run held", slog.String("run_id", id), slog.String("reason", holds[id]))
	}
	m.log.Debug("governed", slog.Int("pending", len(runs)), slog.Int("dispatched", dispatched),
		slog.Int("held", held), slog.Int("hold_reasons_written", len(holds)),
		slog.Int("active_before", counts.Region), slog.Int("workers", len(workers)))
	return nil
}

type mappingKey struct {
	name    string
	version int
}

// planError means a run can never be planned as it stands: it is aborted.
type planError struct{ msg string }

func (e *planError) Error() string { return e.msg }

// draft resolves a run's mapping version (cached for the tick) and drafts its
// plan. A *planError is permanent; any other error is the catalog's.
func (m *Manager) draft(ctx context.Context, r *catalog.Run, cache map[mappingKey]*catalog.Mapping, systems map[string]*catalog.System) (planDraft, error) {
	key := mappingKey{r.Mapping, r.MappingVersion}
	mp, ok := cache[key]
	if !ok {
		var err error
		mp, err = m.store.GetMappingVersion(ctx, r.Mapping, r.MappingVersion)
		switch {
		case errors.Is(err, catalog.ErrNotFound):
			mp = nil
		case err != nil:
			return planDraft{}, fmt.Errorf("plan run %s: %w", r.ID, err)
		}
		cache[key] = mp
	}
	if mp == nil {
		return planDraft{}, &planError{fmt.Sprintf("mapping %s version %d no longer exists", r.Mapping, r.MappingVersion)}
	}
	d, err := draftPlan(r, mp, systems)
	if err != nil {
		return planDraft{}, &planError{err.Error()}
	}
	return d, nil
}

// abort ends a pending run that can never be planned, or was held too long;
// logLine says which.
func (m *Manager) abort(ctx context.Context, t *term, r *catalog.Run, msg, logLine string) error {
	err := m.store.AbortPending(ctx, catalog.AbortPendingParams{
		RunID: r.ID, Error: msg, LeaseName: m.el.name, LeaseHolder: m.el.holder, LeaseToken: t.token,
	})
	switch {
	case err == nil:
		m.log.Warn(logLine, slog.String("run_id", r.ID), slog.String("error", msg))
		return nil
	case noLongerPending(err):
		m.log.Debug("run no longer pending", slog.String("run_id", r.ID), slog.String("error", err.Error()))
		return nil
	}
	return fmt.Errorf("abort run %s: %w", r.ID, err)
}

// noLongerPending reports whether err says that a run left the pending state
// since it was listed (canceled by its user, say): nothing to do about it. A
// transition refused from pending itself is a real error.
func noLongerPending(err error) bool {
	var te *catalog.TransitionError
	return errors.As(err, &te) && !slices.Contains(te.From, catalog.StatePending)
}

// liveWorkers returns the nodes that can take runs now, with their load:
// alive, with the worker role and at least one slot, and seen within
// deadAfter of now. active is the queued and active runs by worker.
func liveWorkers(nodes []catalog.Node, active map[string]int, now time.Time, deadAfter time.Duration) []WorkerLoad {
	var out []WorkerLoad
	for i := range nodes {
		n := &nodes[i]
		if n.State != catalog.NodeAlive || !n.HasRole(catalog.NodeRoleWorker) || n.Slots < 1 {
			continue
		}
		if now.Sub(n.LastSeen) > deadAfter {
			continue
		}
		out = append(out, WorkerLoad{ID: n.ID, Slots: n.Slots, Active: active[n.ID]})
	}
	return out
}
