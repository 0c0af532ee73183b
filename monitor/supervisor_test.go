package monitor_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
	"github.com/weirdata/weir/monitor"
)

// started runs sup in the background; stop cancels it and returns what Run returned.
func started(t *testing.T, sup *monitor.Supervisor) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return after its context ended")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func serviceRow(t *testing.T, s *catalog.Store, node, name string) *catalog.Service {
	t.Helper()
	list, err := s.ListServices(context.Background(), node)
	require.NoError(t, err)
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

func fastConfig(node string) monitor.SupervisorConfig {
	return monitor.SupervisorConfig{NodeID: node, Region: "eu", CheckInterval: 20 * time.Millisecond,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		FlapWindow: time.Minute, FlapRestarts: 100, StopTimeout: 3 * time.Second, KillGrace: 300 * time.Millisecond}
}

func TestPanickingServiceIsRestartedAndRecorded(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		log, logs := newLogger()
		cfg := fastConfig("n1")
		cfg.Logger = log
		sup, err := monitor.NewSupervisor(cfg, s)
		require.NoError(t, err)
		var lives atomic.Int32
		require.NoError(t, sup.Add(monitor.Service{Name: "worker", Run: func(ctx context.Context) error {
			n := lives.Add(1)
			if n <= 2 {
				panic(fmt.Sprintf("boom %d", n))
			}
			<-ctx.Done()
			return nil
		}}))
		stop := started(t, sup)

		within(t, 10*time.Second, "the third life runs and the catalog shows it", func() bool {
			r := serviceRow(t, s, "n1", "worker")
			return lives.Load() == 3 && r != nil && r.Status == catalog.ServiceRunning && r.Restarts == 2
		})
		r := serviceRow(t, s, "n1", "worker")
		require.Equal(t, catalog.ServiceInProcess, r.Kind)
		require.Equal(t, "panic: boom 2", r.LastError, "the panic's message is recorded")
		require.NotNil(t, r.LastStart)
		require.NotNil(t, r.LastExit)
		require.True(t, r.LastStart.After(*r.LastExit), "started again after the last death")
		require.Contains(t, logs.String(), "service panicked")
		require.Contains(t, logs.String(), "runtime/debug.Stack", "the stack goes to the log")
		require.Contains(t, logs.String(), "supervisor_test.go", "the stack shows where it panicked")

		require.NoError(t, stop())
		r = serviceRow(t, s, "n1", "worker")
		require.Equal(t, catalog.ServiceStopped, r.Status)
		require.Equal(t, 2, r.Restarts)
		alerts, _, err := s.ListAlerts(context.Background(), catalog.AlertFilter{})
		require.NoError(t, err)
		require.Len(t, alerts, 1, "two restarts are not flapping: one warning, no critical alert")
		a := alerts[0]
		require.Equal(t, "service-restarted:n1/worker", a.Key)
		require.Equal(t, monitor.RestartedAlertKey("n1", "worker"), a.Key)
		require.Equal(t, catalog.AlertWarning, a.Severity)
		require.Equal(t, int64(2), a.Count, "one alert, raised at each restart")
		require.Equal(t, "service worker on node n1 restarted", a.Subject)
		require.Contains(t, a.Message, "panic: boom 2")
		require.Contains(t, a.Message, "2 restarts")
		require.Equal(t, "eu", a.Region)
		require.True(t, a.Open())
	})
}

