package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
)

// loadContract loads and validates the served OpenAPI document.
func loadContract(t *testing.T) *openapi3.T {
	t.Helper()
	raw, err := broker.OpenAPI()
	require.NoError(t, err)
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()), "the document is valid OpenAPI 3")
	return doc
}

// federatedEnv is the broker fixture (newEnv, dataEnv's systems) with
// federation enabled, so that every route of the broker is registered.
func federatedEnv(t *testing.T) *env {
	t.Helper()
	e := dataEnv(t)
	_, err := e.srv.Federate(broker.FederationConfig{Secrets: [][]byte{testSecret}, AuthoritativeRegion: testRegion, Membership: &pool{}}, e.store)
	require.NoError(t, err)
	return e
}

// echoPath turns an OpenAPI path template into echo's form.
func echoPath(p string) string {
	return strings.NewReplacer("{", ":", "}", "").Replace(p)
}

func TestOpenAPIDocumentsEveryRouteAndNothingElse(t *testing.T) {
	doc := loadContract(t)
	e := federatedEnv(t)
	registered := map[string]bool{}
	for _, r := range e.srv.Echo().Routes() {
		if strings.HasSuffix(r.Path, "/*") || r.Method == echo.RouteNotFound {
			continue // echo's own catch-alls, if any
		}
		registered[r.Method+" "+r.Path] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+echoPath(path)] = true
		}
	}
	var missing, stale []string
	for k := range registered {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !registered[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	require.Empty(t, missing, "routes registered on the broker but not in broker/openapi.yaml")
	require.Empty(t, stale, "operations in broker/openapi.yaml that no route serves")
	require.Greater(t, len(registered), 60)

	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			require.NotEmpty(t, op.OperationID, "%s %s has an operationId", method, path)
			require.NotEmpty(t, op.Summary, "%s %s has a summary", method, path)
			var ok2xx bool
			for code := range op.Responses.Map() {
				ok2xx = ok2xx || strings.HasPrefix(code, "2")
			}
			require.True(t, ok2xx, "%s %s documents its success", method, path)
		}
	}
}

// contract validates every request and answer passing through it against
// the document, and records the statuses each operation answered.
type contract struct {
	t      *testing.T
	router routers.Router
	next   http.Handler

	mu   sync.Mutex
	seen map[string]map[int]bool // operationId -> statuses
}

func newContract(t *testing.T, doc *openapi3.T, next http.Handler) *contract {
	t.Helper()
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	return &contract{t: t, router: router, next: next, seen: map[string]map[int]bool{}}
}

// authenticate only checks that the credentials the scheme names are
// present; the broker decides whether they are good.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	switch in.SecuritySchemeName {
	case "bearerToken":
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			return nil
		}
	case "sessionCookie":
		if _, err := r.Cookie("weir_session"); err == nil {
			return nil
		}
	case "federationSignature":
		if r.Header.Get(broker.HeaderFedSignature) != "" {
			return nil
		}
	}
	return errors.New("no " + in.SecuritySchemeName)
}

