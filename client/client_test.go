package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/catalog"
)

const testToken = "weir_testtokensecretvalue0123456789"

// newTestClient builds a client of srv whose retries do not really sleep:
// each wait is recorded in *waits.
func newTestClient(t *testing.T, url string, opts ...Option) (*Client, *[]time.Duration) {
	t.Helper()
	c, err := New(url, testToken, opts...)
	require.NoError(t, err)
	var mu sync.Mutex
	waits := &[]time.Duration{}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*waits = append(*waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	return c, waits
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg, field string) {
	e := map[string]any{"code": code, "message": msg}
	if field != "" {
		e["field"] = field
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func runJSON(id string, state catalog.RunState) map[string]any {
	return map[string]any{
		"run_id": id, "state": state, "mapping": "demo-trades", "attempt": 1, "max_attempts": 3,
		"progress":   map[string]any{"files_total": 10, "files_done": 4, "bytes_total": 1000, "bytes_done": 400},
		"created_at": "2026-11-20T10:00:00Z", "elapsed_seconds": 2.5, "rate_bytes_per_second": 160.0, "eta_seconds": 3.75,
	}
}

func TestNewRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://host", "http://", "http://user:pw@host:1"} {
		_, err := New(u, testToken)
		require.Error(t, err, u)
		assert.NotContains(t, err.Error(), "pw", "credentials never echo")
	}
	c, err := New(" http://127.0.0.1:8080/ ", testToken)
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:8080", c.BaseURL())
}

func TestSubmitRunGeneratesOneKeyAndRetries503(t *testing.T) {
	var hits atomic.Int32
	var mu sync.Mutex
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/api/v1/runs", r.URL.Path)
		require.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "Bearer "+testToken, r.Header.Get("Authorization"))
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		var body map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		assert.Equal(t, "demo-trades", body["mapping"])
		assert.Equal(t, map[string]any{"business_date": "2026-11-20"}, body["params"])
		assert.EqualValues(t, 5, body["priority"])
		mu.Lock()
		keys = append(keys, body["idempotency_key"].(string))
		mu.Unlock()
		if hits.Add(1) <= 2 {
			writeErr(w, http.StatusServiceUnavailable, "unavailable", "catalog is not ready", "")
			return
		}
		writeJSON(w, http.StatusCreated, runJSON("000000000000100100000001", catalog.StatePending))
	}))
	defer srv.Close()
	c, waits := newTestClient(t, srv.URL)

	run, err := c.SubmitRun(context.Background(), SubmitRunRequest{
		Mapping: "demo-trades", Params: map[string]string{"business_date": "2026-11-20"}, Priority: 5,
	})
	require.NoError(t, err)
	assert.Equal(t, "000000000000100100000001", run.ID)
	assert.Equal(t, catalog.StatePending, run.State)
	assert.False(t, run.Replayed, "201 is a new run")
	assert.EqualValues(t, 4, run.FilesDone)
	require.NotNil(t, run.ETASeconds)
	assert.InDelta(t, 3.75, *run.ETASeconds, 1e-9)
	assert.InDelta(t, 160.0, run.RateBytesPerSecond, 1e-9)

	require.Len(t, keys, 3)
	assert.True(t, strings.HasPrefix(keys[0], "weir-"), keys[0])
	assert.Len(t, keys[0], len("weir-")+32)
	assert.Equal(t, keys[0], keys[1], "every retry carries the same key")
	assert.Equal(t, keys[0], keys[2])
	assert.Len(t, *waits, 2)

	// Another submit gets another key.
	hits.Store(2)
	_, err = c.SubmitRun(context.Background(), SubmitRunRequest{Mapping: "demo-trades", Params: map[string]string{"business_date": "2026-11-20"}, Priority: 5})
	require.NoError(t, err)
	assert.NotEqual(t, keys[0], keys[3])
}

