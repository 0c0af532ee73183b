package web_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
)

// TestRunPageCancelAndRetry: the run page shows the buttons the viewer's
// role and entitlements allow; cancel and retry work from them; the server
// refuses them to others, forged or not; the live fragment comes alone.
func TestRunPageCancelAndRetry(t *testing.T) {
	t.Parallel()
	st := newRunStack(t)
	ids := st.seedRuns(1, mustUser(t, st, "sub"))
	id := ids[0]
	op, sub, viewer := st.signIn("op"), st.signIn("sub"), st.signIn("viewer")

	code, body := op.get("/runs/" + id)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `id="cancel-run"`)
	require.NotContains(t, body, `id="retry-run"`, "a run still going is not retried")
	require.Contains(t, body, `data-live="/runs/`+id+`/live"`)
	require.Contains(t, body, `<progress class="run-progress" max="100" value="0.0"`)
	require.Contains(t, body, "No manifest yet")
	require.Contains(t, body, "submitted by sub")

	_, body = sub.get("/runs/" + id)
	require.NotContains(t, body, `id="cancel-run"`, "a submitter may not cancel")
	code, _, _ = sub.submit("/runs/"+id+"/cancel", nil)
	require.Equal(t, http.StatusForbidden, code)
	code, _, _ = op.post("/runs/"+id+"/cancel", url.Values{})
	require.Equal(t, http.StatusForbidden, code, "no CSRF token")

	code, body, loc := op.submit("/runs/"+id+"/cancel", nil)
	require.Equal(t, http.StatusSeeOther, code, body)
	require.True(t, strings.HasPrefix(loc, "/runs/"+id+"?flash="), loc)
	r, err := st.store.GetRun(st.ctx, id)
	require.NoError(t, err)
	require.Equal(t, catalog.StateCanceled, r.State)

	// Finished: retry for whoever may submit; no live polling any more.
	_, body = sub.get("/runs/" + id)
	require.Contains(t, body, `id="retry-run"`)
	require.NotContains(t, body, `data-live=`)
	_, body = viewer.get("/runs/" + id)
	require.NotContains(t, body, `id="retry-run"`)
	require.NotContains(t, body, `id="cancel-run"`)
	code, _, _ = viewer.submit("/runs/"+id+"/retry", nil)
	require.Equal(t, http.StatusForbidden, code)

	code, body, loc = sub.submit("/runs/"+id+"/retry", url.Values{"idempotency_key": {"retry-1"}})
	require.Equal(t, http.StatusSeeOther, code, body)
	newID := strings.TrimPrefix(strings.SplitN(loc, "?", 2)[0], "/runs/")
	require.NotEqual(t, id, newID)
	nr, err := st.store.GetRun(st.ctx, newID)
	require.NoError(t, err)
	require.Equal(t, "trades", nr.Mapping)
	require.Equal(t, r.Params.V, nr.Params.V)
	require.Equal(t, "sub", nr.SubmittedBy)
	// The same form posted twice (a double click) makes one run.
	_, _, loc2 := sub.submit("/runs/"+id+"/retry", url.Values{"idempotency_key": {"retry-1"}})
	require.Equal(t, loc, loc2)

	// The live fragment, without the layout.
	req, _ := http.NewRequest(http.MethodGet, st.srv.URL+"/runs/"+newID+"/live", nil)
	req.Header.Set("X-Weir-Live", "1")
	resp, err := op.hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	live, _ := io.ReadAll(resp.Body)
	require.NotContains(t, string(live), "<html")
	require.Contains(t, string(live), `id="run-progress"`)

	// Bad and unknown run ids.
	code, body = op.get("/runs/12")
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, body, "is not a run_id")
	code, _ = op.get("/runs/999999999999999999999999")
	require.Equal(t, http.StatusNotFound, code)
}
