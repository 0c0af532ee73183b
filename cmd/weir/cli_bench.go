package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// Defaults of `weir bench`.
const (
	BenchRunsDefault        = 100
	BenchConcurrencyDefault = 8
	BenchPollDefault        = 100 * time.Millisecond
	// BenchTargetName names the null system and the mapping bench creates and runs.
	BenchTargetName = "weir-bench-null"
)

// BenchOptions configure runBench; zero fields take the defaults above.
type BenchOptions struct {
	// Runs is how many runs to submit.
	Runs int
	// Concurrency is how many submitters run at once.
	Concurrency int
	// Mapping is the mapping to run. The default, BenchTargetName, is created
	// (with its null system) when missing; any other must exist and take no
	// required parameters.
	Mapping string
	// Poll is how often to ask whether every run has ended.
	Poll time.Duration
}

// WithDefaults fills zero fields.
func (o BenchOptions) WithDefaults() BenchOptions {
	if o.Runs == 0 {
		o.Runs = BenchRunsDefault
	}
	if o.Concurrency == 0 {
		o.Concurrency = BenchConcurrencyDefault
	}
	if o.Mapping == "" {
		o.Mapping = BenchTargetName
	}
	if o.Poll == 0 {
		o.Poll = BenchPollDefault
	}
	return o
}

func (o BenchOptions) validate() error {
	if o.Runs < 1 {
		return usageHint(fmt.Errorf("bench: runs must be at least 1, got %d", o.Runs), "such as --runs 100")
	}
	if o.Concurrency < 1 {
		return usageHint(fmt.Errorf("bench: concurrency must be at least 1, got %d", o.Concurrency), "such as --concurrency 8")
	}
	if o.Poll < 0 {
		return usageHint(fmt.Errorf("bench: poll must be positive, got %s", o.Poll), "leave Poll zero for the default")
	}
	return nil
}

// BenchResult is what one bench measured. Times come from the catalog's
// clock (the runs' created_at, started_at and finished_at), so neither the
// client's polling nor its clock skew bends them.
type BenchResult struct {
	Mapping     string
	Runs        int
	Concurrency int
	// Elapsed is from the first run's creation to the last run's end.
	Elapsed time.Duration
	// RunsPerSecond is Runs / Elapsed.
	RunsPerSecond float64
	// Submit is the client's wall time to submit every run.
	Submit time.Duration
	// Started counts the runs that became active: the latency samples.
	Started int
	// Pending-to-active latency (started_at - created_at) percentiles.
	LatencyP50, LatencyP95, LatencyP99, LatencyMax time.Duration
	// States counts the runs by final state.
	States map[catalog.RunState]int
}

// MarshalJSON writes durations as seconds.
func (r BenchResult) MarshalJSON() ([]byte, error) {
	states := map[string]int{}
	for s, n := range r.States {
		states[string(s)] = n
	}
	return json.Marshal(struct {
		Mapping        string             `json:"mapping"`
		Runs           int                `json:"runs"`
		Concurrency    int                `json:"concurrency"`
		ElapsedSeconds float64            `json:"elapsed_seconds"`
		RunsPerSecond  float64            `json:"runs_per_second"`
		SubmitSeconds  float64            `json:"submit_seconds"`
		Started        int                `json:"started"`
		Latency        map[string]float64 `json:"pending_to_active_seconds"`
		States         map[string]int     `json:"states"`
	}{r.Mapping, r.Runs, r.Concurrency, r.Elapsed.Seconds(), r.RunsPerSecond, r.Submit.Seconds(), r.Started,
		map[string]float64{"p50": r.LatencyP50.Seconds(), "p95": r.LatencyP95.Seconds(), "p99": r.LatencyP99.Seconds(), "max": r.LatencyMax.Seconds()},
		states})
}

