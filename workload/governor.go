package workload

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
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
	// CPU is its host's CPU busy percent in the latest sample (0 when unknown).
	CPU float64
	// Red says why its host is red (CPU, memory or free disk past a critical
	// level), as "cpu 97% > 95% critical"; "" when it is not. A red worker
	// receives no run.
	Red string
}

// Free returns the worker's free slots.
func (w WorkerLoad) Free() int { return w.Slots - w.Active }

// eligible reports whether the worker may take a run now.
func (w WorkerLoad) eligible() bool { return w.Free() > 0 && w.Red == "" }

// SystemHost is what admission control knows of the host of one system.
type SystemHost struct {
	// Host is the node running on the system's host, "" when none is known.
	Host string
	// Red says why the host is red for this system (its CPU, memory or free
	// disk past the system's critical level), as "free disk on /data 3% < 5%
	// critical"; "" when it is not. No run reads or writes the system then.
	Red string
}

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
	// SystemHosts are the hosts of the systems, by system name; a system
	// absent has no known host and is never held for its host's health.
	SystemHosts map[string]SystemHost
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
	// Health marks a hold by health admission control (a red source or
	// target host, or no healthy worker with a free slot), as opposed to a
	// limit of capacity: such a hold raises an alert and ends, after the
	// maximum hold time, in the run's abort.
	Health bool
	// Cause names what a health hold waits on, one alert each: "host db-1"
	// (a red source or target host), "system src" (its host unnamed), or
	// "workers of region eu" (only red workers have free slots).
	Cause string
	// Kind is the kind of Hold, for metrics.
	Kind HoldKind
}

// Admitted reports whether the run was given a worker.
func (d Decision) Admitted() bool { return d.Worker != "" }

// holdReasonMax bounds a hold reason (the catalog keeps 500 characters).
const holdReasonMax = 480

// maxRedWorkersNamed bounds the red workers a hold reason names.
const maxRedWorkersNamed = 3

// Govern decides which pending runs start now and on which worker. It
// considers them by priority (highest first), then age (oldest first), then
// run_id, and admits each one whose source and target hosts are not red and
// that fits within the region's limit, its source and target systems' limits
// and a healthy live worker's free slots, counting every admission before it
// considers the next run.
//
// A run that does not fit is held and the next one is considered: a held
// high-priority run does not block a lower-priority run that fits, since it
// needs other capacity (a system at its limit, say) than the one that is
// free. Starvation stays bounded: when the capacity it waits for frees, the
// held run comes first again in the order.
//
// A held run's reason names the first condition it meets, checked in this
// order: a red source host, a red target host (both health holds), the
// region, the source system, the target system, then the workers (a health
// hold when only red workers have free slots). Among eligible workers it
// picks by PickWorker. Govern does not modify its input; its decisions come
// in admission order.
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
		if reason, cause := redHost(in.SystemHosts, r); reason != "" {
			d.Hold, d.Health, d.Cause, d.Kind = reason, true, cause, HoldHostCritical
		} else if active >= in.MaxActiveRuns {
			d.Hold, d.Kind = fmt.Sprintf("region %s at its limit of %d active runs", in.Region, in.MaxActiveRuns), HoldRegionLimit
		} else {
			for _, sys := range systems {
				if limit := in.SystemLimits[sys]; limit > 0 && systemActive[sys] >= limit {
					d.Hold, d.Kind = fmt.Sprintf("system %s at its limit of %d concurrent runs", sys, limit), HoldSystemLimit
					break
				}
			}
		}
		if d.Hold == "" {
			i := PickWorker(workers, in.SystemHosts, r)
			if i < 0 {
				d.Hold, d.Health = noWorkerReason(in.Region, workers)
				d.Kind = noWorkerKind(workers, d.Health)
				if d.Health {
					d.Cause = "workers of region " + in.Region
				}
			} else {
				d.Worker = workers[i].ID
				workers[i].Active++
				active++
				for _, sys := range systems {
					systemActive[sys]++
				}
			}
		}
		d.Hold = clipReason(d.Hold)
		out = append(out, d)
	}
	return out
}

