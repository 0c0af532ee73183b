package monitor_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
	"github.com/weirdata/weir/monitor"
)

// TestCatalogCommandsAreStartedAndStopped registers commands in the
// catalog: the node's monitor starts those for it (and for every node),
// stops one once it is deleted, and leaves those of other nodes alone.
func TestCatalogCommandsAreStartedAndStopped(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "pids")
	// The commands get these from the node's environment: their names are
	// the allow-list the catalog stores, never their values.
	t.Setenv("MONITOR_HELPER", "serve")
	t.Setenv("HELPER_FILE", file)
	add := func(node, name string) *catalog.NodeCommand {
		c := &catalog.NodeCommand{Node: node, Name: name, Enabled: true,
			Argv: catalog.NewJSON([]string{os.Args[0]}), Env: catalog.NewJSON([]string{"MONITOR_HELPER", "HELPER_FILE"})}
		require.NoError(t, s.CreateNodeCommand(ctx, c))
		return c
	}
	sidecar := add("n1", "sidecar")
	add(catalog.NodeCommandAllNodes, "everywhere")
	add("n2", "elsewhere")
	add("n1", "api") // named like a service of the node: not run

	cfg := fastConfig("n1")
	cfg.Commands = s
	cfg.CommandsDir = filepath.Dir(os.Args[0]) // the helper is the test binary
	cfg.CommandsInterval = 50 * time.Millisecond
	sup, err := monitor.NewSupervisor(cfg, s)
	require.NoError(t, err)
	require.NoError(t, sup.Add(monitor.Service{Name: "api", Run: func(ctx context.Context) error { <-ctx.Done(); return nil }}))
	stop := started(t, sup)

	running := func(name string) int {
		r := serviceRow(t, s, "n1", name)
		if r == nil || r.Status != catalog.ServiceRunning || r.PID == 0 || !alive(r.PID) {
			return 0
		}
		return r.PID
	}
	within(t, 20*time.Second, "both commands of n1 run", func() bool {
		return running("sidecar") != 0 && running("everywhere") != 0 && len(readPIDs(t, file)) == 2
	})
	sidecarPID, everywherePID := running("sidecar"), running("everywhere")
	require.Equal(t, catalog.ServiceCommand, serviceRow(t, s, "n1", "sidecar").Kind)
	require.Nil(t, serviceRow(t, s, "n1", "elsewhere"), "another node's command does not run here")
	require.Equal(t, catalog.ServiceInProcess, serviceRow(t, s, "n1", "api").Kind, "the node's own service keeps its name")

	require.NoError(t, s.DeleteNodeCommand(ctx, sidecar.ID))
	within(t, 20*time.Second, "the deleted command stops and leaves the catalog", func() bool {
		return !alive(sidecarPID) && serviceRow(t, s, "n1", "sidecar") == nil
	})
	require.Equal(t, everywherePID, running("everywhere"), "the other command runs on, untouched")

	require.NoError(t, stop())
	require.False(t, alive(everywherePID), "stopping the node stops its catalog commands")
	require.Equal(t, catalog.ServiceStopped, serviceRow(t, s, "n1", "everywhere").Status)
}

// commandsDir returns a directory of executables holding a copy of
// /bin/sleep, and a symbolic link to /bin/sh that leads out of it.
func commandsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile("/bin/sleep")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sleep"), b, 0o755))
	require.NoError(t, os.Symlink("/bin/sh", filepath.Join(dir, "sh")))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	return dir
}

