package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

func newRunsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List, inspect and cancel runs",
		Long: `List, inspect and cancel runs. Every subcommand prints a table or
text for people, or JSON with -o json for scripts.`,
		Example: `  weir runs list --state active,queued
  weir runs show 017635551234500012345678
  weir runs events 017635551234500012345678 --follow
  weir runs cancel 017635551234500012345678`,
		Args: noArgs,
	}
	cmd.AddCommand(newRunsListCmd(g), newRunsShowCmd(g), newRunsCancelCmd(g), newRunsEventsCmd(g), newRunsManifestCmd(g))
	return cmd
}

const runNotFoundHint = "`weir runs list` lists the runs you may read"

// --- runs list ---

type runsListFlags struct {
	states      []string
	mapping     string
	submittedBy string
	limit       int
	cursor      string
	all         bool
}

func newRunsListCmd(g *globals) *cobra.Command {
	f := &runsListFlags{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List runs, newest first",
		Long: `List runs, newest first, one page of --limit runs at a time (--all for
every page). The table shows each run's state, mapping, attempt, progress,
who submitted it and when. With -o json the answer is
{"runs": [...], "next_cursor": "..."}; pass the cursor back with --cursor for
the next page.`,
		Example: `  weir runs list
  weir runs list --state failed,aborted --mapping demo-trades
  weir runs list --state active --all -o json | jq -r '.runs[].run_id'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRunsList(cmd.Context(), g, f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.states, "state", nil, "only runs in these states (comma-separated): pending, queued, active, succeeded, empty, failed, canceled, aborted")
	fl.StringVar(&f.mapping, "mapping", "", "only runs of this mapping")
	fl.StringVar(&f.submittedBy, "submitted-by", "", "only runs submitted by this user")
	fl.IntVar(&f.limit, "limit", catalog.ListLimitDefault, fmt.Sprintf("runs per page, 1 to %d", catalog.ListLimitMax))
	fl.StringVar(&f.cursor, "cursor", "", "start after this cursor (next_cursor of an earlier page)")
	fl.BoolVar(&f.all, "all", false, "fetch every page, not only the first")
	return cmd
}

func runRunsList(ctx context.Context, g *globals, f *runsListFlags, stdout, stderr io.Writer) error {
	states, err := parseStates(f.states)
	if err != nil {
		return err
	}
	if f.limit < 1 || f.limit > catalog.ListLimitMax {
		return usageHint(fmt.Errorf("--limit must be between 1 and %d, got %d", catalog.ListLimitMax, f.limit), "use --all to fetch every page")
	}
	c, err := g.newClient()
	if err != nil {
		return err
	}
	opts := client.ListRunsOptions{States: states, Mapping: f.mapping, SubmittedBy: f.submittedBy, Limit: f.limit, Cursor: f.cursor}
	page := &client.RunPage{Runs: []client.Run{}}
	if f.all {
		for r, err := range c.AllRuns(ctx, opts) {
			if err != nil {
				return g.explain(err, "")
			}
			page.Runs = append(page.Runs, r)
		}
	} else {
		page, err = c.ListRuns(ctx, opts)
		if err != nil {
			return g.explain(err, "")
		}
		if page.Runs == nil {
			page.Runs = []client.Run{}
		}
	}
	if g.jsonOut() {
		return printJSON(stdout, page)
	}
	if len(page.Runs) == 0 {
		fmt.Fprintln(stdout, "No runs.")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN_ID\tSTATE\tMAPPING\tATTEMPT\tPROGRESS\tSUBMITTED_BY\tCREATED")
	for _, r := range page.Runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", r.ID, r.State, r.Mapping, r.Attempt, r.MaxAttempts,
			shortProgress(r), r.SubmittedBy, fmtTime(r.CreatedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.NextCursor != "" {
		fmt.Fprintf(g.info(stderr), "More runs: add --cursor %s for the next page, or --all.\n", page.NextCursor)
	}
	return nil
}

// shortProgress is a run's progress in a table cell.
func shortProgress(r client.Run) string {
	switch {
	case r.FilesTotal > 0:
		return fmt.Sprintf("%d/%d files", r.FilesDone, r.FilesTotal)
	case r.TasksTotal > 0:
		return fmt.Sprintf("%d/%d tasks", r.TasksDone, r.TasksTotal)
	case r.State.Terminal():
		return "-"
	}
	return "..."
}

// --- runs show ---

// eventsShownDefault is how many of a run's last events `runs show` prints.
const eventsShownDefault = 10

// runDetail is the JSON of `runs show`: the run, its tasks and its events.
type runDetail struct {
	client.Run
	Tasks  []client.Task  `json:"tasks"`
	Events []client.Event `json:"events"`
}

func newRunsShowCmd(g *globals) *cobra.Command {
	var nEvents int
	cmd := &cobra.Command{
		Use:   "show RUN_ID",
		Short: "Show a run: state, progress, timings, tasks and last events",
		Long: `Show one run: its state and attempt, parameters, who submitted it, its
timestamps, progress (files, bytes, rows, rate, ETA), hold reason or error, a
summary of its tasks (its partitions and threads) and its last events. With
-o json: the run with "tasks" and every event in "events".`,
		Example: `  weir runs show 017635551234500012345678
  weir runs show 017635551234500012345678 --events 50
  weir runs show 017635551234500012345678 -o json | jq .state`,
		Args: exactArgs(1, "the run_id", "weir runs show RUN_ID; `weir runs list` lists the runs"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if nEvents < 0 {
				return usageHint(fmt.Errorf("--events must be 0 or more, got %d", nEvents), "such as --events 20")
			}
			c, err := g.newClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			run, err := c.GetRun(ctx, args[0])
			if err != nil {
				return g.explain(err, runNotFoundHint)
			}
			tasks, err := c.RunTasks(ctx, run.ID)
			if err != nil {
				return g.explain(err, runNotFoundHint)
			}
			events, err := c.RunEvents(ctx, run.ID, 0)
			if err != nil {
				return g.explain(err, runNotFoundHint)
			}
			if tasks == nil {
				tasks = []client.Task{}
			}
			if events == nil {
				events = []client.Event{}
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), runDetail{Run: *run, Tasks: tasks, Events: events})
			}
			printRunDetail(cmd.OutOrStdout(), run, tasks, events, nEvents)
			return nil
		},
	}
	cmd.Flags().IntVar(&nEvents, "events", eventsShownDefault, "how many of the last events to print (text output)")
	return cmd
}

func printRunDetail(w io.Writer, r *client.Run, tasks []client.Task, events []client.Event, nEvents int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	row("Run", "%s", r.ID)
	row("Mapping", "%s v%d (%s: %s -> %s)", r.Mapping, r.MappingVersion, r.RequestType, r.SourceSystem, r.TargetSystem)
	state := fmt.Sprintf("%s (attempt %d/%d)", r.State, r.Attempt, r.MaxAttempts)
	if r.CancelRequested && !r.State.Terminal() {
		state += ", cancel requested"
	}
	row("State", "%s", state)
	row("Params", "%s", fmtParams(r.Params.V))
	row("Priority", "%d", r.Priority)
	by := r.SubmittedBy
	if r.ClientIP != "" {
		by += " from " + r.ClientIP
	}
	row("Submitted", "%s by %s", fmtTime(r.CreatedAt), by)
	if r.IdempotencyKey != nil {
		row("Idem. key", "%s", *r.IdempotencyKey)
	}
	row("Queued", "%s", fmtTimePtr(r.QueuedAt))
	row("Started", "%s", fmtTimePtr(r.StartedAt))
	row("Finished", "%s", fmtTimePtr(r.FinishedAt))
	if r.WorkerID != "" {
		row("Worker", "%s", r.WorkerID)
	}
	row("Progress", "tasks %d/%d, files %d/%d, %s/%s, rows %d", r.TasksDone, r.TasksTotal, r.FilesDone, r.FilesTotal,
		fmtBytes(r.BytesDone), fmtBytes(r.BytesTotal), r.Rows)
	if r.ElapsedSeconds > 0 || r.RateBytesPerSecond > 0 {
		timing := fmt.Sprintf("elapsed %s, rate %s", fmtSeconds(r.ElapsedSeconds), fmtRate(r.RateBytesPerSecond))
		if r.ETASeconds != nil {
			timing += ", ETA " + fmtSeconds(*r.ETASeconds)
		}
		row("Timing", "%s", timing)
	}
	if r.HoldReason != "" {
		row("Held", "%s", r.HoldReason)
	}
	if r.Error != "" {
		row("Error", "%s", r.Error)
	}
	_ = tw.Flush()

	fmt.Fprintln(w)
	if len(tasks) == 0 {
		fmt.Fprintln(w, "Tasks: none yet (the worker writes them after inspecting the source)")
	} else {
		byState := map[string]int{}
		threads := map[int]bool{}
		for _, t := range tasks {
			byState[t.State]++
			threads[t.Thread] = true
		}
		states := make([]string, 0, len(byState))
		for s := range byState {
			states = append(states, s)
		}
		sort.Strings(states)
		parts := make([]string, len(states))
		for i, s := range states {
			parts[i] = fmt.Sprintf("%d %s", byState[s], s)
		}
		fmt.Fprintf(w, "Tasks: %d on %d threads: %s\n", len(tasks), len(threads), strings.Join(parts, ", "))
	}

	fmt.Fprintln(w)
	shown := events
	if len(shown) > nEvents {
		shown = shown[len(shown)-nEvents:]
	}
	if len(shown) < len(events) {
		fmt.Fprintf(w, "Events (last %d of %d; all: weir runs events %s):\n", len(shown), len(events), r.ID)
	} else {
		fmt.Fprintf(w, "Events (%d):\n", len(events))
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range shown {
		fmt.Fprint(tw, "  ")
		writeEvent(tw, e)
	}
	_ = tw.Flush()
}

// writeEvent prints one event as a tab-separated line.
func writeEvent(w io.Writer, e client.Event) {
	node := e.Node
	if node == "" {
		node = "-"
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.At.Local().Format("2006-01-02 15:04:05.000"), e.Kind, node, e.Message)
}

// --- runs cancel ---

func newRunsCancelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel RUN_ID",
		Short: "Cancel a run",
		Long: `Ask the server to cancel a run. A pending or queued run ends canceled at
once; an active run ends canceled when its worker notices, within a second or
two, leaving nothing half-written at the target. A run that has ended cannot be
canceled.`,
		Example: `  weir runs cancel 017635551234500012345678
  weir runs cancel 017635551234500012345678 -o json`,
		Args: exactArgs(1, "the run_id", "weir runs cancel RUN_ID; `weir runs list --state pending,queued,active` lists runs that can be canceled"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			run, err := c.CancelRun(cmd.Context(), args[0])
			if err != nil {
				var ae *client.APIError
				if errors.As(err, &ae) && ae.Status == 409 {
					return withHint(ae, "the run has ended or is ending already; see it with `weir runs show %s`", args[0])
				}
				return g.explain(err, runNotFoundHint)
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), run)
			}
			out := cmd.OutOrStdout()
			if run.State == catalog.StateCanceled {
				fmt.Fprintf(out, "Run %s canceled.\n", run.ID)
			} else {
				fmt.Fprintf(out, "Cancel requested for run %s (%s); its worker stops it within seconds.\n  watch it: weir runs events %s --follow\n", run.ID, run.State, run.ID)
			}
			return nil
		},
	}
}

// --- runs events ---

func newRunsEventsCmd(g *globals) *cobra.Command {
	var follow bool
	var poll time.Duration
	var after int64
	cmd := &cobra.Command{
		Use:   "events RUN_ID",
		Short: "Print a run's events; --follow to keep printing until it ends",
		Long: `Print a run's log: every event (submitted, queued, claimed, progress
milestones, retries, errors, the end) with its time, kind and node. With
--follow, keep polling for new events until the run ends or Ctrl-C.

With -o json: {"events": [...]}; with --follow, one JSON event per line.`,
		Example: `  weir runs events 017635551234500012345678
  weir runs events 017635551234500012345678 --follow
  weir runs events 017635551234500012345678 --follow -o json | jq -r .message`,
		Args: exactArgs(1, "the run_id", "weir runs events RUN_ID; `weir runs list` lists the runs"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if poll <= 0 {
				return usageHint(fmt.Errorf("--poll must be positive, got %s", poll), "such as --poll 500ms")
			}
			if after < 0 {
				return usageHint(fmt.Errorf("--after must be 0 or more, got %d", after), "pass the id of the last event you have")
			}
			c, err := g.newClient()
			if err != nil {
				return err
			}
			return runEventsCmd(cmd.Context(), g, c, args[0], after, follow, poll, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "keep printing new events until the run ends")
	fl.DurationVar(&poll, "poll", PollDefault, "with --follow, how often to ask for new events")
	fl.Int64Var(&after, "after", 0, "only events after this event id")
	return cmd
}

func runEventsCmd(ctx context.Context, g *globals, c *client.Client, id string, after int64, follow bool, poll time.Duration, out io.Writer) error {
	if !follow {
		evs, err := c.RunEvents(ctx, id, after)
		if err != nil {
			return g.explain(err, runNotFoundHint)
		}
		if evs == nil {
			evs = []client.Event{}
		}
		if g.jsonOut() {
			return printJSON(out, map[string]any{"events": evs})
		}
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		for _, e := range evs {
			writeEvent(tw, e)
		}
		return tw.Flush()
	}
	enc := json.NewEncoder(out)
	for {
		// The run's state is read before its events: events written up to
		// its end are then all fetched in this round.
		run, err := c.GetRun(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil // Ctrl-C: stop following
			}
			return g.explain(err, runNotFoundHint)
		}
		evs, err := c.RunEvents(ctx, id, after)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return g.explain(err, runNotFoundHint)
		}
		for _, e := range evs {
			if g.jsonOut() {
				if err := enc.Encode(e); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				writeEvent(tw, e)
				_ = tw.Flush()
			}
			after = max(after, e.ID)
		}
		if run.State.Terminal() {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// --- runs manifest ---

func newRunsManifestCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "manifest RUN_ID",
		Short: "Print a run's delivery manifest: every delivered file with size and checksum",
		Long: `Print the delivery manifest a run wrote at its target after the data:
the run, mapping version and parameters, start and end, every file with its
size and SHA-256, and the totals. It exists once the run has delivered.`,
		Example: `  weir runs manifest 017635551234500012345678
  weir runs manifest 017635551234500012345678 -o json | jq -r '.files[] | "\(.sha256)  \(.path)"'`,
		Args: exactArgs(1, "the run_id", "weir runs manifest RUN_ID; `weir runs list --state succeeded` lists delivered runs"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			m, err := c.RunManifest(cmd.Context(), args[0])
			if err != nil {
				return g.explain(err, fmt.Sprintf("a manifest is written when a run delivers; `weir runs show %s` shows where the run is", args[0]))
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), m)
			}
			printManifest(cmd.OutOrStdout(), m)
			return nil
		},
	}
}

func printManifest(w io.Writer, m *client.Manifest) {
	target := m.Target.System
	if m.Target.Path != "" {
		target += ":" + m.Target.Path
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Run\t%s (attempt %d)\n", m.RunID, m.Attempt)
	fmt.Fprintf(tw, "Mapping\t%s v%d\n", m.Mapping, m.MappingVersion)
	fmt.Fprintf(tw, "Params\t%s\n", fmtParams(m.Params))
	fmt.Fprintf(tw, "State\t%s\n", m.State)
	fmt.Fprintf(tw, "Target\t%s\n", target)
	fmt.Fprintf(tw, "Started\t%s\n", fmtTime(m.StartedAt))
	fmt.Fprintf(tw, "Finished\t%s\n", fmtTime(m.FinishedAt))
	fmt.Fprintf(tw, "Totals\t%d files, %s (%d bytes), %d rows\n", m.TotalFiles, fmtBytes(m.TotalBytes), m.TotalBytes, m.TotalRows)
	_ = tw.Flush()
	if len(m.Files) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tSIZE\tSHA256")
	for _, f := range m.Files {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", f.Path, f.Size, f.SHA256)
	}
	_ = tw.Flush()
}
