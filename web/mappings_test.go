package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
)

// TestMappingFormsSubmitAndPreview: an operator creates a mapping from the
// form (errors next to their fields first), previews it on sample rows,
// edits it into a new version, and submits a run with its parameters; a
// viewer sees no submit form and is refused when forging it.
func TestMappingFormsSubmitAndPreview(t *testing.T) {
	t.Parallel()
	st := newRunStack(t)
	st.writeSource("2026-11-20", map[string]string{"trades.csv": "id,sym,qty,px\n1,aapl,10,1.5\n2,msft,-4,2.25\n3,ibm,0,3\n"})
	for _, action := range []string{catalog.ActionManage, catalog.ActionRead} {
		require.NoError(t, st.store.CreateEntitlement(st.ctx, &catalog.Entitlement{UserID: mustUser(t, st, "op").ID, Resource: "mapping:*",
			Action: action, CIDRs: catalog.NewJSON([]string{})}))
	}
	op := st.signIn("op")

	code, body := op.get("/mappings/new")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `<option value="src"`)

	form := url.Values{"name": {"rows"}, "source.system": {"src"}, "source.path": {"trades/{business_date}/trades.csv"},
		"target.system": {"dst"}, "target.path": {"rows/{business_date}"}, "enabled": {"1"},
		"params": {`[{"name":"business_date","type":"date","required":true,"window":{"min":"2020-01-01","allow_future":true}}]`},
		"advanced": {`{"source":{"format":"csv","schema":[{"name":"id","type":"int"},{"name":"sym","type":"string"},{"name":"qty","type":"int"},{"name":"px","type":"float"}]},
			"target":{"format":"csv"},"fields":[{"name":"id"},{"name":"sym","type":"string","expr":"upper(sym)"}],"filter":"qty >= 0"}`}}

	// Errors next to their fields: the form's own, then the API's.
	bad := cloneValues(form)
	bad.Set("max_attempts", "many")
	bad.Set("params", "[{")
	code, body, _ = op.submit("/mappings", bad)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, `data-field="max_attempts"`)
	require.Contains(t, body, `data-field="params"`)
	require.Contains(t, body, `value="trades/{business_date}/trades.csv"`, "the posted values fill the form again")
	bad = cloneValues(form)
	bad.Set("source.system", "nope")
	code, body, _ = op.submit("/mappings", bad)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, `data-field="source.system"`)
	bad = cloneValues(form)
	bad.Set("advanced", `{"fields":[{"name":"sym","expr":"upper("}]}`)
	code, body, _ = op.submit("/mappings", bad)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, `data-field="advanced"`)

	code, body, loc := op.submit("/mappings", form)
	require.Equal(t, http.StatusSeeOther, code, body)
	require.True(t, strings.HasPrefix(loc, "/mappings/rows?"), loc)
	code, body = op.get("/mappings/rows")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "You may not submit runs of this mapping", "op may submit trades only")
	require.Contains(t, body, "qty &gt;= 0")
	_, body = op.get("/mappings/trades")
	require.Contains(t, body, `id="submit-run"`)
	require.Contains(t, body, `name="params.business_date" type="date"`)

	// Preview: the source's rows and the output, a dropped row marked.
	code, body, _ = op.submit("/mappings/rows/preview", url.Values{"params.business_date": {"2026-11-20"}, "limit": {"10"}})
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `id="preview"`)
	require.Contains(t, body, "<td>AAPL</td>")
	require.Contains(t, body, "dropped by the filter")
	code, body, _ = op.submit("/mappings/rows/preview", url.Values{"params.business_date": {"2026-11-20"}, "limit": {"500"}})
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, `data-field="limit"`)
	code, body, _ = op.submit("/mappings/trades/preview", url.Values{"params.business_date": {"2026-11-20"}})
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "copies files byte for byte")

	// Edit: a new version, the data plane kept.
	code, body = op.get("/mappings/rows/edit")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "upper(sym)")
	edit := cloneValues(form)
	edit.Del("name")
	edit.Set("description", "rows of trades")
	code, body, _ = op.submit("/mappings/rows", edit)
	require.Equal(t, http.StatusSeeOther, code, body)
	m, err := st.store.GetMapping(st.ctx, "rows")
	require.NoError(t, err)
	require.Equal(t, 2, m.Version)
	require.Equal(t, "rows of trades", m.Description)
	require.Equal(t, "qty >= 0", m.Filter)

	// Submit a run: a bad parameter is shown next to its field; a good one opens the run.
	code, body, _ = op.submit("/mappings/trades/runs", url.Values{"params.business_date": {"2019-01-01"}})
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, `data-field="params.business_date"`)
	code, body, loc = op.submit("/mappings/trades/runs", url.Values{"params.business_date": {"2026-11-20"}, "priority": {"3"}})
	require.Equal(t, http.StatusSeeOther, code, body)
	require.True(t, strings.HasPrefix(loc, "/runs/"), loc)
	runs, _, err := st.store.ListRuns(st.ctx, catalog.RunFilter{Mapping: "trades"})
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.Equal(t, "2026-11-20", runs[0].Params.V["business_date"])
	require.Equal(t, 3, runs[0].Priority)

	// A viewer sees no submit form, cannot post one, nor edit.
	viewer := st.signIn("viewer")
	code, body = viewer.get("/mappings/trades")
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, body, `id="submit-run"`)
	require.NotContains(t, body, `id="edit-mapping"`)
	code, _, _ = viewer.submit("/mappings/trades/runs", url.Values{"params.business_date": {"2026-11-20"}})
	require.Equal(t, http.StatusForbidden, code)
	code, _, _ = viewer.submit("/mappings/rows", edit)
	require.Equal(t, http.StatusForbidden, code)
	// A form without its CSRF token is refused, whoever posts it.
	code, _, _ = op.post("/mappings/trades/runs", url.Values{"params.business_date": {"2026-11-20"}})
	require.Equal(t, http.StatusForbidden, code)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func mustUser(t *testing.T, st *runStack, name string) *catalog.User {
	t.Helper()
	return mustUserTB(t, st, name)
}

func mustUserTB(t testing.TB, st *runStack, name string) *catalog.User {
	t.Helper()
	u, err := st.store.GetUserByName(st.ctx, name)
	require.NoError(t, err)
	return u
}
