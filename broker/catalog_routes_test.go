package broker_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

const secretValue = "hunter2-Very-Secret-Passw0rd"

func TestSystemsCRUDStoresSecretsAndNeverReturnsThem(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		var bodies []string
		call := func(r request) response {
			t.Helper()
			resp := e.do(r)
			bodies = append(bodies, resp.String())
			return resp
		}
		create := map[string]any{"name": "warehouse", "kind": "fs", "settings": map[string]string{"root": "/data/wh"},
			"secrets": map[string]string{"password": secretValue}, "max_concurrent_runs": 2}
		r := call(request{Method: http.MethodPost, Path: "/api/v1/systems", Body: create})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		var v broker.SystemView
		r.decode(t, &v)
		require.Equal(t, "warehouse", v.Name)
		require.Equal(t, testRegion, v.Region, "an omitted region is the server's")
		require.Equal(t, 2, v.MaxConcurrentRuns)
		require.Equal(t, []string{"password"}, v.SecretKeys, "the names of secrets are shown, never their values")

		stored, err := s.GetSystem(e.ctx, "warehouse")
		require.NoError(t, err)
		require.Equal(t, secretValue, stored.Secrets.V["password"], "the secret was stored")

		requireError(t, call(request{Method: http.MethodPost, Path: "/api/v1/systems", Body: create}), http.StatusConflict, broker.CodeConflict)

		r = call(request{Method: http.MethodGet, Path: "/api/v1/systems/warehouse"})
		require.Equal(t, http.StatusOK, r.Status)
		r = call(request{Method: http.MethodGet, Path: "/api/v1/systems"})
		require.Equal(t, http.StatusOK, r.Status)
		var list struct{ Systems []broker.SystemView }
		r.decode(t, &list)
		require.Len(t, list.Systems, 4)

		// A GET answer sent back changed is a valid PUT; omitted secrets stay.
		var got map[string]any
		call(request{Method: http.MethodGet, Path: "/api/v1/systems/warehouse"}).decode(t, &got)
		got["max_concurrent_runs"] = 5
		r = call(request{Method: http.MethodPut, Path: "/api/v1/systems/warehouse", Body: got})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		r.decode(t, &v)
		require.Equal(t, 5, v.MaxConcurrentRuns)
		stored, err = s.GetSystem(e.ctx, "warehouse")
		require.NoError(t, err)
		require.Equal(t, secretValue, stored.Secrets.V["password"], "secrets omitted from a PUT stay")

		rotated := secretValue + "-rotated"
		r = call(request{Method: http.MethodPut, Path: "/api/v1/systems/warehouse", Body: map[string]any{"kind": "fs", "region": testRegion,
			"settings": map[string]string{"root": "/data/wh"}, "secrets": map[string]string{"password": rotated, "user": "loader"}}})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		r.decode(t, &v)
		require.Equal(t, []string{"password", "user"}, v.SecretKeys)
		stored, err = s.GetSystem(e.ctx, "warehouse")
		require.NoError(t, err)
		require.Equal(t, rotated, stored.Secrets.V["password"])

		d := requireError(t, call(request{Method: http.MethodPut, Path: "/api/v1/systems/warehouse", Body: map[string]any{"name": "renamed", "kind": "fs", "settings": map[string]string{"root": "/x"}}}),
			http.StatusBadRequest, broker.CodeInvalid)
		require.Equal(t, "name", d.Field)
		requireError(t, call(request{Method: http.MethodPut, Path: "/api/v1/systems/nope", Body: map[string]any{"kind": "fs", "settings": map[string]string{"root": "/x"}}}),
			http.StatusNotFound, broker.CodeNotFound)

		for _, b := range bodies {
			require.NotContains(t, b, secretValue, "a secret leaked into an answer")
		}
		require.NotContains(t, e.logs.String(), secretValue, "a secret leaked into the log")

		r = call(request{Method: http.MethodDelete, Path: "/api/v1/systems/warehouse"})
		require.Equal(t, http.StatusNoContent, r.Status, r.String())
		requireError(t, call(request{Method: http.MethodGet, Path: "/api/v1/systems/warehouse"}), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, call(request{Method: http.MethodDelete, Path: "/api/v1/systems/warehouse"}), http.StatusNotFound, broker.CodeNotFound)
		d = requireError(t, call(request{Method: http.MethodDelete, Path: "/api/v1/systems/src"}), http.StatusConflict, broker.CodeConflict)
		require.Contains(t, d.Message, "trades", "the refusal names the mappings that use the system")
	})
}

