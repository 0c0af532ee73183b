package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
)

// TestSystemForms: an operator with manage on systems creates and edits a
// system; errors are shown next to their fields; secrets are stored but
// never shown again; a viewer can read but not post.
func TestSystemForms(t *testing.T) {
	t.Parallel()
	st := newRunStack(t)
	require.NoError(t, st.store.CreateEntitlement(st.ctx, &catalog.Entitlement{UserID: mustUser(t, st, "op").ID, Resource: "system:*",
		Action: catalog.ActionManage, CIDRs: catalog.NewJSON([]string{})}))
	op := st.signIn("op")

	code, body := op.get("/systems")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `data-system="src"`)
	require.Contains(t, body, `id="new-system"`)

	form := url.Values{"name": {"archive"}, "kind": {"fs"}, "settings": {"root=" + t.TempDir()}, "secrets": {"token=s3cret-value"}}
	for field, bad := range map[string]url.Values{
		"settings":            {"settings": {"root"}},
		"max_concurrent_runs": {"max_concurrent_runs": {"x"}},
		"kind":                {"kind": {"ftp"}},
		"name":                {"name": {"Bad Name!"}},
	} {
		f := cloneValues(form)
		for k, v := range bad {
			f[k] = v
		}
		code, body, _ = op.submit("/systems", f)
		require.Equal(t, http.StatusBadRequest, code, field)
		require.Contains(t, body, `data-field="`+field+`"`, field)
		require.NotContains(t, body, "s3cret-value", "a secret is never sent back")
	}

	code, body, loc := op.submit("/systems", form)
	require.Equal(t, http.StatusSeeOther, code, body)
	require.True(t, strings.HasPrefix(loc, "/systems/archive?"), loc)
	code, body = op.get("/systems/archive")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "<code>token</code>")
	require.NotContains(t, body, "s3cret-value")

	code, body = op.get("/systems/archive/edit")
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, body, "s3cret-value")
	code, body, _ = op.submit("/systems/archive", url.Values{"kind": {"fs"}, "settings": {"root=/srv/archive"}, "max_concurrent_runs": {"4"}})
	require.Equal(t, http.StatusSeeOther, code, body)
	sys, err := st.store.GetSystem(st.ctx, "archive")
	require.NoError(t, err)
	require.Equal(t, "/srv/archive", sys.Settings.V["root"])
	require.Equal(t, 4, sys.MaxConcurrentRuns)
	require.Equal(t, "s3cret-value", sys.Secrets.V["token"], "an empty secrets field keeps them")

	viewer := st.signIn("viewer")
	code, body = viewer.get("/systems/archive")
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, body, `id="edit-system"`)
	code, _, _ = viewer.submit("/systems/archive", url.Values{"kind": {"fs"}, "settings": {"root=/x"}})
	require.Equal(t, http.StatusForbidden, code)
	code, _ = viewer.get("/systems/new")
	require.Equal(t, http.StatusForbidden, code)
}

// TestScheduleForms: an operator schedules a mapping it may manage and
// submit (errors next to their fields), edits it, and runs it now from its
// page; a submitter may run it now but not edit it; a viewer neither.
func TestScheduleForms(t *testing.T) {
	t.Parallel()
	st := newRunStack(t)
	require.NoError(t, st.store.CreateEntitlement(st.ctx, &catalog.Entitlement{UserID: mustUser(t, st, "op").ID, Resource: "mapping:trades",
		Action: catalog.ActionManage, CIDRs: catalog.NewJSON([]string{})}))
	op := st.signIn("op")

	code, body := op.get("/schedules/new?mapping=trades")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `<option value="trades" selected>`)

	form := url.Values{"name": {"nightly"}, "mapping": {"trades"}, "cron": {"0 6 * * 1-5"}, "time_zone": {"Europe/Paris"},
		"params": {"business_date=${tick-1d:date}"}, "overlap": {"skip"}, "catch_up": {"latest"}, "enabled": {"1"}}
	for field, bad := range map[string]url.Values{
		"cron":      {"cron": {"every day"}},
		"time_zone": {"time_zone": {"Mars/Olympus"}},
		"params":    {"params": {"no equals sign"}},
		"priority":  {"priority": {"high"}},
	} {
		f := cloneValues(form)
		for k, v := range bad {
			f[k] = v
		}
		code, body, _ = op.submit("/schedules", f)
		require.Equal(t, http.StatusBadRequest, code, field)
		require.Contains(t, body, `data-field="`+field+`"`, field)
	}
	code, body, _ = op.submit("/schedules", form)
	require.Equal(t, http.StatusSeeOther, code, body)
	code, body = op.get("/schedules/nightly")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "0 6 * * 1-5")
	require.Contains(t, body, `id="trigger-schedule"`)

	edit := cloneValues(form)
	edit.Del("name")
	edit.Set("cron", "@daily")
	code, body, _ = op.submit("/schedules/nightly", edit)
	require.Equal(t, http.StatusSeeOther, code, body)
	sc, err := st.store.GetSchedule(st.ctx, "nightly")
	require.NoError(t, err)
	require.Equal(t, "@daily", sc.Cron)

	code, body, loc := op.submit("/schedules/nightly/trigger", url.Values{"idempotency_key": {"t-1"}})
	require.Equal(t, http.StatusSeeOther, code, body)
	require.True(t, strings.HasPrefix(loc, "/runs/"), loc)

	submitter := st.signIn("sub")
	_, body = submitter.get("/schedules/nightly")
	require.Contains(t, body, `id="trigger-schedule"`)
	require.NotContains(t, body, `id="edit-schedule"`)
	code, _, _ = submitter.submit("/schedules/nightly", edit)
	require.Equal(t, http.StatusForbidden, code)

	viewer := st.signIn("viewer")
	_, body = viewer.get("/schedules/nightly")
	require.NotContains(t, body, `id="trigger-schedule"`)
	code, _, _ = viewer.submit("/schedules/nightly/trigger", nil)
	require.Equal(t, http.StatusForbidden, code)
}
