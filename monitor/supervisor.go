package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/weirdata/weir/catalog"
)

// Defaults of SupervisorConfig.
const (
	// CheckIntervalDefault is how often the supervisor looks again at its
	// services: it retries catalog writes that failed and resolves the
	// flapping alert of a service that has been calm for a FlapWindow.
	CheckIntervalDefault = 5 * time.Second
	// BackoffMinDefault is the pause before the first restart of a service.
	BackoffMinDefault = time.Second
	// BackoffMaxDefault caps the pause, which doubles at each death in a
	// row. A service that ran at least this long before dying starts over
	// from BackoffMin.
	BackoffMaxDefault = time.Minute
	// FlapWindowDefault and FlapRestartsDefault: a service restarted more
	// than FlapRestarts times within FlapWindow flaps.
	FlapWindowDefault   = 10 * time.Minute
	FlapRestartsDefault = 5
	// StopTimeoutDefault bounds how long Run waits for the services to stop.
	StopTimeoutDefault = 15 * time.Second
	// KillGraceDefault is how long a command has between SIGTERM and SIGKILL.
	KillGraceDefault = 5 * time.Second
)

// finalFlushTimeout bounds the last catalog writes after the services stopped.
const finalFlushTimeout = 5 * time.Second

// SupervisorConfig configures a Supervisor. Only NodeID is required.
type SupervisorConfig struct {
	// NodeID is the node whose services these are (the catalog's node ID).
	NodeID string
	// Region is given to the alerts the supervisor raises.
	Region        string
	CheckInterval time.Duration
	BackoffMin    time.Duration
	BackoffMax    time.Duration
	FlapWindow    time.Duration
	FlapRestarts  int
	StopTimeout   time.Duration
	KillGrace     time.Duration
	Logger        *slog.Logger

	// Commands, when set, is where the supervisor reads the node's
	// commands from the catalog, every CommandsInterval: it starts the new
	// ones and stops those deleted or disabled, next to the services added
	// with Add and AddCommand. It runs only commands whose executable
	// resolves (symbolic links followed) to a file inside CommandsDir, which
	// Commands requires: the catalog's admins choose among the programs the
	// host's own administrator put there, never any program of the host.
	Commands         CommandSource
	CommandsDir      string
	CommandsInterval time.Duration
}

// WithDefaults fills zero (or negative) fields with their defaults.
func (c SupervisorConfig) WithDefaults() SupervisorConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.CheckInterval, CheckIntervalDefault)
	def(&c.BackoffMin, BackoffMinDefault)
	def(&c.BackoffMax, BackoffMaxDefault)
	def(&c.FlapWindow, FlapWindowDefault)
	def(&c.StopTimeout, StopTimeoutDefault)
	def(&c.KillGrace, KillGraceDefault)
	def(&c.CommandsInterval, CommandsIntervalDefault)
	if c.FlapRestarts <= 0 {
		c.FlapRestarts = FlapRestartsDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c SupervisorConfig) validate() error {
	switch {
	case c.NodeID == "" || len(c.NodeID) > 128:
		return catalog.Invalid("node_id", "the supervisor needs its node's ID (1-128 characters)")
	case c.BackoffMin > c.BackoffMax:
		return catalog.Invalid("backoff_min", "%s is more than backoff_max %s", c.BackoffMin, c.BackoffMax)
	case c.StopTimeout <= c.KillGrace:
		return catalog.Invalid("stop_timeout", "%s must exceed kill_grace %s, so that commands are killed before Run gives up on them", c.StopTimeout, c.KillGrace)
	case c.Commands != nil && c.CommandsDir == "":
		return catalog.Invalid("commands_dir", "the node runs catalog commands only from a directory of executables: give one")
	}
	return nil
}

// SupervisorStore is what a Supervisor needs of the catalog.
type SupervisorStore interface {
	UpsertService(ctx context.Context, sv *catalog.Service) error
	PruneServices(ctx context.Context, node string, keep []string) (int64, error)
	RaiseAlert(ctx context.Context, p catalog.RaiseAlertParams) (*catalog.Alert, bool, error)
	ResolveAlert(ctx context.Context, key string) (bool, error)
}

