package broker_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestUnknownRoutesAndMethodsAnswerJSONErrors(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		requireError(t, e.get("/api/v1/nothing-here", "admin"), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, e.do(request{Method: http.MethodGet, Path: "/nothing-here", Token: "-"}), http.StatusNotFound, broker.CodeNotFound)
		r := e.do(request{Method: http.MethodDelete, Path: "/api/v1/runs"})
		requireError(t, r, http.StatusMethodNotAllowed, broker.CodeMethodNotAllowed)
		require.Contains(t, r.Header.Get("Allow"), http.MethodGet)
		requireError(t, e.do(request{Method: http.MethodGet, Path: "/api/v1/nothing-here", Token: "-"}), http.StatusNotFound, broker.CodeNotFound)
		requireError(t, e.do(request{Method: http.MethodPut, Path: "/api/v1/runs/000000000000000000000000", Token: "-"}), http.StatusMethodNotAllowed, broker.CodeMethodNotAllowed)
	})
}

func TestPanicsAndCatalogFailuresAnswer500WithARequestIDAndNoDetails(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		fs := &failingStore{Store: s, err: errors.New("dial tcp 10.9.9.9:5432: password authentication failed for user weir_secret_user")}
		e.rewire(fs)
		e.srv.Echo().GET("/api/v1/boom", func(echo.Context) error { panic("kaboom") })

		r := e.get("/api/v1/boom", "admin")
		d := requireError(t, r, http.StatusInternalServerError, broker.CodeInternal)
		require.NotEmpty(t, d.RequestID)
		require.Equal(t, d.RequestID, r.Header.Get(broker.HeaderRequestID))
		require.NotContains(t, d.Message, "kaboom")
		require.Contains(t, e.logs.String(), "kaboom")
		require.Contains(t, e.logs.String(), d.RequestID)

		r = e.get("/api/v1/systems", "admin")
		d = requireError(t, r, http.StatusInternalServerError, broker.CodeInternal)
		require.NotContains(t, r.String(), "weir_secret_user", "the cause stays in the log")
		require.Contains(t, d.Message, d.RequestID)
		require.Contains(t, e.logs.String(), "weir_secret_user")

		// The server keeps serving.
		require.Equal(t, http.StatusOK, e.get("/api/v1/whoami", "admin").Status)
	})
}

// failingStore fails ListSystems, as a broken catalog would.
type failingStore struct {
	*catalog.Store
	err error
}

func (f *failingStore) ListSystems(context.Context) ([]catalog.System, error) { return nil, f.err }

func TestEveryRequestIsLoggedOnceWithoutItsToken(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		v := e.mustSubmit("sub", tradesRequest("2026-11-20"))
		e.get("/api/v1/runs/"+v.ID, "sub")
		e.do(request{Method: http.MethodGet, Path: "/api/v1/whoami", Token: "weir_wrongwrongwrongwrong"})
		e.do(request{Method: http.MethodGet, Path: "/healthz", Token: "-", Header: map[string]string{broker.HeaderRequestID: "trace-123"}})

		var lines []map[string]any
		sc := bufio.NewScanner(strings.NewReader(e.logs.String()))
		for sc.Scan() {
			var m map[string]any
			require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
			if m["msg"] == "http request" {
				lines = append(lines, m)
			}
		}
		require.Len(t, lines, 4)
		require.Equal(t, "POST", lines[0]["method"])
		require.Equal(t, "/api/v1/runs", lines[0]["route"])
		require.Equal(t, float64(201), lines[0]["status"])
		require.Equal(t, "sub", lines[0]["user"])
		require.Contains(t, lines[0], "duration")
		require.Equal(t, "/api/v1/runs/:run_id", lines[1]["route"])
		require.Equal(t, v.ID, lines[1]["run_id"], "a request about a run carries its run_id")
		require.NotContains(t, lines[0], "run_id")
		require.Equal(t, float64(401), lines[2]["status"])
		require.NotContains(t, lines[2], "user")
		require.Equal(t, "trace-123", lines[3]["request_id"], "a sane caller's request id is kept")
		for name, tok := range e.tokens {
			require.NotContains(t, e.logs.String(), tok, "the token of %s reached the log", name)
		}
		require.NotContains(t, e.logs.String(), "weir_wrongwrongwrongwrong")
		require.NotContains(t, e.logs.String(), "Bearer")
	})
}

func TestMaxBodyBytesIsConfigurable(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s, func(c *broker.Config) { c.MaxBodyBytes = 64 })
		body := `{"mapping":"trades","params":{"business_date":"2026-11-20","desk":"` + strings.Repeat("d", 64) + `"}}`
		requireError(t, e.submit("admin", body), http.StatusRequestEntityTooLarge, broker.CodeTooLarge)
		// A body without a declared length is cut off while reading.
		req := request{Method: http.MethodPost, Path: "/api/v1/runs", Body: chunked(body)}
		requireError(t, e.do(req), http.StatusRequestEntityTooLarge, broker.CodeTooLarge)
		require.Equal(t, int64(0), e.runCount())
		e.mustSubmit("admin", `{"mapping":"trades","params":{"business_date":"2026-11-20"}}`)
	})
}