// writeBenchReport prints a BenchResult for people.
func writeBenchReport(w io.Writer, r BenchResult) {
	fmt.Fprintf(w, "%d runs of %s, %d concurrent submitters\n", r.Runs, r.Mapping, r.Concurrency)
	fmt.Fprintf(w, "  end to end      %.1f runs/s (%s from the first submit to the last end)\n", r.RunsPerSecond, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  submit          %s for all runs\n", r.Submit.Round(time.Millisecond))
	fmt.Fprintf(w, "  pending->active p50 %s  p95 %s  p99 %s  max %s  (%d runs)\n",
		r.LatencyP50.Round(time.Millisecond), r.LatencyP95.Round(time.Millisecond), r.LatencyP99.Round(time.Millisecond),
		r.LatencyMax.Round(time.Millisecond), r.Started)
	fmt.Fprint(w, "  final states   ")
	for _, s := range catalog.AllRunStates {
		if n := r.States[s]; n > 0 {
			fmt.Fprintf(w, " %s %d", s, n)
		}
	}
	fmt.Fprintln(w)
}

// runBench submits o.Runs runs of a no-op mapping with o.Concurrency
// submitters, waits until every one has ended, and measures runs per second
// end to end and the pending-to-active latency.
func runBench(ctx context.Context, c *client.Client, o BenchOptions) (BenchResult, error) {
	o = o.WithDefaults()
	if err := o.validate(); err != nil {
		return BenchResult{}, err
	}
	if o.Mapping == BenchTargetName {
		if err := ensureBenchTargets(ctx, c); err != nil {
			return BenchResult{}, err
		}
	} else if _, err := c.GetMapping(ctx, o.Mapping); err != nil {
		return BenchResult{}, fmt.Errorf("bench: %w", err)
	}

	t0 := time.Now()
	ids, err := benchSubmit(ctx, c, o)
	if err != nil {
		return BenchResult{}, err
	}
	submit := time.Since(t0)
	if err := benchWait(ctx, c, o, ids); err != nil {
		return BenchResult{}, err
	}
	runs, err := benchCollect(ctx, c, o.Mapping, ids)
	if err != nil {
		return BenchResult{}, err
	}
	res := summarizeBench(runs)
	res.Mapping, res.Concurrency, res.Submit = o.Mapping, o.Concurrency, submit
	return res, nil
}

// ensureBenchTargets makes sure the null system and the mapping over it exist.
func ensureBenchTargets(ctx context.Context, c *client.Client) error {
	sys, err := c.GetSystem(ctx, BenchTargetName)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		_, err = c.CreateSystem(ctx, client.SystemRequest{Name: BenchTargetName, Kind: catalog.KindNull, Settings: map[string]string{}})
		if err != nil && !errors.Is(err, catalog.ErrConflict) { // a concurrent bench may have made it
			return fmt.Errorf("bench: %w", err)
		}
	case err != nil:
		return fmt.Errorf("bench: %w", err)
	case sys.Kind != catalog.KindNull:
		return fmt.Errorf("bench: system %s exists with kind %q; bench needs it to be of kind %q: delete or rename it", BenchTargetName, sys.Kind, catalog.KindNull)
	}

	yes := true
	want := client.MappingRequest{
		Name:        BenchTargetName,
		Description: "no-op runs for weir bench: the null system yields and accepts nothing",
		Source:      client.Endpoint{System: BenchTargetName},
		Target:      client.Endpoint{System: BenchTargetName},
		MaxAttempts: 1,
		Enabled:     &yes,
	}
	m, err := c.GetMapping(ctx, BenchTargetName)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		_, err = c.CreateMapping(ctx, want)
		if err != nil && !errors.Is(err, catalog.ErrConflict) {
			return fmt.Errorf("bench: %w", err)
		}
	case err != nil:
		return fmt.Errorf("bench: %w", err)
	case m.Source.V.System != BenchTargetName || m.Target.V.System != BenchTargetName || len(m.Params.V) > 0:
		return fmt.Errorf("bench: mapping %s exists but does not run %s to itself without parameters; delete it", BenchTargetName, BenchTargetName)
	case !m.Enabled:
		if _, err := c.UpdateMapping(ctx, want); err != nil {
			return fmt.Errorf("bench: enable mapping %s: %w", BenchTargetName, err)
		}
	}
	return nil
}