// Service is an in-process service: a component's Run. It should return
// when ctx ends; returning (or panicking) before that counts as dying. Only
// a panic in the goroutine that calls Run is recovered: a panic in a
// goroutine the service starts itself still ends the process, as in any Go
// program, so components recover in their own goroutines where they must.
type Service struct {
	Name string
	Run  func(ctx context.Context) error
}

// CommandService is an external command that must run on the node. It is
// executed directly (never through a shell) in its own process group, with
// an environment of PATH, HOME, LANG, LC_ALL, TZ, TMPDIR and USER from the
// node's process plus Env ("KEY=value"): nothing else of the node's
// environment, which may hold secrets, reaches it. Its output lines go to the
// log. On stop it receives SIGTERM, then SIGKILL after the kill grace.
type CommandService struct {
	Name string
	Path string
	Args []string
	Env  []string
	// Dir is its working directory; empty for the node's.
	Dir string
}

// serviceNameRE is what a service name may look like.
var serviceNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// FlappingAlertKey is the dedupe key of the alert raised when service keeps dying on node.
func FlappingAlertKey(node, service string) string {
	return "service-flapping:" + node + "/" + service
}

// RestartedAlertKey is the dedupe key of the warning raised each time
// service is restarted on node: one alert per service, whose count and
// last_seen go up with every restart, resolved once it stayed up for a
// flap window.
func RestartedAlertKey(node, service string) string {
	return "service-restarted:" + node + "/" + service
}

// unit is one supervised service and its state.
type unit struct {
	name string
	kind string
	fn   func(ctx context.Context) error // in-process
	cmd  *CommandService                 // command

	// Guarded by Supervisor.mu.
	row      catalog.Service // what the catalog should show
	dirty    bool            // row not written yet
	deaths   []time.Time     // within the flap window
	flapping bool
	raises   []catalog.RaiseAlertParams // to raise
	resolve  bool                       // the flapping alert is to resolve
	// fromCatalog marks a command read from the catalog; stop ends it and
	// exited is closed once its goroutine returned.
	fromCatalog bool
	stop        context.CancelFunc
	exited      chan struct{}
	// refused, for a catalog command, is why it is not run: the unit only
	// records that in its row and is never started (done is set).
	refused string
	// restarted is set while the restart alert is open; resolveRestart
	// when it is to resolve.
	restarted, resolveRestart bool
	done                      bool // its goroutine returned
}

// Supervisor runs a node's services, restarts them when they die and
// records their status in the catalog.
type Supervisor struct {
	cfg   SupervisorConfig
	store SupervisorStore
	log   *slog.Logger
	wake  chan struct{}

	mu      sync.Mutex
	units   []*unit
	started bool
	pruned  bool
	// conflicts are the catalog commands whose names a service added
	// otherwise holds, logged once each.
	conflicts map[string]bool
	// commandsDir is CommandsDir, absolute with its symbolic links resolved.
	commandsDir string
	// invalid are the catalog commands (by ID) not run because they are
	// invalid, with the reason last logged.
	invalid map[int64]string
}

// NewSupervisor returns a Supervisor of cfg.NodeID's services; add them with
// Add and AddCommand, then call Run.
func NewSupervisor(cfg SupervisorConfig, store SupervisorStore) (*Supervisor, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Supervisor{cfg: cfg, store: store, log: cfg.Logger.With(slog.String("node", cfg.NodeID)), wake: make(chan struct{}, 1)}
	if cfg.Commands != nil {
		dir, err := ResolveCommandsDir(cfg.CommandsDir)
		if err != nil {
			return nil, err
		}
		s.commandsDir = dir
	}
	return s, nil
}

// Add registers an in-process service. Names are unique per supervisor; a
// service cannot be added once Run started.
func (s *Supervisor) Add(sv Service) error {
	if sv.Run == nil {
		return catalog.Invalid("run", "service %q has no Run function", sv.Name)
	}
	return s.add(&unit{name: sv.Name, kind: catalog.ServiceInProcess, fn: sv.Run})
}

