package dispatcher_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
	"github.com/weirdata/weir/dispatcher"
)

func TestUnauthenticatedCallsAreRefusedAndAudited(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		write(t, e.src, "a.csv", "x")
		ctx := e.ctx
		u, err := s.GetUserByName(ctx, "reader")
		require.NoError(t, err)
		revoked, tok, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: u.ID, Name: "revoked"})
		require.NoError(t, err)
		require.NoError(t, s.RevokeToken(ctx, tok.ID))
		e.tokens["revoked"] = revoked
		soon := s.Now().Add(time.Hour)
		expired, _, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: u.ID, Name: "expired", ExpiresAt: &soon})
		require.NoError(t, err)
		e.tokens["expired"] = expired
		s.SetClock(func() time.Time { return time.Now().Add(2 * time.Hour) })

		body := `{"system":"src","args":{"path":"."}}`
		cases := []struct {
			name   string
			header string
			reason string
		}{
			{"no header", "", "no token given"},
			{"basic auth", "Basic YWRtaW46YWRtaW4=", "Bearer"},
			{"empty bearer", "Bearer ", "Bearer"},
			{"unknown token", "Bearer weir_notatokenatallnotatokenatall", "unknown token"},
			{"revoked", "Bearer " + revoked, "revoked"},
			{"expired", "Bearer " + expired, "expired"},
		}
		for _, c := range cases {
			req, err := http.NewRequest(http.MethodPost, e.srv.URL+dispatcher.CommandsPath+"/count", strings.NewReader(body))
			require.NoError(t, err)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, c.name)
			require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer", c.name)

			a := e.lastAudit()
			require.Equal(t, catalog.AuditUnauthenticated, a.Outcome, c.name)
			require.Equal(t, http.StatusUnauthorized, a.Status, c.name)
			require.Equal(t, "dispatcher.count", a.Action, c.name)
			require.Empty(t, a.Actor, c.name)
			require.Nil(t, a.TokenID, c.name)
			require.Contains(t, a.Detail, c.reason, c.name)
			require.Equal(t, "127.0.0.1", a.ClientIP, c.name)
			require.Equal(t, testNode, a.Node, c.name)
		}
		r := e.post("", "count", body)
		require.Equal(t, dispatcher.CodeUnauthenticated, r.Err.Code)
		require.Len(t, e.audit(), len(cases)+1)
		e.noSecrets()

		// An unauthenticated caller does not even learn which commands exist.
		r = e.post("", "rm", `{}`)
		require.Equal(t, http.StatusUnauthorized, r.Status)
		r = e.do(http.MethodGet, dispatcher.CommandsPath, "", "", nil)
		require.Equal(t, http.StatusUnauthorized, r.Status)
	})
}

func TestEntitlements(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		write(t, e.src, "a.csv", "abc")
		write(t, e.dst, "b.csv", "abcd")
		d := e.deliver("2026-11-20", map[string]string{"f.csv": "hello"})

		cases := []struct {
			user, cmd, body string
			want            int
			resource        string
		}{
			{"reader", "count", `{"system":"src"}`, 200, ""},
			{"reader", "ls", `{"system":"src"}`, 200, ""},
			{"reader", "probe", `{"system":"src"}`, 200, ""},
			{"reader", "count", `{"system":"dst"}`, 403, "system:dst"},
			{"reader", "ls", `{"system":"dst"}`, 403, "system:dst"},
			{"reader", "probe", `{"system":"dst"}`, 403, "system:dst"},
			{"nobody", "count", `{"system":"src"}`, 403, "system:src"},
			{"netonly", "count", `{"system":"src"}`, 403, "system:src"}, // from 127.0.0.1, outside 10.0.0.0/8
			{"admin", "count", `{"system":"dst"}`, 200, ""},
			// verify needs read on the run's mapping, not on its systems.
			{"reader", "verify", `{"args":{"run_id":"` + d.run.ID + `"}}`, 200, ""},
			{"nobody", "verify", `{"args":{"run_id":"` + d.run.ID + `"}}`, 403, "mapping:m"},
			{"netonly", "verify", `{"args":{"run_id":"` + d.run.ID + `"}}`, 403, "mapping:m"},
			// A system that does not exist is refused for lack of entitlement first: no existence leak.
			{"reader", "count", `{"system":"secret"}`, 403, "system:secret"},
			{"admin", "count", `{"system":"secret"}`, 404, ""},
		}
		for _, c := range cases {
			r := e.post(c.user, c.cmd, c.body)
			require.Equal(t, c.want, r.Status, "%s %s %s: %s", c.user, c.cmd, c.body, r.Raw)
			a := e.lastAudit()
			require.Equal(t, c.user, a.Actor)
			require.NotNil(t, a.TokenID)
			require.Equal(t, "dispatcher."+c.cmd, a.Action)
			require.Equal(t, c.want, a.Status)
			if c.want == 403 {
				require.Equal(t, dispatcher.CodeForbidden, r.Err.Code)
				require.Contains(t, r.Err.Message, c.resource)
				require.Equal(t, catalog.AuditForbidden, a.Outcome)
			}
			if c.want == 200 {
				require.Equal(t, catalog.AuditOK, a.Outcome)
			}
		}
		e.noSecrets()
	})
}

