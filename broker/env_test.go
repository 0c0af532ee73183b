package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
)

// *catalog.Store is what cmd/weir wires into the broker.
var _ broker.Store = (*catalog.Store)(nil)

const testRegion = "eu-west"

// clock is a settable clock shared by the Store and the broker.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects log output from concurrent requests.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a broker on a real catalog with fixtures:
//
//   - users: admin (admin), sub (submitter: read+submit on mapping:trades),
//     other (submitter: read+submit on mapping:other only), netsub (submitter:
//     submit+read on mapping:trades from 10.0.0.0/8 only), viewer (viewer:
//     read on *), nobody (submitter without entitlements)
//   - systems src and dst (fs) in testRegion, far (fs) in region "us-east"
//   - mappings trades (src -> dst, business_date date in [2026-01-01, today],
//     desk string default "main", target path out/{desk}/{business_date}),
//     other (src -> dst, no params) and remote (far -> far, owned by us-east)
type env struct {
	t       testing.TB
	ctx     context.Context
	store   *catalog.Store
	srv     *broker.Server
	clock   *clock
	logs    *syncBuffer
	tokens  map[string]string // user name -> token secret
	users   map[string]*catalog.User
	peer    string // RemoteAddr of requests
	handler http.Handler
	cfg     broker.Config
}

// testToday is the broker's "today" in tests.
var testToday = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newEnv(t testing.TB, store *catalog.Store, mod ...func(*broker.Config)) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), store: store, clock: &clock{t: testToday}, logs: &syncBuffer{},
		tokens: map[string]string{}, users: map[string]*catalog.User{}, peer: "192.0.2.10:40000"}
	store.SetClock(e.clock.Now)
	cfg := broker.Config{
		Region: testRegion,
		NodeID: "test-node",
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    e.clock.Now,
	}
	for _, m := range mod {
		m(&cfg)
	}
	e.cfg = cfg
	e.rewire(store)

	e.addUser("admin", catalog.RoleAdmin)
	e.addUser("sub", catalog.RoleSubmitter, grant{"mapping:trades", catalog.ActionSubmit, nil}, grant{"mapping:trades", catalog.ActionRead, nil})
	e.addUser("other", catalog.RoleSubmitter, grant{"mapping:other", catalog.ActionSubmit, nil}, grant{"mapping:other", catalog.ActionRead, nil})
	e.addUser("netsub", catalog.RoleSubmitter, grant{"mapping:trades", catalog.ActionSubmit, []string{"10.0.0.0/8"}}, grant{"mapping:trades", catalog.ActionRead, []string{"10.0.0.0/8"}})
	e.addUser("viewer", catalog.RoleViewer, grant{"*", catalog.ActionRead, nil})
	e.addUser("nobody", catalog.RoleSubmitter)

	for _, sys := range []*catalog.System{
		{Name: "src", Kind: catalog.KindFS, Region: testRegion, Settings: catalog.NewJSON(map[string]string{"root": "/data/src"})},
		{Name: "dst", Kind: catalog.KindFS, Region: testRegion, Settings: catalog.NewJSON(map[string]string{"root": "/data/dst"})},
		{Name: "far", Kind: catalog.KindFS, Region: "us-east", Settings: catalog.NewJSON(map[string]string{"root": "/data/far"})},
	} {
		require.NoError(t, store.CreateSystem(e.ctx, sys))
	}
	for _, m := range []*catalog.Mapping{
		{Name: "trades", Enabled: true,
			Source: catalog.NewJSON(catalog.Endpoint{System: "src", Path: "trades/{business_date}"}),
			Target: catalog.NewJSON(catalog.Endpoint{System: "dst", Path: "out/{desk}/{business_date}"}),
			Params: catalog.NewJSON([]catalog.ParamSpec{
				{Name: "business_date", Type: catalog.ParamDate, Required: true, Window: &catalog.DateWindow{Min: "2026-01-01"}},
				{Name: "desk", Type: catalog.ParamString, Default: "main"},
			}), MaxAttempts: 4, TimeoutSeconds: 900},
		{Name: "other", Enabled: true,
			Source: catalog.NewJSON(catalog.Endpoint{System: "src", Path: "x"}),
			Target: catalog.NewJSON(catalog.Endpoint{System: "dst", Path: "y"})},
		{Name: "remote", Enabled: true,
			Source: catalog.NewJSON(catalog.Endpoint{System: "far", Path: "a"}),
			Target: catalog.NewJSON(catalog.Endpoint{System: "far", Path: "b"})},
	} {
		require.NoError(t, store.PutMapping(e.ctx, m))
	}
	return e
}

