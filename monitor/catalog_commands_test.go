package monitor_test

import (
	"context"
	"os"
	"path/filepath"
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