func TestSubmitRunKeepsCallersKeyAndReportsReplay(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		assert.Equal(t, "nightly-2026-11-20", body["idempotency_key"])
		_, hasPriority := body["priority"]
		assert.False(t, hasPriority, "zero priority is left out")
		writeJSON(w, http.StatusOK, runJSON("000000000000100100000009", catalog.StateActive))
	}))
	defer srv.Close()
	c, _ := newTestClient(t, srv.URL)
	run, err := c.SubmitRun(context.Background(), SubmitRunRequest{Mapping: "m", IdempotencyKey: "nightly-2026-11-20"})
	require.NoError(t, err)
	assert.True(t, run.Replayed, "200 answers with the earlier run")

	_, err = c.SubmitRun(context.Background(), SubmitRunRequest{Mapping: " "})
	require.ErrorContains(t, err, "mapping name is required")
}

func TestNonIdempotentRequestsAreNotRetriedOn503(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeErr(w, http.StatusServiceUnavailable, "unavailable", "not ready", "")
	}))
	defer srv.Close()
	c, _ := newTestClient(t, srv.URL)

	_, err := c.CreateSystem(context.Background(), SystemRequest{Name: "s1", Kind: "null"})
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusServiceUnavailable, ae.Status)
	assert.EqualValues(t, 1, hits.Load(), "a POST that may have been applied is not repeated")

	hits.Store(0)
	_, err = c.CancelRun(context.Background(), "123")
	require.Error(t, err)
	assert.EqualValues(t, 1, hits.Load())
}

func TestRetriesGiveUpAfterMaxAttempts(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Retry-After", "2")
		writeErr(w, http.StatusServiceUnavailable, "unavailable", "overloaded", "")
	}))
	defer srv.Close()
	c, waits := newTestClient(t, srv.URL, WithRetry(RetryPolicy{MaxAttempts: 4, BaseDelay: 10 * time.Millisecond, MaxDelay: 3 * time.Second}))

	_, err := c.GetRun(context.Background(), "123")
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 503, ae.Status)
	assert.EqualValues(t, 4, hits.Load())
	require.Len(t, *waits, 3)
	for _, w := range *waits {
		assert.Equal(t, 2*time.Second, w, "Retry-After outweighs a shorter backoff")
	}

	// Retry-After beyond MaxDelay is capped.
	hits.Store(0)
	*waits = nil
	c2, waits2 := newTestClient(t, srv.URL, WithRetry(RetryPolicy{MaxAttempts: 2, BaseDelay: 10 * time.Millisecond, MaxDelay: time.Second}))
	_, err = c2.GetRun(context.Background(), "123")
	require.Error(t, err)
	assert.Equal(t, []time.Duration{time.Second}, *waits2)
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	p := RetryPolicy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}.WithDefaults()
	bounds := []struct {
		n        int
		min, max time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 200 * time.Millisecond, 400 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, 500 * time.Millisecond, time.Second},
		{40, 500 * time.Millisecond, time.Second},
	}
	for _, b := range bounds {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := p.backoff(b.n)
			require.GreaterOrEqual(t, d, b.min, "retry %d", b.n)
			require.LessOrEqual(t, d, b.max, "retry %d", b.n)
			seen[d] = true
		}
		assert.Greater(t, len(seen), 1, "retry %d is jittered", b.n)
	}
	d := RetryPolicy{}.WithDefaults()
	assert.Equal(t, RetryPolicy{MaxAttempts: RetryMaxAttemptsDefault, BaseDelay: RetryBaseDelayDefault, MaxDelay: RetryMaxDelayDefault}, d)
}

// freeAddr returns a loopback address where nothing listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestConnectionRefusedIsRetriedUntilTheServerComesUp(t *testing.T) {
	addr := freeAddr(t)
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/api/v1/runs/42/cancel" {
			writeJSON(w, http.StatusOK, runJSON("42", catalog.StateCanceled))
			return
		}
		writeJSON(w, http.StatusOK, runJSON("42", catalog.StateActive))
	}))
	defer srv.Close()
	c, waits := newTestClient(t, "http://"+addr)
	started := false
	c.sleep = func(ctx context.Context, d time.Duration) error {
		*waits = append(*waits, d)
		if len(*waits) == 2 && !started { // the server comes up during the second wait
			l, err := net.Listen("tcp", addr)
			require.NoError(t, err)
			srv.Listener = l
			srv.Start()
			started = true
		}
		return nil
	}
	run, err := c.GetRun(context.Background(), "42")
	require.NoError(t, err)
	assert.Equal(t, catalog.StateActive, run.State)
	assert.Len(t, *waits, 2)
	assert.EqualValues(t, 1, hits.Load())
	// The second wait is longer than the first: the backoff grows.
	assert.Greater(t, (*waits)[1], (*waits)[0]/2)
}

