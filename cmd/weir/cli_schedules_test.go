package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
	"github.com/weirdata/weir/client"
	"github.com/weirdata/weir/workload"
)

// schedAPI is a real broker on a real catalog behind an HTTP server, for
// the schedule commands: users admin and viewer (read on everything),
// systems src and dst, and the mapping demo-trades (business_date: a date of
// the last 30 days).
type schedAPI struct {
	t      *testing.T
	store  *catalog.Store
	srv    *broker.Server
	url    string
	tokens map[string]string
}

func newSchedAPI(t *testing.T, dialect string) *schedAPI {
	t.Helper()
	ctx := context.Background()
	st := catalogtest.Open(t, dialect)
	a := &schedAPI{t: t, store: st, tokens: map[string]string{}}
	for _, u := range []struct{ name, role string }{{"admin", catalog.RoleAdmin}, {"viewer", catalog.RoleViewer}} {
		user := &catalog.User{Name: u.name, Role: u.role}
		require.NoError(t, st.CreateUser(ctx, user))
		if u.role == catalog.RoleViewer {
			require.NoError(t, st.CreateEntitlement(ctx, &catalog.Entitlement{UserID: user.ID, Resource: "*", Action: catalog.ActionRead, CIDRs: catalog.NewJSON([]string{})}))
		}
		secret, _, err := st.CreateToken(ctx, catalog.CreateTokenParams{UserID: user.ID, Name: u.name})
		require.NoError(t, err)
		a.tokens[u.name] = secret
	}
	for _, n := range []string{"src", "dst"} {
		require.NoError(t, st.CreateSystem(ctx, &catalog.System{Name: n, Kind: catalog.KindFS, Region: RegionDefault,
			Settings: catalog.NewJSON(map[string]string{"root": "/data/" + n})}))
	}
	require.NoError(t, st.CreateMapping(ctx, &catalog.Mapping{Name: "demo-trades", Enabled: true,
		Source: catalog.NewJSON(catalog.Endpoint{System: "src", Path: "trades/{business_date}"}),
		Target: catalog.NewJSON(catalog.Endpoint{System: "dst", Path: "trades/{business_date}"}),
		Params: catalog.NewJSON([]catalog.ParamSpec{{Name: "business_date", Type: catalog.ParamDate, Required: true, Window: &catalog.DateWindow{MaxAgeDays: 30}}})}))
	a.srv = broker.New(broker.Config{Region: RegionDefault, NodeID: "srv-1"}, st)
	hs := httptest.NewServer(a.srv.Handler())
	t.Cleanup(hs.Close)
	a.url = hs.URL
	return a
}

// cli runs the weir CLI as user against the API.
func (a *schedAPI) cli(user string, args ...string) cliResult {
	a.t.Helper()
	var out, errb bytes.Buffer
	all := append([]string{"--server", a.url, "--token", a.tokens[user], "--data-dir", a.t.TempDir()}, args...)
	code := NewMain(&out, &errb).Run(context.Background(), all)
	return cliResult{stdout: out.String(), stderr: errb.String(), code: code}
}

func (a *schedAPI) schedules() []catalog.Schedule {
	a.t.Helper()
	scs, err := a.store.ListSchedules(context.Background(), catalog.ScheduleFilter{})
	require.NoError(a.t, err)
	return scs
}

var runIDRE = regexp.MustCompile(`^[0-9]{24}$`)

