package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// TestClientReachesEveryAPIRoute calls every client method against the
// in-process server and checks, with the server's OpenAPI document, that
// every operation under /api/v1 was reached and answered a success: a route
// added to the API without a client method fails here.
func TestClientReachesEveryAPIRoute(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(testServer.url, testServer.token)
	require.NoError(t, err)
	s := testServer.store

	doc, err := c.OpenAPI(ctx)
	require.NoError(t, err)
	var head struct{ OpenAPI string }
	require.NoError(t, json.Unmarshal(doc, &head))
	require.True(t, strings.HasPrefix(head.OpenAPI, "3."), "an OpenAPI 3 document")
	me, err := c.WhoAmI(ctx)
	require.NoError(t, err)
	require.Equal(t, "admin", me.Name)
	_, err = c.Cluster(ctx)
	require.NoError(t, err)

	// Runs.
	run, err := c.SubmitRun(ctx, client.SubmitRunRequest{Mapping: "demo-trades", Params: map[string]string{"business_date": "2026-11-20"}})
	require.NoError(t, err)
	done, err := c.WaitRun(ctx, run.ID, 50*time.Millisecond, nil)
	require.NoError(t, err)
	require.Equal(t, catalog.StateSucceeded, done.State, done.Error)
	_, err = c.GetRun(ctx, run.ID)
	require.NoError(t, err)
	evs, err := c.RunEvents(ctx, run.ID, 0)
	require.NoError(t, err)
	require.NotEmpty(t, evs)
	_, err = c.RunPlan(ctx, run.ID)
	require.NoError(t, err)
	_, err = c.RunManifest(ctx, run.ID)
	require.NoError(t, err)
	_, err = c.RunTasks(ctx, run.ID)
	require.NoError(t, err)
	// A run canceled right after its submission; the worker may be quicker
	// to finish it (nothing to copy for that date): then try again.
	for attempt := 1; ; attempt++ {
		next, err := c.SubmitRun(ctx, client.SubmitRunRequest{Mapping: "demo-trades", Params: map[string]string{"business_date": "2099-01-01"}})
		require.NoError(t, err)
		canceled, err := c.CancelRun(ctx, next.ID)
		if errors.Is(err, client.ErrConflict) && attempt < 5 {
			continue
		}
		require.NoError(t, err)
		require.True(t, canceled.CancelRequested)
		break
	}
	var n int
	for _, err := range c.AllRuns(ctx, client.ListRunsOptions{Mapping: "demo-trades", Limit: 1}) {
		require.NoError(t, err)
		n++
	}
	require.GreaterOrEqual(t, n, 2, "pages of one run each were walked")

	// Systems, mappings, preview and functions.
	sys, err := c.CreateSystem(ctx, client.SystemRequest{Name: "scratch", Kind: "null", Settings: map[string]string{}})
	require.NoError(t, err)
	_, err = c.GetSystem(ctx, sys.Name)
	require.NoError(t, err)
	_, err = c.UpdateSystem(ctx, client.SystemRequest{Name: "scratch", Kind: "null", Settings: map[string]string{}, MaxConcurrentRuns: 2})
	require.NoError(t, err)
	_, err = c.ListSystems(ctx)
	require.NoError(t, err)
	m, err := c.CreateMapping(ctx, client.MappingRequest{Name: "copy", Source: client.Endpoint{System: "demo-src", Path: "trades/{d}"},
		Target: client.Endpoint{System: "demo-dst", Path: "copy/{d}"}, Params: []client.ParamSpec{{Name: "d", Type: "date", Required: true}},
		Description: "a copy", WriteMode: catalog.WriteAppend})
	require.NoError(t, err)
	require.Equal(t, catalog.WriteAppend, m.WriteMode)
	_, err = c.UpdateMapping(ctx, client.MappingRequest{Name: "copy", Source: client.Endpoint{System: "demo-src", Path: "trades/{d}"},
		Target: client.Endpoint{System: "demo-dst", Path: "copy2/{d}"}, Params: []client.ParamSpec{{Name: "d", Type: "date", Required: true}}})
	require.NoError(t, err)
	v1, err := c.GetMappingVersion(ctx, "copy", 1)
	require.NoError(t, err)
	require.Equal(t, "copy/{d}", v1.Target.V.Path)
	_, err = c.GetMapping(ctx, "copy")
	require.NoError(t, err)
	_, err = c.ListMappings(ctx)
	require.NoError(t, err)
	rows, err := c.CreateMapping(ctx, client.MappingRequest{Name: "rows",
		Source: client.Endpoint{System: "demo-src", Path: "trades/{d}/trades-1.csv", Format: "csv",
			Schema: []client.SchemaField{{Name: "id", Type: "int"}, {Name: "sym", Type: "string"}, {Name: "qty", Type: "int"}}},
		Target: client.Endpoint{System: "demo-dst", Path: "rows/{d}.csv", Format: "csv"},
		Params: []client.ParamSpec{{Name: "d", Type: "date", Required: true}},
		Fields: []client.FieldMapping{{Name: "id"}, {Name: "sym", Type: "string", Expr: "upper(sym)"}}, Filter: "qty > 5"})
	require.NoError(t, err)
	p, err := c.PreviewMapping(ctx, rows.Name, client.PreviewRequest{Params: map[string]string{"d": "2026-11-20"}, Limit: 10})
	require.NoError(t, err)
	require.Len(t, p.Rows, 2)
	require.Equal(t, []any{1.0, "AAPL"}, p.Rows[0].Output)
	require.True(t, p.Rows[1].Dropped, "qty 5 fails the filter")
	_, err = c.DeleteMapping(ctx, "copy")
	require.NoError(t, err)
	require.NoError(t, c.DeleteSystem(ctx, "scratch"))

	_, err = c.CreateFunction(ctx, client.FunctionRequest{Name: "cents", Params: []string{"x"}, Expr: "to_int(round(x * 100))"})
	require.NoError(t, err)
	_, err = c.UpdateFunction(ctx, client.FunctionRequest{Name: "cents", Params: []string{"x"}, Expr: "to_int(x * 100)"})
	require.NoError(t, err)
	f1, err := c.GetFunctionVersion(ctx, "cents", 1)
	require.NoError(t, err)
	require.Equal(t, "to_int(round(x * 100))", f1.Expr)
	_, err = c.GetFunction(ctx, "cents")
	require.NoError(t, err)
	_, err = c.ListFunctions(ctx)
	require.NoError(t, err)
	require.NoError(t, c.DeleteFunction(ctx, "cents"))
	_, err = c.GetFunction(ctx, "cents")
	require.ErrorIs(t, err, client.ErrNotFound)

	// Schedules.
	_, err = c.CreateSchedule(ctx, client.ScheduleRequest{Name: "nightly", Mapping: "demo-trades", Cron: "0 2 * * *",
		Params: map[string]string{"business_date": "${tick-1d:date}"}})
	require.NoError(t, err)
	_, err = c.UpdateSchedule(ctx, client.ScheduleRequest{Name: "nightly", Mapping: "demo-trades", Cron: "30 6 * * *",
		Params: map[string]string{"business_date": "${tick-1d:date}"}})
	require.NoError(t, err)
	_, err = c.GetSchedule(ctx, "nightly")
	require.NoError(t, err)
	_, err = c.ListSchedules(ctx, "demo-trades")
	require.NoError(t, err)
	tick := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	_, err = c.TriggerSchedule(ctx, "nightly", client.TriggerScheduleRequest{Tick: &tick})
	require.NoError(t, err)
	_, err = c.DeleteSchedule(ctx, "nightly")
	require.NoError(t, err)

	// Administration.
	u, err := c.CreateUser(ctx, client.UserRequest{Name: "carol", Role: catalog.RoleSubmitter})
	require.NoError(t, err)
	_, err = c.CreateUser(ctx, client.UserRequest{Name: "carol", Role: catalog.RoleSubmitter})
	require.ErrorIs(t, err, client.ErrConflict)
	viewer := catalog.RoleViewer
	_, err = c.UpdateUser(ctx, u.ID, client.UserPatch{Role: &viewer})
	require.NoError(t, err)
	got, err := c.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, catalog.RoleViewer, got.Role)
	_, err = c.ListUsers(ctx)
	require.NoError(t, err)
	tok, err := c.CreateToken(ctx, u.ID, client.TokenRequest{Name: "ci"})
	require.NoError(t, err)
	require.NotEmpty(t, tok.Secret)
	ent, err := c.CreateEntitlement(ctx, client.EntitlementRequest{UserID: u.ID, Resource: "mapping:demo-trades", Action: catalog.ActionRead})
	require.NoError(t, err)
	ents, err := c.ListEntitlements(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, ents, 1)

	carol, err := client.New(testServer.url, tok.Secret)
	require.NoError(t, err)
	_, err = carol.SubmitRun(ctx, client.SubmitRunRequest{Mapping: "demo-trades", Params: map[string]string{"business_date": "2026-11-20"}})
	require.ErrorIs(t, err, client.ErrForbidden)
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "forbidden", ae.Code)
	require.NotEmpty(t, ae.RequestID)
	_, err = carol.ListUsers(ctx)
	require.ErrorIs(t, err, client.ErrForbidden)
	_, err = c.SubmitRun(ctx, client.SubmitRunRequest{Mapping: "demo-trades", Params: map[string]string{"business_date": "someday"}})
	require.ErrorIs(t, err, client.ErrInvalid)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "params.business_date", ae.Field)
	require.False(t, errors.Is(err, client.ErrNotFound))

	require.NoError(t, c.DeleteEntitlement(ctx, ent.ID))
	toks, err := c.ListTokens(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, toks, 1)
	require.NoError(t, c.RevokeToken(ctx, tok.ID))
	_, err = carol.WhoAmI(ctx)
	require.ErrorIs(t, err, client.ErrUnauthenticated)

	// Passwords, sessions, groups and the audit log.
	require.NoError(t, c.SetPassword(ctx, u.ID, "carol-password-123", ""))
	browser, csrf := newSessionClient(t, testServer.url)
	sess, err := browser.SignIn(ctx, "carol", "carol-password-123")
	require.NoError(t, err)
	csrf.token = sess.CSRFToken
	cur, err := browser.CurrentSession(ctx)
	require.NoError(t, err)
	require.Equal(t, "carol", cur.User.Name)
	require.NoError(t, browser.SignOut(ctx))
	_, err = browser.CurrentSession(ctx)
	require.ErrorIs(t, err, client.ErrUnauthenticated)
	grp, err := c.CreateGroup(ctx, "desk", "the desk")
	require.NoError(t, err)
	require.NoError(t, c.AddGroupMember(ctx, grp.ID, u.ID))
	_, err = c.ListGroups(ctx)
	require.NoError(t, err)
	gd, err := c.GetGroup(ctx, grp.ID)
	require.NoError(t, err)
	require.Equal(t, []int64{u.ID}, gd.MemberIDs)
	require.NoError(t, c.RemoveGroupMember(ctx, grp.ID, u.ID))
	require.NoError(t, c.DeleteGroup(ctx, grp.ID))
	audit, err := c.ListAudit(ctx, client.AuditOptions{Action: "group.*"})
	require.NoError(t, err)
	require.Len(t, audit.Entries, 4)

	// Health, nodes, thresholds and alerts.
	_, err = c.Health(ctx, "")
	require.NoError(t, err)
	nodes, err := c.ListNodes(ctx, "")
	require.NoError(t, err)
	require.NotEmpty(t, nodes, "the worker heartbeats its node row")
	_, err = c.GetNode(ctx, "test-worker")
	require.NoError(t, err)
	hist, err := c.NodeHistory(ctx, "test-worker", 15*time.Minute)
	require.NoError(t, err)
	require.Equal(t, client.HistoryRaw, hist.Resolution)
	_, err = c.NodeHistory(ctx, "no-such-node", 0)
	require.ErrorIs(t, err, client.ErrNotFound)
	_, err = c.SetThresholds(ctx, "node:test-worker", map[string]client.ThresholdLevels{"cpu": {Warn: 90, Crit: 99}})
	require.NoError(t, err)
	_, err = c.GetThresholds(ctx, "node:test-worker")
	require.NoError(t, err)
	_, err = c.ListThresholds(ctx)
	require.NoError(t, err)
	require.NoError(t, c.DeleteThresholds(ctx, "node:test-worker", ""))
	var ids []int64
	for i := range 3 {
		a, _, err := s.RaiseAlert(ctx, catalog.RaiseAlertParams{Key: "client-test:" + string(rune('a'+i)), Severity: "warning", Subject: "s", Message: "m", Region: testRegion})
		require.NoError(t, err)
		ids = append(ids, a.ID)
	}
	var walked []int64
	for a, err := range c.AllAlerts(ctx, client.ListAlertsOptions{Key: "", Limit: 2, Open: true}) {
		require.NoError(t, err)
		if strings.HasPrefix(a.Key, "client-test:") {
			walked = append(walked, a.ID)
		}
	}
	require.ElementsMatch(t, ids, walked, "every alert, across pages of two")
	_, err = c.AckAlert(ctx, ids[0])
	require.NoError(t, err)
	_, err = c.ResolveAlert(ctx, ids[0])
	require.NoError(t, err)

	// Node commands.
	nc, err := c.CreateCommand(ctx, client.CommandRequest{Name: "client-test", Node: "test-worker-none", Argv: []string{"/bin/sleep", "60"}})
	require.NoError(t, err)
	cmds, err := c.ListCommands(ctx, "test-worker-none")
	require.NoError(t, err)
	require.Len(t, cmds, 1)
	gotCmd, err := c.GetCommand(ctx, nc.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"/bin/sleep", "60"}, gotCmd.Argv.V)
	require.NoError(t, c.DeleteCommand(ctx, nc.ID))
	var gone *client.APIError
	require.ErrorAs(t, c.DeleteCommand(ctx, nc.ID), &gone)
	require.Equal(t, 404, gone.Status)

	// Every operation of the API was reached.
	var missed []string
	for path, item := range testServer.ops.doc.Paths.Map() {
		if !strings.HasPrefix(path, "/api/v1/") {
			continue // probes and the federation API are not the client's
		}
		for method, op := range item.Operations() {
			if !testServer.ops.succeeded(op.OperationID) {
				missed = append(missed, method+" "+path)
			}
		}
	}
	sort.Strings(missed)
	require.Empty(t, missed, "API operations no client method reached")
}
