package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// PollDefault is how often `submit --wait` and `runs events --follow` poll the server.
const PollDefault = 500 * time.Millisecond

type submitFlags struct {
	params         []string
	priority       int
	idempotencyKey string
	wait           bool
	poll           time.Duration
}

func newSubmitCmd(g *globals) *cobra.Command {
	f := &submitFlags{}
	cmd := &cobra.Command{
		Use:   "submit MAPPING [-p key=value]...",
		Short: "Submit a run of a mapping, and optionally wait for it",
		Long: `Submit a run of MAPPING with its parameters. The server validates the
parameters against the mapping's declarations (types, required ones, the time
window of dates) and answers with the new run, pending.

Without --wait, the run_id is printed (with -o json, the run). With --wait,
a live progress bar (files, bytes, rate, ETA) is drawn on stderr until the
run ends; then its state and delivery manifest summary are printed. The exit
code is 0 when the run succeeded or found no data (empty), 2 when it failed,
was canceled or was aborted, and otherwise as listed by weir --help (3 bad
flag, 4 no such mapping, 5 token refused, 6 server unreachable, 1 other).
Ctrl-C stops waiting but not the run. --quiet draws no progress bar.

Every submit carries an idempotency key (a random one unless you give
--idempotency-key), so a submit retried after a network failure never makes
two runs; giving the same key again returns the first run.`,
		Example: `  # submit, print the run_id
  weir submit demo-trades -p business_date=2026-11-20

  # submit and watch it to the end
  weir submit demo-trades -p business_date=2026-11-20 --wait

  # in a script: exactly one run per business date, however often it is retried
  weir submit demo-trades -p business_date=2026-11-20 \
      --idempotency-key nightly-2026-11-20 --wait -o json > run.json`,
		Args: exactArgs(1, "the mapping's name", "weir submit MAPPING -p key=value; `weir mappings list` lists the mappings"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSubmit(cmd.Context(), g, f, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.params, "param", "p", nil, "a run parameter as key=value; repeat for each (`weir mappings show MAPPING` lists them)")
	fl.IntVar(&f.priority, "priority", 0, "priority among pending runs, -1000 to 1000: higher runs first")
	fl.StringVar(&f.idempotencyKey, "idempotency-key", "", "key that makes a repeated submit return the first run (default: a random key)")
	fl.BoolVar(&f.wait, "wait", false, "wait for the run to end, showing its progress; exit 2 if it does not succeed")
	fl.DurationVar(&f.poll, "poll", PollDefault, "with --wait, how often to ask the server for progress")
	return cmd
}

// parseParams parses repeated -p key=value flags.
func parseParams(vals []string) (map[string]string, error) {
	out := make(map[string]string, len(vals))
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, usageHint(fmt.Errorf("bad parameter %q: want key=value", v), "write each parameter as -p key=value, such as -p business_date=2026-11-20")
		}
		if _, dup := out[k]; dup {
			return nil, usageHint(fmt.Errorf("parameter %q is given twice", k), "give each parameter once")
		}
		out[k] = val
	}
	return out, nil
}

func runSubmit(ctx context.Context, g *globals, f *submitFlags, mapping string, stdout, stderr io.Writer) error {
	params, err := parseParams(f.params)
	if err != nil {
		return err
	}
	if f.poll <= 0 {
		return usageHint(fmt.Errorf("--poll must be positive, got %s", f.poll), "such as --poll 500ms")
	}
	c, err := g.newClient()
	if err != nil {
		return err
	}
	run, err := c.SubmitRun(ctx, client.SubmitRunRequest{Mapping: mapping, Params: params, Priority: f.priority, IdempotencyKey: f.idempotencyKey})
	if err != nil {
		return g.explainSubmit(err, mapping)
	}
	if run.Replayed {
		fmt.Fprintf(g.info(stderr), "Run %s was submitted before with this idempotency key; it is %s.\n", run.ID, run.State)
	}
	if !f.wait {
		if g.jsonOut() {
			return printJSON(stdout, run)
		}
		fmt.Fprintln(stdout, run.ID)
		return nil
	}
	if !g.jsonOut() {
		fmt.Fprintf(g.info(stderr), "Run %s of %s v%d submitted; waiting for it (Ctrl-C stops waiting, not the run).\n", run.ID, run.Mapping, run.MappingVersion)
	}
	return waitAndReport(ctx, g, c, run.ID, f.poll, stdout, stderr)
}