// AddCommand registers an external command.
func (s *Supervisor) AddCommand(c CommandService) error {
	if err := checkCommand(&c); err != nil {
		return err
	}
	return s.add(&unit{name: c.Name, kind: catalog.ServiceCommand, cmd: &c})
}

// checkCommand checks c and copies its slices.
func checkCommand(c *CommandService) error {
	switch {
	case c.Path == "" || strings.ContainsRune(c.Path, 0):
		return catalog.Invalid("path", "command %q needs the path of its executable", c.Name)
	case strings.ContainsRune(c.Dir, 0):
		return catalog.Invalid("dir", "command %q: the directory contains a NUL byte", c.Name)
	}
	for i, a := range c.Args {
		if strings.ContainsRune(a, 0) {
			return catalog.Invalid(fmt.Sprintf("args[%d]", i), "command %q: argument contains a NUL byte", c.Name)
		}
	}
	for i, e := range c.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" || strings.ContainsRune(e, 0) {
			return catalog.Invalid(fmt.Sprintf("env[%d]", i), "command %q: environment entries are KEY=value without NUL bytes", c.Name)
		}
	}
	c.Args, c.Env = slices.Clone(c.Args), slices.Clone(c.Env)
	return nil
}

func (s *Supervisor) add(u *unit) error {
	if !serviceNameRE.MatchString(u.name) {
		return catalog.Invalid("name", "%q is not a service name: use 1-64 lower-case letters, digits, '.', '_' or '-'", u.name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return fmt.Errorf("add service %s: the supervisor runs already", u.name)
	}
	for _, o := range s.units {
		if o.name == u.name {
			return fmt.Errorf("add service %s: %w: the name is taken", u.name, catalog.ErrConflict)
		}
	}
	u.row = catalog.Service{Node: s.cfg.NodeID, Name: u.name, Kind: u.kind, Status: catalog.ServiceStopped}
	s.units = append(s.units, u)
	return nil
}

// Run starts every service and keeps them running until ctx ends; then it
// stops them all (commands get SIGTERM, then SIGKILL after the kill grace),
// waits for them at most StopTimeout, writes their final status and
// returns. It returns an error only when a service did not stop in time (its
// goroutine cannot be taken back). Catalog failures never stop a service:
// the writes are retried every CheckInterval.
func (s *Supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("run supervisor: Run was called already")
	}
	s.started = true
	units := slices.Clone(s.units)
	s.mu.Unlock()

	// The writer is told to stop rather than canceled: a write canceled in
	// flight may still commit, and retrying it would count an alert twice.
	stopWriter := make(chan struct{})
	var writer sync.WaitGroup
	writer.Go(func() { s.writeLoop(context.WithoutCancel(ctx), stopWriter) })
	var services sync.WaitGroup
	for _, u := range units {
		s.start(ctx, &services, u)
	}
	if s.cfg.Commands != nil {
		services.Go(func() { s.watchCommands(ctx, &services) })
	}
	<-ctx.Done()

	stopped := make(chan struct{})
	go func() { services.Wait(); close(stopped) }()
	timer := time.NewTimer(s.cfg.StopTimeout)
	defer timer.Stop()
	var err error
	select {
	case <-stopped:
	case <-timer.C:
		var stuck []string
		now := time.Now()
		s.mu.Lock()
		for _, u := range s.units {
			if !u.done {
				stuck = append(stuck, u.name)
				u.row.Status, u.row.LastExit, u.row.PID = catalog.ServiceStopped, &now, 0
				u.row.LastError = fmt.Sprintf("did not stop within %s", s.cfg.StopTimeout)
				u.dirty = true
			}
		}
		s.mu.Unlock()
		s.log.Error("services did not stop in time", slog.Any("services", stuck), slog.Duration("stop_timeout", s.cfg.StopTimeout))
		err = fmt.Errorf("stop services: %s did not stop within %s", strings.Join(stuck, ", "), s.cfg.StopTimeout)
	}
	close(stopWriter)
	writer.Wait()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
	defer cancel()
	if !s.flush(fctx) {
		s.log.Warn("could not record the services' final status in the catalog")
	}
	return err
}