func TestSchedulesCommands(t *testing.T) {
	a := newSchedAPI(t, catalog.DialectSQLite)
	ctx := context.Background()

	res := a.cli("admin", "schedules", "create", "nightly", "--mapping", "demo-trades", "--cron", "0 2 * * *",
		"--time-zone", "Europe/Paris", "-p", "business_date=${tick-1d:date}", "--description", "the day before, every night")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Regexp(t, `^Schedule nightly created: demo-trades at "0 2 \* \* \*" in Europe/Paris, as admin\. Next tick: 20\d\d-\d\d-\d\d 02:00:00 CES?T\.\n$`, res.stdout)

	res = a.cli("admin", "schedules", "create", "nightly", "--mapping", "demo-trades", "--cron", "0 2 * * *", "-p", "business_date=${tick-1d:date}")
	assert.Equal(t, ExitError, res.code)
	assert.Contains(t, res.stderr, `a schedule named "nightly" exists already`)
	assert.Contains(t, res.stderr, "Hint: change it with --replace")

	res = a.cli("admin", "schedules", "create", "nightly", "--replace", "--mapping", "demo-trades", "--cron", "0 3 * * *",
		"--time-zone", "Europe/Paris", "-p", "business_date=${tick-1d:date}", "--overlap", "queue", "--priority", "7")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Contains(t, res.stdout, "Schedule nightly replaced: demo-trades at \"0 3 * * *\" in Europe/Paris")

	res = a.cli("viewer", "schedules", "list")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Contains(t, res.stdout, "NAME     MAPPING      CRON       TIME ZONE     ENABLED  NEXT TICK")
	assert.Regexp(t, `nightly  demo-trades  0 3 \* \* \*  Europe/Paris  true     20\d\d-\d\d-\d\d 03:00:00 CES?T  -     admin`, res.stdout)

	res = a.cli("viewer", "-o", "json", "schedules", "list", "--mapping", "demo-trades")
	require.Equal(t, ExitOK, res.code, res.stderr)
	var list struct{ Schedules []client.Schedule }
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &list), res.stdout)
	require.Len(t, list.Schedules, 1)
	assert.Equal(t, catalog.OverlapQueue, list.Schedules[0].Overlap)
	assert.Equal(t, 7, list.Schedules[0].Priority)
	assert.Len(t, list.Schedules[0].Upcoming, broker.ScheduleUpcomingTicks)

	res = a.cli("viewer", "schedules", "show", "nightly")
	require.Equal(t, ExitOK, res.code, res.stderr)
	for _, want := range []string{
		`Name\s+nightly\n`,
		`Mapping\s+demo-trades \(region local\)\n`,
		`Cron\s+0 3 \* \* \* in Europe/Paris\n`,
		`Parameters\s+business_date=\$\{tick-1d:date\}\n`,
		`Priority\s+7\n`,
		`Policies\s+overlap queue, catch-up latest\n`,
		`Owner\s+admin \(runs are created as this user\)\n`,
		`Last\s+-\n`,
		`\nNext ticks:\n`,
	} {
		assert.Regexp(t, want, res.stdout)
	}
	assert.NotContains(t, res.stdout, "Description", "--replace replaced the whole definition")
	assert.Equal(t, broker.ScheduleUpcomingTicks, strings.Count(res.stdout, " 03:00:00 CE"), res.stdout)

	// Trigger: the run is created as the caller, with the tick's parameters.
	tick := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	res = a.cli("admin", "schedules", "trigger", "nightly", "--tick", tick.Format(time.RFC3339))
	require.Equal(t, ExitOK, res.code, res.stderr)
	id := strings.TrimSpace(res.stdout)
	require.Regexp(t, runIDRE, id, "stdout is the run_id alone")
	run, err := a.store.GetRun(ctx, id)
	require.NoError(t, err)
	paris, _ := time.LoadLocation("Europe/Paris")
	assert.Equal(t, tick.In(paris).AddDate(0, 0, -1).Format(catalog.DateLayout), run.Params.V["business_date"])
	assert.Equal(t, "admin", run.SubmittedBy)
	assert.Equal(t, 7, run.Priority)

	res = a.cli("admin", "-o", "json", "schedules", "trigger", "nightly", "--idempotency-key", "again-1")
	require.Equal(t, ExitOK, res.code, res.stderr)
	var triggered client.Run
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &triggered), res.stdout)
	assert.Equal(t, catalog.StatePending, triggered.State)
	res = a.cli("admin", "schedules", "trigger", "nightly", "--idempotency-key", "again-1")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Equal(t, triggered.ID, strings.TrimSpace(res.stdout))
	assert.Contains(t, res.stderr, "was triggered before with this idempotency key")

	res = a.cli("viewer", "schedules", "show", "nightly")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Contains(t, res.stdout, "latest run "+triggered.ID)

	res = a.cli("admin", "schedules", "delete", "nightly")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Equal(t, "Schedule nightly deleted; the runs it created stay.\n", res.stdout)
	res = a.cli("admin", "schedules", "show", "nightly")
	assert.Equal(t, ExitNotFound, res.code)
	assert.Contains(t, res.stderr, `no schedule named "nightly" (404 not_found)`)
	assert.Contains(t, res.stderr, "Hint: "+scheduleNotFoundHint)
	_, err = a.store.GetRun(ctx, id)
	require.NoError(t, err)

	res = a.cli("admin", "schedules", "list")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Equal(t, "No schedules. Create one with `weir schedules create`.\n", res.stdout)
}