// redHost returns why run r may not touch its source or target host now
// ("source host db-1: cpu 99% > 95% critical") and the cause ("host db-1"),
// "" when it may.
func redHost(hosts map[string]SystemHost, r PendingRun) (reason, cause string) {
	if h := hosts[r.Source]; h.Red != "" {
		return fmt.Sprintf("source host %s: %s", hostName(h, r.Source), h.Red), hostCause(h, r.Source)
	}
	if r.Target == r.Source {
		return "", ""
	}
	if h := hosts[r.Target]; h.Red != "" {
		return fmt.Sprintf("target host %s: %s", hostName(h, r.Target), h.Red), hostCause(h, r.Target)
	}
	return "", ""
}

func hostName(h SystemHost, system string) string {
	if h.Host != "" {
		return h.Host
	}
	return "of system " + system
}

func hostCause(h SystemHost, system string) string {
	if h.Host != "" {
		return "host " + h.Host
	}
	return "system " + system
}

// runSystems returns the systems a run occupies: one when it reads and writes the same system.
func runSystems(r PendingRun) []string {
	if r.Source == r.Target {
		return []string{r.Source}
	}
	return []string{r.Source, r.Target}
}

// noWorkerReason says why no worker can take a run, and whether that is
// health's doing: workers with a free slot exist but all are red.
func noWorkerReason(region string, workers []WorkerLoad) (string, bool) {
	if len(workers) == 0 {
		return fmt.Sprintf("no live worker in region %s", region), false
	}
	var red []string
	for _, w := range workers {
		if w.Free() > 0 && w.Red != "" {
			red = append(red, fmt.Sprintf("worker %s: %s", w.ID, w.Red))
		}
	}
	if len(red) == 0 {
		return fmt.Sprintf("no live worker with a free slot in region %s", region), false
	}
	more := ""
	if len(red) > maxRedWorkersNamed {
		more = fmt.Sprintf("; and %d more red workers", len(red)-maxRedWorkersNamed)
		red = red[:maxRedWorkersNamed]
	}
	return fmt.Sprintf("no healthy worker with a free slot in region %s: %s%s", region, strings.Join(red, "; "), more), true
}

// clipReason cuts a reason to holdReasonMax bytes on a rune boundary.
func clipReason(s string) string {
	if len(s) <= holdReasonMax {
		return s
	}
	cut := holdReasonMax - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// PickWorker returns the index of the worker that should take run r, -1 when
// none is eligible (a free slot and a host that is not red). It prefers the
// worker closest to the data (on the host of r's source or target system,
// per hosts), then the most spare capacity (free slots scaled by the idle
// share of its CPU: 4 free slots at 75% busy count as 1), then the fewest
// active runs, then the smallest ID. Every worker is in the manager's
// region, so the region is the same for all.
func PickWorker(workers []WorkerLoad, hosts map[string]SystemHost, r PendingRun) int {
	local := map[string]bool{}
	for _, sys := range runSystems(r) {
		if h := hosts[sys].Host; h != "" {
			local[h] = true
		}
	}
	best := -1
	for i, w := range workers {
		if !w.eligible() {
			continue
		}
		if best < 0 || betterWorker(w, workers[best], local) {
			best = i
		}
	}
	return best
}

// spare is a worker's free slots scaled by the idle share of its CPU.
func (w WorkerLoad) spare() float64 {
	idle := 1 - min(max(w.CPU, 0), 100)/100
	return float64(w.Free()) * idle
}

func betterWorker(a, b WorkerLoad, local map[string]bool) bool {
	if la, lb := local[a.ID], local[b.ID]; la != lb {
		return la
	}
	if sa, sb := a.spare(), b.spare(); sa != sb {
		return sa > sb
	}
	if a.Active != b.Active {
		return a.Active < b.Active
	}
	return a.ID < b.ID
}