func TestConnectionRefusedRetriesEvenNonIdempotentRequests(t *testing.T) {
	addr := freeAddr(t)
	c, waits := newTestClient(t, "http://"+addr, WithRetry(RetryPolicy{MaxAttempts: 3}))
	_, err := c.CancelRun(context.Background(), "42")
	var ce *ConnError
	require.ErrorAs(t, err, &ce)
	assert.True(t, ce.Refused())
	assert.True(t, ce.NotSent())
	assert.Len(t, *waits, 2, "nothing reached the server, so even a cancel is retried")
	assert.Contains(t, err.Error(), addr)
	assert.Contains(t, err.Error(), "connection refused")
	assert.NotContains(t, err.Error(), testToken)
}

// hangUp closes the connection without an answer, as a crashing server would.
func hangUp(t *testing.T, w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	require.True(t, ok)
	conn, _, err := hj.Hijack()
	require.NoError(t, err)
	require.NoError(t, conn.Close())
}

func TestBrokenConnectionRetriesOnlyIdempotentRequests(t *testing.T) {
	var gets, posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			if gets.Add(1) <= 2 {
				hangUp(t, w)
				return
			}
			writeJSON(w, http.StatusOK, runJSON("42", catalog.StateActive))
			return
		}
		posts.Add(1)
		hangUp(t, w)
	}))
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	c, _ := newTestClient(t, srv.URL, WithHTTPClient(hc))

	_, err := c.GetRun(context.Background(), "42")
	require.NoError(t, err)
	assert.EqualValues(t, 3, gets.Load())

	_, err = c.CancelRun(context.Background(), "42")
	var ce *ConnError
	require.ErrorAs(t, err, &ce)
	assert.False(t, ce.NotSent())
	assert.EqualValues(t, 1, posts.Load(), "the cancel may have been applied: not repeated")
}

func TestAPIErrorDecoding(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/runs/bad":
			writeErr(w, 400, "invalid", "2027-01-01 is in the future (today is 2026-11-20)", "params.business_date")
		case "/api/v1/runs/missing":
			writeErr(w, 404, "not_found", "run missing not found", "")
		case "/api/v1/runs/conflict":
			writeErr(w, 409, "conflict", "idempotency key used with another request", "")
		case "/api/v1/runs/auth":
			writeErr(w, 401, "unauthenticated", "token "+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")+" is revoked", "")
		case "/api/v1/runs/forbidden":
			writeErr(w, 403, "forbidden", "no entitlement to read mapping:x", "")
		case "/api/v1/runs/proxy":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			_, _ = io.WriteString(w, "<html>Bad Gateway</html>")
		case "/api/v1/runs/empty":
			w.WriteHeader(500)
		case "/api/v1/runs/garbage":
			_, _ = io.WriteString(w, "{not json")
		}
	}))
	defer srv.Close()
	c, _ := newTestClient(t, srv.URL)
	ctx := context.Background()

	_, err := c.GetRun(ctx, "bad")
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, APIError{Status: 400, Code: "invalid", Message: "2027-01-01 is in the future (today is 2026-11-20)",
		Field: "params.business_date", Method: "GET", Path: "/api/v1/runs/bad"}, *ae)
	assert.Equal(t, "get run bad: params.business_date: 2027-01-01 is in the future (today is 2026-11-20) (400 invalid)", err.Error())

	_, err = c.GetRun(ctx, "missing")
	assert.ErrorIs(t, err, catalog.ErrNotFound)
	assert.NotErrorIs(t, err, catalog.ErrConflict)

	_, err = c.GetRun(ctx, "conflict")
	assert.ErrorIs(t, err, catalog.ErrConflict)

	_, err = c.GetRun(ctx, "auth")
	assert.ErrorIs(t, err, catalog.ErrUnauthenticated)
	assert.NotContains(t, err.Error(), testToken, "a token the server echoes is redacted")
	assert.Contains(t, err.Error(), "[REDACTED]")

	_, err = c.GetRun(ctx, "forbidden")
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 403, ae.Status)
	assert.Equal(t, "forbidden", ae.Code)

	_, err = c.GetRun(ctx, "proxy")
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 502, ae.Status)
	assert.Equal(t, "", ae.Code)
	assert.Contains(t, ae.Message, "<html>Bad Gateway</html>")
	assert.Contains(t, err.Error(), "(502 bad_gateway)")

	_, err = c.GetRun(ctx, "empty")
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "GET /api/v1/runs/empty: Internal Server Error", ae.Message)

	_, err = c.GetRun(ctx, "garbage")
	require.ErrorContains(t, err, "decode answer to GET /api/v1/runs/garbage")

	_, err = c.GetRun(ctx, "")
	require.ErrorContains(t, err, "run_id is required")
}

