package dispatcher_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
	"github.com/weirdata/weir/connector/fs"
	"github.com/weirdata/weir/connector/null"
	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/dispatcher"
)

const (
	testNode   = "node-1"
	testRegion = "r1"
	testWorker = "w1"
)

// env is an agent on a real catalog with real directories: systems src and
// dst (fs), nul (null, or a fake row source when the test asks for one), and
// users with tokens:
//
//	admin     admin
//	reader    viewer: read on system:src, system:nul, mapping:m
//	nobody    viewer without entitlements
//	netonly   viewer: read on system:src from 10.0.0.0/8 only
type env struct {
	t       *testing.T
	ctx     context.Context
	store   *catalog.Store
	agent   *dispatcher.Agent
	srv     *httptest.Server
	src     string // root of system src
	dst     string // root of system dst
	outside string // a directory outside every root
	tokens  map[string]string
	mapping *catalog.Mapping
}

// setup is what a test may change before the agent starts.
type setup struct {
	cfg dispatcher.AgentConfig
	// rows, when set, opens systems of kind null (a fake row connector).
	rows spi.Opener
	// registry, when set, is the agent's registry.
	registry *connector.Registry
}

type envOption func(*setup)

// withRows makes systems of kind null open with open instead.
func withRows(open spi.Opener) envOption { return func(s *setup) { s.rows = open } }

// withRegistry gives the agent reg.
func withRegistry(reg *connector.Registry) envOption { return func(s *setup) { s.registry = reg } }

// withConfig changes the agent's configuration.
func withConfig(mod func(*dispatcher.AgentConfig)) envOption { return func(s *setup) { mod(&s.cfg) } }

func newEnv(t *testing.T, s *catalog.Store, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), store: s, src: t.TempDir(), dst: t.TempDir(), outside: t.TempDir(), tokens: map[string]string{}}
	ctx := e.ctx
	for _, sys := range []*catalog.System{
		{Name: "src", Kind: catalog.KindFS, Region: testRegion, Settings: catalog.NewJSON(map[string]string{"root": e.src})},
		{Name: "dst", Kind: catalog.KindFS, Region: testRegion, Settings: catalog.NewJSON(map[string]string{"root": e.dst})},
		{Name: "nul", Kind: catalog.KindNull, Region: testRegion},
	} {
		require.NoError(t, s.CreateSystem(ctx, sys))
	}
	e.mapping = &catalog.Mapping{Name: "m", Enabled: true,
		Source: catalog.NewJSON(catalog.Endpoint{System: "src", Path: "in/{business_date}"}),
		Target: catalog.NewJSON(catalog.Endpoint{System: "dst", Path: "out/{business_date}"}),
		Params: catalog.NewJSON([]catalog.ParamSpec{{Name: "business_date", Type: catalog.ParamDate, Required: true,
			Window: &catalog.DateWindow{AllowFuture: true}}})}
	require.NoError(t, s.PutMapping(ctx, e.mapping))

	users := []struct {
		name, role string
		grants     []catalog.Entitlement
	}{
		{"admin", catalog.RoleAdmin, nil},
		{"reader", catalog.RoleViewer, []catalog.Entitlement{
			{Resource: "system:src", Action: catalog.ActionRead},
			{Resource: "system:nul", Action: catalog.ActionRead},
			{Resource: "mapping:m", Action: catalog.ActionRead},
		}},
		{"nobody", catalog.RoleViewer, nil},
		{"netonly", catalog.RoleViewer, []catalog.Entitlement{
			{Resource: "system:src", Action: catalog.ActionRead, CIDRs: catalog.NewJSON([]string{"10.0.0.0/8"})},
		}},
	}
	for _, u := range users {
		usr := &catalog.User{Name: u.name, Role: u.role}
		require.NoError(t, s.CreateUser(ctx, usr))
		for _, g := range u.grants {
			g.UserID = usr.ID
			require.NoError(t, s.CreateEntitlement(ctx, &g))
		}
		secret, _, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: usr.ID, Name: "t"})
		require.NoError(t, err)
		e.tokens[u.name] = secret
	}

	st := setup{cfg: dispatcher.AgentConfig{NodeID: testNode, Region: testRegion, VerifyThreads: 2}}
	for _, o := range opts {
		o(&st)
	}
	reg := connector.NewRegistry()
	fs.Register(reg)
	if st.rows != nil {
		reg.Register(catalog.KindNull, st.rows)
	} else {
		null.Register(reg)
	}
	if st.registry != nil {
		reg = st.registry
	}
	cfg := st.cfg
	a, err := dispatcher.NewAgent(cfg, s, reg)
	require.NoError(t, err)
	e.agent = a
	e.srv = httptest.NewServer(a)
	t.Cleanup(e.srv.Close)
	return e
}