func TestUnknownCommandsAndMethods(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		for _, name := range []string{"rm", "sh", "exec", "count;rm"} {
			r := e.post("admin", name, `{"system":"src"}`)
			require.Equal(t, http.StatusNotFound, r.Status, name)
			require.Equal(t, dispatcher.CodeUnknownCommand, r.Err.Code)
			require.Equal(t, []string{"count", "ls", "probe", "verify"}, r.Err.Known)
			require.Contains(t, r.Err.Message, "count, ls, probe, verify")
			a := e.lastAudit()
			require.Equal(t, catalog.AuditRejected, a.Outcome)
			require.Equal(t, "dispatcher."+name, a.Action)
		}
		r := e.do(http.MethodGet, dispatcher.CommandsPath+"/count", "admin", "", nil)
		require.Equal(t, http.StatusMethodNotAllowed, r.Status)
		require.Equal(t, dispatcher.CodeMethodNotAllowed, r.Err.Code)
		require.Equal(t, http.StatusMethodNotAllowed, e.lastAudit().Status, "refused methods are audited too")

		r = e.do(http.MethodGet, "/agent/v1/nothing", "admin", "", nil)
		require.Equal(t, http.StatusNotFound, r.Status)
		require.Equal(t, dispatcher.CodeNotFound, r.Err.Code)

		cmds, err := e.client("reader").Commands(e.ctx)
		require.NoError(t, err)
		require.Len(t, cmds, 4)
		require.Equal(t, "count", cmds[0].Name)
		require.Equal(t, "path", cmds[0].Args[0].Name)

		r = e.do(http.MethodGet, dispatcher.HealthPath, "", "", nil)
		require.Equal(t, http.StatusOK, r.Status)
		require.Contains(t, string(r.Raw), testNode)
	})
}