func TestTokenNeverLogged(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, 503, "unavailable", "down", "")
	}))
	defer srv.Close()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, _ := newTestClient(t, srv.URL, WithLogger(logger), WithRetry(RetryPolicy{MaxAttempts: 3}))
	_, err := c.ListRuns(context.Background(), ListRunsOptions{})
	require.Error(t, err)
	assert.Equal(t, 2, strings.Count(logs.String(), "retrying weir API request"), logs.String())
	assert.NotContains(t, logs.String(), testToken)
	assert.NotContains(t, err.Error(), testToken)
}

// pagedRuns serves n runs, newest first, with cursor pagination as the broker does.
func pagedRuns(t *testing.T, n int, queries *[]string) http.Handler {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%024d", n-i) // newest (largest) first
	}
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		*queries = append(*queries, r.URL.RawQuery)
		mu.Unlock()
		limit := 50
		if l := r.URL.Query().Get("limit"); l != "" {
			limit, _ = strconv.Atoi(l)
		}
		cursor := r.URL.Query().Get("cursor")
		var page []map[string]any
		next := ""
		for _, id := range ids {
			if cursor != "" && id >= cursor {
				continue
			}
			if len(page) == limit {
				next = page[len(page)-1]["run_id"].(string)
				break
			}
			page = append(page, runJSON(id, catalog.StateSucceeded))
		}
		writeJSON(w, 200, map[string]any{"runs": page, "next_cursor": next})
	})
}

func TestAllRunsFollowsCursors(t *testing.T) {
	var queries []string
	srv := httptest.NewServer(pagedRuns(t, 7, &queries))
	defer srv.Close()
	c, _ := newTestClient(t, srv.URL)

	var got []string
	opts := ListRunsOptions{States: []catalog.RunState{catalog.StateSucceeded, catalog.StateFailed}, Mapping: "demo-trades", SubmittedBy: "admin", Limit: 3}
	for run, err := range c.AllRuns(context.Background(), opts) {
		require.NoError(t, err)
		got = append(got, run.ID)
	}
	require.Len(t, got, 7)
	assert.Equal(t, fmt.Sprintf("%024d", 7), got[0])
	assert.Equal(t, fmt.Sprintf("%024d", 1), got[6])
	require.Len(t, queries, 3)
	assert.Equal(t, "limit=3&mapping=demo-trades&state=succeeded%2Cfailed&submitted_by=admin", queries[0])
	assert.Contains(t, queries[1], "cursor="+fmt.Sprintf("%024d", 5))
	assert.Contains(t, queries[2], "cursor="+fmt.Sprintf("%024d", 2))

	// Stopping early fetches no further page.
	queries = nil
	n := 0
	for _, err := range c.AllRuns(context.Background(), ListRunsOptions{Limit: 3}) {
		require.NoError(t, err)
		if n++; n == 2 {
			break
		}
	}
	assert.Len(t, queries, 1)

	// One page, by hand.
	page, err := c.ListRuns(context.Background(), ListRunsOptions{Limit: 5})
	require.NoError(t, err)
	assert.Len(t, page.Runs, 5)
	assert.Equal(t, fmt.Sprintf("%024d", 3), page.NextCursor)
	_, err = c.ListRuns(context.Background(), ListRunsOptions{Limit: -1})
	require.ErrorContains(t, err, "limit must be 0 or more")
}