// supervise runs one service until ctx ends, restarting it when it dies.
func (s *Supervisor) supervise(ctx context.Context, u *unit) {
	log := s.log.With(slog.String("service", u.name))
	defer func() {
		s.mu.Lock()
		u.done = true
		s.mu.Unlock()
	}()
	inRow := 0 // deaths in a row, for the backoff
	for {
		start := time.Now()
		s.update(u, func(r *catalog.Service) {
			r.Status, r.LastStart, r.PID = catalog.ServiceRunning, &start, 0
		})
		log.Info("service started", slog.String("kind", u.kind))
		var err error
		if u.cmd != nil {
			err = s.runCommand(ctx, u, log)
		} else {
			err = runGuarded(ctx, u.fn, log)
		}
		end := time.Now()
		if ctx.Err() != nil {
			s.update(u, func(r *catalog.Service) { r.Status, r.LastExit, r.PID = catalog.ServiceStopped, &end, 0 })
			log.Info("service stopped")
			return
		}
		if err == nil {
			err = errors.New("returned before the node stopped")
		}
		if end.Sub(start) >= s.cfg.BackoffMax {
			inRow = 0 // it ran well for a while: this is a fresh failure
		}
		inRow++
		delay := backoff(s.cfg.BackoffMin, s.cfg.BackoffMax, inRow)

		s.mu.Lock()
		u.deaths = append(slices.DeleteFunc(u.deaths, func(t time.Time) bool { return end.Sub(t) >= s.cfg.FlapWindow }), end)
		flapping := len(u.deaths) > s.cfg.FlapRestarts
		u.row.Status = catalog.ServiceRestarting
		if flapping {
			delay = s.cfg.BackoffMax
			u.row.Status = catalog.ServiceFailed
			u.flapping, u.resolve = true, false
			u.raises = append(u.raises, catalog.RaiseAlertParams{
				Key:      FlappingAlertKey(s.cfg.NodeID, u.name),
				Severity: catalog.AlertCritical,
				Subject:  fmt.Sprintf("service %s on node %s keeps dying", u.name, s.cfg.NodeID),
				Message: fmt.Sprintf("%d restarts within %s; restarted every %s until it stays up; last error: %s",
					len(u.deaths), s.cfg.FlapWindow, s.cfg.BackoffMax, err),
				Region: s.cfg.Region,
			})
		}
		u.row.Restarts++
		u.restarted, u.resolveRestart = true, false
		u.raises = append(u.raises, catalog.RaiseAlertParams{
			Key:      RestartedAlertKey(s.cfg.NodeID, u.name),
			Severity: catalog.AlertWarning,
			Subject:  fmt.Sprintf("service %s on node %s restarted", u.name, s.cfg.NodeID),
			Message:  fmt.Sprintf("died (%s); restarted after %s (%d restarts since the node started)", err, delay, u.row.Restarts),
			Region:   s.cfg.Region,
		})
		u.row.LastError, u.row.LastExit, u.row.PID = err.Error(), &end, 0
		u.dirty = true
		restarts := u.row.Restarts
		s.mu.Unlock()
		wake(s.wake)
		log.Warn("service died; restarting", slog.String("error", err.Error()), slog.Int("restarts", restarts),
			slog.Duration("backoff", delay), slog.Bool("flapping", flapping))

		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			now := time.Now()
			s.update(u, func(r *catalog.Service) { r.Status, r.LastExit = catalog.ServiceStopped, &now })
			log.Info("service stopped while waiting to restart")
			return
		case <-t.C:
		}
	}
}

// PanicError is what a service that panicked died of.
type PanicError struct {
	Value any
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// runGuarded runs fn, turning a panic into a *PanicError; the stack goes to the log.
func runGuarded(ctx context.Context, fn func(context.Context) error, log *slog.Logger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("service panicked", slog.String("panic", fmt.Sprint(r)), slog.String("stack", string(debug.Stack())))
			err = &PanicError{Value: r}
		}
	}()
	return fn(ctx)
}

// update changes u's row and wakes the writer.
func (s *Supervisor) update(u *unit, fn func(r *catalog.Service)) {
	s.mu.Lock()
	fn(&u.row)
	u.dirty = true
	s.mu.Unlock()
	wake(s.wake)
}

