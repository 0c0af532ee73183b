package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRunsListPagesAndFilters: the runs page shows one page of runs and a
// link to the next, walks the pages by the API's cursor, filters by state,
// mapping, user, region and time, and answers a bad filter with a 400 and
// the error next to its field.
func TestRunsListPagesAndFilters(t *testing.T) {
	t.Parallel()
	st := newRunStack(t)
	u := st.user("seeder", "submitter")
	ids := st.seedRuns(120, u)
	b := st.signIn("op")

	code, body := b.get("/runs")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, 50, strings.Count(body, `<tr data-run="`))
	require.Contains(t, body, ids[len(ids)-1], "newest first")
	require.NotContains(t, body, ids[len(ids)-51])
	require.Contains(t, body, `<a href="/runs?cursor=`+ids[len(ids)-50]+`" rel="next"`)

	// Page 2 then 3 by the cursor; the last page has no next link.
	next := "/runs?cursor=" + ids[len(ids)-50]
	code, body = b.get(next)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, 50, strings.Count(body, `<tr data-run="`))
	require.Contains(t, body, ids[len(ids)-51])
	code, body = b.get("/runs?cursor=" + ids[20])
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 20, strings.Count(body, `<tr data-run="`))
	require.NotContains(t, body, `rel="next"`)

	// Filters.
	_, body = b.get("/runs?user=seeder&state=pending&mapping=trades&region=eu-west")
	require.Equal(t, 50, strings.Count(body, `<tr data-run="`))
	require.Contains(t, body, `<a href="/runs?cursor=`+ids[len(ids)-50]+`&amp;mapping=trades&amp;region=eu-west&amp;state=pending&amp;user=seeder" rel="next"`,
		"the next page keeps the filter")
	_, body = b.get("/runs?user=nobody")
	require.Contains(t, body, "No run matches this filter")
	_, body = b.get("/runs?state=succeeded")
	require.Equal(t, 0, strings.Count(body, `<tr data-run="`))
	_, body = b.get("/runs?region=us-east")
	require.Equal(t, 0, strings.Count(body, `<tr data-run="`))
	_, body = b.get("/runs?until=2001-01-01")
	require.Equal(t, 0, strings.Count(body, `<tr data-run="`))
	_, body = b.get("/runs?since=2001-01-01T00:00")
	require.Equal(t, 50, strings.Count(body, `<tr data-run="`))

	// Bad filters: 400, the message next to the field.
	for q, field := range map[string]string{"state=done": "state", "since=yesterday": "since", "mapping=Bad%20Name": "mapping",
		"cursor=abc": "cursor", "since=2026-11-02&until=2026-11-01": "until"} {
		code, body = b.get("/runs?" + q)
		require.Equal(t, http.StatusBadRequest, code, q)
		require.Contains(t, body, `data-field="`+field+`"`, q)
	}
}