func TestSchedulesCommandsRefuseBadInputPrecisely(t *testing.T) {
	a := newSchedAPI(t, catalog.DialectSQLite)
	create := []string{"schedules", "create", "nightly", "--mapping", "demo-trades", "--cron", "0 2 * * *", "-p", "business_date=${tick-1d:date}"}
	with := func(extra ...string) []string { return append(append([]string{}, create...), extra...) }
	cases := []struct {
		name string
		user string
		args []string
		want []string
	}{
		// Refused before anything is sent.
		{"no mapping", "admin", []string{"schedules", "create", "nightly", "--cron", "@daily"}, []string{"--mapping is required", "Hint: name the mapping to run"}},
		{"no cron", "admin", []string{"schedules", "create", "nightly", "--mapping", "demo-trades"}, []string{"--cron is required", `Hint: such as --cron "0 2 * * *"`}},
		{"bad overlap", "admin", with("--overlap", "wait"), []string{`bad --overlap "wait"`, "Hint: use skip"}},
		{"bad catch-up", "admin", with("--catch-up", "all"), []string{`bad --catch-up "all"`, "Hint: use latest"}},
		{"bad param", "admin", with("-p", "desk"), []string{`bad parameter "desk": want key=value`}},
		{"no name", "admin", []string{"schedules", "create"}, []string{"weir schedules create takes 1 argument (the schedule's name), got 0"}},
		{"bad tick", "admin", []string{"schedules", "trigger", "nightly", "--tick", "yesterday"}, []string{`bad --tick "yesterday": not an RFC 3339 time`, "Hint: such as --tick 2026-11-20T02:00:00+01:00"}},
		{"extra arg", "admin", []string{"schedules", "list", "x"}, []string{`weir schedules list takes no arguments, got "x"`}},
		// Refused by the server, with the field and a hint.
		{"bad cron", "admin", []string{"schedules", "create", "nightly", "--mapping", "demo-trades", "--cron", "0 2 * *", "-p", "business_date=${tick-1d:date}"},
			[]string{`cron: "0 2 * *" is not a cron expression (expected 5 to 6 fields, found 4`, "(400 invalid)", "Hint: use 5 fields"}},
		{"bad zone", "admin", with("--time-zone", "Paris"), []string{`time_zone: "Paris" is not an IANA time zone`, "Hint: use an IANA time zone"}},
		{"undeclared param", "admin", with("-p", "desk=fx"), []string{`params.desk: mapping demo-trades declares no parameter "desk"`, "Hint: `weir mappings show demo-trades` lists its parameters"}},
		{"future date", "admin", []string{"schedules", "create", "nightly", "--mapping", "demo-trades", "--cron", "@daily", "-p", "business_date=${tick+2d:date}"},
			[]string{"params.business_date:", "is in the future"}},
		{"bad template", "admin", []string{"schedules", "create", "nightly", "--mapping", "demo-trades", "--cron", "@daily", "-p", "business_date=${today}"},
			[]string{"params.business_date: ${today} is not a tick template"}},
		{"unknown mapping", "admin", []string{"schedules", "create", "nightly", "--mapping", "nope", "--cron", "@daily"}, []string{`mapping: no mapping named "nope"`}},
		{"not entitled", "viewer", create, []string{"you may not manage mapping:demo-trades", "(403 forbidden)", "Hint: your user has no entitlement for this"}},
		{"trigger unknown", "admin", []string{"schedules", "trigger", "nope"}, []string{`no schedule named "nope" (404 not_found)`, "Hint: " + scheduleNotFoundHint}},
		{"delete unknown", "admin", []string{"schedules", "delete", "nope"}, []string{`no schedule named "nope"`}},
	}
	// Bad command lines exit ExitUsage, the server's refusals by their status.
	codes := map[string]int{"not entitled": ExitAuth, "trigger unknown": ExitNotFound, "delete unknown": ExitNotFound}
	for _, tc := range cases[:8] {
		codes[tc.name] = ExitUsage
	}
	for _, tc := range cases[8:] {
		if _, ok := codes[tc.name]; !ok {
			codes[tc.name] = ExitError
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := a.cli(tc.user, tc.args...)
			assert.Equal(t, codes[tc.name], res.code)
			for _, w := range tc.want {
				assert.Contains(t, res.stderr, w)
			}
			assert.Empty(t, res.stdout)
		})
	}
	assert.Empty(t, a.schedules(), "nothing was created")

	res := a.cli("admin", "schedules", "--help")
	require.Equal(t, ExitOK, res.code)
	assert.Contains(t, res.stdout, "${tick-1d:date}")
	assert.Contains(t, res.stdout, "weir schedules create nightly-trades --mapping demo-trades")
}