func TestAllRunsStopsOnARepeatedCursor(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"runs": []any{runJSON("9", catalog.StateActive)}, "next_cursor": "9"})
	}))
	defer srv.Close()
	c, _ := newTestClient(t, srv.URL)
	var errs []error
	n := 0
	for _, err := range c.AllRuns(context.Background(), ListRunsOptions{}) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		require.Less(t, n, 10, "a buggy server must not loop the client forever")
	}
	require.Len(t, errs, 1)
	assert.ErrorContains(t, errs[0], `repeated cursor "9"`)
}

func TestWaitRunPollsUntilTerminal(t *testing.T) {
	states := []catalog.RunState{catalog.StatePending, catalog.StateQueued, catalog.StateActive, catalog.StateSucceeded}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(hits.Add(1)) - 1
		writeJSON(w, 200, runJSON("42", states[min(i, len(states)-1)]))
	}))
	defer srv.Close()
	c, waits := newTestClient(t, srv.URL)
	var seen []catalog.RunState
	final, err := c.WaitRun(context.Background(), "42", 10*time.Millisecond, func(r Run) { seen = append(seen, r.State) })
	require.NoError(t, err)
	assert.Equal(t, catalog.StateSucceeded, final.State)
	assert.Equal(t, states, seen)
	assert.Equal(t, []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}, *waits)
}

func TestWaitRunStopsWhenTheContextEnds(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, runJSON("42", catalog.StateActive))
	}))
	defer srv.Close()
	c, err := New(srv.URL, testToken)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	polls := 0
	last, err := c.WaitRun(ctx, "42", time.Millisecond, func(Run) {
		if polls++; polls == 3 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	require.NotNil(t, last, "the last run seen is returned")
	assert.Equal(t, catalog.StateActive, last.State)
	assert.Equal(t, 3, polls)
}

func TestRunSubresources(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/prefix/api/v1/runs/42/events":
			assert.Equal(t, "7", r.URL.Query().Get("after"))
			writeJSON(w, 200, map[string]any{"events": []any{map[string]any{"id": 8, "run_id": "42", "kind": "claimed", "message": "claimed by w1", "at": "2026-11-20T10:00:00Z"}}})
		case "/prefix/api/v1/runs/42/tasks":
			writeJSON(w, 200, map[string]any{"tasks": []any{map[string]any{"run_id": "42", "seq": 1, "thread": 0, "state": "done", "files": []string{"a.csv"}}}})
		case "/prefix/api/v1/runs/42/plan":
			writeJSON(w, 200, map[string]any{"schema_version": 1, "run_id": "42", "parallelism": 4})
		case "/prefix/api/v1/runs/42/manifest":
			writeJSON(w, 200, map[string]any{"schema_version": 1, "run_id": "42", "total_files": 2, "total_bytes": 30,
				"files": []any{map[string]any{"path": "a.csv", "size": 10, "sha256": "ab"}, map[string]any{"path": "b.csv", "size": 20, "sha256": "cd"}}})
		case "/prefix/api/v1/runs/43/manifest":
			writeErr(w, 404, "not_found", "run 43 has no manifest yet", "")
		case "/prefix/api/v1/runs/42/cancel":
			assert.Equal(t, http.MethodPost, r.Method)
			writeJSON(w, 200, runJSON("42", catalog.StateActive))
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
	}))
	defer srv.Close()
	c, _ := newTestClient(t, srv.URL+"/prefix/")
	ctx := context.Background()

	evs, err := c.RunEvents(ctx, "42", 7)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Equal(t, "claimed", evs[0].Kind)
	assert.EqualValues(t, 8, evs[0].ID)

	tasks, err := c.RunTasks(ctx, "42")
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	assert.Equal(t, []string{"a.csv"}, tasks[0].Files.V)

	plan, err := c.RunPlan(ctx, "42")
	require.NoError(t, err)
	assert.Equal(t, 4, plan.Parallelism)

	m, err := c.RunManifest(ctx, "42")
	require.NoError(t, err)
	assert.EqualValues(t, 30, m.TotalBytes)
	require.Len(t, m.Files, 2)

	_, err = c.RunManifest(ctx, "43")
	assert.ErrorIs(t, err, catalog.ErrNotFound)

	run, err := c.CancelRun(ctx, "42")
	require.NoError(t, err)
	assert.Equal(t, "42", run.ID)
}