func TestBadRequests(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s, withConfig(func(c *dispatcher.AgentConfig) { c.MaxBodyBytes = 1024 }))
		write(t, e.src, "a.csv", "abc")
		d := e.deliver("2026-11-20", map[string]string{"f.csv": "hello"})
		cases := []struct {
			name, cmd, body string
			status          int
			code, field     string
			msg             string
		}{
			{"empty body", "count", ``, 400, dispatcher.CodeBadRequest, "", "body is empty"},
			{"malformed json", "count", `{"system":`, 400, dispatcher.CodeBadRequest, "", "not valid JSON"},
			{"trailing data", "count", `{"system":"src"} {}`, 400, dispatcher.CodeBadRequest, "", "not valid JSON"},
			{"array body", "count", `["src"]`, 400, dispatcher.CodeBadRequest, "", "must be a JSON object"},
			{"unknown field", "count", `{"system":"src","sytem":"x"}`, 400, dispatcher.CodeBadRequest, "sytem", `unknown field "sytem"`},
			{"system not a string", "count", `{"system":7}`, 400, dispatcher.CodeInvalid, "system", "must be a string"},
			{"missing system", "count", `{"args":{}}`, 400, dispatcher.CodeInvalid, "system", "is required"},
			{"bad system name", "count", `{"system":"a b"}`, 400, dispatcher.CodeInvalid, "system", ""},
			{"args not an object", "count", `{"system":"src","args":"path=."}`, 400, dispatcher.CodeInvalid, "args", "JSON object"},
			{"unknown argument", "count", `{"system":"src","args":{"path":".","recursive":true}}`, 400, dispatcher.CodeUnknownArgument, "args.recursive", "path, format, options, table, query"},
			{"shell in argument name", "ls", `{"system":"src","args":{"cmd":"rm -rf /"}}`, 400, dispatcher.CodeUnknownArgument, "args.cmd", ""},
			{"path not a string", "count", `{"system":"src","args":{"path":["a"]}}`, 400, dispatcher.CodeInvalid, "args.path", "must be a string, got array"},
			{"limit not an integer", "ls", `{"system":"src","args":{"limit":"ten"}}`, 400, dispatcher.CodeInvalid, "args.limit", "must be an integer"},
			{"limit fractional", "ls", `{"system":"src","args":{"limit":1.5}}`, 400, dispatcher.CodeInvalid, "args.limit", "got number 1.5"},
			{"limit negative", "ls", `{"system":"src","args":{"limit":-1}}`, 400, dispatcher.CodeInvalid, "args.limit", "between 1 and 10000"},
			{"limit too large", "ls", `{"system":"src","args":{"limit":10001}}`, 400, dispatcher.CodeInvalid, "args.limit", "between 1 and 10000"},
			{"count_files not a bool", "probe", `{"system":"src","args":{"count_files":"yes"}}`, 400, dispatcher.CodeInvalid, "args.count_files", "true or false"},
			{"path and table", "count", `{"system":"src","args":{"path":"a","table":"t"}}`, 400, dispatcher.CodeInvalid, "args", "one of path"},
			{"table with control", "count", `{"system":"src","args":{"table":"t\u0007"}}`, 400, dispatcher.CodeInvalid, "args.table", "control"},
			{"query not a select", "count", `{"system":"src","args":{"query":"DELETE FROM t"}}`, 400, dispatcher.CodeInvalid, "args.query", "SELECT"},
			{"two statements", "count", `{"system":"src","args":{"query":"SELECT 1; DROP TABLE t"}}`, 400, dispatcher.CodeInvalid, "args.query", "single statement"},
			{"bad glob", "count", `{"system":"src","args":{"path":"a/[x"}}`, 400, dispatcher.CodeInvalid, "args.path", "glob"},
			{"run_id missing", "verify", `{"args":{}}`, 400, dispatcher.CodeInvalid, "args.run_id", "required"},
			{"run_id not digits", "verify", `{"args":{"run_id":"12345678901234567890123x"}}`, 400, dispatcher.CodeInvalid, "args.run_id", "digits"},
			{"run_id short", "verify", `{"args":{"run_id":"123"}}`, 400, dispatcher.CodeInvalid, "args.run_id", "24 digits"},
			{"manifest elsewhere", "verify", `{"args":{"run_id":"` + d.run.ID + `","manifest":"cloud"}}`, 400, dispatcher.CodeInvalid, "args.manifest", `"catalog" or "target"`},
			{"verify other system", "verify", `{"system":"src","args":{"run_id":"` + d.run.ID + `"}}`, 400, dispatcher.CodeInvalid, "system", "delivers to system dst"},
			{"unknown run", "verify", `{"args":{"run_id":"000000000000000000000001"}}`, 404, dispatcher.CodeNotFound, "", "no run"},
			{"oversized body", "count", `{"system":"src","args":{"path":"` + strings.Repeat("a", 2000) + `"}}`, 413, dispatcher.CodeTooLarge, "", "larger than 1024 bytes"},
		}
		for _, c := range cases {
			before := len(e.audit())
			r := e.post("admin", c.cmd, c.body)
			require.Equal(t, c.status, r.Status, "%s: %s", c.name, r.Raw)
			require.Equal(t, c.code, r.Err.Code, c.name)
			if c.field != "" {
				require.Equal(t, c.field, r.Err.Field, c.name)
			}
			require.Contains(t, r.Err.Message, c.msg, c.name)
			es := e.audit()
			require.Len(t, es, before+1, "%s: every refused call is audited once", c.name)
			a := es[len(es)-1]
			require.Equal(t, catalog.AuditRejected, a.Outcome, c.name)
			require.Equal(t, c.status, a.Status, c.name)
			require.Equal(t, "admin", a.Actor, c.name)
			require.NotEmpty(t, a.Detail, c.name)
		}
		// Unknown arguments are audited by name only, never by value.
		r := e.post("admin", "ls", `{"system":"src","args":{"cmd":"rm -rf /","path":"."}}`)
		require.Equal(t, 400, r.Status)
		a := e.lastAudit()
		require.Contains(t, a.Args, "cmd")
		require.NotContains(t, a.Args, "rm -rf")

		r = e.do(http.MethodPost, dispatcher.CommandsPath+"/count", "admin", "text/plain", []byte(`{"system":"src"}`))
		require.Equal(t, http.StatusUnsupportedMediaType, r.Status)
		require.Equal(t, dispatcher.CodeUnsupportedMedia, r.Err.Code)
		e.noSecrets()
	})
}

