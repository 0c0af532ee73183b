package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// *catalog.Store is what cmd/weir wires into federation.
var _ broker.FederationStore = (*catalog.Store)(nil)

var testSecret = []byte(strings.Repeat("s", 40))

// pool is a fake gossip pool: the peers every region sees.
type pool struct {
	mu    sync.Mutex
	peers []broker.Peer
}

func (p *pool) Peers() []broker.Peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]broker.Peer(nil), p.peers...)
}

func (p *pool) set(name string, mod func(*broker.Peer)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.peers {
		if p.peers[i].Name == name {
			mod(&p.peers[i])
		}
	}
}

func (p *pool) add(peer broker.Peer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peers = append(p.peers, peer)
}

// fedRegion is one region: a catalog, a broker with federation, and its
// HTTP server.
type fedRegion struct {
	t     *testing.T
	name  string
	store *catalog.Store
	srv   *broker.Server
	fed   *broker.Federation
	http  *httptest.Server
	logs  *syncBuffer
}

func newFedRegion(t *testing.T, p *pool, name, authoritative string, secrets [][]byte) *fedRegion {
	t.Helper()
	r := &fedRegion{t: t, name: name, store: catalogtest.Open(t, catalog.DialectSQLite), logs: &syncBuffer{}}
	r.srv = broker.New(broker.Config{Region: name, NodeID: "server-" + name,
		Logger: slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, r.store)
	var err error
	r.fed, err = r.srv.Federate(broker.FederationConfig{Secrets: secrets, AuthoritativeRegion: authoritative, Membership: p,
		ForwardTimeout: 2 * time.Second, DialTimeout: 500 * time.Millisecond, SyncInterval: 50 * time.Millisecond,
		LagAlertAfter: 300 * time.Millisecond}, r.store)
	require.NoError(t, err)
	r.http = httptest.NewServer(r.srv.Handler())
	t.Cleanup(r.http.Close)
	p.add(broker.Peer{Name: "server-" + name, Region: name, Roles: []string{catalog.NodeRoleServer}, APIAddr: r.http.URL,
		State: catalog.NodeAlive, Since: time.Now()})
	return r
}

// call sends a request with token to the region's server.
func (r *fedRegion) call(method, path, token string, body any) response {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(r.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.http.URL+path, rd)
	require.NoError(r.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(r.t, err)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// federation is two regions: east (authoritative, owns mapping "trades")
// and west (owns "local-copy"), with users admin, sub (submit and read
// on trades), cancel-less viewer, and far (entitled from 10.0.0.0/8 only).
type federation struct {
	pool       *pool
	east, west *fedRegion
	tokens     map[string]string
}

func newFederation(t *testing.T) *federation {
	t.Helper()
	f := &federation{pool: &pool{}, tokens: map[string]string{}}
	f.east = newFedRegion(t, f.pool, "east", "east", [][]byte{testSecret})
	f.west = newFedRegion(t, f.pool, "west", "east", [][]byte{testSecret})
	ctx := context.Background()
	users := []struct {
		name, role string
		grants     []catalog.Entitlement
	}{
		{"admin", catalog.RoleAdmin, nil},
		{"sub", catalog.RoleSubmitter, []catalog.Entitlement{{Resource: "mapping:trades", Action: catalog.ActionSubmit}, {Resource: "mapping:trades", Action: catalog.ActionRead}}},
		{"viewer", catalog.RoleViewer, []catalog.Entitlement{{Resource: "*", Action: catalog.ActionRead}}},
		{"far", catalog.RoleSubmitter, []catalog.Entitlement{{Resource: "mapping:trades", Action: catalog.ActionSubmit, CIDRs: catalog.NewJSON([]string{"10.0.0.0/8"})}}},
	}
	for _, u := range users {
		user := &catalog.User{Name: u.name, Role: u.role}
		require.NoError(t, f.east.store.CreateUser(ctx, user))
		for _, g := range u.grants {
			g.UserID = user.ID
			require.NoError(t, f.east.store.CreateEntitlement(ctx, &g))
		}
		secret, _, err := f.east.store.CreateToken(ctx, catalog.CreateTokenParams{UserID: user.ID, Name: u.name})
		require.NoError(t, err)
		f.tokens[u.name] = secret
	}
	for _, r := range []*fedRegion{f.east, f.west} {
		for _, sys := range []string{"src-" + r.name, "dst-" + r.name} {
			require.NoError(t, r.store.CreateSystem(ctx, &catalog.System{Name: sys, Kind: catalog.KindFS, Region: r.name,
				Settings: catalog.NewJSON(map[string]string{"root": "/data/" + sys})}))
		}
	}
	require.NoError(t, f.east.store.PutMapping(ctx, &catalog.Mapping{Name: "trades", Enabled: true,
		Source: catalog.NewJSON(catalog.Endpoint{System: "src-east", Path: "in/{n}"}),
		Target: catalog.NewJSON(catalog.Endpoint{System: "dst-east", Path: "out/{n}"}),
		Params: catalog.NewJSON([]catalog.ParamSpec{{Name: "n", Type: catalog.ParamInt, Required: true}})}))
	require.NoError(t, f.west.store.PutMapping(ctx, &catalog.Mapping{Name: "local-copy", Enabled: true,
		Source: catalog.NewJSON(catalog.Endpoint{System: "src-west", Path: "in"}),
		Target: catalog.NewJSON(catalog.Endpoint{System: "dst-west", Path: "out"})}))
	return f
}

// sync runs one replication round in both regions.
func (f *federation) sync(t *testing.T) {
	t.Helper()
	f.east.fed.SyncOnce(context.Background())
	f.west.fed.SyncOnce(context.Background())
}

func TestFederationReplicatesIdentitiesAndRefusesIdentityWritesOutsideTheAuthority(t *testing.T) {
	t.Parallel()
	f := newFederation(t)
	ctx := context.Background()
	requireError(t, f.west.call("GET", "/api/v1/whoami", f.tokens["sub"], nil), http.StatusUnauthorized, broker.CodeUnauthenticated)

	f.sync(t)
	resp := f.west.call("GET", "/api/v1/whoami", f.tokens["sub"], nil)
	require.Equal(t, http.StatusOK, resp.Status, "%s", resp)
	st, err := f.west.store.GetSync(ctx, "east", catalog.SyncIdentity)
	require.NoError(t, err)
	require.Empty(t, st.LastError)
	require.Equal(t, 4+4+4, st.Rows, "4 users, 4 tokens, 4 entitlements")
	digest := st.Digest

	// Unchanged: the next pull is a 304 that keeps the digest.
	f.sync(t)
	st, err = f.west.store.GetSync(ctx, "east", catalog.SyncIdentity)
	require.NoError(t, err)
	require.Equal(t, digest, st.Digest)

	// Identity writes in west are refused, reads work; in east they work.
	d := requireError(t, f.west.call("POST", "/api/v1/users", f.tokens["admin"], map[string]any{"name": "eve", "role": "viewer"}),
		http.StatusConflict, broker.CodeNotAuthoritative)
	require.Contains(t, d.Message, "region east (the authoritative region)")
	require.Contains(t, d.Message, f.east.http.URL)
	requireError(t, f.west.call("DELETE", "/api/v1/tokens/1", f.tokens["admin"], nil), http.StatusConflict, broker.CodeNotAuthoritative)
	requireError(t, f.west.call("POST", "/api/v1/users", f.tokens["sub"], map[string]any{"name": "eve"}), http.StatusForbidden, broker.CodeForbidden)
	require.Equal(t, http.StatusOK, f.west.call("GET", "/api/v1/users", f.tokens["admin"], nil).Status)
	require.Equal(t, http.StatusCreated, f.east.call("POST", "/api/v1/users", f.tokens["admin"], map[string]any{"name": "eve", "role": "viewer"}).Status)

	// A revocation in east reaches west with the next pull.
	tokens, err := f.east.store.ListTokens(ctx, 0)
	require.NoError(t, err)
	for _, tk := range tokens {
		if tk.Name == "sub" {
			require.Equal(t, http.StatusNoContent, f.east.call("DELETE", "/api/v1/tokens/"+itoa(tk.ID), f.tokens["admin"], nil).Status)
		}
	}
	f.sync(t)
	requireError(t, f.west.call("GET", "/api/v1/whoami", f.tokens["sub"], nil), http.StatusUnauthorized, broker.CodeUnauthenticated)
	_, err = f.west.store.GetUserByName(ctx, "eve")
	require.NoError(t, err)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestFederationForwardsRunsToTheOwningRegion(t *testing.T) {
	t.Parallel()
	f := newFederation(t)
	ctx := context.Background()
	f.sync(t)

	// west does not hold "trades": the directory pulled from east says who does.
	resp := f.west.call("POST", "/api/v1/runs", f.tokens["sub"], map[string]any{"mapping": "trades", "params": map[string]any{"n": "7"}})
	require.Equal(t, http.StatusCreated, resp.Status, "%s", resp)
	require.Equal(t, "east", resp.Header.Get(broker.HeaderRegion))
	var run broker.RunView
	resp.decode(t, &run)
	require.Equal(t, "east", run.Region)
	require.Equal(t, "sub", run.SubmittedBy)
	require.NotNil(t, run.IdempotencyKey, "the forwarder adds a key")
	require.True(t, strings.HasPrefix(*run.IdempotencyKey, "fwd-"))
	_, code, err := catalog.ParseRunID(run.ID)
	require.NoError(t, err)
	require.Equal(t, catalog.RegionCode("east"), code)
	stored, err := f.east.store.GetRun(ctx, run.ID)
	require.NoError(t, err, "the run lives in east's catalog")
	require.Equal(t, "127.0.0.1", stored.ClientIP, "the original caller's address")
	_, err = f.west.store.GetRun(ctx, run.ID)
	require.ErrorIs(t, err, catalog.ErrNotFound, "and not in west's")

	// A key given by the caller is kept: the same request again is the same run.
	body := map[string]any{"mapping": "trades", "params": map[string]any{"n": "8"}, "idempotency_key": "k1"}
	first := f.west.call("POST", "/api/v1/runs", f.tokens["sub"], body)
	require.Equal(t, http.StatusCreated, first.Status, "%s", first)
	again := f.west.call("POST", "/api/v1/runs", f.tokens["sub"], body)
	require.Equal(t, http.StatusOK, again.Status, "%s", again)
	var r1, r2 broker.RunView
	first.decode(t, &r1)
	again.decode(t, &r2)
	require.Equal(t, r1.ID, r2.ID)

	// Readable and cancellable from west; events, tasks and plan too.
	got := f.west.call("GET", "/api/v1/runs/"+run.ID, f.tokens["sub"], nil)
	require.Equal(t, http.StatusOK, got.Status, "%s", got)
	require.Equal(t, "east", got.Header.Get(broker.HeaderRegion))
	for _, sub := range []string{"/events", "/tasks", "/events?after=0"} {
		require.Equal(t, http.StatusOK, f.west.call("GET", "/api/v1/runs/"+run.ID+sub, f.tokens["viewer"], nil).Status, sub)
	}
	requireError(t, f.west.call("GET", "/api/v1/runs/"+run.ID+"/manifest", f.tokens["viewer"], nil), http.StatusNotFound, broker.CodeNotFound)
	// The owning region checks the entitlements: sub may not cancel.
	requireError(t, f.west.call("POST", "/api/v1/runs/"+run.ID+"/cancel", f.tokens["sub"], nil), http.StatusForbidden, broker.CodeForbidden)
	c := f.west.call("POST", "/api/v1/runs/"+run.ID+"/cancel", f.tokens["admin"], nil)
	require.Equal(t, http.StatusOK, c.Status, "%s", c)
	stored, err = f.east.store.GetRun(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, catalog.StateCanceled, stored.State)

	// Entitlements with networks are checked against the original caller's address.
	requireError(t, f.west.call("POST", "/api/v1/runs", f.tokens["far"], map[string]any{"mapping": "trades", "params": map[string]any{"n": "1"}}),
		http.StatusForbidden, broker.CodeForbidden)
	// Validation errors of the owning region come back as they are.
	d := requireError(t, f.west.call("POST", "/api/v1/runs", f.tokens["sub"], map[string]any{"mapping": "trades", "params": map[string]any{"n": "x"}}),
		http.StatusBadRequest, broker.CodeInvalid)
	require.Equal(t, "params.n", d.Field)
	// Unauthenticated callers are stopped in west.
	requireError(t, f.west.call("POST", "/api/v1/runs", "", map[string]any{"mapping": "trades"}), http.StatusUnauthorized, broker.CodeUnauthenticated)
	requireError(t, f.west.call("GET", "/api/v1/runs/"+run.ID, "weir_nope", nil), http.StatusUnauthorized, broker.CodeUnauthenticated)

	// West's own mappings stay local; an unknown one is a 404 from west.
	local := f.west.call("POST", "/api/v1/runs", f.tokens["admin"], map[string]any{"mapping": "local-copy"})
	require.Equal(t, http.StatusCreated, local.Status, "%s", local)
	require.Empty(t, local.Header.Get(broker.HeaderRegion))
	requireError(t, f.west.call("POST", "/api/v1/runs", f.tokens["admin"], map[string]any{"mapping": "nope"}), http.StatusNotFound, broker.CodeNotFound)
	// A mapping created in east after west's last pull is found at once.
	require.NoError(t, f.east.store.PutMapping(ctx, &catalog.Mapping{Name: "fresh", Enabled: true,
		Source: catalog.NewJSON(catalog.Endpoint{System: "src-east", Path: "in"}),
		Target: catalog.NewJSON(catalog.Endpoint{System: "dst-east", Path: "fresh"})}))
	time.Sleep(1100 * time.Millisecond) // the on-demand pull is rate-limited
	fresh := f.west.call("POST", "/api/v1/runs", f.tokens["admin"], map[string]any{"mapping": "fresh"})
	require.Equal(t, http.StatusCreated, fresh.Status, "%s", fresh)
	require.Equal(t, "east", fresh.Header.Get(broker.HeaderRegion))
	// A run of a region nobody knows.
	unknown := "1780000000000" + "999" + "00000001"
	if catalog.RegionCode("east") == 999 || catalog.RegionCode("west") == 999 {
		t.Skip("region code collision with the test's unknown code")
	}
	d = requireError(t, f.west.call("GET", "/api/v1/runs/"+unknown, f.tokens["admin"], nil), http.StatusNotFound, broker.CodeNotFound)
	require.Contains(t, d.Message, "code 999")
}

func TestFederationFailsFastWhenTheOwnerIsUnreachableAndResumes(t *testing.T) {
	t.Parallel()
	f := newFederation(t)
	f.sync(t)
	req := map[string]any{"mapping": "trades", "params": map[string]any{"n": "1"}}
	ok := f.west.call("POST", "/api/v1/runs", f.tokens["sub"], req)
	require.Equal(t, http.StatusCreated, ok.Status, "%s", ok)
	var run broker.RunView
	ok.decode(t, &run)

	// East's server is listed alive but refuses connections (killed, not yet found dead).
	eastURL := f.east.http.URL
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	f.pool.set("server-east", func(p *broker.Peer) { p.APIAddr = closed })
	start := time.Now()
	d := requireError(t, f.west.call("POST", "/api/v1/runs", f.tokens["sub"], req), http.StatusServiceUnavailable, broker.CodeUnavailable)
	require.Less(t, time.Since(start), time.Second, "fails fast")
	require.Contains(t, d.Message, "region east is unreachable")
	require.Contains(t, d.Message, "connection refused")
	requireError(t, f.west.call("GET", "/api/v1/runs/"+run.ID, f.tokens["sub"], nil), http.StatusServiceUnavailable, broker.CodeUnavailable)

	// Found dead by gossip: 503 at once, without trying.
	f.pool.set("server-east", func(p *broker.Peer) { p.State = catalog.NodeDead; p.Since = time.Now() })
	d = requireError(t, f.west.call("GET", "/api/v1/runs/"+run.ID, f.tokens["sub"], nil), http.StatusServiceUnavailable, broker.CodeUnavailable)
	require.Contains(t, d.Message, "no server of region east is alive")
	// West's own work goes on, and its replication records the failure.
	require.Equal(t, http.StatusCreated, f.west.call("POST", "/api/v1/runs", f.tokens["admin"], map[string]any{"mapping": "local-copy"}).Status)
	f.west.fed.SyncOnce(context.Background())
	st, err := f.west.store.GetSync(context.Background(), "east", catalog.SyncIdentity)
	require.NoError(t, err)
	require.Contains(t, st.LastError, "no server of region east")
	require.NotNil(t, st.LastSuccessAt, "the last success is kept")

	// Back: forwarding resumes with the next request.
	f.pool.set("server-east", func(p *broker.Peer) { p.APIAddr, p.State = eastURL, catalog.NodeAlive })
	require.Equal(t, http.StatusOK, f.west.call("GET", "/api/v1/runs/"+run.ID, f.tokens["sub"], nil).Status)

	// A second server of the region is tried when the first one fails.
	f.pool.add(broker.Peer{Name: "server-east-0", Region: "east", Roles: []string{catalog.NodeRoleServer}, APIAddr: closed, State: catalog.NodeAlive})
	resp := f.west.call("POST", "/api/v1/runs", f.tokens["sub"], map[string]any{"mapping": "trades", "params": map[string]any{"n": "2"}})
	require.Equal(t, http.StatusCreated, resp.Status, "%s", resp)
}

func TestFederationRequestsMustBeSignedFresh(t *testing.T) {
	t.Parallel()
	f := newFederation(t)
	f.sync(t)
	// A region with another secret: its forwards are refused by east, and
	// east's answers are refused by it.
	p := f.pool
	rogue := newFedRegion(t, p, "rogue", "", [][]byte{[]byte(strings.Repeat("x", 40))})
	ctx := context.Background()
	admin := &catalog.User{Name: "admin", Role: catalog.RoleAdmin}
	require.NoError(t, rogue.store.CreateUser(ctx, admin))
	_, _, err := rogue.store.CreateToken(ctx, catalog.CreateTokenParams{UserID: admin.ID, Name: "a", Secret: f.tokens["admin"]})
	require.NoError(t, err)
	require.NoError(t, rogue.store.ReplaceDirectory(ctx, "east", []catalog.FederationMapping{{Region: "east", Name: "trades", Version: 1, Enabled: true}}))
	d := requireError(t, rogue.call("POST", "/api/v1/runs", f.tokens["admin"], map[string]any{"mapping": "trades", "params": map[string]any{"n": "1"}}),
		http.StatusBadGateway, broker.CodeBadGateway)
	require.Contains(t, d.Message, "WEIR_FEDERATION_SECRET")
	require.Contains(t, f.east.logs.String(), "the signature does not match")
	runs, _, err := f.east.store.ListRuns(ctx, catalog.RunFilter{Limit: 10})
	require.NoError(t, err)
	require.Empty(t, runs, "nothing was created")

	// Unsigned, tampered and replayed requests to the federation API are refused.
	call := func(req *http.Request) response {
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	}
	plain, err := http.NewRequest("GET", f.east.http.URL+"/federation/v1/identity", nil)
	require.NoError(t, err)
	plain.Header.Set("Authorization", "Bearer "+f.tokens["admin"])
	requireError(t, call(plain), http.StatusUnauthorized, broker.CodeUnauthenticated)

	signed := broker.SignForTest(t, http.MethodGet, f.east.http.URL+"/federation/v1/identity", nil, testSecret, "", "", time.Now())
	first := call(signed.Clone(ctx))
	require.Equal(t, http.StatusOK, first.Status, "%s", first)
	require.NotEmpty(t, first.Header.Get(broker.HeaderFedSignature), "answers are signed")
	d = requireError(t, call(signed.Clone(ctx)), http.StatusUnauthorized, broker.CodeUnauthenticated)
	require.Contains(t, d.Message, "replay")

	old := broker.SignForTest(t, http.MethodGet, f.east.http.URL+"/federation/v1/directory", nil, testSecret, "", "", time.Now().Add(-time.Minute))
	d = requireError(t, call(old), http.StatusUnauthorized, broker.CodeUnauthenticated)
	require.Contains(t, d.Message, "replay window")

	body := []byte(`{"mapping":"trades","params":{"n":"3"}}`)
	tampered := broker.SignForTest(t, http.MethodPost, f.east.http.URL+"/federation/v1/runs", body, testSecret,
		catalog.HashToken(f.tokens["admin"]), "10.1.2.3", time.Now())
	tampered.Body = io.NopCloser(bytes.NewReader([]byte(`{"mapping":"trades","params":{"n":"4"}}`)))
	requireError(t, call(tampered), http.StatusUnauthorized, broker.CodeUnauthenticated)
	good := broker.SignForTest(t, http.MethodPost, f.east.http.URL+"/federation/v1/runs", body, testSecret,
		catalog.HashToken(f.tokens["admin"]), "10.1.2.3", time.Now())
	resp := call(good)
	require.Equal(t, http.StatusCreated, resp.Status, "%s", resp)
	var run broker.RunView
	resp.decode(t, &run)
	require.Equal(t, "10.1.2.3", run.ClientIP)
	require.Equal(t, "admin", run.SubmittedBy)

	// A forwarded request without a caller, or with an unknown one.
	anon := broker.SignForTest(t, http.MethodPost, f.east.http.URL+"/federation/v1/runs", body, testSecret, "", "10.1.2.3", time.Now())
	requireError(t, call(anon), http.StatusUnauthorized, broker.CodeUnauthenticated)
	unknown := broker.SignForTest(t, http.MethodGet, f.west.http.URL+"/federation/v1/runs/"+run.ID, nil, testSecret,
		catalog.HashToken("weir_not_replicated"), "10.1.2.3", time.Now())
	d = requireError(t, call(unknown), http.StatusUnauthorized, broker.CodeUnauthenticated)
	require.Contains(t, d.Message, "replicated")
}

func TestFederationClusterView(t *testing.T) {
	t.Parallel()
	f := newFederation(t)
	f.pool.add(broker.Peer{Name: "worker-east-1", Region: "east", Roles: []string{catalog.NodeRoleWorker}, AgentAddr: "127.0.0.1:7071",
		Capacity: 4, State: catalog.NodeAlive, Since: time.Now()})
	f.pool.add(broker.Peer{Name: "worker-west-1", Region: "west", Roles: []string{catalog.NodeRoleWorker}, Capacity: 2,
		State: catalog.NodeDead, Since: time.Now()})
	require.NoError(t, f.west.store.UpsertNode(context.Background(), &catalog.Node{ID: "worker-west-1", Region: "west",
		Roles: catalog.NewJSON([]string{"worker"}), Slots: 2}))
	f.sync(t)
	resp := f.west.call("GET", "/api/v1/cluster", f.tokens["viewer"], nil)
	require.Equal(t, http.StatusOK, resp.Status, "%s", resp)
	var v broker.ClusterView
	resp.decode(t, &v)
	require.Equal(t, "west", v.Region)
	require.Equal(t, "east", v.AuthoritativeRegion)
	require.True(t, v.Federation)
	require.True(t, v.Gossip)
	require.Len(t, v.Regions, 2)
	east, west := v.Regions[0], v.Regions[1]
	require.Equal(t, "east", east.Name)
	require.True(t, east.Authoritative)
	require.True(t, east.Reachable)
	require.Equal(t, 1, east.ServersAlive)
	require.Equal(t, 2, east.NodesAlive)
	require.Len(t, east.Replication, 2, "identity and directory pulled from east")
	for _, r := range east.Replication {
		require.NotNil(t, r.LagSeconds, r.Stream)
		require.Less(t, *r.LagSeconds, 5.0)
		require.Empty(t, r.LastError)
	}
	require.True(t, west.Local)
	require.Len(t, v.Nodes, 4)
	byID := map[string]broker.ClusterNode{}
	for _, n := range v.Nodes {
		byID[n.ID] = n
	}
	require.Equal(t, "catalog+gossip", byID["worker-west-1"].Source)
	require.Equal(t, catalog.NodeAlive, byID["worker-west-1"].State, "the catalog's state")
	require.Equal(t, catalog.NodeDead, byID["worker-west-1"].GossipState)
	require.Equal(t, "gossip", byID["worker-east-1"].Source)
	require.Equal(t, "127.0.0.1:7071", byID["worker-east-1"].Address)
	requireError(t, f.west.call("GET", "/api/v1/cluster", "", nil), http.StatusUnauthorized, broker.CodeUnauthenticated)
}

func TestFederationLagRaisesAndResolvesAnAlert(t *testing.T) {
	t.Parallel()
	f := newFederation(t)
	f.pool.set("server-east", func(p *broker.Peer) { p.State = catalog.NodeDead })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.west.fed.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	key := "federation/identity-lag/west"
	waitFor(t, 5*time.Second, func() bool {
		as, _, err := f.west.store.ListAlerts(context.Background(), catalog.AlertFilter{})
		require.NoError(t, err)
		for _, a := range as {
			if a.Key == key && a.ResolvedAt == nil {
				return true
			}
		}
		return false
	}, "an open identity lag alert")
	f.pool.set("server-east", func(p *broker.Peer) { p.State = catalog.NodeAlive })
	waitFor(t, 5*time.Second, func() bool {
		as, _, err := f.west.store.ListAlerts(context.Background(), catalog.AlertFilter{})
		require.NoError(t, err)
		for _, a := range as {
			if a.Key == key {
				return a.ResolvedAt != nil
			}
		}
		return false
	}, "the alert resolved")
	lease, err := f.west.store.GetLease(context.Background(), broker.FederationSyncLeaseName("west"))
	require.NoError(t, err)
	require.Equal(t, "server-west", lease.Holder)
}

func waitFor(t *testing.T, within time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s within %s", what, within)
}

func TestFederateRefusesBadConfig(t *testing.T) {
	t.Parallel()
	store := catalogtest.Open(t, catalog.DialectSQLite)
	srv := broker.New(broker.Config{Region: "west"}, store)
	_, err := srv.Federate(broker.FederationConfig{AuthoritativeRegion: "east"}, store)
	var ve *catalog.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "federation.secrets", ve.Field)
	_, err = srv.Federate(broker.FederationConfig{Secrets: [][]byte{[]byte("short")}}, store)
	require.ErrorAs(t, err, &ve)

	_, err = broker.ParseFederationSecrets("short")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "short")
	secs, err := broker.ParseFederationSecrets(strings.Repeat("a", 32) + ", " + strings.Repeat("b", 40))
	require.NoError(t, err)
	require.Len(t, secs, 2)
}