func TestSystemsRefuseBadInputAndCreateNothing(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		ok := map[string]any{"name": "new-sys", "kind": "fs", "settings": map[string]string{"root": "/data/new"}}
		cases := []struct {
			name   string
			req    request
			status int
			code   string
			field  string
		}{
			{"malformed JSON", request{Body: `{"name":`}, 400, broker.CodeBadRequest, ""},
			{"unknown field", request{Body: `{"name":"x","kind":"fs","settings":{"root":"/x"},"password":"p"}`}, 400, broker.CodeBadRequest, ""},
			{"relative root", request{Body: map[string]any{"name": "new-sys", "kind": "fs", "settings": map[string]string{"root": "data"}}}, 400, broker.CodeInvalid, "settings.root"},
			{"unknown kind", request{Body: map[string]any{"name": "new-sys", "kind": "ftp"}}, 400, broker.CodeInvalid, "kind"},
			{"bad name", request{Body: map[string]any{"name": "Bad Name", "kind": "null"}}, 400, broker.CodeInvalid, "name"},
			{"negative limit", request{Body: map[string]any{"name": "new-sys", "kind": "null", "max_concurrent_runs": -1}}, 400, broker.CodeInvalid, "max_concurrent_runs"},
			{"secrets not strings", request{Body: `{"name":"new-sys","kind":"null","secrets":{"password":1}}`}, 400, broker.CodeBadRequest, ""},
			{"no manage entitlement", request{Token: e.tokens["viewer"], Body: ok}, 403, broker.CodeForbidden, ""},
			{"no token", request{Token: "-", Body: ok}, 401, broker.CodeUnauthenticated, ""},
			{"wrong content type", request{ContentType: "application/x-www-form-urlencoded", Body: "name=new-sys"}, 415, broker.CodeUnsupportedMedia, ""},
			{"oversized", request{Body: `{"name":"new-sys","kind":"null","settings":{"x":"` + strings.Repeat("x", 2<<20) + `"}}`}, 413, broker.CodeTooLarge, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := e.systemCount()
				tc.req.Method, tc.req.Path = http.MethodPost, "/api/v1/systems"
				d := requireError(t, e.do(tc.req), tc.status, tc.code)
				if tc.field != "" {
					require.Equal(t, tc.field, d.Field)
				}
				require.Equal(t, before, e.systemCount(), "nothing was created")
			})
		}
		// Reads need read on the system; a forbidden answer does not tell whether it exists.
		d := requireError(t, e.get("/api/v1/systems/src", "nobody"), http.StatusForbidden, broker.CodeForbidden)
		d2 := requireError(t, e.get("/api/v1/systems/does-not-exist", "nobody"), http.StatusForbidden, broker.CodeForbidden)
		require.Equal(t, strings.ReplaceAll(d.Message, "src", "X"), strings.ReplaceAll(d2.Message, "does-not-exist", "X"))
		r := e.get("/api/v1/systems", "nobody")
		require.Equal(t, http.StatusOK, r.Status)
		require.JSONEq(t, `{"systems":[]}`, r.String(), "a caller sees only the systems it may read")
		r = e.do(request{Method: http.MethodPost, Path: "/api/v1/systems", Body: ok})
		require.Equal(t, http.StatusCreated, r.Status, "the good request passes: %s", r)
	})
}

