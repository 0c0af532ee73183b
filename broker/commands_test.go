package broker_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestCommandsAreAdminOnlyAndValidated(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.addUser("op", catalog.RoleOperator, grant{"*", catalog.ActionManage, nil})
		good := map[string]any{"name": "sidecar", "node": "w1", "argv": []string{"/usr/bin/rsync", "--daemon", "--no-detach"}, "env": []string{"RSYNC_PASSWORD"}}
		count := func() int {
			cs, err := s.ListNodeCommands(e.ctx, "")
			require.NoError(t, err)
			return len(cs)
		}

		// Not an admin: refused, whatever the other grants.
		for _, user := range []string{"op", "viewer", "sub"} {
			requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/commands", Token: e.tokens[user], Body: good}), http.StatusForbidden, broker.CodeForbidden)
			requireError(t, e.get("/api/v1/commands", user), http.StatusForbidden, broker.CodeForbidden)
		}
		require.Equal(t, http.StatusUnauthorized, e.do(request{Method: http.MethodGet, Path: "/api/v1/commands", Token: "-"}).Status)
		require.Zero(t, count())

		cases := []struct {
			name  string
			body  any
			code  string
			field string
		}{
			{"relative executable", map[string]any{"name": "x", "node": "w1", "argv": []string{"rsync"}}, broker.CodeInvalid, "argv[0]"},
			{"a shell string", map[string]any{"name": "x", "node": "w1", "argv": []string{"/bin/sh -c 'rm -rf /'"}}, broker.CodeInvalid, "argv[0]"},
			{"no argv", map[string]any{"name": "x", "node": "w1"}, broker.CodeInvalid, "argv"},
			{"argv as a string", `{"name":"x","node":"w1","argv":"/bin/true --x"}`, broker.CodeBadRequest, ""},
			{"bad name", map[string]any{"name": "Side Car", "node": "w1", "argv": []string{"/bin/true"}}, broker.CodeInvalid, "name"},
			{"no node", map[string]any{"name": "x", "argv": []string{"/bin/true"}}, broker.CodeInvalid, "node"},
			{"env value", map[string]any{"name": "x", "node": "w1", "argv": []string{"/bin/true"}, "env": []string{"TOKEN=s3cret"}}, broker.CodeInvalid, "env[0]"},
			{"env of Weir's secrets", map[string]any{"name": "x", "node": "w1", "argv": []string{"/bin/true"}, "env": []string{"WEIR_ADMIN_TOKEN"}}, broker.CodeInvalid, "env[0]"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				d := requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/commands", Body: tc.body}), http.StatusBadRequest, tc.code)
				if tc.field != "" {
					require.Equal(t, tc.field, d.Field, d.Message)
				}
				require.Zero(t, count(), "nothing stored")
			})
		}

		r := e.do(request{Method: http.MethodPost, Path: "/api/v1/commands", Body: good})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		var cmd catalog.NodeCommand
		r.decode(t, &cmd)
		require.Equal(t, []string{"/usr/bin/rsync", "--daemon", "--no-detach"}, cmd.Argv.V)
		require.True(t, cmd.Enabled, "enabled unless it says otherwise")
		require.Equal(t, "admin", cmd.CreatedBy)
		requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/commands", Body: good}), http.StatusConflict, broker.CodeConflict)
		all := map[string]any{"name": "exporter", "node": "*", "argv": []string{"/opt/exporter"}}
		require.Equal(t, http.StatusCreated, e.do(request{Method: http.MethodPost, Path: "/api/v1/commands", Body: all}).Status)

		var list struct{ Commands []catalog.NodeCommand }
		e.get("/api/v1/commands?node=w2", "admin").decode(t, &list)
		require.Len(t, list.Commands, 1, "w2 runs the command for every node only")
		require.Equal(t, "exporter", list.Commands[0].Name)
		e.get("/api/v1/commands", "admin").decode(t, &list)
		require.Len(t, list.Commands, 2)

		path := "/api/v1/commands/" + itoa(cmd.ID)
		requireError(t, e.do(request{Method: http.MethodDelete, Path: path, Token: e.tokens["op"]}), http.StatusForbidden, broker.CodeForbidden)
		require.Equal(t, http.StatusOK, e.get(path, "admin").Status)
		require.Equal(t, http.StatusNoContent, e.do(request{Method: http.MethodDelete, Path: path}).Status)
		requireError(t, e.do(request{Method: http.MethodDelete, Path: path}), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, e.get(path, "admin"), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, e.get("/api/v1/commands/x", "admin"), http.StatusBadRequest, broker.CodeBadRequest)
		require.Equal(t, 1, count())
	})
}
