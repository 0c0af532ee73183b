package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// scheduleNotFoundHint is the hint of a schedule that is not there.
const scheduleNotFoundHint = "`weir schedules list` lists the schedules you may read"

func newSchedulesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedules",
		Short: "Manage schedules: runs of a mapping at the ticks of a cron expression",
		Long: `A schedule runs a mapping at the ticks of a cron expression read in a time
zone, as its owner (whoever created or last changed it), through the same
checks as weir submit. It fires on the region's leader only; two servers
never fire one tick twice.

Expressions: 5 fields (minute hour day-of-month month day-of-week), 6 with
seconds first, or @hourly, @daily, @weekly, @monthly, @yearly, @every 90m.

Parameters may derive from the tick, read in the schedule's time zone:
  ${tick:date}        the tick's date (2026-11-20); also datetime, compact
                      (20261120), month, year, time, unix, rfc3339, or a Go
                      layout such as ${tick:2006-01-02T15}
  ${tick-1d:date}     shifted first: [+-]N with s, m, h, d, w, mo, y
  $${                 a literal ${

Overlap policy (--overlap): skip (default) makes no run while the previous
one is still pending, queued or active; queue runs it behind.
Catch-up policy (--catch-up): after ticks were missed (no server ran them),
latest (default) runs the latest missed tick once; skip drops them.`,
		Example: `  weir schedules create nightly-trades --mapping demo-trades --cron "0 2 * * *" \
      --time-zone Europe/Paris -p 'business_date=${tick-1d:date}'
  weir schedules list
  weir schedules show nightly-trades
  weir schedules trigger nightly-trades --wait
  weir schedules delete nightly-trades`,
		Args: noArgs,
	}
	cmd.AddCommand(newSchedulesListCmd(g), newSchedulesShowCmd(g), newSchedulesCreateCmd(g), newSchedulesDeleteCmd(g), newSchedulesTriggerCmd(g))
	return cmd
}