// benchSubmit submits o.Runs runs with o.Concurrency submitters and returns
// their run_ids. The first error stops every submitter.
func benchSubmit(ctx context.Context, c *client.Client, o BenchOptions) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	ids := make([]string, o.Runs)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(o.Concurrency, o.Runs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				run, err := c.SubmitRun(ctx, client.SubmitRunRequest{Mapping: o.Mapping})
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("bench: submit run %d of %d: %w", i+1, o.Runs, err)
					}
					mu.Unlock()
					cancel()
					continue
				}
				ids[i] = run.ID
			}
		}()
	}
feed:
	for i := range o.Runs {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bench: submit: %w", err)
	}
	return ids, nil
}

var benchLiveStates = []catalog.RunState{catalog.StatePending, catalog.StateQueued, catalog.StateActive}

// benchWait polls until none of ids is pending, queued or active: one
// listing of the mapping's live runs per poll, however many runs there are.
func benchWait(ctx context.Context, c *client.Client, o BenchOptions, ids []string) error {
	left := make(map[string]bool, len(ids))
	for _, id := range ids {
		left[id] = true
	}
	for {
		live := map[string]bool{}
		for r, err := range c.AllRuns(ctx, client.ListRunsOptions{Mapping: o.Mapping, States: benchLiveStates, Limit: catalog.ListLimitMax}) {
			if err != nil {
				return fmt.Errorf("bench: wait: %w", err)
			}
			live[r.ID] = true
		}
		for id := range left {
			if !live[id] {
				delete(left, id) // it was inserted before its submit answered, so it has ended
			}
		}
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: wait: %d of %d runs have not ended: %w", len(left), len(ids), ctx.Err())
		case <-time.After(o.Poll):
		}
	}
}

// benchCollect reads the ended runs of ids, newest first, stopping once all are found.
func benchCollect(ctx context.Context, c *client.Client, mapping string, ids []string) ([]client.Run, error) {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	var ended []catalog.RunState
	for _, s := range catalog.AllRunStates {
		if s.Terminal() {
			ended = append(ended, s)
		}
	}
	out := make([]client.Run, 0, len(ids))
	for r, err := range c.AllRuns(ctx, client.ListRunsOptions{Mapping: mapping, States: ended, Limit: catalog.ListLimitMax}) {
		if err != nil {
			return nil, fmt.Errorf("bench: collect: %w", err)
		}
		if want[r.ID] {
			delete(want, r.ID)
			out = append(out, r)
			if len(want) == 0 {
				break
			}
		}
	}
	if len(want) > 0 {
		return nil, fmt.Errorf("bench: collect: %d of %d runs are missing from the listing of ended runs", len(want), len(ids))
	}
	return out, nil
}

// summarizeBench computes the throughput, latency and state counts of ended runs.
func summarizeBench(runs []client.Run) BenchResult {
	res := BenchResult{Runs: len(runs), States: map[catalog.RunState]int{}}
	var first, last time.Time
	lat := make([]time.Duration, 0, len(runs))
	for _, r := range runs {
		res.States[r.State]++
		if first.IsZero() || r.CreatedAt.Before(first) {
			first = r.CreatedAt
		}
		end := r.UpdatedAt
		if r.FinishedAt != nil {
			end = *r.FinishedAt
		}
		if end.After(last) {
			last = end
		}
		if r.StartedAt != nil {
			lat = append(lat, max(r.StartedAt.Sub(r.CreatedAt), 0))
		}
	}
	if len(runs) > 0 && last.After(first) {
		res.Elapsed = last.Sub(first)
		res.RunsPerSecond = float64(len(runs)) / res.Elapsed.Seconds()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.Started = len(lat)
	res.LatencyP50 = percentile(lat, 50)
	res.LatencyP95 = percentile(lat, 95)
	res.LatencyP99 = percentile(lat, 99)
	res.LatencyMax = percentile(lat, 100)
	return res
}

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of sorted:
// the smallest value that at least p% of the values do not exceed. Empty: 0.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(n) / 100)) // p*n first: exact for whole p
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}