func TestPathsConfinedToTheRoot(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		write(t, e.src, "in/a.csv", "abc")
		write(t, e.outside, "secret.txt", "top secret")
		require.NoError(t, os.Symlink(filepath.Join(e.outside, "secret.txt"), filepath.Join(e.src, "leak.txt")))
		require.NoError(t, os.Symlink(e.outside, filepath.Join(e.src, "leakdir")))
		require.NoError(t, os.MkdirAll(filepath.Join(e.src, "tree"), 0o755))
		write(t, e.src, "tree/ok.csv", "ok")
		require.NoError(t, os.Symlink("../../"+filepath.Base(e.outside)+"/secret.txt", filepath.Join(e.src, "tree", "rel-leak.txt")))

		up := []struct {
			cmd, path, code string
		}{
			{"count", "../", dispatcher.CodePathEscape},
			{"count", "..", dispatcher.CodePathEscape},
			{"count", "in/../../x", dispatcher.CodePathEscape},
			{"count", "/etc", dispatcher.CodePathEscape},
			{"ls", "/etc/passwd", dispatcher.CodePathEscape},
			{"ls", "../" + filepath.Base(e.outside), dispatcher.CodePathEscape},
			{"ls", `in\..\..\x`, dispatcher.CodeInvalid},
			{"ls", "in/\x00", dispatcher.CodeInvalid},
			{"ls", ".weir-staging/x", dispatcher.CodeInvalid},
			{"count", "out/_weir_manifest.json", dispatcher.CodeInvalid},
			// Symbolic links that lead out are found as the system is read.
			{"count", "leak.txt", dispatcher.CodePathEscape},
			{"ls", "leak.txt", dispatcher.CodePathEscape},
			{"ls", "leakdir/secret.txt", dispatcher.CodePathEscape},
			{"count", "tree", dispatcher.CodePathEscape},
			{"ls", "tree/*", dispatcher.CodePathEscape},
		}
		for _, c := range up {
			body, err := jsonBody("src", map[string]any{"path": c.path})
			require.NoError(t, err)
			r := e.post("admin", c.cmd, body)
			require.Equal(t, http.StatusBadRequest, r.Status, "%s %q: %s", c.cmd, c.path, r.Raw)
			require.Equal(t, c.code, r.Err.Code, "%s %q: %s", c.cmd, c.path, r.Raw)
			require.NotContains(t, string(r.Raw), "top secret")
			require.NotContains(t, string(r.Raw), e.outside, "the answer does not reveal absolute paths")
			require.Equal(t, catalog.AuditRejected, e.lastAudit().Outcome)
		}
		// Inside the root, the same commands work.
		res, err := e.client("admin").Count(e.ctx, "src", dispatcher.CountArgs{Path: "in"})
		require.NoError(t, err)
		require.Equal(t, int64(1), *res.Files)
	})
}

