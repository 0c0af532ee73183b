package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/weirdata/weir/catalog"
)

// Wire types the server and the client share.
type (
	// Event is one line of a run's log.
	Event = catalog.RunEvent
	// Task is one row of a run's internal manifest: a partition and its thread.
	Task = catalog.RunTask
	// Manifest is a run's delivery manifest, written at the target after the data.
	Manifest = catalog.Manifest
	// Plan is a run's execution plan.
	Plan = catalog.Plan
)

// Run is the server's view of a run: the catalog's run plus figures the
// server derives from it.
type Run struct {
	catalog.Run
	// ElapsedSeconds is the time since the run started (or its whole duration once finished).
	ElapsedSeconds float64 `json:"elapsed_seconds,omitempty"`
	// RateBytesPerSecond is the run's transfer rate so far.
	RateBytesPerSecond float64 `json:"rate_bytes_per_second,omitempty"`
	// ETASeconds is the estimated time left; nil when the server cannot tell.
	ETASeconds *float64 `json:"eta_seconds,omitempty"`

	// Replayed is set by SubmitRun when the server answered with an
	// existing run: an earlier submit with the same idempotency key.
	Replayed bool `json:"-"`
}

// SubmitRunRequest asks for a run of a mapping.
type SubmitRunRequest struct {
	// Mapping is the mapping's name.
	Mapping string `json:"mapping"`
	// Params are the run's parameters, such as {"business_date": "2026-11-20"}.
	Params map[string]string `json:"params,omitempty"`
	// Priority orders pending runs: higher first.
	Priority int `json:"priority,omitempty"`
	// IdempotencyKey makes a repeated submit return the first run instead
	// of making another. Empty: SubmitRun makes a random one, so that its own
	// retries never create two runs.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// NewIdempotencyKey returns a random idempotency key.
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "weir-" + hex.EncodeToString(b[:])
}

// SubmitRun submits a run and returns it, pending. When req has no
// idempotency key, one is made, so the request can be retried safely on 503
// and broken connections; the run's IdempotencyKey field tells which.
func (c *Client) SubmitRun(ctx context.Context, req SubmitRunRequest) (*Run, error) {
	if strings.TrimSpace(req.Mapping) == "" {
		return nil, fmt.Errorf("submit run: a mapping name is required")
	}
	if req.IdempotencyKey == "" {
		req.IdempotencyKey = NewIdempotencyKey()
	}
	var run Run
	status, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/runs", body: req, idempotent: true}, &run)
	if err != nil {
		return nil, fmt.Errorf("submit run of %s: %w", req.Mapping, err)
	}
	run.Replayed = status == http.StatusOK
	return &run, nil
}

// GetRun returns a run by run_id.
func (c *Client) GetRun(ctx context.Context, id string) (*Run, error) {
	if err := checkID("run_id", id); err != nil {
		return nil, err
	}
	var run Run
	if err := c.get(ctx, "/api/v1/runs/"+esc(id), nil, &run); err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	return &run, nil
}

// ListRunsOptions filters and pages a run listing. Zero fields do not filter.
type ListRunsOptions struct {
	States      []catalog.RunState
	Mapping     string
	SubmittedBy string
	Region      string
	// Since and Until, when not zero, keep the runs created in [Since, Until).
	Since, Until time.Time
	// Limit is the page size; 0 lets the server choose (50; at most 1000).
	Limit int
	// Cursor is the NextCursor of the previous page; empty for the first page.
	Cursor string
}

func (o ListRunsOptions) query() url.Values {
	q := url.Values{}
	if len(o.States) > 0 {
		s := make([]string, len(o.States))
		for i, st := range o.States {
			s[i] = string(st)
		}
		q.Set("state", strings.Join(s, ","))
	}
	if o.Mapping != "" {
		q.Set("mapping", o.Mapping)
	}
	if o.SubmittedBy != "" {
		q.Set("submitted_by", o.SubmittedBy)
	}
	if o.Region != "" {
		q.Set("region", o.Region)
	}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.UTC().Format(time.RFC3339))
	}
	if !o.Until.IsZero() {
		q.Set("until", o.Until.UTC().Format(time.RFC3339))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	return q
}

// RunPage is one page of runs, newest first.
type RunPage struct {
	Runs []Run `json:"runs"`
	// NextCursor fetches the next page; empty on the last page.
	NextCursor string `json:"next_cursor"`
}

// ListRuns returns one page of runs, newest first. Use AllRuns to walk every page.
func (c *Client) ListRuns(ctx context.Context, opts ListRunsOptions) (*RunPage, error) {
	if opts.Limit < 0 {
		return nil, fmt.Errorf("list runs: limit must be 0 or more, got %d", opts.Limit)
	}
	var page RunPage
	if err := c.get(ctx, "/api/v1/runs", opts.query(), &page); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return &page, nil
}