func newSchedulesListCmd(g *globals) *cobra.Command {
	var mapping string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the schedules you may read",
		Example: `  weir schedules list
  weir schedules list --mapping demo-trades
  weir schedules list -o json | jq -r '.schedules[] | select(.enabled) | .name'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			scs, err := c.ListSchedules(cmd.Context(), mapping)
			if err != nil {
				return g.explain(err, "`weir mappings list` lists the mappings you may read")
			}
			if scs == nil {
				scs = []client.Schedule{}
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), map[string]any{"schedules": scs})
			}
			out := cmd.OutOrStdout()
			if len(scs) == 0 {
				fmt.Fprintln(out, "No schedules. Create one with `weir schedules create`.")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tMAPPING\tCRON\tTIME ZONE\tENABLED\tNEXT TICK\tLAST\tOWNER")
			for _, sc := range scs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\t%s\t%s\n", sc.Name, sc.Mapping, sc.Cron, sc.TimeZone, sc.Enabled,
					fmtTick(sc.NextTick, sc.TimeZone), lastOutcome(&sc), sc.Owner)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&mapping, "mapping", "", "only the schedules of this mapping")
	return cmd
}

func newSchedulesShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "show NAME",
		Short:   "Show a schedule: its definition, next ticks and latest processed ticks",
		Example: "  weir schedules show nightly-trades\n  weir schedules show nightly-trades -o json",
		Args:    exactArgs(1, "the schedule's name", "weir schedules show NAME; "+scheduleNotFoundHint),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			sc, err := c.GetSchedule(cmd.Context(), args[0])
			if err != nil {
				return g.explain(err, scheduleNotFoundHint)
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), sc)
			}
			printSchedule(cmd.OutOrStdout(), sc)
			return nil
		},
	}
}

// fmtTick formats a tick in the schedule's time zone; nil is "-".
func fmtTick(t *time.Time, zone string) string {
	if t == nil {
		return "-"
	}
	if loc, err := time.LoadLocation(zone); err == nil {
		return t.In(loc).Format("2006-01-02 15:04:05 MST")
	}
	return t.UTC().Format(time.RFC3339)
}

func lastOutcome(sc *client.Schedule) string {
	if sc.LastTick == nil {
		return "-"
	}
	return sc.LastOutcome + " " + fmtTick(sc.LastTick, sc.TimeZone)
}

func printSchedule(w io.Writer, sc *client.Schedule) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Name\t%s\n", sc.Name)
	if sc.Description != "" {
		fmt.Fprintf(tw, "Description\t%s\n", sc.Description)
	}
	fmt.Fprintf(tw, "Mapping\t%s (region %s)\n", sc.Mapping, sc.Region)
	fmt.Fprintf(tw, "Cron\t%s in %s\n", sc.Cron, sc.TimeZone)
	fmt.Fprintf(tw, "Parameters\t%s\n", fmtParams(sc.Params.V))
	fmt.Fprintf(tw, "Priority\t%d\n", sc.Priority)
	fmt.Fprintf(tw, "Policies\toverlap %s, catch-up %s\n", sc.Overlap, sc.CatchUp)
	fmt.Fprintf(tw, "Enabled\t%t\n", sc.Enabled)
	fmt.Fprintf(tw, "Owner\t%s (runs are created as this user)\n", sc.Owner)
	last := lastOutcome(sc)
	if sc.LastRunID != "" {
		last += ", latest run " + sc.LastRunID
	}
	fmt.Fprintf(tw, "Last\t%s\n", last)
	if sc.LastError != "" {
		fmt.Fprintf(tw, "Last error\t%s\n", sc.LastError)
	}
	fmt.Fprintf(tw, "Changed\t%s\n", fmtTime(sc.UpdatedAt))
	_ = tw.Flush()
	fmt.Fprintln(w)
	if len(sc.Upcoming) == 0 {
		fmt.Fprintln(w, "Next ticks: none (disabled)")
	} else {
		fmt.Fprintln(w, "Next ticks:")
		for _, t := range sc.Upcoming {
			fmt.Fprintf(w, "  %s\n", fmtTick(&t, sc.TimeZone))
		}
	}
	if len(sc.RecentTicks) == 0 {
		return
	}
	fmt.Fprintln(w, "\nLatest ticks:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TICK\tOUTCOME\tRUN\tNODE\tREASON")
	for _, tk := range sc.RecentTicks {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", fmtTick(&tk.Tick, sc.TimeZone), tk.Outcome, orDash(tk.RunID), orDash(tk.Node), orDash(tk.Reason))
	}
	_ = tw.Flush()
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type scheduleFlags struct {
	mapping     string
	cron        string
	timeZone    string
	params      []string
	priority    int
	overlap     string
	catchUp     string
	disabled    bool
	description string
	replace     bool
}

func newSchedulesCreateCmd(g *globals) *cobra.Command {
	f := &scheduleFlags{}
	cmd := &cobra.Command{
		Use:   "create NAME --mapping MAPPING --cron EXPR [-p key=value]...",
		Short: "Create a schedule (or, with --replace, replace one); you become its owner",
		Long: `Create a schedule that runs MAPPING at the ticks of EXPR in --time-zone
(default UTC). You become its owner: its runs are created as you, so you need
manage and submit on the mapping. The server checks the parameters against
the mapping for the first tick, as a submit would. See ` + "`weir schedules --help`" + `
for expressions, tick templates and policies.`,
		Example: `  # every day at 02:00 in Paris, for the day before
  weir schedules create nightly-trades --mapping demo-trades --cron "0 2 * * *" \
      --time-zone Europe/Paris -p 'business_date=${tick-1d:date}'

  # weekdays at 06:30, queued behind a late previous run
  weir schedules create morning --mapping demo-trades --cron "30 6 * * 1-5" \
      -p 'business_date=${tick-1d:date}' --overlap queue --priority 10

  # change it (same flags, the whole definition)
  weir schedules create nightly-trades --replace --mapping demo-trades \
      --cron "0 3 * * *" --time-zone Europe/Paris -p 'business_date=${tick-1d:date}'`,
		Args: exactArgs(1, "the schedule's name", "weir schedules create NAME --mapping MAPPING --cron EXPR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSchedulesCreate(cmd.Context(), g, f, args[0], cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.mapping, "mapping", "", "the mapping to run (required)")
	fl.StringVar(&f.cron, "cron", "", `cron expression, such as "0 2 * * *" or @hourly (required)`)
	fl.StringVar(&f.timeZone, "time-zone", "UTC", "IANA time zone the expression is read in, such as Europe/Paris")
	fl.StringArrayVarP(&f.params, "param", "p", nil, "a run parameter as key=value, templates allowed (key='${tick-1d:date}'); repeat for each")
	fl.IntVar(&f.priority, "priority", 0, "priority of its runs, -1000 to 1000")
	fl.StringVar(&f.overlap, "overlap", catalog.OverlapSkip, "while the previous run is still going: skip or queue")
	fl.StringVar(&f.catchUp, "catch-up", catalog.CatchUpLatest, "ticks missed while no server ran them: latest (run the latest once) or skip")
	fl.BoolVar(&f.disabled, "disabled", false, "create it disabled: it fires nothing until enabled")
	fl.StringVar(&f.description, "description", "", "what the schedule is for")
	fl.BoolVar(&f.replace, "replace", false, "replace the schedule's definition if it exists (you become its owner)")
	return cmd
}

func runSchedulesCreate(ctx context.Context, g *globals, f *scheduleFlags, name string, out io.Writer) error {
	switch {
	case f.mapping == "":
		return usageHint(errors.New("--mapping is required"), "name the mapping to run; `weir mappings list` lists them")
	case strings.TrimSpace(f.cron) == "":
		return usageHint(errors.New("--cron is required"), `such as --cron "0 2 * * *" (02:00 every day) or --cron @hourly`)
	case f.overlap != catalog.OverlapSkip && f.overlap != catalog.OverlapQueue:
		return usageHint(fmt.Errorf("bad --overlap %q", f.overlap), "use skip (no run while the previous one is going) or queue")
	case f.catchUp != catalog.CatchUpSkip && f.catchUp != catalog.CatchUpLatest:
		return usageHint(fmt.Errorf("bad --catch-up %q", f.catchUp), "use latest (run the latest missed tick once) or skip")
	}
	params, err := parseParams(f.params)
	if err != nil {
		return err
	}
	c, err := g.newClient()
	if err != nil {
		return err
	}
	enabled := !f.disabled
	req := client.ScheduleRequest{Name: name, Mapping: f.mapping, Cron: f.cron, TimeZone: f.timeZone, Params: params,
		Priority: f.priority, Description: f.description, Overlap: f.overlap, CatchUp: f.catchUp, Enabled: &enabled}
	verb := "created"
	sc, err := c.CreateSchedule(ctx, req)
	if f.replace && errors.Is(err, catalog.ErrConflict) {
		verb = "replaced"
		sc, err = c.UpdateSchedule(ctx, req)
	}
	if err != nil {
		return g.explainSchedule(err, f.mapping)
	}
	if g.jsonOut() {
		return printJSON(out, sc)
	}
	next := "none (disabled)"
	if len(sc.Upcoming) > 0 {
		next = fmtTick(&sc.Upcoming[0], sc.TimeZone)
	}
	fmt.Fprintf(out, "Schedule %s %s: %s at %q in %s, as %s. Next tick: %s.\n", sc.Name, verb, sc.Mapping, sc.Cron, sc.TimeZone, sc.Owner, next)
	return nil
}

// explainSchedule adds the hints specific to a refused schedule.
func (g *globals) explainSchedule(err error, mapping string) error {
	var ae *client.APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == 409 && strings.Contains(ae.Message, "exists already"):
			return withHint(ae, "change it with --replace, or delete it first")
		case strings.HasPrefix(ae.Field, "params"):
			return withHint(ae, "`weir mappings show %s` lists its parameters; values may derive from the tick, such as business_date='${tick-1d:date}'", mapping)
		case ae.Field == "cron":
			return withHint(ae, `use 5 fields (minute hour day-of-month month day-of-week) such as "30 2 * * 1-5", 6 with seconds first, or @hourly, @daily, @every 90m`)
		case ae.Field == "time_zone":
			return withHint(ae, "use an IANA time zone such as Europe/Paris, America/New_York or UTC")
		}
	}
	return g.explain(err, "`weir mappings list` lists the mappings you may read")
}

func newSchedulesDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a schedule; the runs it created stay",
		Example: "  weir schedules delete nightly-trades",
		Args:    exactArgs(1, "the schedule's name", "weir schedules delete NAME; "+scheduleNotFoundHint),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			sc, err := c.DeleteSchedule(cmd.Context(), args[0])
			if err != nil {
				return g.explain(err, scheduleNotFoundHint)
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), sc)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Schedule %s deleted; the runs it created stay.\n", sc.Name)
			return nil
		},
	}
}

type triggerFlags struct {
	tick           string
	idempotencyKey string
	wait           bool
	poll           time.Duration
}

func newSchedulesTriggerCmd(g *globals) *cobra.Command {
	f := &triggerFlags{}
	cmd := &cobra.Command{
		Use:   "trigger NAME [--tick TIME] [--wait]",
		Short: "Run a schedule now, as you, with the parameters of now or of a given tick",
		Long: `Run a schedule's mapping now, as you (you need manage and submit on the
mapping), with its parameters derived from now or from --tick: to run a
period again, or one that was missed. The schedule's ticks do not move, but
the run counts as its latest for the overlap policy. Prints the run_id; with
--wait, follows the run like weir submit --wait.`,
		Example: `  weir schedules trigger nightly-trades
  weir schedules trigger nightly-trades --tick 2026-11-20T02:00:00+01:00 --wait`,
		Args: exactArgs(1, "the schedule's name", "weir schedules trigger NAME; "+scheduleNotFoundHint),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSchedulesTrigger(cmd.Context(), g, f, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.tick, "tick", "", "the tick to derive the parameters from, RFC 3339 (2026-11-20T02:00:00+01:00); default now")
	fl.StringVar(&f.idempotencyKey, "idempotency-key", "", "key that makes a repeated trigger return the first run (default: a random key)")
	fl.BoolVar(&f.wait, "wait", false, "wait for the run to end, showing its progress; exit 2 if it does not succeed")
	fl.DurationVar(&f.poll, "poll", PollDefault, "with --wait, how often to ask the server for progress")
	return cmd
}

func runSchedulesTrigger(ctx context.Context, g *globals, f *triggerFlags, name string, stdout, stderr io.Writer) error {
	var req client.TriggerScheduleRequest
	if f.tick != "" {
		t, err := time.Parse(time.RFC3339, f.tick)
		if err != nil {
			return usageHint(fmt.Errorf("bad --tick %q: not an RFC 3339 time", f.tick), "such as --tick 2026-11-20T02:00:00+01:00 or --tick 2026-11-20T01:00:00Z")
		}
		req.Tick = &t
	}
	if f.poll <= 0 {
		return usageHint(fmt.Errorf("--poll must be positive, got %s", f.poll), "such as --poll 500ms")
	}
	req.IdempotencyKey = f.idempotencyKey
	c, err := g.newClient()
	if err != nil {
		return err
	}
	run, err := c.TriggerSchedule(ctx, name, req)
	if err != nil {
		var ae *client.APIError
		if errors.As(err, &ae) && strings.HasPrefix(ae.Field, "params") {
			return withHint(ae, "the schedule's parameters are not valid for this tick; `weir schedules show %s` shows them", name)
		}
		return g.explain(err, scheduleNotFoundHint)
	}
	if run.Replayed {
		fmt.Fprintf(g.info(stderr), "Run %s was triggered before with this idempotency key; it is %s.\n", run.ID, run.State)
	}
	if !f.wait {
		if g.jsonOut() {
			return printJSON(stdout, run)
		}
		fmt.Fprintln(stdout, run.ID)
		return nil
	}
	if !g.jsonOut() {
		fmt.Fprintf(g.info(stderr), "Run %s of %s v%d triggered by schedule %s; waiting for it (Ctrl-C stops waiting, not the run).\n", run.ID, run.Mapping, run.MappingVersion, name)
	}
	return waitAndReport(ctx, g, c, run.ID, f.poll, stdout, stderr)
}