func TestFlappingServiceRaisesOneAlert(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		cfg := fastConfig("n1")
		cfg.FlapRestarts = 3
		cfg.BackoffMin, cfg.BackoffMax = 5*time.Millisecond, 40*time.Millisecond
		sup, err := monitor.NewSupervisor(cfg, s)
		require.NoError(t, err)
		var mu sync.Mutex
		var starts []time.Time
		require.NoError(t, sup.Add(monitor.Service{Name: "profiler", Run: func(ctx context.Context) error {
			mu.Lock()
			starts = append(starts, time.Now())
			mu.Unlock()
			return errors.New("disk gone")
		}}))
		stop := started(t, sup)

		within(t, 10*time.Second, "the service flaps and the catalog shows it failed", func() bool {
			r := serviceRow(t, s, "n1", "profiler")
			return r != nil && r.Status == catalog.ServiceFailed && r.Restarts >= 7
		})
		require.NoError(t, stop())

		r := serviceRow(t, s, "n1", "profiler")
		require.Equal(t, catalog.ServiceStopped, r.Status)
		require.Equal(t, "disk gone", r.LastError)
		alerts, _, err := s.ListAlerts(ctx, catalog.AlertFilter{Key: monitor.FlappingAlertKey("n1", "profiler")})
		require.NoError(t, err)
		require.Len(t, alerts, 1, "one critical alert however often it dies")
		a := alerts[0]
		restarted, _, err := s.ListAlerts(ctx, catalog.AlertFilter{Key: monitor.RestartedAlertKey("n1", "profiler")})
		require.NoError(t, err)
		require.Len(t, restarted, 1, "one restart alert, deduplicated")
		require.Equal(t, int64(r.Restarts), restarted[0].Count, "counting every restart")
		require.Equal(t, catalog.AlertWarning, restarted[0].Severity)
		require.Equal(t, monitor.FlappingAlertKey("n1", "profiler"), a.Key)
		require.Equal(t, "service-flapping:n1/profiler", a.Key)
		require.Equal(t, catalog.AlertCritical, a.Severity)
		require.Equal(t, "eu", a.Region)
		require.True(t, a.Open())
		require.Contains(t, a.Message, "disk gone")
		// Every restart beyond the third within the window raised it once more.
		require.Equal(t, int64(r.Restarts-3), a.Count)
		require.GreaterOrEqual(t, a.Count, int64(4))

		// Once flapping, it is restarted with the longest backoff.
		mu.Lock()
		defer mu.Unlock()
		for i := 5; i < len(starts); i++ {
			require.GreaterOrEqual(t, starts[i].Sub(starts[i-1]), cfg.BackoffMax, "restart %d", i)
		}
	})
}