// AllRuns walks every run that opts selects, newest first, fetching pages of
// opts.Limit as it goes. It yields a non-nil error at most once, last.
//
//	for run, err := range c.AllRuns(ctx, client.ListRunsOptions{Mapping: "demo-trades"}) {
//		if err != nil { return err }
//		fmt.Println(run.ID, run.State)
//	}
func (c *Client) AllRuns(ctx context.Context, opts ListRunsOptions) iter.Seq2[Run, error] {
	return func(yield func(Run, error) bool) {
		seen := map[string]bool{}
		for {
			page, err := c.ListRuns(ctx, opts)
			if err != nil {
				yield(Run{}, err)
				return
			}
			for _, r := range page.Runs {
				if !yield(r, nil) {
					return
				}
			}
			if page.NextCursor == "" {
				return
			}
			if seen[page.NextCursor] || page.NextCursor == opts.Cursor {
				yield(Run{}, fmt.Errorf("list runs: the server repeated cursor %q", page.NextCursor))
				return
			}
			seen[page.NextCursor] = true
			opts.Cursor = page.NextCursor
		}
	}
}

// CancelRun asks the server to cancel a run. A pending or queued run ends
// canceled at once; an active one when its worker notices, within seconds.
// It returns the run as the server saw it after the request.
func (c *Client) CancelRun(ctx context.Context, id string) (*Run, error) {
	if err := checkID("run_id", id); err != nil {
		return nil, err
	}
	var run Run
	// Not marked idempotent: retried only when the request surely never left.
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/runs/" + esc(id) + "/cancel"}, &run); err != nil {
		return nil, fmt.Errorf("cancel run %s: %w", id, err)
	}
	return &run, nil
}

// RunEvents returns a run's events with an id above afterID (0 for all), oldest first.
func (c *Client) RunEvents(ctx context.Context, id string, afterID int64) ([]Event, error) {
	if err := checkID("run_id", id); err != nil {
		return nil, err
	}
	q := url.Values{}
	if afterID > 0 {
		q.Set("after", strconv.FormatInt(afterID, 10))
	}
	var out struct {
		Events []Event `json:"events"`
	}
	if err := c.get(ctx, "/api/v1/runs/"+esc(id)+"/events", q, &out); err != nil {
		return nil, fmt.Errorf("list events of run %s: %w", id, err)
	}
	return out.Events, nil
}

// RunManifest returns a run's delivery manifest. Until the worker has
// written it, the error matches catalog.ErrNotFound.
func (c *Client) RunManifest(ctx context.Context, id string) (*Manifest, error) {
	if err := checkID("run_id", id); err != nil {
		return nil, err
	}
	var m Manifest
	if err := c.get(ctx, "/api/v1/runs/"+esc(id)+"/manifest", nil, &m); err != nil {
		return nil, fmt.Errorf("get manifest of run %s: %w", id, err)
	}
	return &m, nil
}

// RunPlan returns a run's execution plan; until the workload manager has
// written it, the error matches catalog.ErrNotFound.
func (c *Client) RunPlan(ctx context.Context, id string) (*Plan, error) {
	if err := checkID("run_id", id); err != nil {
		return nil, err
	}
	var p Plan
	if err := c.get(ctx, "/api/v1/runs/"+esc(id)+"/plan", nil, &p); err != nil {
		return nil, fmt.Errorf("get plan of run %s: %w", id, err)
	}
	return &p, nil
}

// RunTasks returns a run's tasks (its internal manifest), by sequence.
func (c *Client) RunTasks(ctx context.Context, id string) ([]Task, error) {
	if err := checkID("run_id", id); err != nil {
		return nil, err
	}
	var out struct {
		Tasks []Task `json:"tasks"`
	}
	if err := c.get(ctx, "/api/v1/runs/"+esc(id)+"/tasks", nil, &out); err != nil {
		return nil, fmt.Errorf("list tasks of run %s: %w", id, err)
	}
	return out.Tasks, nil
}

// WaitIntervalDefault is WaitRun's polling interval when given none.
const WaitIntervalDefault = 500 * time.Millisecond

// WaitRun polls a run every interval until it reaches a terminal state
// (succeeded, empty, failed, canceled or aborted) and returns it. fn, when
// not nil, sees the run after every poll, the last one included. When ctx
// ends first, it returns the last run it saw (nil if none) and an error
// wrapping ctx's; the run itself goes on.
func (c *Client) WaitRun(ctx context.Context, id string, interval time.Duration, fn func(Run)) (*Run, error) {
	if interval <= 0 {
		interval = WaitIntervalDefault
	}
	var last *Run
	for {
		run, err := c.GetRun(ctx, id)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return last, fmt.Errorf("wait for run %s: %w", id, ctxErr)
			}
			return last, fmt.Errorf("wait for run %s: %w", id, err)
		}
		last = run
		if fn != nil {
			fn(*run)
		}
		if run.State.Terminal() {
			return run, nil
		}
		if err := c.sleep(ctx, interval); err != nil {
			return run, fmt.Errorf("wait for run %s (last seen %s): %w", id, run.State, err)
		}
	}
}

// checkID refuses an empty identifier before any request is sent.
func checkID(field, id string) error {
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("%s is required", field)
	}
	return nil
}