func jsonBody(system string, args map[string]any) (string, error) {
	b, err := json.Marshal(map[string]any{"system": system, "args": args})
	return string(b), err
}

func TestEveryCallIsAudited(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		write(t, e.src, "a.csv", "abc")
		c := e.client("reader")
		_, err := c.Count(e.ctx, "src", dispatcher.CountArgs{Path: "a.csv"})
		require.NoError(t, err)
		_, err = c.Ls(e.ctx, "src", dispatcher.LsArgs{})
		require.NoError(t, err)
		_, err = c.Probe(e.ctx, "src", dispatcher.ProbeArgs{})
		require.NoError(t, err)
		_, err = c.Count(e.ctx, "dst", dispatcher.CountArgs{})
		var ae *dispatcher.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, http.StatusForbidden, ae.Status)
		_, err = dispatcher.NewClient(e.srv.URL, "weir_wrongwrongwrongwrong").Ls(e.ctx, "src", dispatcher.LsArgs{})
		require.ErrorIs(t, err, catalog.ErrUnauthenticated)
		_, err = e.client("admin").Count(e.ctx, "gone", dispatcher.CountArgs{})
		require.ErrorIs(t, err, catalog.ErrNotFound)

		es := e.audit()
		require.Len(t, es, 6)
		want := []struct{ action, actor, target, outcome, args string }{
			{"dispatcher.count", "reader", "system:src", catalog.AuditOK, `{"path":"a.csv"}`},
			{"dispatcher.ls", "reader", "system:src", catalog.AuditOK, `{"path":".","limit":1000}`},
			{"dispatcher.probe", "reader", "system:src", catalog.AuditOK, `{}`},
			{"dispatcher.count", "reader", "system:dst", catalog.AuditForbidden, `{"path":"."}`},
			{"dispatcher.ls", "", "", catalog.AuditUnauthenticated, ``},
			{"dispatcher.count", "admin", "system:gone", catalog.AuditRejected, `{"path":"."}`},
		}
		for i, w := range want {
			a := es[i]
			require.Equal(t, w.action, a.Action, i)
			require.Equal(t, w.actor, a.Actor, i)
			require.Equal(t, w.target, a.Target, i)
			require.Equal(t, w.outcome, a.Outcome, i)
			require.Equal(t, w.args, a.Args, i)
			require.Equal(t, testNode, a.Node)
			require.Equal(t, "127.0.0.1", a.ClientIP)
			require.GreaterOrEqual(t, a.DurationMS, int64(0))
			require.WithinDuration(t, time.Now(), a.At, time.Minute)
		}
		require.Contains(t, es[5].Detail, `no system named "gone"`)
		e.noSecrets()
	})
}

func TestServeAndStop(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	e := newEnv(t, s)
	write(t, e.src, "a.csv", "abc")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.agent.Serve(ctx, ln) }()
	require.Equal(t, ln.Addr().String(), waitAddr(t, e.agent))
	res, err := dispatcher.NewClient("http://"+e.agent.Addr(), e.tokens["reader"]).Count(ctx, "src", dispatcher.CountArgs{})
	require.NoError(t, err)
	require.Equal(t, int64(3), *res.Bytes)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	_, err = dispatcher.NewClient("http://"+ln.Addr().String(), e.tokens["reader"]).Count(context.Background(), "src", dispatcher.CountArgs{})
	require.Error(t, err, "the listener is closed")

	// Run on an address in use fails at once.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	a, err := dispatcher.NewAgent(dispatcher.AgentConfig{NodeID: "n2", Listen: busy.Addr().String()}, s, nil)
	require.NoError(t, err)
	require.Error(t, a.Run(context.Background()))

	_, err = dispatcher.NewAgent(dispatcher.AgentConfig{}, s, nil)
	var ve *catalog.ValidationError
	require.True(t, errors.As(err, &ve), "a node id is required: %v", err)
}

func waitAddr(t *testing.T, a *dispatcher.Agent) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for a.Addr() == "" {
		if time.Now().After(deadline) {
			t.Fatal("the agent never listened")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return a.Addr()
}