func TestFlappingAlertResolvedWhenCalm(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	cfg := fastConfig("n1")
	cfg.FlapRestarts = 2
	cfg.FlapWindow = 400 * time.Millisecond
	sup, err := monitor.NewSupervisor(cfg, s)
	require.NoError(t, err)
	var lives atomic.Int32
	require.NoError(t, sup.Add(monitor.Service{Name: "dispatcher", Run: func(ctx context.Context) error {
		if lives.Add(1) <= 4 {
			return errors.New("port busy")
		}
		<-ctx.Done()
		return nil
	}}))
	stop := started(t, sup)
	key := monitor.FlappingAlertKey("n1", "dispatcher")
	within(t, 10*time.Second, "the flapping alert is raised", func() bool {
		l, _, err := s.ListAlerts(context.Background(), catalog.AlertFilter{Key: key})
		require.NoError(t, err)
		return len(l) == 1
	})
	within(t, 10*time.Second, "the alert is resolved once the service stayed up for the flap window", func() bool {
		l, _, err := s.ListAlerts(context.Background(), catalog.AlertFilter{Key: key})
		require.NoError(t, err)
		return len(l) == 1 && !l[0].Open()
	})
	l, _, err := s.ListAlerts(context.Background(), catalog.AlertFilter{Key: key})
	require.NoError(t, err)
	require.Equal(t, int64(2), l[0].Count, "deaths 3 and 4 were beyond the limit of 2")
	last := serviceRow(t, s, "n1", "dispatcher")
	require.True(t, l[0].ResolvedAt.Sub(*last.LastExit) >= cfg.FlapWindow, "resolved only after a calm window since the last death")
	require.Equal(t, catalog.ServiceRunning, last.Status)
	within(t, 10*time.Second, "the restart alert is resolved with it", func() bool {
		l, _, err := s.ListAlerts(context.Background(), catalog.AlertFilter{Key: monitor.RestartedAlertKey("n1", "dispatcher")})
		require.NoError(t, err)
		return len(l) == 1 && !l[0].Open() && l[0].Count == 4
	})
	require.NoError(t, stop())
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	type life struct{ start, end time.Time }
	run := func(t *testing.T, cfg monitor.SupervisorConfig, lifetime time.Duration, n int) []time.Duration {
		sup, err := monitor.NewSupervisor(cfg, s)
		require.NoError(t, err)
		var mu sync.Mutex
		var lives []life
		require.NoError(t, sup.Add(monitor.Service{Name: "svc", Run: func(ctx context.Context) error {
			l := life{start: time.Now()}
			time.Sleep(lifetime)
			l.end = time.Now()
			mu.Lock()
			lives = append(lives, l)
			mu.Unlock()
			return errors.New("died")
		}}))
		stop := started(t, sup)
		within(t, 20*time.Second, "enough lives", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(lives) > n
		})
		require.NoError(t, stop())
		mu.Lock()
		defer mu.Unlock()
		var pauses []time.Duration // from a death to the next start
		for i := 1; i <= n; i++ {
			pauses = append(pauses, lives[i].start.Sub(lives[i-1].end))
		}
		return pauses
	}

	t.Run("doubles up to the cap", func(t *testing.T) {
		cfg := fastConfig("n-grow")
		cfg.BackoffMin, cfg.BackoffMax = 10*time.Millisecond, 40*time.Millisecond
		pauses := run(t, cfg, 0, 7)
		want := []time.Duration{10, 20, 40, 40, 40, 40, 40}
		for i, w := range want {
			require.GreaterOrEqual(t, pauses[i], w*time.Millisecond, "pause %d: %v", i, pauses)
		}
		// Uncapped, the last pauses would be 320 and 640 ms.
		require.Less(t, pauses[5], 250*time.Millisecond, "capped: %v", pauses)
		require.Less(t, pauses[6], 250*time.Millisecond, "capped: %v", pauses)
	})
	t.Run("starts over after a long life", func(t *testing.T) {
		cfg := fastConfig("n-reset")
		cfg.BackoffMin, cfg.BackoffMax = 10*time.Millisecond, 150*time.Millisecond
		pauses := run(t, cfg, 170*time.Millisecond, 4)
		for i, p := range pauses {
			require.GreaterOrEqual(t, p, 10*time.Millisecond)
			// Without the reset the fourth pause would be 80 ms.
			require.Less(t, p, 70*time.Millisecond, "pause %d: %v", i, pauses)
		}
	})
}

func helperCommand(name, mode, file string, env ...string) monitor.CommandService {
	return monitor.CommandService{Name: name, Path: os.Args[0],
		Env: append([]string{"MONITOR_HELPER=" + mode, "HELPER_FILE=" + file}, env...)}
}

func TestCommandIsRestartedAfterItExits(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		log, logs := newLogger()
		cfg := fastConfig("n1")
		cfg.Logger = log
		sup, err := monitor.NewSupervisor(cfg, s)
		require.NoError(t, err)
		file := filepath.Join(t.TempDir(), "pids")
		require.NoError(t, sup.AddCommand(helperCommand("exporter", "exit", file)))
		stop := started(t, sup)

		within(t, 20*time.Second, "three processes ran and the catalog counts their restarts", func() bool {
			r := serviceRow(t, s, "n1", "exporter")
			return len(readPIDs(t, file)) >= 3 && r != nil && r.Restarts >= 3
		})
		require.NoError(t, stop())
		pids := readPIDs(t, file)
		require.Len(t, slices.Compact(slices.Clone(pids)), len(pids), "each life is a new process")
		r := serviceRow(t, s, "n1", "exporter")
		require.Equal(t, catalog.ServiceCommand, r.Kind)
		require.Equal(t, catalog.ServiceStopped, r.Status)
		require.Contains(t, r.LastError, "exit status 3")
		require.Regexp(t, `last stderr line: oops from \d+`, r.LastError)
		require.Zero(t, r.PID)
		out := logs.String()
		require.Contains(t, out, fmt.Sprintf("hello from %d", pids[0]), "stdout goes to the log")
		require.Contains(t, out, `"stream":"stderr"`)
	})
}