// explainSubmit adds the hints specific to a refused submit.
func (g *globals) explainSubmit(err error, mapping string) error {
	var ae *client.APIError
	if errors.As(err, &ae) && (ae.Code == "invalid" || ae.Code == "bad_request") && strings.HasPrefix(ae.Field, "params") {
		return withHint(ae, "`weir mappings show %s` lists its parameters, their types and windows", mapping)
	}
	if errors.As(err, &ae) && ae.Status == 409 && strings.Contains(ae.Message, "idempotency key") {
		return withHint(ae, "an idempotency key names one request: use a new key for other parameters")
	}
	return g.explain(err, "`weir mappings list` lists the mappings you may run")
}

// waitOutput is the JSON of a waited-for run: the run and its manifest.
type waitOutput struct {
	client.Run
	Manifest *client.Manifest `json:"manifest,omitempty"`
}

// waitAndReport follows run id to its end, then reports it. It returns an
// exitError with ExitRunEnded when the run did not succeed.
func waitAndReport(ctx context.Context, g *globals, c *client.Client, id string, poll time.Duration, stdout, stderr io.Writer) error {
	var view progressView
	if !g.jsonOut() && !g.quiet {
		view = newProgressView(stderr)
	}
	final, err := c.WaitRun(ctx, id, poll, func(r client.Run) {
		if view != nil {
			view.update(r)
		}
	})
	if view != nil {
		view.finish(final)
	}
	if err != nil {
		if ctx.Err() != nil {
			state := "still running"
			if final != nil {
				state = "still " + string(final.State)
			}
			return &exitError{code: ExitError, msg: fmt.Sprintf(
				"Stopped waiting; run %s is %s and goes on.\n  follow it:  weir runs events %s --follow\n  see it:     weir runs show %s\n  cancel it:  weir runs cancel %s",
				id, state, id, id, id)}
		}
		return g.explain(err, "the run is gone: was the catalog reset?")
	}
	var manifest *client.Manifest
	if final.State == catalog.StateSucceeded || final.State == catalog.StateEmpty {
		m, err := c.RunManifest(ctx, final.ID)
		switch {
		case err == nil:
			manifest = m
		case !errors.Is(err, catalog.ErrNotFound):
			return g.explain(err, "")
		}
	}
	if g.jsonOut() {
		if err := printJSON(stdout, waitOutput{Run: *final, Manifest: manifest}); err != nil {
			return err
		}
	} else {
		printRunEnd(stdout, final, manifest)
	}
	switch final.State {
	case catalog.StateSucceeded, catalog.StateEmpty:
		return nil
	}
	msg := fmt.Sprintf("run %s %s", final.ID, final.State)
	if final.Error != "" {
		msg += ": " + final.Error
	}
	msg += fmt.Sprintf("\n  its events tell why:  weir runs events %s", final.ID)
	return &exitError{code: ExitRunEnded, msg: msg}
}

// printRunEnd prints a finished run's state and manifest summary.
func printRunEnd(w io.Writer, r *client.Run, m *client.Manifest) {
	dur := ""
	if r.StartedAt != nil && r.FinishedAt != nil {
		dur = " in " + fmtSeconds(r.FinishedAt.Sub(*r.StartedAt).Seconds())
	} else if r.ElapsedSeconds > 0 {
		dur = " in " + fmtSeconds(r.ElapsedSeconds)
	}
	fmt.Fprintf(w, "Run %s %s%s (attempt %d/%d).\n", r.ID, r.State, dur, r.Attempt, r.MaxAttempts)
	if m == nil {
		if r.State == catalog.StateSucceeded || r.State == catalog.StateEmpty {
			fmt.Fprintf(w, "  files %d, %s, rows %d (no delivery manifest)\n", r.FilesDone, fmtBytes(r.BytesDone), r.Rows)
		}
		return
	}
	target := m.Target.System
	if m.Target.Path != "" {
		target += ":" + m.Target.Path
	}
	fmt.Fprintf(w, "  files     %d\n", m.TotalFiles)
	fmt.Fprintf(w, "  bytes     %s (%d)\n", fmtBytes(m.TotalBytes), m.TotalBytes)
	fmt.Fprintf(w, "  rows      %d\n", m.TotalRows)
	fmt.Fprintf(w, "  target    %s\n", target)
	if !m.StartedAt.IsZero() && !m.FinishedAt.IsZero() {
		fmt.Fprintf(w, "  duration  %s\n", fmtSeconds(m.FinishedAt.Sub(m.StartedAt).Seconds()))
	}
	fmt.Fprintf(w, "  manifest  weir runs manifest %s\n", r.ID)
}