// TestCatalogCommandsRunOnlyFromTheirDirectory: an admin of the catalog
// cannot make a node run any program: only executables inside the node's
// commands directory run; the others are recorded as failed, with why.
func TestCatalogCommandsRunOnlyFromTheirDirectory(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	ctx := context.Background()
	dir := commandsDir(t)
	for name, argv := range map[string][]string{
		"inside":  {filepath.Join(dir, "sleep"), "60"},
		"shell":   {"/bin/sh", "-c", "sleep 60"},
		"link":    {filepath.Join(dir, "sh"), "-c", "sleep 60"},
		"dir":     {filepath.Join(dir, "sub")},
		"missing": {filepath.Join(dir, "nothing")},
	} {
		require.NoError(t, s.CreateNodeCommand(ctx, &catalog.NodeCommand{Node: "n1", Name: name, Enabled: true, Argv: catalog.NewJSON(argv)}))
	}
	log, logs := newLogger()
	cfg := fastConfig("n1")
	cfg.Logger = log
	cfg.Commands = s
	cfg.CommandsDir = dir
	cfg.CommandsInterval = 30 * time.Millisecond
	sup, err := monitor.NewSupervisor(cfg, s)
	require.NoError(t, err)
	stop := started(t, sup)
	defer func() { _ = stop() }()

	within(t, 20*time.Second, "the command inside the directory runs", func() bool {
		r := serviceRow(t, s, "n1", "inside")
		return r != nil && r.Status == catalog.ServiceRunning && r.PID != 0 && alive(r.PID)
	})
	within(t, 20*time.Second, "the others are recorded as not run", func() bool {
		for _, name := range []string{"shell", "link", "dir", "missing"} {
			if r := serviceRow(t, s, "n1", name); r == nil || r.Status != catalog.ServiceFailed {
				return false
			}
		}
		return true
	})
	require.Contains(t, serviceRow(t, s, "n1", "shell").LastError, "outside this node's catalog commands directory")
	sh, err := filepath.EvalSymlinks("/bin/sh")
	require.NoError(t, err)
	require.Contains(t, serviceRow(t, s, "n1", "link").LastError, "("+sh+") is outside", "a link is followed")
	require.Contains(t, serviceRow(t, s, "n1", "dir").LastError, "not a regular file")
	require.Contains(t, serviceRow(t, s, "n1", "missing").LastError, "no such file")
	time.Sleep(5 * cfg.CommandsInterval) // several passes
	require.Equal(t, 1, strings.Count(logs.String(), `"msg":"catalog command not run","node":"n1","command":"shell"`), "logged once, not at every pass")
	for _, name := range []string{"shell", "link"} {
		require.Zero(t, serviceRow(t, s, "n1", name).PID)
	}
}

// fixedCommands is a catalog whose rows are given as they are, unchecked
// (as rows written by an older or another program would be).
type fixedCommands []catalog.NodeCommand

func (f fixedCommands) ListNodeCommands(context.Context, string) ([]catalog.NodeCommand, error) {
	return f, nil
}

// TestInvalidCatalogRowsAreNotRun: the monitor checks the rows it reads
// before running them: one that passes a WEIR_ setting (the node's secrets)
// or names its executable by a relative path is not run.
func TestInvalidCatalogRowsAreNotRun(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	dir := commandsDir(t)
	t.Chdir(dir)
	sleep := filepath.Join(dir, "sleep")
	t.Setenv("WEIR_ADMIN_TOKEN", "s3cret")
	cfg := fastConfig("n1")
	cfg.Commands = fixedCommands{
		{ID: 1, Node: "n1", Name: "fine", Enabled: true, Argv: catalog.NewJSON([]string{sleep, "60"})},
		{ID: 2, Node: "n1", Name: "secrets", Enabled: true, Argv: catalog.NewJSON([]string{sleep, "60"}), Env: catalog.NewJSON([]string{"WEIR_ADMIN_TOKEN"})},
		{ID: 3, Node: "n1", Name: "relative", Enabled: true, Argv: catalog.NewJSON([]string{"sleep", "60"})},
		{ID: 4, Node: "n1", Name: "Bad Name", Enabled: true, Argv: catalog.NewJSON([]string{sleep, "60"})},
	}
	cfg.CommandsDir = dir
	cfg.CommandsInterval = 30 * time.Millisecond
	sup, err := monitor.NewSupervisor(cfg, s)
	require.NoError(t, err)
	stop := started(t, sup)
	defer func() { _ = stop() }()
	within(t, 20*time.Second, "the valid row runs, the others are recorded as invalid", func() bool {
		r := serviceRow(t, s, "n1", "fine")
		if r == nil || r.Status != catalog.ServiceRunning || r.PID == 0 {
			return false
		}
		for _, name := range []string{"secrets", "relative"} {
			if r := serviceRow(t, s, "n1", name); r == nil || r.Status != catalog.ServiceFailed || !strings.Contains(r.LastError, "invalid command") {
				return false
			}
		}
		return true
	})
	list, err := s.ListServices(context.Background(), "n1")
	require.NoError(t, err)
	require.Len(t, list, 3, "the row without a service name shows nowhere")
}

func TestCatalogCommandsNeedTheirDirectory(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	cfg := fastConfig("n1")
	cfg.Commands = s
	_, err := monitor.NewSupervisor(cfg, s)
	var ve *catalog.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "commands_dir", ve.Field)
	cfg.CommandsDir = filepath.Join(t.TempDir(), "none")
	_, err = monitor.NewSupervisor(cfg, s)
	require.ErrorIs(t, err, os.ErrNotExist)
	cfg.CommandsDir = "/bin/sh"
	_, err = monitor.NewSupervisor(cfg, s)
	require.ErrorAs(t, err, &ve)
}