func TestMappingsCreateVersionReadAndDisable(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		body := map[string]any{
			"name": "daily", "description": "daily copy",
			"source": map[string]any{"system": "src", "path": "daily/{day}"},
			"target": map[string]any{"system": "dst", "path": "in/{day}"},
			"params": []map[string]any{{"name": "day", "type": "date", "required": true}},
		}
		r := e.do(request{Method: http.MethodPost, Path: "/api/v1/mappings", Body: body})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		var m catalog.Mapping
		r.decode(t, &m)
		require.Equal(t, 1, m.Version)
		require.Equal(t, testRegion, m.Region, "the region defaults to the source system's")
		require.True(t, m.Enabled, "a new mapping is enabled unless it says otherwise")
		require.Equal(t, "admin", m.CreatedBy)
		require.Equal(t, catalog.MaxAttemptsDefault, m.MaxAttempts)

		d := requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/mappings", Body: body}), http.StatusConflict, broker.CodeConflict)
		require.Contains(t, d.Message, "exists already")
		_, err := s.GetMappingVersion(e.ctx, "daily", 2)
		require.ErrorIs(t, err, catalog.ErrNotFound, "a refused create stores no version")

		// A GET answer sent back changed makes version 2.
		var got map[string]any
		e.get("/api/v1/mappings/daily", "admin").decode(t, &got)
		got["description"] = "daily copy, v2"
		got["max_attempts"] = 7
		require.NotContains(t, got, "max_hold", "no max_hold: the region's applies")
		got["max_hold"] = "30m"
		r = e.do(request{Method: http.MethodPut, Path: "/api/v1/mappings/daily", Body: got})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		r.decode(t, &m)
		require.Equal(t, 2, m.Version)
		require.Equal(t, 7, m.MaxAttempts)
		require.Equal(t, catalog.Duration(30*time.Minute), m.MaxHold)
		var raw map[string]any
		e.get("/api/v1/mappings/daily", "viewer").decode(t, &raw)
		require.Equal(t, "30m0s", raw["max_hold"], "max_hold reads back as a duration string")
		got = raw // sent back as read: the duration string round-trips

		r = e.get("/api/v1/mappings/daily", "viewer")
		r.decode(t, &m)
		require.Equal(t, 2, m.Version)
		require.Equal(t, "daily copy, v2", m.Description)
		r = e.get("/api/v1/mappings/daily/versions/1", "viewer")
		require.Equal(t, http.StatusOK, r.Status)
		var v1 catalog.Mapping
		r.decode(t, &v1)
		require.Equal(t, "daily copy", v1.Description)
		require.Zero(t, v1.MaxHold, "version 1 set none")
		requireError(t, e.get("/api/v1/mappings/daily/versions/9", "admin"), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, e.get("/api/v1/mappings/daily/versions/x", "admin"), http.StatusBadRequest, broker.CodeBadRequest)
		requireError(t, e.get("/api/v1/mappings/daily/versions/0", "admin"), http.StatusBadRequest, broker.CodeBadRequest)
		requireError(t, e.get("/api/v1/mappings/nope", "admin"), http.StatusNotFound, broker.CodeNotFound)

		r = e.get("/api/v1/mappings", "sub")
		var list struct{ Mappings []catalog.Mapping }
		r.decode(t, &list)
		require.Len(t, list.Mappings, 1, "sub reads trades only")
		require.Equal(t, "trades", list.Mappings[0].Name)
		requireError(t, e.get("/api/v1/mappings/daily", "sub"), http.StatusForbidden, broker.CodeForbidden)

		e.mustSubmit("admin", map[string]any{"mapping": "daily", "params": map[string]any{"day": "2026-11-24"}})
		r = e.do(request{Method: http.MethodDelete, Path: "/api/v1/mappings/daily"})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		r.decode(t, &m)
		require.False(t, m.Enabled)
		require.Equal(t, 3, m.Version, "disabling stores a new version; history stays")
		requireError(t, e.submit("admin", map[string]any{"mapping": "daily", "params": map[string]any{"day": "2026-11-24"}}), http.StatusConflict, broker.CodeConflict)
		requireError(t, e.do(request{Method: http.MethodDelete, Path: "/api/v1/mappings/nope"}), http.StatusNotFound, broker.CodeNotFound)

		// A PUT without "enabled" keeps the mapping disabled; one with it re-enables.
		delete(got, "enabled")
		r = e.do(request{Method: http.MethodPut, Path: "/api/v1/mappings/daily", Body: got})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		r.decode(t, &m)
		require.False(t, m.Enabled)
		got["enabled"] = true
		r = e.do(request{Method: http.MethodPut, Path: "/api/v1/mappings/daily", Body: got})
		r.decode(t, &m)
		require.True(t, m.Enabled)
		require.Equal(t, 5, m.Version)
		require.Equal(t, catalog.Duration(30*time.Minute), m.MaxHold, "kept through versions sent back as read")
	})
}