func TestCommandStartFailureIsRetried(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	sup, err := monitor.NewSupervisor(fastConfig("n1"), s)
	require.NoError(t, err)
	require.NoError(t, sup.AddCommand(monitor.CommandService{Name: "ghost", Path: "/nonexistent/weir-agent"}))
	stop := started(t, sup)
	within(t, 10*time.Second, "the failed start is recorded and retried", func() bool {
		r := serviceRow(t, s, "n1", "ghost")
		return r != nil && r.Restarts >= 2
	})
	require.NoError(t, stop())
	r := serviceRow(t, s, "n1", "ghost")
	require.Contains(t, r.LastError, "start /nonexistent/weir-agent")
	require.Contains(t, r.LastError, "no such file or directory")
}

func TestCleanStop(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		dir := t.TempDir()
		cfg := fastConfig("n1")
		sup, err := monitor.NewSupervisor(cfg, s)
		require.NoError(t, err)
		var stoppedInProcess atomic.Bool
		require.NoError(t, sup.Add(monitor.Service{Name: "worker", Run: func(ctx context.Context) error {
			<-ctx.Done()
			stoppedInProcess.Store(true)
			return ctx.Err()
		}}))
		files := map[string]string{}
		for _, name := range []string{"polite", "stubborn", "tree"} {
			files[name] = filepath.Join(dir, name)
		}
		childFile := filepath.Join(dir, "grandchild")
		require.NoError(t, sup.AddCommand(helperCommand("polite", "serve", files["polite"])))
		require.NoError(t, sup.AddCommand(helperCommand("stubborn", "stubborn", files["stubborn"])))
		require.NoError(t, sup.AddCommand(helperCommand("tree", "tree", files["tree"], "HELPER_CHILD_FILE="+childFile)))
		stop := started(t, sup)

		within(t, 20*time.Second, "every service runs", func() bool {
			for _, f := range []string{files["polite"], files["stubborn"], files["tree"], childFile} {
				if len(readPIDs(t, f)) == 0 {
					return false
				}
			}
			list, err := s.ListServices(context.Background(), "n1")
			require.NoError(t, err)
			running := 0
			for _, r := range list {
				if r.Status == catalog.ServiceRunning && (r.Kind == catalog.ServiceInProcess || r.PID > 0) {
					running++
				}
			}
			return running == 4
		})
		var pids []int
		for _, f := range files {
			pids = append(pids, readPIDs(t, f)...)
		}
		pids = append(pids, readPIDs(t, childFile)...)
		require.Len(t, pids, 4)
		r := serviceRow(t, s, "n1", "polite")
		require.Equal(t, readPIDs(t, files["polite"])[0], r.PID, "the catalog shows the command's pid")

		begin := time.Now()
		require.NoError(t, stop(), "every service stopped in time")
		took := time.Since(begin)
		require.True(t, stoppedInProcess.Load())
		require.GreaterOrEqual(t, took, cfg.KillGrace, "the stubborn command had its grace before SIGKILL")
		require.Less(t, took, cfg.StopTimeout)
		for _, pid := range pids {
			require.False(t, alive(pid), "process %d survived the stop", pid)
		}
		list, err := s.ListServices(context.Background(), "n1")
		require.NoError(t, err)
		require.Len(t, list, 4)
		for _, r := range list {
			require.Equal(t, catalog.ServiceStopped, r.Status, r.Name)
			require.Zero(t, r.Restarts, "%s was stopped, not restarted", r.Name)
			require.Zero(t, r.PID)
		}
	})
}