// flushTimeout bounds one round of catalog writes.
const flushTimeout = 30 * time.Second

// writeLoop writes changes to the catalog as they come, and every
// CheckInterval checks the services and retries what failed, until stop is closed.
func (s *Supervisor) writeLoop(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(s.cfg.CheckInterval)
	defer t.Stop()
	for {
		fctx, cancel := context.WithTimeout(ctx, flushTimeout)
		s.flush(fctx)
		cancel()
		select {
		case <-stop:
			return
		case <-s.wake:
		case <-t.C:
			s.check()
		}
	}
}

// check resolves the flapping and restart alerts of services that stayed
// up for a FlapWindow.
func (s *Supervisor) check() {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.units {
		if (!u.flapping && !u.restarted) || u.row.Status != catalog.ServiceRunning {
			continue
		}
		if n := len(u.deaths); n > 0 && now.Sub(u.deaths[n-1]) < s.cfg.FlapWindow {
			continue
		}
		if u.flapping {
			u.flapping, u.resolve = false, true
			s.log.Info("service is stable again", slog.String("service", u.name))
		}
		if u.restarted {
			u.restarted, u.resolveRestart = false, true
		}
		u.deaths = nil
	}
}

// flush writes what changed: pruned rows, service rows, alerts. What fails
// is kept for the next flush. It reports whether everything was written.
func (s *Supervisor) flush(ctx context.Context) bool {
	type job struct {
		u       *unit
		row     *catalog.Service
		raises  []catalog.RaiseAlertParams
		resolve bool
		// resolveRestart resolves the restart alert.
		resolveRestart bool
	}
	s.mu.Lock()
	prune := !s.pruned
	var keep []string
	var jobs []job
	for _, u := range s.units {
		keep = append(keep, u.name)
		if !u.dirty && len(u.raises) == 0 && !u.resolve && !u.resolveRestart {
			continue
		}
		j := job{u: u, raises: u.raises, resolve: u.resolve, resolveRestart: u.resolveRestart}
		if u.dirty {
			row := u.row
			j.row = &row
		}
		u.dirty, u.raises, u.resolve, u.resolveRestart = false, nil, false, false
		jobs = append(jobs, j)
	}
	s.mu.Unlock()

	var failed error
	if prune {
		if n, err := s.store.PruneServices(ctx, s.cfg.NodeID, keep); err != nil {
			failed = err
		} else {
			s.mu.Lock()
			s.pruned = true
			s.mu.Unlock()
			if n > 0 {
				s.log.Info("removed services no longer run on this node from the catalog", slog.Int64("removed", n))
			}
		}
	}
	for _, j := range jobs {
		if j.resolve {
			if _, err := s.store.ResolveAlert(ctx, FlappingAlertKey(s.cfg.NodeID, j.u.name)); err != nil {
				failed = err
				s.mu.Lock()
				j.u.resolve = !j.u.flapping // unless it flaps again meanwhile
				s.mu.Unlock()
			}
		}
		if j.resolveRestart {
			if _, err := s.store.ResolveAlert(ctx, RestartedAlertKey(s.cfg.NodeID, j.u.name)); err != nil {
				failed = err
				s.mu.Lock()
				j.u.resolveRestart = !j.u.restarted // unless it died again meanwhile
				s.mu.Unlock()
			}
		}
		if j.row != nil {
			if err := s.store.UpsertService(ctx, j.row); err != nil {
				failed = err
				s.mu.Lock()
				j.u.dirty = true // the row in memory is the latest: write it next time
				s.mu.Unlock()
			}
		}
		for i, p := range j.raises {
			if _, _, err := s.store.RaiseAlert(ctx, p); err != nil {
				failed = err
				s.mu.Lock()
				j.u.raises = append(slices.Clone(j.raises[i:]), j.u.raises...)
				s.mu.Unlock()
				break
			}
		}
	}
	if failed != nil {
		if ctx.Err() == nil {
			s.log.Warn("could not record services in the catalog; retrying", slog.String("error", failed.Error()))
		}
		return false
	}
	return true
}

// wake nudges a coalescing channel.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