func TestMappingsRefuseBadInputAndStoreNothing(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.addUser("manager", catalog.RoleOperator, grant{"mapping:*", catalog.ActionManage, nil}, grant{"system:src", catalog.ActionRead, nil})
		mappingCount := func() int {
			ms, err := s.ListMappings(e.ctx)
			require.NoError(t, err)
			n := 0
			for _, m := range ms {
				n += m.Version
			}
			return n
		}
		ok := map[string]any{"name": "new-map", "source": map[string]any{"system": "src", "path": "a"}, "target": map[string]any{"system": "dst", "path": "b"}}
		cases := []struct {
			name   string
			req    request
			status int
			code   string
			field  string
		}{
			{"unknown field inside the source", request{Body: `{"name":"new-map","source":{"system":"src","pth":"a"},"target":{"system":"dst"}}`}, 400, broker.CodeBadRequest, ""},
			{"unknown system", request{Body: map[string]any{"name": "new-map", "source": map[string]any{"system": "ghost"}, "target": map[string]any{"system": "dst"}}}, 400, broker.CodeInvalid, "source.system"},
			{"path escapes the root", request{Body: map[string]any{"name": "new-map", "source": map[string]any{"system": "src", "path": "../../etc"}, "target": map[string]any{"system": "dst"}}}, 400, broker.CodeInvalid, "source.path"},
			{"undeclared parameter in a path", request{Body: map[string]any{"name": "new-map", "source": map[string]any{"system": "src", "path": "{day}"}, "target": map[string]any{"system": "dst"}}}, 400, broker.CodeInvalid, "source.path"},
			{"bad parameter type", request{Body: map[string]any{"name": "new-map", "source": map[string]any{"system": "src"}, "target": map[string]any{"system": "dst"}, "params": []map[string]any{{"name": "d", "type": "datetime"}}}}, 400, broker.CodeInvalid, "params[0].type"},
			{"max_hold not a duration", request{Body: map[string]any{"name": "new-map", "source": map[string]any{"system": "src"}, "target": map[string]any{"system": "dst"}, "max_hold": "8d"}}, 400, broker.CodeInvalid, "max_hold"},
			{"max_hold zero", request{Body: map[string]any{"name": "new-map", "source": map[string]any{"system": "src"}, "target": map[string]any{"system": "dst"}, "max_hold": "0s"}}, 400, broker.CodeInvalid, "max_hold"},
			{"max_hold negative", request{Body: map[string]any{"name": "new-map", "source": map[string]any{"system": "src"}, "target": map[string]any{"system": "dst"}, "max_hold": "-5m"}}, 400, broker.CodeInvalid, "max_hold"},
			{"max_hold beyond 7 days", request{Body: map[string]any{"name": "new-map", "source": map[string]any{"system": "src"}, "target": map[string]any{"system": "dst"}, "max_hold": "169h"}}, 400, broker.CodeInvalid, "max_hold"},
			{"max_hold not a string", request{Body: map[string]any{"name": "new-map", "source": map[string]any{"system": "src"}, "target": map[string]any{"system": "dst"}, "max_hold": 30}}, 400, broker.CodeBadRequest, ""},
			{"existing name", request{Body: map[string]any{"name": "trades", "source": map[string]any{"system": "src"}, "target": map[string]any{"system": "dst"}}}, 409, broker.CodeConflict, ""},
			{"no manage entitlement", request{Token: e.tokens["viewer"], Body: ok}, 403, broker.CodeForbidden, ""},
			{"manager may not read the target system", request{Token: e.tokens["manager"], Body: ok}, 403, broker.CodeForbidden, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := mappingCount()
				tc.req.Method, tc.req.Path = http.MethodPost, "/api/v1/mappings"
				d := requireError(t, e.do(tc.req), tc.status, tc.code)
				if tc.field != "" {
					require.Equal(t, tc.field, d.Field, d.Message)
				}
				require.Equal(t, before, mappingCount(), "no mapping version was stored")
			})
		}
		before := mappingCount()
		requireError(t, e.do(request{Method: http.MethodPut, Path: "/api/v1/mappings/nope", Body: ok}), http.StatusBadRequest, broker.CodeInvalid) // name differs
		requireError(t, e.do(request{Method: http.MethodPut, Path: "/api/v1/mappings/new-map", Body: ok}), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, e.do(request{Method: http.MethodDelete, Path: "/api/v1/mappings/trades", Token: e.tokens["sub"]}), http.StatusForbidden, broker.CodeForbidden)
		require.Equal(t, before, mappingCount())
		r := e.do(request{Method: http.MethodPost, Path: "/api/v1/mappings", Body: ok})
		require.Equal(t, http.StatusCreated, r.Status, "the good request passes: %s", r)
	})
}