func TestStopIsBoundedWhenAServiceIgnoresIt(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	cfg := fastConfig("n1")
	cfg.KillGrace, cfg.StopTimeout = 50*time.Millisecond, 300*time.Millisecond
	sup, err := monitor.NewSupervisor(cfg, s)
	require.NoError(t, err)
	release := make(chan struct{})
	defer close(release)
	require.NoError(t, sup.Add(monitor.Service{Name: "deaf", Run: func(ctx context.Context) error {
		<-release
		return nil
	}}))
	require.NoError(t, sup.Add(monitor.Service{Name: "good", Run: func(ctx context.Context) error {
		<-ctx.Done()
		return nil
	}}))
	stop := started(t, sup)
	within(t, 10*time.Second, "both run", func() bool {
		a, b := serviceRow(t, s, "n1", "deaf"), serviceRow(t, s, "n1", "good")
		return a != nil && b != nil && a.Status == catalog.ServiceRunning && b.Status == catalog.ServiceRunning
	})
	begin := time.Now()
	err = stop()
	require.ErrorContains(t, err, "deaf did not stop within 300ms")
	require.NotContains(t, err.Error(), "good")
	require.Less(t, time.Since(begin), 3*time.Second)
	r := serviceRow(t, s, "n1", "deaf")
	require.Equal(t, catalog.ServiceStopped, r.Status)
	require.Contains(t, r.LastError, "did not stop within")
}

func TestCommandEnvironmentIsItsOwn(t *testing.T) {
	t.Setenv("WEIR_CATALOG", "postgres://weir:hunter2@db/weir")
	s := catalogtest.Open(t, catalog.DialectSQLite)
	sup, err := monitor.NewSupervisor(fastConfig("n1"), s)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "env")
	require.NoError(t, sup.AddCommand(helperCommand("agent", "env", file, "AGENT_MODE=probe")))
	stop := started(t, sup)
	within(t, 10*time.Second, "the command wrote its environment", func() bool {
		b, _ := os.ReadFile(file)
		return strings.Contains(string(b), "AGENT_MODE=probe")
	})
	require.NoError(t, stop())
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NotContains(t, string(b), "hunter2", "the node's environment does not leak into commands")
	require.Contains(t, string(b), "PATH=")
}

func TestSupervisorRefusesBadConfiguration(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	var ve *catalog.ValidationError
	_, err := monitor.NewSupervisor(monitor.SupervisorConfig{}, s)
	require.ErrorAs(t, err, &ve)
	_, err = monitor.NewSupervisor(monitor.SupervisorConfig{NodeID: "n", BackoffMin: time.Minute, BackoffMax: time.Second}, s)
	require.ErrorAs(t, err, &ve)
	_, err = monitor.NewSupervisor(monitor.SupervisorConfig{NodeID: "n", StopTimeout: time.Second, KillGrace: 2 * time.Second}, s)
	require.ErrorAs(t, err, &ve)

	sup, err := monitor.NewSupervisor(monitor.SupervisorConfig{NodeID: "n"}, s)
	require.NoError(t, err)
	noop := func(ctx context.Context) error { <-ctx.Done(); return nil }
	require.ErrorAs(t, sup.Add(monitor.Service{Name: "Bad Name", Run: noop}), &ve)
	require.ErrorAs(t, sup.Add(monitor.Service{Name: "x"}), &ve)
	require.ErrorAs(t, sup.AddCommand(monitor.CommandService{Name: "c"}), &ve)
	require.ErrorAs(t, sup.AddCommand(monitor.CommandService{Name: "c", Path: "/bin/true", Env: []string{"NOEQUALS"}}), &ve)
	require.ErrorAs(t, sup.AddCommand(monitor.CommandService{Name: "c", Path: "/bin/true", Args: []string{"a\x00b"}}), &ve)
	require.NoError(t, sup.Add(monitor.Service{Name: "x", Run: noop}))
	require.ErrorIs(t, sup.AddCommand(monitor.CommandService{Name: "x", Path: "/bin/true"}), catalog.ErrConflict)

	stop := started(t, sup)
	within(t, 5*time.Second, "running", func() bool { return serviceRow(t, s, "n", "x") != nil })
	require.Error(t, sup.Add(monitor.Service{Name: "y", Run: noop}), "no services are added to a running supervisor")
	require.Error(t, sup.Run(context.Background()), "Run runs once")
	require.NoError(t, stop())
}

