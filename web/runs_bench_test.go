package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// runsBenchCatalog is how many runs the runs page benchmark's catalog holds.
const runsBenchCatalog = 10_000

// BenchmarkRunsPage renders the runs page, signed in, over HTTP, with
// 10,000 runs in a SQLite catalog: the first page, and a page deep in the
// list (by the cursor). Each render is one page of 50 runs whatever the
// catalog's size.
//
//	go test ./web -run '^$' -bench BenchmarkRunsPage -benchmem
func BenchmarkRunsPage(b *testing.B) {
	st := newRunStack(b)
	start := time.Now()
	ids := st.seedRuns(runsBenchCatalog, mustUserTB(b, st, "sub"))
	b.Logf("seeded %d runs in %s", len(ids), time.Since(start).Round(time.Millisecond))
	// op may read one mapping (the API lists that mapping's runs); admin
	// may read all (no mapping filter).
	op, admin := st.signIn("op"), st.signIn("admin")
	for _, bc := range []struct {
		name, path string
		who        *runBrowser
	}{
		{"admin/first", "/runs", admin},
		{"admin/deep", "/runs?cursor=" + ids[runsBenchCatalog/2], admin},
		{"op/first", "/runs", op},
		{"op/deep", "/runs?cursor=" + ids[runsBenchCatalog/2], op},
		{"op/filtered", "/runs?state=pending&user=sub&since=2000-01-01T00:00", op},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				code, body := bc.who.get(bc.path)
				if code != http.StatusOK || strings.Count(body, `<tr data-run="`) != 50 || !strings.Contains(body, `rel="next"`) {
					b.Fatalf("GET %s: %d, %d rows", bc.path, code, strings.Count(body, `<tr data-run="`))
				}
			}
		})
	}
}