// What cmd/weir wires in `weir server` and `weir dev`: the scheduler of each
// server, next to its workload manager (same region and node id), with the
// broker as its Submitter. A schedule created over the CLI fires every
// second through the broker's checks, as its owner.
func TestScheduleFiresThroughTheBroker(t *testing.T) {
	for _, d := range catalogtest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			a := newSchedAPI(t, d)
			res := a.cli("admin", "schedules", "create", "every-second", "--mapping", "demo-trades", "--cron", "* * * * * *",
				"-p", "business_date=${tick-1d:date}", "--overlap", "queue")
			require.Equal(t, ExitOK, res.code, res.stderr)

			ctx, cancel := context.WithCancel(context.Background())
			m := workload.New(workload.Config{Region: RegionDefault, NodeID: "srv-1", LeaseTTL: time.Second}, a.store)
			sch := workload.NewScheduler(workload.SchedulerConfig{Region: RegionDefault, NodeID: "srv-1", Interval: 50 * time.Millisecond}, a.store, a.srv)
			var wg sync.WaitGroup
			wg.Go(func() { assert.NoError(t, m.Run(ctx)) })
			wg.Go(func() { assert.NoError(t, sch.Run(ctx)) })
			defer func() { cancel(); wg.Wait() }()

			var sc client.Schedule
			require.Eventually(t, func() bool {
				res := a.cli("viewer", "-o", "json", "schedules", "show", "every-second")
				if res.code != ExitOK || json.Unmarshal([]byte(res.stdout), &sc) != nil {
					return false
				}
				return len(sc.RecentTicks) >= 3
			}, 15*time.Second, 100*time.Millisecond, "three ticks fire within seconds")
			cancel()
			wg.Wait()

			seen := map[string]bool{}
			for _, tk := range sc.RecentTicks {
				require.Equal(t, catalog.TickFired, tk.Outcome, tk.Reason)
				require.False(t, seen[tk.RunID], "one run per tick")
				seen[tk.RunID] = true
				run, err := a.store.GetRun(context.Background(), tk.RunID)
				require.NoError(t, err)
				require.Equal(t, "admin", run.SubmittedBy, "as the schedule's owner")
				require.Equal(t, tk.Tick.UTC().AddDate(0, 0, -1).Format(catalog.DateLayout), run.Params.V["business_date"])
				require.Equal(t, catalog.ScheduleIdempotencyKey(sc.ID, tk.Tick), *run.IdempotencyKey)
				evs, err := a.store.ListRunEvents(context.Background(), run.ID, 0)
				require.NoError(t, err)
				require.Equal(t, "scheduled", evs[len(evs)-1].Kind)
				require.Contains(t, evs[len(evs)-1].Message, "created by schedule every-second for the tick ")
			}
		})
	}
}