func TestSystemsMappingsAndWhoAmI(t *testing.T) {
	var created map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "GET /api/v1/systems":
			writeJSON(w, 200, map[string]any{"systems": []any{map[string]any{"name": "demo-src", "kind": "fs", "region": "local", "settings": map[string]string{"root": "/d"}, "secret_keys": []string{"password"}}}})
		case "GET /api/v1/mappings":
			// A bare array is accepted too.
			writeJSON(w, 200, []any{map[string]any{"name": "demo-trades", "version": 2, "source": map[string]string{"system": "demo-src", "path": "{business_date}/*.csv"}}})
		case "POST /api/v1/systems":
			require.NoError(t, json.NewDecoder(r.Body).Decode(&created))
			writeJSON(w, 201, map[string]any{"name": created["name"], "kind": created["kind"], "region": "local"})
		case "GET /api/v1/systems/a%2Fb", "GET /api/v1/systems/a/b":
			assert.Equal(t, "/api/v1/systems/a%2Fb", r.URL.EscapedPath(), "names are escaped as one segment")
			writeErr(w, 404, "not_found", "no system", "")
		case "POST /api/v1/mappings":
			var m map[string]any
			require.NoError(t, json.NewDecoder(r.Body).Decode(&m))
			assert.Equal(t, true, m["enabled"])
			assert.Equal(t, map[string]any{"system": "null1"}, m["source"])
			writeJSON(w, 201, map[string]any{"name": m["name"], "version": 1, "enabled": true})
		case "GET /api/v1/whoami":
			writeJSON(w, 200, map[string]any{"id": 1, "name": "admin", "role": "admin", "token_id": 3, "client_ip": "127.0.0.1", "entitlements": []any{}})
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
	}))
	defer srv.Close()
	c, _ := newTestClient(t, srv.URL)
	ctx := context.Background()

	systems, err := c.ListSystems(ctx)
	require.NoError(t, err)
	require.Len(t, systems, 1)
	assert.Equal(t, "/d", systems[0].Settings.V["root"])
	assert.Equal(t, []string{"password"}, systems[0].SecretKeys)

	mappings, err := c.ListMappings(ctx)
	require.NoError(t, err)
	require.Len(t, mappings, 1)
	assert.Equal(t, "{business_date}/*.csv", mappings[0].Source.V.Path)

	sys, err := c.CreateSystem(ctx, SystemRequest{Name: "null1", Kind: "null", Settings: map[string]string{}, Secrets: map[string]string{"password": "pw"}})
	require.NoError(t, err)
	assert.Equal(t, "local", sys.Region)
	assert.Equal(t, map[string]any{"name": "null1", "kind": "null", "settings": map[string]any{}, "secrets": map[string]any{"password": "pw"}}, created,
		"only writable fields are sent; secrets are")

	_, err = c.CreateSystem(ctx, SystemRequest{Name: "Bad Name", Kind: "null"})
	require.ErrorContains(t, err, "not a valid name")

	_, err = c.GetSystem(ctx, "a/b")
	assert.ErrorIs(t, err, catalog.ErrNotFound)

	yes := true
	m, err := c.CreateMapping(ctx, MappingRequest{Name: "m1", Source: Endpoint{System: "null1"}, Target: Endpoint{System: "null1"}, Enabled: &yes})
	require.NoError(t, err)
	assert.Equal(t, 1, m.Version)

	id, err := c.WhoAmI(ctx)
	require.NoError(t, err)
	assert.Equal(t, "admin", id.Name)
	assert.Equal(t, "admin", id.Role)
	assert.EqualValues(t, 3, id.TokenID)
}
