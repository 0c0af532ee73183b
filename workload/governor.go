package workload

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// PendingRun is a run waiting for admission, as the governor sees it.
type PendingRun struct {
	ID        string
	Priority  int // higher first
	CreatedAt time.Time
	Source    string // source system
	Target    string // target system; may equal Source
}

// WorkerLoad is a live worker and the runs it holds.
type WorkerLoad struct {
	ID     string
	Slots  int // runs it executes at once
	Active int // its queued and active runs
}

// Free returns the worker's free slots.
func (w WorkerLoad) Free() int { return w.Slots - w.Active }

// GovernInput is everything the governor decides on: plain values, no catalog.
type GovernInput struct {
	Region string
	// MaxActiveRuns is the region's maximum of queued plus active runs.
	MaxActiveRuns int
	// Active is the region's queued plus active runs now.
	Active int
	// SystemLimits is each system's maximum of concurrent runs; 0 or absent means no limit.
	SystemLimits map[string]int
	// SystemActive is each system's queued plus active runs now; a run that
	// reads and writes one system counts once.
	SystemActive map[string]int
	// Workers are the region's live workers.
	Workers []WorkerLoad
	// Pending are the runs to decide on, in any order.
	Pending []PendingRun
}

// Decision is the governor's answer for one pending run: Worker when it is
// admitted, Hold (why it waits) when it is not.
type Decision struct {
	RunID  string
	Worker string
	Hold   string
}

// Admitted reports whether the run was given a worker.
func (d Decision) Admitted() bool { return d.Worker != "" }

// Govern decides which pending runs start now and on which worker. It
// considers them by priority (highest first), then age (oldest first), then
// run_id, and admits each one that fits within the region's limit, its source
// and target systems' limits and a live worker's free slots, counting every
// admission before it considers the next run.
//
// A run that does not fit is held and the next one is considered: a held
// high-priority run does not block a lower-priority run that fits, since it
// needs other capacity (a system at its limit, say) than the one that is
// free. Starvation stays bounded: when the capacity it waits for frees, the
// held run comes first again in the order.
//
// A held run's reason names the first limit it hits, checked in this order:
// the region, the source system, the target system, the workers. Govern does
// not modify its input; its decisions come in admission order.
func Govern(in GovernInput) []Decision {
	pending := slices.Clone(in.Pending)
	slices.SortStableFunc(pending, func(a, b PendingRun) int {
		if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
			return c
		}
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	workers := slices.Clone(in.Workers)
	systemActive := make(map[string]int, len(in.SystemActive))
	for k, v := range in.SystemActive {
		systemActive[k] = v
	}
	active := in.Active

	out := make([]Decision, 0, len(pending))
	for _, r := range pending {
		d := Decision{RunID: r.ID}
		systems := runSystems(r)
		switch {
		case active >= in.MaxActiveRuns:
			d.Hold = fmt.Sprintf("region %s at its limit of %d active runs", in.Region, in.MaxActiveRuns)
		default:
			for _, sys := range systems {
				if limit := in.SystemLimits[sys]; limit > 0 && systemActive[sys] >= limit {
					d.Hold = fmt.Sprintf("system %s at its limit of %d concurrent runs", sys, limit)
					break
				}
			}
		}
		if d.Hold == "" {
			i := PickWorker(workers)
			if i < 0 {
				d.Hold = noWorkerReason(in.Region, workers)
			} else {
				d.Worker = workers[i].ID
				workers[i].Active++
				active++
				for _, sys := range systems {
					systemActive[sys]++
				}
			}
		}
		out = append(out, d)
	}
	return out
}

// runSystems returns the systems a run occupies: one when it reads and writes the same system.
func runSystems(r PendingRun) []string {
	if r.Source == r.Target {
		return []string{r.Source}
	}
	return []string{r.Source, r.Target}
}

func noWorkerReason(region string, workers []WorkerLoad) string {
	if len(workers) == 0 {
		return fmt.Sprintf("no live worker in region %s", region)
	}
	return fmt.Sprintf("no live worker with a free slot in region %s", region)
}

// PickWorker returns the index of the worker that should take the next run:
// the one with the most free slots, then the fewest active runs, then the
// smallest ID; -1 when no worker has a free slot.
func PickWorker(workers []WorkerLoad) int {
	best := -1
	for i, w := range workers {
		if w.Free() <= 0 {
			continue
		}
		if best < 0 || betterWorker(w, workers[best]) {
			best = i
		}
	}
	return best
}

func betterWorker(a, b WorkerLoad) bool {
	if a.Free() != b.Free() {
		return a.Free() > b.Free()
	}
	if a.Active != b.Active {
		return a.Active < b.Active
	}
	return a.ID < b.ID
}