func TestConfigValidateRefusesTrustedProxiesThatAreNotCIDRs(t *testing.T) {
	require.NoError(t, broker.Config{TrustedProxies: []string{"10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8"}}.Validate())
	err := broker.Config{TrustedProxies: []string{"10.0.0.0/8", "proxy.local"}}.Validate()
	var ve *catalog.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "trusted_proxies[1]", ve.Field)
	c := broker.Config{}.WithDefaults()
	require.Equal(t, broker.MaxBodyBytesDefault, c.MaxBodyBytes)
	require.Equal(t, broker.RegionDefault, c.Region)
	require.NotNil(t, c.Logger)
	require.NotNil(t, c.Now)
	require.NotEmpty(t, c.NodeID)
}

func TestNULAndInvalidUTF8AreRefusedAsBadInputNeverAs500(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		cases := []struct {
			name   string
			req    request
			status int
			code   string
			field  string
		}{
			{"NUL in the mapping name", request{Method: http.MethodPost, Path: "/api/v1/runs", Body: `{"mapping":"trades\u0000"}`}, 400, broker.CodeBadRequest, "mapping"},
			{"NUL in a parameter", request{Method: http.MethodPost, Path: "/api/v1/runs", Body: `{"mapping":"trades","params":{"business_date":"2026-11-20","desk":"a\u0000b"}}`}, 400, broker.CodeBadRequest, "params.desk"},
			{"NUL in the idempotency key", request{Method: http.MethodPost, Path: "/api/v1/runs", Body: `{"mapping":"trades","params":{"business_date":"2026-11-20"},"idempotency_key":"\u0000"}`}, 400, broker.CodeBadRequest, "idempotency_key"},
			{"invalid mapping name", request{Method: http.MethodPost, Path: "/api/v1/runs", Body: `{"mapping":"Trades!\u00ff"}`}, 404, broker.CodeNotFound, ""},
			{"NUL system name in the path", request{Method: http.MethodGet, Path: "/api/v1/systems/%00"}, 404, broker.CodeNotFound, ""},
			{"invalid UTF-8 system name in the path", request{Method: http.MethodGet, Path: "/api/v1/systems/%ff"}, 404, broker.CodeNotFound, ""},
			{"invalid UTF-8 system deleted", request{Method: http.MethodDelete, Path: "/api/v1/systems/%ff%00"}, 404, broker.CodeNotFound, ""},
			{"NUL mapping name in the path", request{Method: http.MethodGet, Path: "/api/v1/mappings/%00"}, 404, broker.CodeNotFound, ""},
			{"invalid UTF-8 mapping version", request{Method: http.MethodGet, Path: "/api/v1/mappings/%ff/versions/1"}, 404, broker.CodeNotFound, ""},
			{"NUL mapping disabled", request{Method: http.MethodDelete, Path: "/api/v1/mappings/a%00"}, 404, broker.CodeNotFound, ""},
			{"NUL mapping filter", request{Method: http.MethodGet, Path: "/api/v1/runs?mapping=%00"}, 400, broker.CodeBadRequest, "mapping"},
			{"invalid UTF-8 submitter filter", request{Method: http.MethodGet, Path: "/api/v1/runs?submitted_by=%ff"}, 400, broker.CodeBadRequest, "submitted_by"},
			{"NUL in a system's region", request{Method: http.MethodPost, Path: "/api/v1/systems", Body: `{"name":"n","kind":"null","region":"r\u0000"}`}, 400, broker.CodeBadRequest, "region"},
			{"NUL in a secret", request{Method: http.MethodPost, Path: "/api/v1/systems", Body: `{"name":"n","kind":"null","secrets":{"k":"\u0000"}}`}, 400, broker.CodeBadRequest, "secrets.k"},
			{"NUL in a mapping description", request{Method: http.MethodPost, Path: "/api/v1/mappings", Body: `{"name":"n","description":"\u0000","source":{"system":"src"},"target":{"system":"dst"}}`}, 400, broker.CodeBadRequest, "description"},
			{"NUL in a token name", request{Method: http.MethodPost, Path: "/api/v1/users/1/tokens", Body: `{"name":"t\u0000"}`}, 400, broker.CodeBadRequest, "name"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				runs, systems := e.runCount(), e.systemCount()
				d := requireError(t, e.do(tc.req), tc.status, tc.code)
				if tc.field != "" {
					require.Equal(t, tc.field, d.Field)
				}
				require.Equal(t, runs, e.runCount())
				require.Equal(t, systems, e.systemCount())
			})
		}
	})
}