// rewire replaces the broker by one with the same configuration on store.
func (e *env) rewire(store broker.Store) {
	e.srv = broker.New(e.cfg, store)
	e.handler = e.srv.Handler()
}

// chunked is a request body sent without a Content-Length.
type chunked string

type grant struct {
	resource, action string
	cidrs            []string
}

func (e *env) addUser(name, role string, grants ...grant) {
	e.t.Helper()
	u := &catalog.User{Name: name, Role: role}
	require.NoError(e.t, e.store.CreateUser(e.ctx, u))
	for _, g := range grants {
		cidrs := g.cidrs
		if cidrs == nil {
			cidrs = []string{}
		}
		require.NoError(e.t, e.store.CreateEntitlement(e.ctx, &catalog.Entitlement{UserID: u.ID, Resource: g.resource, Action: g.action, CIDRs: catalog.NewJSON(cidrs)}))
	}
	secret, _, err := e.store.CreateToken(e.ctx, catalog.CreateTokenParams{UserID: u.ID, Name: name + "-token"})
	require.NoError(e.t, err)
	e.tokens[name], e.users[name] = secret, u
}

// response is a recorded answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.Body, v), "body: %s", r.Body)
}

func (r response) String() string { return string(r.Body) }

// request describes one call; zero fields take defaults (the admin's token,
// JSON content type when there is a body, the env's peer).
type request struct {
	Method, Path string
	Body         any    // string or []byte sent raw; anything else marshalled
	Token        string // "-" sends no Authorization header
	ContentType  string // "-" sends none
	RemoteAddr   string
	Header       map[string]string
}

func (e *env) do(r request) response {
	e.t.Helper()
	var body io.Reader
	switch b := r.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	case chunked:
		body = io.MultiReader(strings.NewReader(string(b)))
	default:
		raw, err := json.Marshal(b)
		require.NoError(e.t, err)
		body = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(r.Method, r.Path, body)
	req.RemoteAddr = e.peer
	if r.RemoteAddr != "" {
		req.RemoteAddr = r.RemoteAddr
	}
	switch r.Token {
	case "-":
	case "":
		req.Header.Set("Authorization", "Bearer "+e.tokens["admin"])
	default:
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	switch {
	case r.ContentType == "-":
	case r.ContentType != "":
		req.Header.Set("Content-Type", r.ContentType)
	case body != nil:
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

func (e *env) get(path, user string) response {
	return e.do(request{Method: http.MethodGet, Path: path, Token: e.tokens[user]})
}

// submit posts a run request as user.
func (e *env) submit(user string, body any) response {
	return e.do(request{Method: http.MethodPost, Path: "/api/v1/runs", Token: e.tokens[user], Body: body})
}

// mustSubmit submits and returns the created run.
func (e *env) mustSubmit(user string, body any) broker.RunView {
	e.t.Helper()
	resp := e.submit(user, body)
	require.Equal(e.t, http.StatusCreated, resp.Status, "submit: %s", resp)
	var v broker.RunView
	resp.decode(e.t, &v)
	return v
}

func (e *env) runCount() int64 {
	e.t.Helper()
	counts, err := e.store.CountRuns(e.ctx, "")
	require.NoError(e.t, err)
	var n int64
	for _, c := range counts {
		n += c
	}
	return n
}

func (e *env) systemCount() int {
	e.t.Helper()
	ss, err := e.store.ListSystems(e.ctx)
	require.NoError(e.t, err)
	return len(ss)
}

// requireError asserts an error answer's status and code and returns its detail.
func requireError(t *testing.T, r response, status int, code string) broker.ErrorDetail {
	t.Helper()
	require.Equal(t, status, r.Status, "body: %s", r)
	var b broker.ErrorBody
	r.decode(t, &b)
	require.Equal(t, code, b.Error.Code, "body: %s", r)
	require.NotEmpty(t, b.Error.Message)
	return b.Error
}

func tradesRequest(date string) map[string]any {
	return map[string]any{"mapping": "trades", "params": map[string]any{"business_date": date}}
}
