package catalog_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func nodeCommand(node, name string, argv ...string) *catalog.NodeCommand {
	return &catalog.NodeCommand{Node: node, Name: name, Argv: catalog.NewJSON(argv), Enabled: true}
}

func TestNodeCommandsStoreListAndDelete(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		sync := nodeCommand("w1", "sync", "/usr/bin/rsync", "--daemon", "--no-detach")
		sync.Env = catalog.NewJSON([]string{"RSYNC_PASSWORD"})
		require.NoError(t, s.CreateNodeCommand(ctx, sync))
		require.NotZero(t, sync.ID)
		all := nodeCommand(catalog.NodeCommandAllNodes, "exporter", "/opt/exporter")
		require.NoError(t, s.CreateNodeCommand(ctx, all))
		require.NoError(t, s.CreateNodeCommand(ctx, nodeCommand("w2", "sync", "/bin/true")), "names are per node")

		names := func(node string) []string {
			cs, err := s.ListNodeCommands(ctx, node)
			require.NoError(t, err)
			var out []string
			for _, c := range cs {
				out = append(out, c.Node+"/"+c.Name)
			}
			return out
		}
		require.Equal(t, []string{"w1/sync", "*/exporter", "w2/sync"}, names(""))
		require.Equal(t, []string{"w1/sync", "*/exporter"}, names("w1"))
		require.Equal(t, []string{"*/exporter"}, names("w3"))
		got, err := s.GetNodeCommand(ctx, sync.ID)
		require.NoError(t, err)
		require.Equal(t, []string{"/usr/bin/rsync", "--daemon", "--no-detach"}, got.Argv.V)
		require.Equal(t, []string{"RSYNC_PASSWORD"}, got.Env.V)

		for _, c := range []*catalog.NodeCommand{
			nodeCommand("w1", "sync", "/bin/false"),                        // same node, same name
			nodeCommand("w1", "exporter", "/bin/false"),                    // taken by the command for every node
			nodeCommand(catalog.NodeCommandAllNodes, "sync", "/bin/false"), // taken on w1 and w2
		} {
			err := s.CreateNodeCommand(ctx, c)
			require.True(t, errors.Is(err, catalog.ErrConflict), "%s/%s: %v", c.Node, c.Name, err)
		}
		require.Len(t, names(""), 3, "nothing stored by a refused create")

		require.NoError(t, s.DeleteNodeCommand(ctx, sync.ID))
		require.ErrorIs(t, s.DeleteNodeCommand(ctx, sync.ID), catalog.ErrNotFound)
		_, err = s.GetNodeCommand(ctx, sync.ID)
		require.ErrorIs(t, err, catalog.ErrNotFound)
		require.Equal(t, []string{"*/exporter"}, names("w1"))
	})
}

func TestNodeCommandValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		c     *catalog.NodeCommand
		field string
	}{
		{"bad name", nodeCommand("w1", "Sync Job", "/bin/true"), "name"},
		{"bad node", nodeCommand("w 1", "sync", "/bin/true"), "node"},
		{"no argv", nodeCommand("w1", "sync"), "argv"},
		{"relative executable", nodeCommand("w1", "sync", "rsync"), "argv[0]"},
		{"a shell string is not a path", nodeCommand("w1", "sync", "/bin/sh -c 'rm -rf /'"), "argv[0]"},
		{"unclean path", nodeCommand("w1", "sync", "/usr/bin/../bin/rsync"), "argv[0]"},
		{"NUL in an argument", nodeCommand("w1", "sync", "/bin/echo", "a\x00b"), "argv[1]"},
		{"env value instead of a name", func() *catalog.NodeCommand {
			c := nodeCommand("w1", "sync", "/bin/true")
			c.Env = catalog.NewJSON([]string{"PASSWORD=hunter2"})
			return c
		}(), "env[0]"},
		{"one of Weir's own settings", func() *catalog.NodeCommand {
			c := nodeCommand("w1", "sync", "/bin/true")
			c.Env = catalog.NewJSON([]string{"LANG", "WEIR_ADMIN_TOKEN"})
			return c
		}(), "env[1]"},
		{"Weir's own settings in any case", func() *catalog.NodeCommand {
			c := nodeCommand("w1", "sync", "/bin/true")
			c.Env = catalog.NewJSON([]string{"weir_catalog_dsn"})
			return c
		}(), "env[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ve *catalog.ValidationError
			require.ErrorAs(t, tc.c.Validate(), &ve)
			require.Equal(t, tc.field, ve.Field)
		})
	}
	require.NoError(t, nodeCommand(catalog.NodeCommandAllNodes, "exporter.v2", "/opt/exporter", "--port", "9100").Validate())
	ok := nodeCommand("w1", "sync", "/bin/true")
	ok.Env = catalog.NewJSON([]string{"NOT_WEIR_X", "WEIRD"})
	require.NoError(t, ok.Validate(), "only the WEIR_ prefix is reserved")
}