// client returns a Go client of the agent with the token of user.
func (e *env) client(user string) *dispatcher.Client {
	return dispatcher.NewClient(e.srv.URL, e.tokens[user])
}

// reply is an answer of the agent.
type reply struct {
	Status int
	Header http.Header
	Raw    []byte
	Err    dispatcher.ErrorDetail
	Result map[string]any
}

// post calls a command with a raw body and the token of user ("" for none).
func (e *env) post(user, name, body string) reply {
	e.t.Helper()
	return e.do(http.MethodPost, dispatcher.CommandsPath+"/"+name, user, "application/json", []byte(body))
}

func (e *env) do(method, path, user, contentType string, body []byte) reply {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, method, e.srv.URL+path, bytes.NewReader(body))
	require.NoError(e.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if user != "" {
		tok := e.tokens[user]
		if tok == "" {
			tok = user // a literal token
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	r := reply{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if resp.StatusCode == http.StatusOK {
		var ok struct {
			Result map[string]any `json:"result"`
		}
		if json.Unmarshal(raw, &ok) == nil {
			r.Result = ok.Result
		}
	} else {
		var eb dispatcher.ErrorBody
		require.NoError(e.t, json.Unmarshal(raw, &eb), "error answers are JSON: %s", raw)
		r.Err = eb.Error
	}
	return r
}

// audit returns every audit entry, oldest first.
func (e *env) audit() []catalog.AuditEntry {
	e.t.Helper()
	es, _, err := e.store.ListAudit(e.ctx, catalog.AuditFilter{Limit: catalog.AuditLimitMax})
	require.NoError(e.t, err)
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	return es
}

// lastAudit returns the newest audit entry.
func (e *env) lastAudit() catalog.AuditEntry {
	e.t.Helper()
	es, _, err := e.store.ListAudit(e.ctx, catalog.AuditFilter{Limit: 1})
	require.NoError(e.t, err)
	require.Len(e.t, es, 1)
	return es[0]
}

// write creates a file under root with content.
func write(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}

func sum(content string) string {
	h := sha256.Sum256([]byte(content))
	return hex.EncodeToString(h[:])
}

// delivered is a run of mapping m whose files were delivered to dst under
// out/<date>, with its manifest in the catalog and at the target, made by
// the same Store calls a worker makes.
type delivered struct {
	run   *catalog.Run
	dir   string // absolute directory of the delivery
	files map[string]string
}

var genMu sync.Mutex
var gen = catalog.NewRunIDGenerator(testRegion)

func nextRunID() string {
	genMu.Lock()
	defer genMu.Unlock()
	return gen.Next()
}

// pendingRun inserts a pending run of mapping m for date.
func (e *env) pendingRun(date string) *catalog.Run {
	e.t.Helper()
	u, err := e.store.GetUserByName(e.ctx, "admin")
	require.NoError(e.t, err)
	r := &catalog.Run{ID: nextRunID(), Region: testRegion, Mapping: "m", MappingVersion: e.mapping.Version,
		Params: catalog.NewJSON(map[string]string{"business_date": date}), SourceSystem: "src", TargetSystem: "dst",
		RequestType: catalog.RequestTransfer, MaxAttempts: 1, TimeoutSeconds: 600, UserID: u.ID, SubmittedBy: u.Name}
	got, created, err := e.store.InsertRun(e.ctx, r)
	require.NoError(e.t, err)
	require.True(e.t, created)
	return got
}

// deliver writes files under dst/out/<date> and finishes a run with their manifest.
func (e *env) deliver(date string, files map[string]string) *delivered {
	e.t.Helper()
	ctx := e.ctx
	r := e.pendingRun(date)
	lease, err := e.store.AcquireLease(ctx, catalog.LeaderLeaseName(testRegion), "srv", time.Hour)
	require.NoError(e.t, err)
	require.NoError(e.t, e.store.UpsertNode(ctx, &catalog.Node{ID: testWorker, Region: testRegion,
		Roles: catalog.NewJSON([]string{catalog.NodeRoleWorker}), Slots: 4}))
	require.NoError(e.t, e.store.DispatchRun(ctx, catalog.DispatchParams{RunID: r.ID, Worker: testWorker,
		Plan:      &catalog.Plan{SchemaVersion: catalog.PlanSchemaVersion, RunID: r.ID, Worker: testWorker},
		LeaseName: lease.Name, LeaseHolder: lease.Holder, LeaseToken: lease.Token}))
	claimed, err := e.store.ClaimRuns(ctx, catalog.ClaimParams{Worker: testWorker, Limit: 1, LeaseTTL: time.Minute})
	require.NoError(e.t, err)
	require.Len(e.t, claimed, 1)

	rel := "out/" + date
	man := &catalog.Manifest{SchemaVersion: catalog.ManifestSchemaVersion, RunID: r.ID, Mapping: "m", MappingVersion: r.MappingVersion,
		Params: r.Params.V, Attempt: 1, State: catalog.StateSucceeded, Target: catalog.PlanEndpoint{System: "dst", Kind: catalog.KindFS, Path: rel},
		StartedAt: time.Now().UTC(), FinishedAt: time.Now().UTC()}
	for name, content := range files {
		write(e.t, e.dst, rel+"/"+name, content)
		man.Files = append(man.Files, catalog.ManifestFile{Path: name, Size: int64(len(content)), SHA256: sum(content)})
		man.TotalFiles++
		man.TotalBytes += int64(len(content))
	}
	e.writeManifest(rel, man)
	st, err := e.store.FinishRun(ctx, catalog.FinishParams{RunID: r.ID, FencingToken: claimed[0].FencingToken, Worker: testWorker,
		State: catalog.StateSucceeded, Manifest: man})
	require.NoError(e.t, err)
	require.Equal(e.t, catalog.StateSucceeded, st)
	run, err := e.store.GetRun(ctx, r.ID)
	require.NoError(e.t, err)
	require.NotNil(e.t, run.Manifest.V)
	return &delivered{run: run, dir: filepath.Join(e.dst, rel), files: files}
}

// writeManifest writes man as the delivery manifest of dst:rel.
func (e *env) writeManifest(rel string, man *catalog.Manifest) {
	e.t.Helper()
	data, err := json.MarshalIndent(man, "", "  ")
	require.NoError(e.t, err)
	write(e.t, e.dst, rel+"/"+connector.ManifestName, string(data))
}

// noSecrets asserts that no audit entry holds any of the env's tokens.
func (e *env) noSecrets() {
	e.t.Helper()
	for _, a := range e.audit() {
		row, err := json.Marshal(a)
		require.NoError(e.t, err)
		for _, tok := range e.tokens {
			require.NotContains(e.t, string(row), tok, "an audit entry holds a token")
			require.NotContains(e.t, string(row), tok[len(catalog.TokenPrefix):], "an audit entry holds a token")
		}
		require.False(e.t, strings.Contains(string(row), "YWRtaW46YWRtaW4="), "an audit entry holds an Authorization header")
	}
}
