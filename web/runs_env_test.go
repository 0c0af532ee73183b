package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
	"github.com/weirdata/weir/web"
)

// stackRegion is the region of the test stack's broker, systems and mappings.
const stackRegion = "eu-west"

// stackPassword is every test user's password.
const stackPassword = "correct horse battery"

// runStack is the dashboard in front of a real broker on a real SQLite
// catalog, served over HTTP as cmd/weir serves it: /api/ to the broker,
// the rest to the dashboard.
//
// Fixtures: users admin (admin), op (operator: read, submit, cancel on
// mapping:trades, read on system:*), sub (submitter: read and submit on
// mapping:trades), viewer (viewer: read on *); fs systems src and dst;
// mapping trades (src trades/{business_date} -> dst out/{business_date},
// business_date a required date).
type runStack struct {
	t     testing.TB
	ctx   context.Context
	store *catalog.Store
	srv   *httptest.Server
	src   string // root of system src
}

func newRunStack(t testing.TB) *runStack {
	t.Helper()
	ctx := context.Background()
	store := catalogtest.Open(t, catalog.DialectSQLite)
	api := broker.New(broker.Config{Region: stackRegion, NodeID: "test"}, store).Handler()
	dash, err := web.New(web.Config{API: api})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/api/", api)
	mux.Handle("/", dash)
	st := &runStack{t: t, ctx: ctx, store: store, srv: httptest.NewServer(mux), src: t.TempDir()}
	t.Cleanup(st.srv.Close)

	st.user("admin", catalog.RoleAdmin)
	st.user("op", catalog.RoleOperator, "mapping:trades/read", "mapping:trades/submit", "mapping:trades/cancel", "system:*/read")
	st.user("sub", catalog.RoleSubmitter, "mapping:trades/read", "mapping:trades/submit")
	st.user("viewer", catalog.RoleViewer, "*/read")
	for name, root := range map[string]string{"src": st.src, "dst": t.TempDir()} {
		require.NoError(t, store.CreateSystem(ctx, &catalog.System{Name: name, Kind: catalog.KindFS, Region: stackRegion,
			Settings: catalog.NewJSON(map[string]string{"root": root})}))
	}
	require.NoError(t, store.PutMapping(ctx, &catalog.Mapping{Name: "trades", Enabled: true,
		Source: catalog.NewJSON(catalog.Endpoint{System: "src", Path: "trades/{business_date}"}),
		Target: catalog.NewJSON(catalog.Endpoint{System: "dst", Path: "out/{business_date}"}),
		Params: catalog.NewJSON([]catalog.ParamSpec{{Name: "business_date", Type: catalog.ParamDate, Required: true,
			Window: &catalog.DateWindow{Min: "2020-01-01", AllowFuture: true}}}),
		MaxAttempts: 2, TimeoutSeconds: 600}))
	return st
}

// user creates a user with stackPassword and grants ("resource/action").
func (st *runStack) user(name, role string, grants ...string) *catalog.User {
	st.t.Helper()
	u := &catalog.User{Name: name, Role: role}
	require.NoError(st.t, st.store.CreateUser(st.ctx, u))
	require.NoError(st.t, st.store.SetPassword(st.ctx, u.ID, stackPassword))
	for _, g := range grants {
		res, action, _ := strings.Cut(g, "/")
		require.NoError(st.t, st.store.CreateEntitlement(st.ctx, &catalog.Entitlement{UserID: u.ID, Resource: res, Action: action,
			CIDRs: catalog.NewJSON([]string{})}))
	}
	return u
}

// runBrowser is a signed-in HTTP client of the stack, redirects not followed.
type runBrowser struct {
	st   *runStack
	hc   *http.Client
	csrf string
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signIn signs name in through the sign-in form.
func (st *runStack) signIn(name string) *runBrowser {
	st.t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &runBrowser{st: st, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	_, body := b.get("/signin")
	m := csrfRE.FindStringSubmatch(body)
	require.NotNil(st.t, m, "sign-in form has no CSRF field")
	code, _, _ := b.post("/signin", url.Values{"username": {name}, "password": {stackPassword}, "csrf_token": {m[1]}})
	require.Equal(st.t, http.StatusSeeOther, code, "sign in as %s", name)
	_, body = b.get("/runs")
	m = csrfRE.FindStringSubmatch(body)
	require.NotNil(st.t, m, "signed-in page has no CSRF field:\n%s", body)
	b.csrf = m[1]
	return b
}

// get fetches a page and returns its status and body.
func (b *runBrowser) get(path string) (int, string) {
	b.st.t.Helper()
	resp, err := b.hc.Get(b.st.srv.URL + path)
	require.NoError(b.st.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// post posts a form as is (add csrf_token yourself, or use submit) and
// returns the status, body and redirect location.
func (b *runBrowser) post(path string, form url.Values) (int, string, string) {
	b.st.t.Helper()
	resp, err := b.hc.PostForm(b.st.srv.URL+path, form)
	require.NoError(b.st.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header.Get("Location")
}

// submit posts a form with the session's CSRF token.
func (b *runBrowser) submit(path string, form url.Values) (int, string, string) {
	b.st.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf_token", b.csrf)
	return b.post(path, form)
}

// seedRuns inserts n pending runs of mapping trades, one millisecond
// apart (run_ids ascending), submitted by user.
func (st *runStack) seedRuns(n int, user *catalog.User) []string {
	st.t.Helper()
	ids := make([]string, 0, n)
	start := time.Now().Add(-time.Duration(n) * time.Millisecond).UnixMilli()
	for i := range n {
		id := fmt.Sprintf("%013d%03d%08d", start+int64(i), catalog.RegionCode(stackRegion), i)
		_, _, err := st.store.InsertRun(st.ctx, &catalog.Run{ID: id, Region: stackRegion, Mapping: "trades", MappingVersion: 1,
			Params: catalog.NewJSON(map[string]string{"business_date": "2026-11-20"}), SourceSystem: "src", TargetSystem: "dst",
			RequestType: "copy", MaxAttempts: 2, TimeoutSeconds: 600, UserID: user.ID, SubmittedBy: user.Name, ClientIP: "127.0.0.1"})
		require.NoError(st.t, err)
		ids = append(ids, id)
	}
	return ids
}

// writeSource writes the files of a business date at system src.
func (st *runStack) writeSource(date string, files map[string]string) {
	st.t.Helper()
	dir := filepath.Join(st.src, "trades", date)
	require.NoError(st.t, os.MkdirAll(dir, 0o755))
	for name, body := range files {
		require.NoError(st.t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
}