func (k *contract) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil {
		r.Body = http.NoBody
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		k.t.Errorf("read request body: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := k.router.FindRoute(r)
	if err != nil {
		k.t.Errorf("%s %s: not in the document: %v", r.Method, r.URL.Path, err)
		k.next.ServeHTTP(w, r)
		return
	}
	opts := &openapi3filter.Options{AuthenticationFunc: authenticate, IncludeResponseStatus: true, MultiError: true}
	vr := r.Clone(r.Context())
	vr.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(r.Context(), in)

	rec := httptest.NewRecorder()
	r.Body = io.NopCloser(bytes.NewReader(body))
	k.next.ServeHTTP(rec, r)
	for h, v := range rec.Header() {
		w.Header()[h] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())

	what := fmt.Sprintf("%s %s (%s) answered %d %s", r.Method, r.URL.RequestURI(), route.Operation.OperationID, rec.Code, rec.Body.String())
	if reqErr != nil && rec.Code < 400 {
		k.t.Errorf("%s\nbut the document refuses the request: %v", what, reqErr)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
		Body: io.NopCloser(bytes.NewReader(rec.Body.Bytes())), Options: opts}
	if err := openapi3filter.ValidateResponse(r.Context(), out); err != nil {
		k.t.Errorf("%s\nthe answer breaks the document: %v", what, err)
	}
	if rec.Header().Get(broker.HeaderRequestID) == "" {
		k.t.Errorf("%s\nwithout %s", what, broker.HeaderRequestID)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.seen[route.Operation.OperationID] == nil {
		k.seen[route.Operation.OperationID] = map[int]bool{}
	}
	k.seen[route.Operation.OperationID][rec.Code] = true
}

// fedCall sends a request signed as a server of another region would.
func (e *env) fedCall(method, path string, body []byte, principal string) response {
	e.t.Helper()
	req := broker.SignForTest(e.t, method, "http://weir.test"+path, body, testSecret, principal, "192.0.2.77", time.Now())
	req.RemoteAddr = e.peer
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// TestOpenAPIContract drives every operation of the document against a
// broker on a real SQLite catalog, happy paths and the main refusals, and
// validates each request and answer against the document.
func TestOpenAPIContract(t *testing.T) {
	doc := loadContract(t)
	e := federatedEnv(t)
	k := newContract(t, doc, e.srv.Handler())
	e.handler = k
	ctx, s := e.ctx, e.store
	e.addUser("op", catalog.RoleOperator, grant{"*", catalog.ActionManage, nil}, grant{"*", catalog.ActionRead, nil}, grant{"*", catalog.ActionSubmit, nil})
	call := func(method, path, user string, body any, want int) response {
		t.Helper()
		tok := e.tokens[user]
		if user == "" {
			tok = "-"
		}
		r := e.do(request{Method: method, Path: path, Token: tok, Body: body})
		require.Equal(t, want, r.Status, "%s %s as %q: %s", method, path, user, r)
		return r
	}
	A := "/api/v1"

	// Probes, meta, and the refusals every route shares.
	call("GET", "/healthz", "", nil, 200)
	call("GET", "/readyz", "", nil, 200)
	call("GET", A+"/openapi.json", "viewer", nil, 200)
	call("GET", A+"/openapi.json", "", nil, 401)
	call("GET", A+"/whoami", "sub", nil, 200)
	call("GET", A+"/whoami", "", nil, 401)
	call("GET", A+"/cluster", "viewer", nil, 200)
	r := e.do(request{Method: "POST", Path: A + "/runs", Token: e.tokens["sub"], Body: `mapping=trades`, ContentType: "text/plain"})
	require.Equal(t, 415, r.Status, "%s", r)
	r = e.do(request{Method: "POST", Path: A + "/runs", Token: e.tokens["sub"], Body: `{"mapping":"` + strings.Repeat("x", 2<<20) + `"}`})
	require.Equal(t, 413, r.Status)

	// Runs: submit, replay, refusals, list, and a run's life.
	run := call("POST", A+"/runs", "sub", map[string]any{"mapping": "trades", "params": map[string]any{"business_date": "2026-11-20"}, "idempotency_key": "k1"}, 201)
	var v broker.RunView
	run.decode(t, &v)
	call("POST", A+"/runs", "sub", map[string]any{"mapping": "trades", "params": map[string]any{"business_date": "2026-11-20"}, "idempotency_key": "k1"}, 200)
	call("POST", A+"/runs", "sub", map[string]any{"mapping": "trades", "params": map[string]any{"business_date": "2026-11-21"}, "idempotency_key": "k1"}, 409)
	call("POST", A+"/runs", "sub", map[string]any{"mapping": "trades", "params": map[string]any{"business_date": "2099-01-01"}}, 400)
	call("POST", A+"/runs", "sub", map[string]any{"mapping": "trades", "colour": "red"}, 400)
	call("POST", A+"/runs", "nobody", tradesRequest("2026-11-20"), 403)
	call("POST", A+"/runs", "admin", map[string]any{"mapping": "nope"}, 404)
	fwd := call("POST", A+"/runs", "admin", map[string]any{"mapping": "remote"}, 503) // owned by us-east, whose servers nobody knows
	require.Contains(t, fwd.String(), "us-east")
	call("GET", A+"/runs?state=pending&limit=1", "sub", nil, 200)
	call("GET", A+"/runs?state=sleeping", "sub", nil, 400)
	call("GET", A+"/runs?mapping=other", "sub", nil, 403)
	base := A + "/runs/" + v.ID
	call("GET", base, "sub", nil, 200)
	call("GET", base, "other", nil, 403)
	call("GET", A+"/runs/123", "sub", nil, 400)
	call("GET", A+"/runs/"+strings.Repeat("9", 24), "admin", nil, 404)
	call("GET", base+"/events?after=0", "sub", nil, 200)
	call("GET", base+"/events?after=-1", "sub", nil, 400)
	call("GET", base+"/plan", "sub", nil, 404)
	call("GET", base+"/manifest", "sub", nil, 404)
	call("GET", base+"/tasks", "sub", nil, 200)
	lease, err := s.AcquireLease(ctx, catalog.LeaderLeaseName(testRegion), "leader", time.Hour)
	require.NoError(t, err)
	require.NoError(t, s.UpsertNode(ctx, &catalog.Node{ID: "w1", Region: testRegion, Roles: catalog.NewJSON([]string{catalog.NodeRoleWorker}), Slots: 2, State: catalog.NodeAlive, Version: "test"}))
	plan := &catalog.Plan{SchemaVersion: catalog.PlanSchemaVersion, RunID: v.ID, Mapping: "trades", MappingVersion: 1, Worker: "w1", MaxThreads: 2, Steps: []string{"list", "copy"}}
	require.NoError(t, s.DispatchRun(ctx, catalog.DispatchParams{RunID: v.ID, Worker: "w1", Plan: plan, LeaseName: lease.Name, LeaseHolder: "leader", LeaseToken: lease.Token}))
	call("GET", base+"/plan", "sub", nil, 200)
	claimed, err := s.ClaimRuns(ctx, catalog.ClaimParams{Worker: "w1", Limit: 1, LeaseTTL: time.Minute})
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	tok := claimed[0].FencingToken
	require.NoError(t, s.SaveTasks(ctx, catalog.SaveTasksParams{RunID: v.ID, FencingToken: tok, Plan: plan,
		Tasks: []catalog.RunTask{{Seq: 0, Thread: 0, Attempt: 1, Files: catalog.NewJSON([]string{"a.csv"}), Progress: catalog.Progress{FilesTotal: 1, BytesTotal: 600}}}}))
	e.clock.Advance(10 * time.Second)
	require.NoError(t, s.FlushProgress(ctx, catalog.FlushProgressParams{RunID: v.ID, FencingToken: tok, Run: catalog.Progress{BytesDone: 300}}))
	call("GET", base+"/tasks", "sub", nil, 200)
	call("GET", base, "sub", nil, 200)
	call("GET", A+"/runs", "viewer", nil, 200)
	manifest := &catalog.Manifest{SchemaVersion: catalog.ManifestSchemaVersion, RunID: v.ID, Mapping: "trades", MappingVersion: 1, State: catalog.StateSucceeded,
		Files: []catalog.ManifestFile{{Path: "a.csv", Size: 600, SHA256: strings.Repeat("a", 64)}}, TotalFiles: 1, TotalBytes: 600}
	_, err = s.FinishRun(ctx, catalog.FinishParams{RunID: v.ID, FencingToken: tok, Worker: "w1", State: catalog.StateSucceeded, Manifest: manifest,
		Progress: &catalog.Progress{TasksDone: 1, FilesDone: 1, BytesDone: 600}})
	require.NoError(t, err)
	call("GET", base+"/manifest", "sub", nil, 200)
	call("GET", base+"/events", "sub", nil, 200)
	call("POST", base+"/cancel", "admin", nil, 409)
	pending := call("POST", A+"/runs", "sub", tradesRequest("2026-11-19"), 201)
	pending.decode(t, &v)
	require.NoError(t, s.SetHoldReason(ctx, v.ID, "system src runs 2 of at most 2 runs"))
	e.clock.Advance(time.Hour)
	held := call("GET", A+"/runs/"+v.ID, "sub", nil, 200)
	require.Contains(t, held.String(), `"hold_reason":"system src runs 2 of at most 2 runs"`)
	call("GET", A+"/health", "viewer", nil, 200)
	call("POST", A+"/runs/"+v.ID+"/cancel", "viewer", nil, 403)
	call("POST", A+"/runs/"+v.ID+"/cancel", "admin", nil, 200)

	// Systems.
	call("GET", A+"/systems", "viewer", nil, 200)
	sys := map[string]any{"name": "wh", "kind": "fs", "settings": map[string]string{"root": "/data/wh"}, "secrets": map[string]string{"password": "hunter2"}, "max_concurrent_runs": 2}
	call("POST", A+"/systems", "admin", sys, 201)
	call("POST", A+"/systems", "admin", sys, 409)
	call("POST", A+"/systems", "nobody", map[string]any{"name": "x", "kind": "fs", "settings": map[string]string{"root": "/x"}}, 403)
	call("POST", A+"/systems", "admin", map[string]any{"name": "y", "kind": "ftp"}, 400)
	call("GET", A+"/systems/wh", "viewer", nil, 200)
	call("GET", A+"/systems/none", "viewer", nil, 404)
	sys["max_concurrent_runs"] = 3
	call("PUT", A+"/systems/wh", "admin", sys, 200)
	call("DELETE", A+"/systems/src", "admin", nil, 409)
	call("DELETE", A+"/systems/wh", "admin", nil, 204)

	// Mappings, preview and functions.
	call("GET", A+"/mappings", "viewer", nil, 200)
	rows := csvToLite([]catalog.FieldMapping{{Name: "id"}, {Name: "sym", Type: "string", Expr: "upper(sym)"}}, "qty >= 0")
	call("POST", A+"/mappings", "admin", rows, 201)
	call("POST", A+"/mappings", "admin", rows, 409)
	call("POST", A+"/mappings", "admin", csvToLite([]catalog.FieldMapping{{Name: "id", Expr: "id * * 2"}}, ""), 400)
	call("GET", A+"/mappings/rows", "viewer", nil, 200)
	call("GET", A+"/mappings/rows/versions/1", "viewer", nil, 200)
	call("GET", A+"/mappings/rows/versions/x", "viewer", nil, 400)
	call("GET", A+"/mappings/rows/versions/9", "viewer", nil, 404)
	delete(rows, "name")
	rows["description"] = "rows, upper-cased"
	rows["max_hold"] = "30m"
	call("PUT", A+"/mappings/rows", "admin", rows, 200)
	rows["max_hold"] = "8d"
	call("PUT", A+"/mappings/rows", "admin", rows, 400)
	delete(rows, "max_hold")
	call("GET", A+"/mappings/rows", "viewer", nil, 200)
	call("POST", A+"/mappings/rows/preview", "viewer", map[string]any{"params": map[string]any{"day": "2026-11-20"}, "limit": 3}, 200)
	call("POST", A+"/mappings/rows/preview", "mapreader", map[string]any{"params": map[string]any{"day": "2026-11-20"}}, 403)
	call("POST", A+"/mappings/rows/preview", "admin", map[string]any{"params": map[string]any{}}, 400)
	call("POST", A+"/mappings/nope/preview", "admin", map[string]any{}, 404)
	call("DELETE", A+"/mappings/rows", "admin", nil, 200)
	call("DELETE", A+"/mappings/rows", "sub", nil, 403)

	call("GET", A+"/functions", "viewer", nil, 200)
	fn := map[string]any{"name": "cents", "params": []string{"x"}, "expr": "to_int(round(x * 100))", "description": "money to cents"}
	call("POST", A+"/functions", "admin", fn, 201)
	call("POST", A+"/functions", "admin", fn, 409)
	call("POST", A+"/functions", "sub", map[string]any{"name": "x", "expr": "1"}, 403)
	call("POST", A+"/functions", "admin", map[string]any{"name": "twice", "params": []string{"x"}, "expr": "x * * 2"}, 400)
	call("GET", A+"/functions/cents", "viewer", nil, 200)
	call("PUT", A+"/functions/cents", "admin", map[string]any{"params": []string{"x"}, "expr": "to_int(x * 100)"}, 200)
	call("GET", A+"/functions/cents/versions/1", "viewer", nil, 200)
	call("GET", A+"/functions/cents/versions/0", "viewer", nil, 400)
	call("DELETE", A+"/functions/cents", "admin", nil, 204)
	call("GET", A+"/functions/cents", "viewer", nil, 404)

	// Schedules.
	call("GET", A+"/schedules?mapping=trades", "viewer", nil, 200)
	nightly := map[string]any{"name": "nightly", "mapping": "trades", "cron": "0 2 * * *", "time_zone": "Europe/Paris",
		"params": map[string]any{"business_date": "${tick-1d:date}", "desk": "fx"}, "priority": 3}
	call("POST", A+"/schedules", "op", nightly, 201)
	call("POST", A+"/schedules", "op", nightly, 409)
	call("POST", A+"/schedules", "viewer", map[string]any{"name": "n2", "mapping": "trades", "cron": "0 2 * * *"}, 403)
	call("POST", A+"/schedules", "op", map[string]any{"name": "n3", "mapping": "trades", "cron": "0 2 * *"}, 400)
	call("GET", A+"/schedules/nightly", "viewer", nil, 200)
	call("GET", A+"/schedules/none", "viewer", nil, 404)
	nightly["cron"] = "30 6 * * 1-5"
	call("PUT", A+"/schedules/nightly", "op", nightly, 200)
	call("POST", A+"/schedules/nightly/trigger", "op", map[string]any{"idempotency_key": "t1"}, 201)
	call("POST", A+"/schedules/nightly/trigger", "op", map[string]any{"idempotency_key": "t1"}, 200)
	call("DELETE", A+"/schedules/nightly", "op", nil, 200)

	// Administration.
	call("GET", A+"/users", "admin", nil, 200)
	call("GET", A+"/users", "sub", nil, 403)
	u := call("POST", A+"/users", "admin", map[string]any{"name": "carol", "role": "operator"}, 201)
	var carol catalog.User
	u.decode(t, &carol)
	call("POST", A+"/users", "admin", map[string]any{"name": "carol", "role": "operator"}, 409)
	call("POST", A+"/users", "admin", map[string]any{"name": "dave", "role": "king"}, 400)
	uid := fmt.Sprint(carol.ID)
	call("GET", A+"/users/"+uid, "admin", nil, 200)
	call("GET", A+"/users/x", "admin", nil, 400)
	call("GET", A+"/users/999999", "admin", nil, 404)
	call("PATCH", A+"/users/"+uid, "admin", map[string]any{"role": "viewer"}, 200)
	nt := call("POST", A+"/users/"+uid+"/tokens", "admin", map[string]any{"name": "ci", "expires_at": testToday.Add(24 * time.Hour)}, 201)
	var newTok broker.NewToken
	nt.decode(t, &newTok)
	call("GET", A+"/tokens?user_id="+uid, "admin", nil, 200)
	call("GET", A+"/tokens", "sub", nil, 403)
	call("DELETE", A+"/tokens/"+fmt.Sprint(newTok.Token.ID), "admin", nil, 204)
	call("DELETE", A+"/tokens/999999", "admin", nil, 404)
	ent := call("POST", A+"/entitlements", "admin", map[string]any{"user_id": carol.ID, "resource": "mapping:trades", "action": "read", "cidrs": []string{"10.0.0.0/8"}}, 201)
	var en catalog.Entitlement
	ent.decode(t, &en)
	call("POST", A+"/entitlements", "admin", map[string]any{"user_id": carol.ID, "resource": "mapping:trades", "action": "fly"}, 400)
	call("GET", A+"/entitlements?user_id="+uid, "admin", nil, 200)
	call("DELETE", A+"/entitlements/"+fmt.Sprint(en.ID), "admin", nil, 204)
	call("DELETE", A+"/entitlements/"+fmt.Sprint(en.ID), "admin", nil, 404)

	// Passwords, sessions, groups and the audit log.
	call("PUT", A+"/users/"+uid+"/password", "admin", map[string]any{"password": "carol-password-123"}, 204)
	call("PUT", A+"/users/"+uid+"/password", "admin", map[string]any{"password": "short"}, 400)
	call("PUT", A+"/users/999999/password", "admin", map[string]any{"password": "carol-password-123"}, 404)
	call("PUT", A+"/users/"+uid+"/password", "sub", map[string]any{"password": "carol-password-123"}, 403)
	call("POST", A+"/session", "", map[string]any{"username": "carol", "password": "wrong-password!"}, 401)
	call("POST", A+"/session", "", map[string]any{"username": "", "password": "x"}, 400)
	si := call("POST", A+"/session", "", map[string]any{"username": "carol", "password": "carol-password-123"}, 201)
	var info broker.SessionInfo
	si.decode(t, &info)
	cookie := sessionCookie(t, si).Value
	require.Equal(t, 200, e.do(withCookie("GET", A+"/session", cookie, "", nil)).Status)
	require.Equal(t, 403, e.do(withCookie("DELETE", A+"/session", cookie, "", nil)).Status)
	require.Equal(t, 204, e.do(withCookie("DELETE", A+"/session", cookie, info.CSRFToken, nil)).Status)
	require.Equal(t, 401, e.do(withCookie("GET", A+"/session", cookie, "", nil)).Status)
	g := call("POST", A+"/groups", "admin", map[string]any{"name": "desk", "description": "the desk"}, 201)
	var grp catalog.Group
	g.decode(t, &grp)
	gid := fmt.Sprint(grp.ID)
	call("POST", A+"/groups", "admin", map[string]any{"name": "desk"}, 409)
	call("POST", A+"/groups", "admin", map[string]any{"name": "Not Valid"}, 400)
	call("POST", A+"/groups", "sub", map[string]any{"name": "mine"}, 403)
	call("PUT", A+"/groups/"+gid+"/members/"+uid, "admin", nil, 204)
	call("PUT", A+"/groups/"+gid+"/members/999999", "admin", nil, 404)
	call("PUT", A+"/groups/"+gid+"/members/x", "admin", nil, 400)
	call("POST", A+"/entitlements", "admin", map[string]any{"group_id": grp.ID, "resource": "mapping:trades", "action": "read"}, 201)
	call("GET", A+"/groups", "admin", nil, 200)
	call("GET", A+"/groups/"+gid, "admin", nil, 200)
	call("GET", A+"/groups/999999", "admin", nil, 404)
	call("GET", A+"/entitlements?user_id="+uid, "admin", nil, 200)
	call("DELETE", A+"/groups/"+gid+"/members/"+uid, "admin", nil, 204)
	call("DELETE", A+"/groups/"+gid+"/members/"+uid, "admin", nil, 404)
	call("DELETE", A+"/groups/"+gid, "admin", nil, 204)
	call("DELETE", A+"/groups/"+gid, "admin", nil, 404)
	call("GET", A+"/audit?action=group.*&limit=2", "admin", nil, 200)
	call("GET", A+"/audit?outcome=maybe", "admin", nil, 400)
	call("GET", A+"/audit", "sub", nil, 403)

	// Health, nodes, thresholds and alerts.
	call("GET", A+"/health", "viewer", nil, 200)
	call("GET", A+"/health?region=bad%20region", "viewer", nil, 400)
	call("GET", A+"/nodes", "viewer", nil, 200)
	call("GET", A+"/nodes/w1", "viewer", nil, 200)
	call("GET", A+"/nodes/none", "viewer", nil, 404)
	require.NoError(t, s.InsertSamples(ctx, []catalog.HostSample{{NodeID: "w1", At: e.clock.Now().Add(-time.Minute),
		Metrics: catalog.NewJSON(map[string]float64{"cpu.busy_pct": 12})}}))
	call("GET", A+"/nodes/w1/history?window=30m", "viewer", nil, 200)
	call("GET", A+"/nodes/w1/history?window=6h", "viewer", nil, 200)
	call("GET", A+"/nodes/w1/history?window=soon", "viewer", nil, 400)
	call("GET", A+"/nodes/none/history", "viewer", nil, 404)
	call("GET", A+"/nodes/w1/history", "", nil, 401)
	call("GET", A+"/thresholds", "admin", nil, 200)
	call("GET", A+"/thresholds", "viewer", nil, 403)
	call("PUT", A+"/thresholds/node:w1", "admin", map[string]any{"cpu": map[string]float64{"warn": 40, "crit": 50}}, 200)
	call("PUT", A+"/thresholds/node:w1", "admin", map[string]any{"fan": map[string]float64{"warn": 1, "crit": 2}}, 400)
	call("GET", A+"/thresholds/node:w1", "admin", nil, 200)
	call("DELETE", A+"/thresholds/node:w1?metric=cpu", "admin", nil, 204)
	call("DELETE", A+"/thresholds/node:w1", "admin", nil, 404)
	a, _, err := s.RaiseAlert(ctx, catalog.RaiseAlertParams{Key: "node-red:w1", Severity: "critical", Subject: "w1 is red", Message: "cpu", Region: testRegion})
	require.NoError(t, err)
	call("GET", A+"/alerts?open=true&severity=warning&limit=10", "viewer", nil, 200)
	call("GET", A+"/alerts?severity=loud", "viewer", nil, 400)
	aid := fmt.Sprint(a.ID)
	call("POST", A+"/alerts/"+aid+"/ack", "viewer", nil, 403)
	call("POST", A+"/alerts/"+aid+"/ack", "op", nil, 200)
	call("POST", A+"/alerts/"+aid+"/resolve", "op", nil, 200)
	call("POST", A+"/alerts/999999/resolve", "op", nil, 404)

	// Node commands (admin only).
	cmdBody := map[string]any{"name": "sync", "node": "w1", "argv": []string{"/usr/bin/rsync", "--daemon"}, "env": []string{"RSYNC_PASSWORD"}}
	call("POST", A+"/commands", "op", cmdBody, 403)
	call("POST", A+"/commands", "admin", map[string]any{"name": "sync", "node": "w1", "argv": []string{"rsync"}}, 400)
	nc := call("POST", A+"/commands", "admin", cmdBody, 201)
	call("POST", A+"/commands", "admin", cmdBody, 409)
	var cmd catalog.NodeCommand
	nc.decode(t, &cmd)
	call("GET", A+"/commands?node=w1", "admin", nil, 200)
	call("GET", A+"/commands", "op", nil, 403)
	cid := fmt.Sprint(cmd.ID)
	call("GET", A+"/commands/"+cid, "admin", nil, 200)
	call("GET", A+"/commands/x", "admin", nil, 400)
	call("DELETE", A+"/commands/"+cid, "admin", nil, 204)
	call("DELETE", A+"/commands/"+cid, "admin", nil, 404)

	// The federation API, signed as another region's server would.
	F := "/federation/v1"
	fedWant := func(r response, want int) {
		t.Helper()
		require.Equal(t, want, r.Status, "%s", r)
	}
	caller := catalog.HashToken(e.tokens["sub"])
	body := []byte(`{"mapping":"trades","params":{"business_date":"2026-11-18"}}`)
	fr := e.fedCall("POST", F+"/runs", body, caller)
	fedWant(fr, 201)
	fr.decode(t, &v)
	fb := F + "/runs/" + v.ID
	fedWant(e.fedCall("GET", fb, nil, caller), 200)
	fedWant(e.fedCall("GET", fb+"/events", nil, caller), 200)
	fedWant(e.fedCall("GET", fb+"/tasks", nil, caller), 200)
	fedWant(e.fedCall("GET", fb+"/plan", nil, caller), 404)
	fedWant(e.fedCall("GET", fb+"/manifest", nil, caller), 404)
	fedWant(e.fedCall("POST", fb+"/cancel", nil, catalog.HashToken(e.tokens["admin"])), 200)
	fedWant(e.fedCall("GET", fb, nil, ""), 401)
	done := F + "/runs/" + claimed[0].ID
	fedWant(e.fedCall("GET", done+"/plan", nil, caller), 200)
	fedWant(e.fedCall("GET", done+"/manifest", nil, caller), 200)
	fedWant(e.fedCall("GET", F+"/identity", nil, ""), 200)
	fedWant(e.fedCall("GET", F+"/directory", nil, ""), 200)
	fedWant(e.do(request{Method: "GET", Path: F + "/directory"}), 401)

	// Every operation was driven to success.
	var undriven []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			statuses := k.seen[op.OperationID]
			if !slices.ContainsFunc(mapKeys(statuses), func(c int) bool { return c >= 200 && c < 300 }) {
				undriven = append(undriven, method+" "+path)
			}
		}
	}
	sort.Strings(undriven)
	require.Empty(t, undriven, "operations never driven to a success")
	var n int
	for _, st := range k.seen {
		n += len(st)
	}
	t.Logf("%d operations, %d (operation, status) pairs validated", len(k.seen), n)
}

func mapKeys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
