package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
	"github.com/weirdata/weir/worker"
	"github.com/weirdata/weir/workload"
)

// TestMain starts a real Weir server in this process for the examples and
// the API tests: a broker on a SQLite catalog with a workload manager and a
// worker, the demo mapping "demo-trades" (fs to fs) and an admin token,
// which WEIR_SERVER and WEIR_TOKEN name, as for a deployed server.
func TestMain(m *testing.M) {
	stop, err := startServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the test server:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// testServer is the in-process server of TestMain.
var testServer struct {
	url, token string
	store      *catalog.Store
	ops        *opRecorder
}

// opRecorder records which operations of the OpenAPI document the server
// answered, with which statuses.
type opRecorder struct {
	doc    *openapi3.T
	router routers.Router
	next   http.Handler
	mu     sync.Mutex
	seen   map[string]map[int]bool
}

func newOpRecorder(next http.Handler) (*opRecorder, error) {
	raw, err := broker.OpenAPI()
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, err
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &opRecorder{doc: doc, router: r, next: next, seen: map[string]map[int]bool{}}, nil
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (o *opRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	route, _, err := o.router.FindRoute(r)
	o.next.ServeHTTP(sw, r)
	if err != nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	id := route.Operation.OperationID
	if o.seen[id] == nil {
		o.seen[id] = map[int]bool{}
	}
	o.seen[id][sw.status] = true
}

// succeeded reports whether the operation answered a 2xx.
func (o *opRecorder) succeeded(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for st := range o.seen[id] {
		if st >= 200 && st < 300 {
			return true
		}
	}
	return false
}

const testRegion = "local"

func startServer() (stop func(), err error) {
	dir, err := os.MkdirTemp("", "weir-client-test-")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cleanup := func() { cancel(); _ = os.RemoveAll(dir) }
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	store, err := catalog.Open(ctx, catalog.StoreConfig{DSN: filepath.Join(dir, "catalog.db")})
	if err != nil {
		return nil, err
	}
	if err := store.Migrate(ctx); err != nil {
		return nil, err
	}
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	for _, f := range []struct{ path, data string }{
		{"trades/2026-11-20/trades-1.csv", "id,sym,qty\n1,aapl,10\n2,msft,5\n"},
		{"trades/2026-11-20/trades-2.csv", "id,sym,qty\n3,ibm,7\n"},
	} {
		p := filepath.Join(src, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(f.data), 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, err
	}
	for _, sys := range []*catalog.System{
		{Name: "demo-src", Kind: catalog.KindFS, Region: testRegion, Settings: catalog.NewJSON(map[string]string{"root": src})},
		{Name: "demo-dst", Kind: catalog.KindFS, Region: testRegion, Settings: catalog.NewJSON(map[string]string{"root": dst})},
	} {
		if err := store.CreateSystem(ctx, sys); err != nil {
			return nil, err
		}
	}
	if err := store.PutMapping(ctx, &catalog.Mapping{Name: "demo-trades", Enabled: true, CreatedBy: "admin",
		Source: catalog.NewJSON(catalog.Endpoint{System: "demo-src", Path: "trades/{business_date}"}),
		Target: catalog.NewJSON(catalog.Endpoint{System: "demo-dst", Path: "trades/{business_date}"}),
		Params: catalog.NewJSON([]catalog.ParamSpec{{Name: "business_date", Type: catalog.ParamDate, Required: true,
			Window: &catalog.DateWindow{Min: "2026-01-01", AllowFuture: true}}})}); err != nil {
		return nil, err
	}
	admin := &catalog.User{Name: "admin", Role: catalog.RoleAdmin}
	if err := store.CreateUser(ctx, admin); err != nil {
		return nil, err
	}
	token, _, err := store.CreateToken(ctx, catalog.CreateTokenParams{UserID: admin.ID, Name: "admin"})
	if err != nil {
		return nil, err
	}

	quiet := slog.New(slog.DiscardHandler)
	b := broker.New(broker.Config{Region: testRegion, NodeID: "test-server", Logger: quiet}, store)
	if _, err := b.Federate(broker.FederationConfig{}, store); err != nil { // serves /api/v1/cluster
		return nil, err
	}
	rec, err := newOpRecorder(b.Handler())
	if err != nil {
		return nil, err
	}
	srv := httptest.NewServer(rec)
	mgr := workload.New(workload.Config{Region: testRegion, NodeID: "test-server", LeaseTTL: 2 * time.Second,
		PollInterval: 50 * time.Millisecond, Logger: quiet}, store)
	wrk := worker.New(worker.Config{NodeID: "test-worker", Region: testRegion, Version: "test", Slots: 2, Threads: 2,
		LeaseTTL: 5 * time.Second, HeartbeatInterval: 100 * time.Millisecond, ProgressInterval: 50 * time.Millisecond,
		PollInterval: 50 * time.Millisecond, Logger: quiet}, store, connector.Default())
	var wg sync.WaitGroup
	wg.Go(func() { _ = mgr.Run(ctx) })
	wg.Go(func() { _ = wrk.Run(ctx) })

	testServer.url, testServer.token, testServer.store, testServer.ops = srv.URL, token, store, rec
	os.Setenv("WEIR_SERVER", srv.URL)
	os.Setenv("WEIR_TOKEN", token)
	return func() {
		cancel()
		wg.Wait()
		srv.Close()
		_ = store.Close()
		_ = os.RemoveAll(dir)
	}, nil
}
