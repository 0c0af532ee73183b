package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/weirdata/weir/catalog"
)

// The scheduler fires the catalog's cron schedules on the region's leader.
//
// It runs on every server next to the workload manager and fires only while
// this node holds the region's leader lease (catalog.LeaderLeaseName), which
// it reads and never takes: the manager of the same node, with the same
// NodeID, campaigns for it. Each pass it lists the schedules whose next tick
// has come and, for each, plans the due ticks: ticks older than
// MisfireGrace were missed (no leader ran them in time) and follow the
// schedule's catch-up policy (skip them all, or fire the latest once);
// the others fire in order, each subject to the overlap policy (skip while
// the schedule's previous run is pending, queued or active, or queue
// behind it). A fire submits a run through the Submitter (the broker: the
// same validation and entitlement checks as a REST request, as the
// schedule's owner) with the idempotency key
// catalog.ScheduleIdempotencyKey, then records the tick with
// RecordScheduleTick, which moves the schedule's next tick by
// compare-and-set. So two servers never fire one tick twice: a second fire
// of a tick returns the first run, and its record is refused.

// Defaults of SchedulerConfig.
const (
	// SchedulerIntervalDefault is how often the scheduler looks for due ticks.
	SchedulerIntervalDefault = 500 * time.Millisecond
	// MisfireGraceDefault is how late a tick may still fire as usual; an
	// older one was missed and follows the schedule's catch-up policy. It
	// covers a leader handover (the leader lease time) with room to spare.
	MisfireGraceDefault = time.Minute
	// TickRetentionDefault is how long processed ticks are kept for history.
	TickRetentionDefault = 30 * 24 * time.Hour
)

const (
	// scheduleBatch is how many due schedules one pass processes; the rest
	// wait for the next pass.
	scheduleBatch = 500
	// scheduleTicksPerPass bounds the ticks of one schedule in one pass.
	scheduleTicksPerPass = 1000
	// tickPruneInterval is how often the leader prunes old tick rows.
	tickPruneInterval = time.Hour
)

// SchedulerConfig configures a Scheduler. Its zero value, with Region and
// NodeID set, works after WithDefaults.
type SchedulerConfig struct {
	// Region is the region whose schedules this scheduler fires.
	Region string
	// NodeID is this server's identity: the same as its workload manager's,
	// whose leader lease decides who fires.
	NodeID string
	// Interval is how often the scheduler looks for due ticks (default
	// SchedulerIntervalDefault): a tick fires at most about this late.
	Interval time.Duration
	// MisfireGrace is how late a tick may still fire as usual (default
	// MisfireGraceDefault); older ones follow the catch-up policy.
	MisfireGrace time.Duration
	// TickRetention is how long processed ticks are kept (default TickRetentionDefault).
	TickRetention time.Duration
	// Logger receives the scheduler's decisions; nil discards them.
	Logger *slog.Logger
}