func TestStaleServiceRowsArePruned(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	ctx := context.Background()
	require.NoError(t, s.UpsertService(ctx, &catalog.Service{Node: "n1", Name: "old-agent", Kind: catalog.ServiceCommand, Status: catalog.ServiceRunning}))
	require.NoError(t, s.UpsertService(ctx, &catalog.Service{Node: "n2", Name: "other", Kind: catalog.ServiceCommand, Status: catalog.ServiceRunning}))
	sup, err := monitor.NewSupervisor(fastConfig("n1"), s)
	require.NoError(t, err)
	require.NoError(t, sup.Add(monitor.Service{Name: "worker", Run: func(ctx context.Context) error { <-ctx.Done(); return nil }}))
	stop := started(t, sup)
	within(t, 5*time.Second, "the stale row goes", func() bool { return serviceRow(t, s, "n1", "old-agent") == nil })
	require.NoError(t, stop())
	require.NotNil(t, serviceRow(t, s, "n1", "worker"))
	require.NotNil(t, serviceRow(t, s, "n2", "other"), "other nodes' rows stay")
}

// flakyStore fails its first writes, like a catalog that is briefly away.
type flakyStore struct {
	*catalog.Store
	failures atomic.Int32
}

func (f *flakyStore) fail() error {
	if f.failures.Add(-1) >= 0 {
		return errors.New("catalog unreachable")
	}
	return nil
}

func (f *flakyStore) UpsertService(ctx context.Context, sv *catalog.Service) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.UpsertService(ctx, sv)
}

func (f *flakyStore) RaiseAlert(ctx context.Context, p catalog.RaiseAlertParams) (*catalog.Alert, bool, error) {
	if err := f.fail(); err != nil {
		return nil, false, err
	}
	return f.Store.RaiseAlert(ctx, p)
}

func TestCatalogOutageDelaysRecordsButNotRestarts(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	fs := &flakyStore{Store: s}
	fs.failures.Store(1000)
	cfg := fastConfig("n1")
	cfg.FlapRestarts = 1
	cfg.BackoffMax = 10 * time.Millisecond
	sup, err := monitor.NewSupervisor(cfg, fs)
	require.NoError(t, err)
	var lives atomic.Int32
	require.NoError(t, sup.Add(monitor.Service{Name: "worker", Run: func(ctx context.Context) error {
		if lives.Add(1) <= 3 {
			return errors.New("crash")
		}
		<-ctx.Done()
		return nil
	}}))
	stop := started(t, sup)
	within(t, 10*time.Second, "restarts go on while the catalog is away", func() bool { return lives.Load() == 4 })
	require.Nil(t, serviceRow(t, s, "n1", "worker"))
	fs.failures.Store(0)
	within(t, 10*time.Second, "the latest state is written once the catalog is back", func() bool {
		r := serviceRow(t, s, "n1", "worker")
		return r != nil && r.Restarts == 3 && r.Status == catalog.ServiceRunning
	})
	within(t, 10*time.Second, "both raises of the flapping alert are written: none was lost", func() bool {
		l, _, err := s.ListAlerts(context.Background(), catalog.AlertFilter{Key: monitor.FlappingAlertKey("n1", "worker")})
		require.NoError(t, err)
		require.LessOrEqual(t, len(l), 1)
		return len(l) == 1 && l[0].Count == 2
	})
	within(t, 10*time.Second, "the three raises of the restart alert too", func() bool {
		l, _, err := s.ListAlerts(context.Background(), catalog.AlertFilter{Key: monitor.RestartedAlertKey("n1", "worker")})
		require.NoError(t, err)
		require.LessOrEqual(t, len(l), 1)
		return len(l) == 1 && l[0].Count == 3
	})
	require.NoError(t, stop())
}