// WithDefaults fills zero fields with their defaults.
func (c SchedulerConfig) WithDefaults() SchedulerConfig {
	if c.Interval == 0 {
		c.Interval = SchedulerIntervalDefault
	}
	if c.MisfireGrace == 0 {
		c.MisfireGrace = MisfireGraceDefault
	}
	if c.TickRetention == 0 {
		c.TickRetention = TickRetentionDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c SchedulerConfig) validate() error {
	var err error
	switch {
	case c.Region == "":
		err = catalog.Invalid("region", "is required")
	case c.NodeID == "":
		err = catalog.Invalid("node_id", "is required: the scheduler fires while this node holds the leader lease")
	case c.Interval <= 0:
		err = catalog.Invalid("interval", "must be positive, got %s", c.Interval)
	case c.MisfireGrace < 0:
		err = catalog.Invalid("misfire_grace", "must not be negative, got %s", c.MisfireGrace)
	case c.TickRetention <= 0:
		err = catalog.Invalid("tick_retention", "must be positive, got %s", c.TickRetention)
	}
	if err != nil {
		return fmt.Errorf("check scheduler config: %w", err)
	}
	return nil
}

// SchedulerStore is what the scheduler needs from the catalog; *catalog.Store implements it.
type SchedulerStore interface {
	Now() time.Time
	GetLease(ctx context.Context, name string) (*catalog.Lease, error)
	ListDueSchedules(ctx context.Context, region string, limit int) ([]catalog.Schedule, error)
	RecordScheduleTick(ctx context.Context, p catalog.RecordTickParams) (bool, error)
	GetRun(ctx context.Context, id string) (*catalog.Run, error)
	PruneScheduleTicks(ctx context.Context, before time.Time) (int64, error)
	RaiseAlert(ctx context.Context, p catalog.RaiseAlertParams) (*catalog.Alert, bool, error)
	ResolveAlert(ctx context.Context, key string) (bool, error)
}

// Submitter creates the run of a schedule's tick through the same checks as
// a REST request (the broker's SubmitScheduled implements it). It returns
// the run and whether it was created (false: the idempotency key returned an
// earlier run). An error wrapping catalog.ErrRefused means the request is
// refused (invalid parameters, no entitlement, mapping disabled): the tick
// is recorded as failed. Any other error is taken as transient: the tick
// stays due and is tried again on the next pass.
type Submitter interface {
	SubmitScheduled(ctx context.Context, r catalog.ScheduledRun) (*catalog.Run, bool, error)
}

// Scheduler fires a region's schedules while its node leads the region.
type Scheduler struct {
	cfg    SchedulerConfig
	store  SchedulerStore
	submit Submitter
	log    *slog.Logger

	// leader reports the lease this node leads with, or false; a field so
	// that tests can make two schedulers believe they both lead.
	leader func(ctx context.Context) (*catalog.Lease, bool, error)

	// Owned by the Run goroutine.
	leading  bool
	failing  bool
	prunedAt time.Time
}

// NewScheduler returns a Scheduler for cfg (defaults filled) on store,
// submitting through submitter. Run checks cfg.
func NewScheduler(cfg SchedulerConfig, store SchedulerStore, submitter Submitter) *Scheduler {
	cfg = cfg.WithDefaults()
	s := &Scheduler{cfg: cfg, store: store, submit: submitter,
		log: cfg.Logger.With(slog.String("region", cfg.Region), slog.String("node", cfg.NodeID))}
	s.leader = s.readLeaderLease
	return s
}

// Run fires due schedules every Interval while this node leads the region,
// until ctx ends; then it returns nil. It returns an error only for a bad
// configuration. Catalog errors are logged and retried on the next pass.
func (s *Scheduler) Run(ctx context.Context) error {
	if err := s.cfg.validate(); err != nil {
		return fmt.Errorf("start scheduler: %w", err)
	}
	if s.store == nil || s.submit == nil {
		return errors.New("start scheduler: a catalog store and a submitter are required")
	}
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	s.log.Debug("scheduler started", slog.Duration("interval", s.cfg.Interval), slog.Duration("misfire_grace", s.cfg.MisfireGrace))
	for {
		err := s.pass(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !s.failing:
			s.log.Warn("scheduler pass failed; retrying", slog.String("error", err.Error()))
			s.failing = true
		case err == nil && s.failing:
			s.log.Info("scheduler recovered")
			s.failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// readLeaderLease reads the region's leader lease: this node leads while it
// holds it unexpired.
func (s *Scheduler) readLeaderLease(ctx context.Context) (*catalog.Lease, bool, error) {
	l, err := s.store.GetLease(ctx, catalog.LeaderLeaseName(s.cfg.Region))
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the leader lease: %w", err)
	}
	return l, l.Holder == s.cfg.NodeID && l.ExpiresAt.After(s.store.Now()), nil
}

func (s *Scheduler) setLeading(on bool) {
	if on != s.leading {
		if on {
			s.log.Info("leading: firing the region's schedules")
		} else {
			s.log.Info("not leading: another server fires the region's schedules")
		}
	}
	s.leading = on
}

// pass fires every due schedule once, if this node leads.
func (s *Scheduler) pass(ctx context.Context) error {
	lease, leads, err := s.leader(ctx)
	if err != nil {
		return err
	}
	s.setLeading(leads)
	if !leads {
		return nil
	}
	due, err := s.store.ListDueSchedules(ctx, s.cfg.Region, scheduleBatch)
	if err != nil {
		return err
	}
	var firstErr error
	for i := range due {
		if ctx.Err() != nil {
			return nil
		}
		err := s.process(ctx, &due[i], lease)
		switch {
		case err == nil:
		case errors.Is(err, catalog.ErrNotLeader):
			s.setLeading(false)
			return nil
		case errors.Is(err, catalog.ErrConflict):
			// Another server processed it, or it was changed meanwhile: the
			// next pass reads it afresh.
			s.log.Debug("schedule moved on meanwhile", slog.String("schedule", due[i].Name), slog.String("error", err.Error()))
		default:
			if firstErr == nil {
				firstErr = fmt.Errorf("schedule %s: %w", due[i].Name, err)
			}
		}
	}
	if now := s.store.Now(); now.Sub(s.prunedAt) >= tickPruneInterval {
		n, err := s.store.PruneScheduleTicks(ctx, now.Add(-s.cfg.TickRetention))
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if err == nil {
			s.prunedAt = now
			if n > 0 {
				s.log.Debug("pruned old schedule ticks", slog.Int64("ticks", n))
			}
		}
	}
	return firstErr
}

// process handles the due ticks of one schedule, in order.
func (s *Scheduler) process(ctx context.Context, sc *catalog.Schedule, lease *catalog.Lease) error {
	if sc.NextTick == nil {
		return nil
	}
	expect := *sc.NextTick
	base := catalog.RecordTickParams{ScheduleID: sc.ID, Node: s.cfg.NodeID}
	if lease != nil {
		base.LeaseName, base.LeaseHolder, base.LeaseToken = lease.Name, lease.Holder, lease.Token
	}
	c, err := catalog.ParseCronSchedule(sc.Cron, sc.TimeZone)
	if err != nil {
		// Stored schedules were valid; a zone this binary does not know, say,
		// stops the schedule with its error rather than failing every pass.
		rec := base
		rec.Expect, rec.Tick, rec.Outcome = expect, expect, catalog.TickFailed
		rec.Reason = "cannot compute the schedule's ticks, so it stops until it is changed: " + err.Error()
		if _, err := s.store.RecordScheduleTick(ctx, rec); err != nil {
			return err
		}
		s.alert(ctx, sc, rec.Reason)
		return nil
	}
	lastRun, failed := sc.LastRunID, sc.LastOutcome == catalog.TickFailed
	for _, st := range planTicks(c, expect, s.store.Now(), s.cfg.MisfireGrace, sc.CatchUp, scheduleTicksPerPass) {
		rec := base
		rec.Expect, rec.Tick, rec.Next, rec.Reason = expect, st.tick, st.next, st.reason
		var replayed bool
		switch {
		case !st.fire:
			rec.Outcome = catalog.TickSkipped
		default:
			busy, err := s.overlapping(ctx, sc, lastRun)
			if err != nil {
				return err
			}
			if busy != "" {
				rec.Outcome, rec.Reason = catalog.TickSkipped, busy
				break
			}
			run, created, err := s.fire(ctx, sc, c, st.tick)
			switch {
			case errors.Is(err, catalog.ErrRefused):
				rec.Outcome, rec.Reason = catalog.TickFailed, err.Error()
			case err != nil:
				return fmt.Errorf("fire the tick %s: %w", st.tick.Format(time.RFC3339), err)
			default:
				rec.Outcome, rec.RunID, replayed = catalog.TickFired, run.ID, !created
				lastRun = run.ID
			}
		}
		if _, err := s.store.RecordScheduleTick(ctx, rec); err != nil {
			return err
		}
		s.logTick(sc, c, rec, replayed)
		switch rec.Outcome {
		case catalog.TickFailed:
			s.alert(ctx, sc, rec.Reason)
			failed = true
		case catalog.TickFired:
			if failed {
				if _, err := s.store.ResolveAlert(ctx, scheduleAlertKey(sc.Name)); err != nil {
					s.log.Warn("cannot resolve the schedule's alert", slog.String("schedule", sc.Name), slog.String("error", err.Error()))
				}
				failed = false
			}
		}
		if st.next.IsZero() {
			break
		}
		expect = st.next
	}
	return nil
}

// overlapping returns why a tick of sc must be skipped under the overlap
// policy skip ("" when it may fire): its previous run is not finished.
func (s *Scheduler) overlapping(ctx context.Context, sc *catalog.Schedule, lastRun string) (string, error) {
	if sc.Overlap != catalog.OverlapSkip || lastRun == "" {
		return "", nil
	}
	r, err := s.store.GetRun(ctx, lastRun)
	if errors.Is(err, catalog.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("check the previous run %s: %w", lastRun, err)
	}
	if r.State.Terminal() {
		return "", nil
	}
	return fmt.Sprintf("the previous run %s is still %s (overlap policy skip)", r.ID, r.State), nil
}

// fire submits the run of sc's tick.
func (s *Scheduler) fire(ctx context.Context, sc *catalog.Schedule, c *catalog.CronSchedule, tick time.Time) (*catalog.Run, bool, error) {
	params, err := sc.ExpandParams(c, tick)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", catalog.ErrRefused, err)
	}
	return s.submit.SubmitScheduled(ctx, catalog.ScheduledRun{
		ScheduleID:     sc.ID,
		Schedule:       sc.Name,
		Tick:           tick,
		OwnerID:        sc.OwnerID,
		Mapping:        sc.Mapping,
		Params:         params,
		Priority:       sc.Priority,
		IdempotencyKey: catalog.ScheduleIdempotencyKey(sc.ID, tick),
		ClientIP:       sc.OwnerIP,
	})
}

func (s *Scheduler) logTick(sc *catalog.Schedule, c *catalog.CronSchedule, rec catalog.RecordTickParams, replayed bool) {
	attrs := []any{slog.String("schedule", sc.Name), slog.String("tick", rec.Tick.In(c.Location()).Format(time.RFC3339)), slog.String("outcome", rec.Outcome)}
	if rec.RunID != "" {
		attrs = append(attrs, slog.String("run_id", rec.RunID))
	}
	if replayed {
		attrs = append(attrs, slog.Bool("replayed", true))
	}
	if rec.Reason != "" {
		attrs = append(attrs, slog.String("reason", rec.Reason))
	}
	if rec.Outcome == catalog.TickFailed {
		s.log.Warn("schedule tick failed", attrs...)
		return
	}
	s.log.Info("schedule tick", attrs...)
}

func scheduleAlertKey(name string) string { return "schedule-failed:" + name }

// alert raises (or counts once more) the alert of a schedule that cannot fire.
func (s *Scheduler) alert(ctx context.Context, sc *catalog.Schedule, reason string) {
	_, _, err := s.store.RaiseAlert(ctx, catalog.RaiseAlertParams{Key: scheduleAlertKey(sc.Name), Severity: catalog.AlertWarning,
		Subject: fmt.Sprintf("schedule %s cannot fire", sc.Name), Message: reason, Region: sc.Region})
	if err != nil {
		s.log.Warn("cannot raise the schedule's alert", slog.String("schedule", sc.Name), slog.String("error", err.Error()))
	}
}

// schedStep is one planned tick of a schedule.
type schedStep struct {
	tick   time.Time
	next   time.Time // the tick after it; zero when there is none
	fire   bool      // false: skipped by the catch-up policy
	reason string
}

// planTicks plans the due ticks of a schedule whose earliest unprocessed
// tick is from, at now: the ticks older than grace were missed and become
// one step by the catch-up policy (skip them, or fire the latest); the
// others, up to now, fire in order. At most max steps.
func planTicks(c *catalog.CronSchedule, from, now time.Time, grace time.Duration, catchUp string, max int) []schedStep {
	var steps []schedStep
	cutoff := now.Add(-grace)
	if from.Before(cutoff) {
		latest := latestTickBefore(c, from, cutoff)
		next := c.Next(latest)
		span := "the tick " + fmtTick(c, latest) + " missed its time"
		if latest.After(from) {
			span = fmt.Sprintf("the ticks from %s to %s missed their time", fmtTick(c, from), fmtTick(c, latest))
		}
		st := schedStep{tick: latest, next: next}
		if catchUp == catalog.CatchUpLatest {
			st.fire = true
			st.reason = fmt.Sprintf("catch-up: %s by more than the grace of %s; the latest fires once", span, grace)
		} else {
			st.reason = fmt.Sprintf("missed: %s by more than the grace of %s (catch-up policy skip)", span, grace)
		}
		steps = append(steps, st)
		from = next
	}
	for t := from; !t.IsZero() && !t.After(now) && len(steps) < max; {
		n := c.Next(t)
		steps = append(steps, schedStep{tick: t, next: n, fire: true})
		t = n
	}
	return steps
}

// latestTickBefore returns the latest tick in [from, cutoff), from being a
// tick before cutoff. It searches backwards from cutoff in growing windows,
// so a long outage of a frequent schedule costs as little as a short one.
func latestTickBefore(c *catalog.CronSchedule, from, cutoff time.Time) time.Time {
	for w := time.Minute; ; w *= 4 {
		start := cutoff.Add(-w)
		if !start.After(from) {
			start = from
		}
		var last time.Time
		for t := c.Next(start.Add(-time.Second)); !t.IsZero() && t.Before(cutoff); t = c.Next(t) {
			if !t.Before(from) {
				last = t
			}
		}
		if !last.IsZero() {
			return last
		}
		if start.Equal(from) {
			return from
		}
	}
}

func fmtTick(c *catalog.CronSchedule, t time.Time) string {
	return t.In(c.Location()).Format(time.RFC3339)
}
