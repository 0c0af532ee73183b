package workload

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func run(id string, prio int, age int, src, dst string) PendingRun {
	return PendingRun{ID: id, Priority: prio, CreatedAt: t0.Add(time.Duration(age) * time.Second), Source: src, Target: dst}
}

func admit(id, worker string) Decision { return Decision{RunID: id, Worker: worker} }
func hold(id, reason string) Decision  { return Decision{RunID: id, Hold: reason} }

// healthHold is a hold by health admission control.
func healthHold(id, cause, reason string) Decision {
	return Decision{RunID: id, Hold: reason, Health: true, Cause: cause}
}

func TestGovern(t *testing.T) {
	const (
		regionFull = "region local at its limit of 4 active runs"
		noSlot     = "no live worker with a free slot in region local"
	)
	oneBigWorker := []WorkerLoad{{ID: "w1", Slots: 100}}
	tests := []struct {
		name string
		in   GovernInput
		want []Decision
	}{
		{
			name: "region limit counts what is active and what this tick admits",
			in: GovernInput{MaxActiveRuns: 4, Active: 2, Workers: oneBigWorker,
				Pending: []PendingRun{run("a", 0, 1, "s1", "s2"), run("b", 0, 2, "s1", "s2"), run("c", 0, 3, "s3", "s4")}},
			want: []Decision{admit("a", "w1"), admit("b", "w1"), hold("c", regionFull)},
		},
		{
			name: "region already full",
			in: GovernInput{MaxActiveRuns: 4, Active: 4, Workers: oneBigWorker,
				Pending: []PendingRun{run("a", 0, 1, "s1", "s2")}},
			want: []Decision{hold("a", regionFull)},
		},
		{
			name: "source system limit",
			in: GovernInput{MaxActiveRuns: 4, Active: 2, Workers: oneBigWorker,
				SystemLimits: map[string]int{"src": 2}, SystemActive: map[string]int{"src": 2},
				Pending: []PendingRun{run("a", 0, 1, "src", "dst"), run("b", 0, 2, "other", "dst")}},
			want: []Decision{hold("a", "system src at its limit of 2 concurrent runs"), admit("b", "w1")},
		},
		{
			name: "target system limit",
			in: GovernInput{MaxActiveRuns: 4, Workers: oneBigWorker,
				SystemLimits: map[string]int{"dst": 1}, SystemActive: map[string]int{},
				Pending: []PendingRun{run("a", 0, 1, "s1", "dst"), run("b", 0, 2, "s2", "dst"), run("c", 0, 3, "s3", "s4")}},
			want: []Decision{admit("a", "w1"), hold("b", "system dst at its limit of 1 concurrent runs"), admit("c", "w1")},
		},
		{
			name: "a run reading and writing one system counts once",
			in: GovernInput{MaxActiveRuns: 10, Workers: oneBigWorker,
				SystemLimits: map[string]int{"s": 2}, SystemActive: map[string]int{},
				Pending: []PendingRun{run("a", 0, 1, "s", "s"), run("b", 0, 2, "s", "s"), run("c", 0, 3, "s", "s")}},
			want: []Decision{admit("a", "w1"), admit("b", "w1"), hold("c", "system s at its limit of 2 concurrent runs")},
		},
		{
			name: "limit 0 means no limit",
			in: GovernInput{MaxActiveRuns: 10, Workers: oneBigWorker,
				SystemLimits: map[string]int{"s": 0}, SystemActive: map[string]int{"s": 50},
				Pending: []PendingRun{run("a", 0, 1, "s", "t")}},
			want: []Decision{admit("a", "w1")},
		},
		{
			name: "source checked before target",
			in: GovernInput{MaxActiveRuns: 10, Workers: oneBigWorker,
				SystemLimits: map[string]int{"s": 1, "t": 1}, SystemActive: map[string]int{"s": 1, "t": 1},
				Pending: []PendingRun{run("a", 0, 1, "s", "t")}},
			want: []Decision{hold("a", "system s at its limit of 1 concurrent runs")},
		},
		{
			name: "region checked before systems",
			in: GovernInput{MaxActiveRuns: 4, Active: 4, Workers: oneBigWorker,
				SystemLimits: map[string]int{"s": 1}, SystemActive: map[string]int{"s": 1},
				Pending: []PendingRun{run("a", 0, 1, "s", "t")}},
			want: []Decision{hold("a", regionFull)},
		},
		{
			name: "worker slots: most free first, ties by fewest active then ID",
			in: GovernInput{MaxActiveRuns: 10,
				Workers: []WorkerLoad{{ID: "w2", Slots: 3, Active: 1}, {ID: "w1", Slots: 1}, {ID: "w3", Slots: 2, Active: 1}},
				Pending: []PendingRun{run("a", 0, 1, "s1", "t"), run("b", 0, 2, "s2", "t"), run("c", 0, 3, "s3", "t"), run("d", 0, 4, "s4", "t"), run("e", 0, 5, "s5", "t")}},
			// free: w2 2, w1 1, w3 1 -> w2; then all 1 free: w1 (0 active) -> w1; then w2 (2 active) vs w3 (1 active) -> w3; then w2.
			want: []Decision{admit("a", "w2"), admit("b", "w1"), admit("c", "w3"), admit("d", "w2"), hold("e", noSlot)},
		},
		{
			name: "no worker at all",
			in: GovernInput{MaxActiveRuns: 10,
				Pending: []PendingRun{run("a", 0, 1, "s", "t")}},
			want: []Decision{hold("a", "no live worker in region local")},
		},
		{
			name: "workers all full",
			in: GovernInput{MaxActiveRuns: 10, Workers: []WorkerLoad{{ID: "w1", Slots: 2, Active: 2}, {ID: "w2", Slots: 1, Active: 3}},
				Pending: []PendingRun{run("a", 0, 1, "s", "t")}},
			want: []Decision{hold("a", noSlot)},
		},
		{
			name: "priority first, then age, then run_id",
			in: GovernInput{MaxActiveRuns: 3, Workers: oneBigWorker,
				Pending: []PendingRun{
					run("old-low", 0, 1, "s", "t"),
					run("new-high", 5, 9, "s", "t"),
					run("b-mid", 3, 4, "s", "t"),
					run("a-mid", 3, 4, "s", "t"),
					run("old-mid", 3, 2, "s", "t"),
				}},
			want: []Decision{admit("new-high", "w1"), admit("old-mid", "w1"), admit("a-mid", "w1"),
				hold("b-mid", "region local at its limit of 3 active runs"), hold("old-low", "region local at its limit of 3 active runs")},
		},
		{
			name: "a held high-priority run does not block a lower-priority run that fits",
			in: GovernInput{MaxActiveRuns: 4, Active: 2, Workers: oneBigWorker,
				SystemLimits: map[string]int{"busy": 2}, SystemActive: map[string]int{"busy": 2},
				Pending: []PendingRun{run("high", 9, 1, "busy", "t"), run("low", 0, 2, "idle", "t")}},
			want: []Decision{hold("high", "system busy at its limit of 2 concurrent runs"), admit("low", "w1")},
		},
		{
			name: "a red source host holds its runs, by health, whatever the capacity",
			in: GovernInput{MaxActiveRuns: 1, Active: 1, Workers: oneBigWorker,
				SystemHosts: map[string]SystemHost{"pg": {Host: "db-1", Red: "free disk on /data 3% < 5% critical"}, "lake": {Host: "fs-1"}},
				Pending:     []PendingRun{run("a", 0, 1, "pg", "lake"), run("b", 0, 2, "lake", "lake")}},
			want: []Decision{healthHold("a", "host db-1", "source host db-1: free disk on /data 3% < 5% critical"), hold("b", "region local at its limit of 1 active runs")},
		},
		{
			name: "a red target host holds runs writing to it; other runs go",
			in: GovernInput{MaxActiveRuns: 10, Workers: oneBigWorker,
				SystemHosts: map[string]SystemHost{"pg": {Host: "db-1", Red: "cpu 99% > 95% critical"}, "lake": {Host: "fs-1"}},
				Pending:     []PendingRun{run("a", 0, 1, "lake", "pg"), run("b", 0, 2, "lake", "lake"), run("c", 0, 3, "pg", "pg")}},
			want: []Decision{healthHold("a", "host db-1", "target host db-1: cpu 99% > 95% critical"), admit("b", "w1"),
				healthHold("c", "host db-1", "source host db-1: cpu 99% > 95% critical")},
		},
		{
			name: "source host named before target host",
			in: GovernInput{MaxActiveRuns: 10, Workers: oneBigWorker,
				SystemHosts: map[string]SystemHost{"s": {Host: "h1", Red: "memory 99% > 95% critical"}, "t": {Host: "h2", Red: "cpu 99% > 95% critical"}},
				Pending:     []PendingRun{run("a", 0, 1, "s", "t")}},
			want: []Decision{healthHold("a", "host h1", "source host h1: memory 99% > 95% critical")},
		},
		{
			name: "a red worker receives no run; a healthy one does",
			in: GovernInput{MaxActiveRuns: 10,
				Workers: []WorkerLoad{{ID: "w1", Slots: 8, Red: "free disk on /var/lib/weir 2% < 5% critical"}, {ID: "w2", Slots: 1}},
				Pending: []PendingRun{run("a", 0, 1, "s", "t"), run("b", 0, 2, "s", "t")}},
			// b would fit on w1 but for its health: a health hold.
			want: []Decision{admit("a", "w2"),
				healthHold("b", "workers of region local", "no healthy worker with a free slot in region local: worker w1: free disk on /var/lib/weir 2% < 5% critical")},
		},
		{
			name: "only red workers have free slots: a health hold naming them",
			in: GovernInput{MaxActiveRuns: 10,
				Workers: []WorkerLoad{{ID: "w1", Slots: 8, Red: "cpu 97% > 95% critical"}, {ID: "w2", Slots: 1, Active: 1}, {ID: "w3", Slots: 2, Red: "memory 96% > 95% critical"}},
				Pending: []PendingRun{run("a", 0, 1, "s", "t")}},
			want: []Decision{healthHold("a", "workers of region local", "no healthy worker with a free slot in region local: worker w1: cpu 97% > 95% critical; worker w3: memory 96% > 95% critical")},
		},
		{
			name: "many red workers: three named",
			in: GovernInput{MaxActiveRuns: 10,
				Workers: []WorkerLoad{{ID: "w1", Slots: 1, Red: "cpu 99% > 95% critical"}, {ID: "w2", Slots: 1, Red: "cpu 99% > 95% critical"},
					{ID: "w3", Slots: 1, Red: "cpu 99% > 95% critical"}, {ID: "w4", Slots: 1, Red: "cpu 99% > 95% critical"}, {ID: "w5", Slots: 1, Red: "cpu 99% > 95% critical"}},
				Pending: []PendingRun{run("a", 0, 1, "s", "t")}},
			want: []Decision{healthHold("a", "workers of region local", "no healthy worker with a free slot in region local: worker w1: cpu 99% > 95% critical; "+
				"worker w2: cpu 99% > 95% critical; worker w3: cpu 99% > 95% critical; and 2 more red workers")},
		},
		{
			name: "the worker on the data's host is preferred, while it has free slots",
			in: GovernInput{MaxActiveRuns: 10,
				SystemHosts: map[string]SystemHost{"pg": {Host: "db-1"}, "lake": {Host: "nowhere"}},
				Workers:     []WorkerLoad{{ID: "big", Slots: 16}, {ID: "db-1", Slots: 2}},
				Pending:     []PendingRun{run("a", 0, 1, "lake", "pg"), run("b", 0, 2, "pg", "lake"), run("c", 0, 3, "pg", "pg"), run("d", 0, 4, "lake", "lake")}},
			want: []Decision{admit("a", "db-1"), admit("b", "db-1"), admit("c", "big"), admit("d", "big")},
		},
		{
			name: "load: free slots scaled by idle CPU",
			in: GovernInput{MaxActiveRuns: 10,
				Workers: []WorkerLoad{{ID: "busy", Slots: 4, CPU: 90}, {ID: "calm", Slots: 2, CPU: 10}},
				Pending: []PendingRun{run("a", 0, 1, "s", "t"), run("b", 0, 2, "s", "t")}},
			// spare: busy 4*0.1 = 0.4, calm 2*0.9 = 1.8 -> calm; then calm 0.9 vs busy 0.4 -> calm.
			want: []Decision{admit("a", "calm"), admit("b", "calm")},
		},
		{
			name: "a long reason is cut to fit the catalog",
			in: GovernInput{MaxActiveRuns: 10, Workers: oneBigWorker,
				SystemHosts: map[string]SystemHost{"s": {Host: "h", Red: strings.Repeat("é", 400)}},
				Pending:     []PendingRun{run("a", 0, 1, "s", "s")}},
			want: []Decision{healthHold("a", "host h", clipReason("source host h: "+strings.Repeat("é", 400)))},
		},
		{
			name: "nothing pending",
			in:   GovernInput{MaxActiveRuns: 4, Workers: oneBigWorker},
			want: []Decision{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Region = "local"
			workers := slices.Clone(tc.in.Workers)
			pending := slices.Clone(tc.in.Pending)
			active := map[string]int{}
			for k, v := range tc.in.SystemActive {
				active[k] = v
			}
			got := Govern(tc.in)
			for i := range got { // every hold has a kind (see TestHoldKinds), compared apart
				require.Equal(t, got[i].Hold != "", got[i].Kind != "", got[i].Hold)
				got[i].Kind = ""
			}
			require.Equal(t, tc.want, got)
			// The input is left as it was.
			require.Equal(t, workers, tc.in.Workers)
			require.Equal(t, pending, tc.in.Pending)
			if tc.in.SystemActive != nil {
				require.Equal(t, active, tc.in.SystemActive)
			}
		})
	}
}

func TestPickWorker(t *testing.T) {
	tests := []struct {
		name    string
		workers []WorkerLoad
		want    int
	}{
		{"a red worker is never picked", []WorkerLoad{{ID: "a", Slots: 9, Red: "cpu 99% > 95% critical"}, {ID: "b", Slots: 1}}, 1},
		{"all red", []WorkerLoad{{ID: "a", Slots: 9, Red: "x"}}, -1},
		{"equal free slots: the calmer CPU", []WorkerLoad{{ID: "a", Slots: 2, CPU: 50}, {ID: "b", Slots: 2, CPU: 20}}, 1},
		{"none", nil, -1},
		{"all full", []WorkerLoad{{ID: "a", Slots: 1, Active: 1}, {ID: "b", Slots: 0}}, -1},
		{"most free slots", []WorkerLoad{{ID: "a", Slots: 4, Active: 3}, {ID: "b", Slots: 8, Active: 5}}, 1},
		{"tie on free: fewest active", []WorkerLoad{{ID: "a", Slots: 4, Active: 2}, {ID: "b", Slots: 2}}, 1},
		{"tie on free and active: smallest ID", []WorkerLoad{{ID: "w2", Slots: 2}, {ID: "w10", Slots: 2}, {ID: "w3", Slots: 2}}, 1},
		{"overloaded worker is never picked", []WorkerLoad{{ID: "a", Slots: 1, Active: 5}, {ID: "b", Slots: 1}}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, PickWorker(tc.workers, nil, PendingRun{ID: "r", Source: "s", Target: "t"}))
		})
	}
}

// TestGovernInvariants checks random inputs: no limit is ever exceeded, and
// every held run names a limit that really is reached once the tick is done.
func TestGovernInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	systems := []string{"s0", "s1", "s2", "s3"}
	for iter := range 2000 {
		in := GovernInput{Region: "r", MaxActiveRuns: 1 + rng.IntN(8), SystemLimits: map[string]int{}, SystemActive: map[string]int{}}
		in.Active = rng.IntN(in.MaxActiveRuns + 1)
		for _, s := range systems {
			in.SystemLimits[s] = rng.IntN(4) // 0: no limit
			in.SystemActive[s] = rng.IntN(3)
		}
		in.SystemHosts = map[string]SystemHost{}
		for i, s := range systems {
			switch rng.IntN(3) {
			case 0: // no known host
			case 1:
				in.SystemHosts[s] = SystemHost{Host: fmt.Sprintf("w%d", i)}
			case 2:
				in.SystemHosts[s] = SystemHost{Host: fmt.Sprintf("h%d", i), Red: "cpu 99% > 95% critical"}
			}
		}
		for w := range rng.IntN(4) {
			slots := rng.IntN(4)
			wl := WorkerLoad{ID: fmt.Sprintf("w%d", w), Slots: slots, Active: rng.IntN(slots + 1), CPU: float64(rng.IntN(101))}
			if rng.IntN(4) == 0 {
				wl.Red = "memory 99% > 95% critical"
			}
			in.Workers = append(in.Workers, wl)
		}
		for i := range rng.IntN(12) {
			in.Pending = append(in.Pending, run(fmt.Sprintf("r%02d", i), rng.IntN(3), rng.IntN(5), systems[rng.IntN(4)], systems[rng.IntN(4)]))
		}
		got := Govern(in)
		require.Len(t, got, len(in.Pending))

		region := in.Active
		sys := map[string]int{}
		for k, v := range in.SystemActive {
			sys[k] = v
		}
		load := map[string]int{}
		for _, w := range in.Workers {
			load[w.ID] = w.Active
		}
		runs := map[string]PendingRun{}
		for _, r := range in.Pending {
			runs[r.ID] = r
		}
		for _, d := range got {
			if !d.Admitted() {
				continue
			}
			r := runs[d.RunID]
			region++
			for _, s := range runSystems(r) {
				require.Empty(t, in.SystemHosts[s].Red, "iteration %d: run %s admitted on red host of %s", iter, r.ID, s)
			}
			for _, w := range in.Workers {
				if w.ID == d.Worker {
					require.Empty(t, w.Red, "iteration %d: red worker %s got run %s", iter, w.ID, r.ID)
				}
			}
			for _, s := range runSystems(r) {
				sys[s]++
				if l := in.SystemLimits[s]; l > 0 {
					require.LessOrEqual(t, sys[s], max(l, in.SystemActive[s]), "iteration %d: system %s over its limit", iter, s)
				}
			}
			load[d.Worker]++
			for _, w := range in.Workers {
				if w.ID == d.Worker {
					require.LessOrEqual(t, load[w.ID], w.Slots, "iteration %d: worker %s over its slots", iter, w.ID)
				}
			}
		}
		require.LessOrEqual(t, region, max(in.MaxActiveRuns, in.Active), "iteration %d: region over its limit", iter)
		for _, d := range got {
			if d.Admitted() {
				continue
			}
			r := runs[d.RunID]
			require.True(t, utf8.ValidString(d.Hold) && len(d.Hold) <= holdReasonMax, "iteration %d: reason %q", iter, d.Hold)
			switch {
			case strings.HasPrefix(d.Hold, "source host "):
				require.True(t, d.Health)
				require.NotEmpty(t, in.SystemHosts[r.Source].Red, "iteration %d", iter)
			case strings.HasPrefix(d.Hold, "target host "):
				require.True(t, d.Health)
				require.Empty(t, in.SystemHosts[r.Source].Red, "iteration %d: the source is named first", iter)
				require.NotEmpty(t, in.SystemHosts[r.Target].Red, "iteration %d", iter)
			case strings.HasPrefix(d.Hold, "no healthy worker with a free slot in region r: "):
				require.True(t, d.Health)
				for _, w := range in.Workers {
					if w.Red == "" {
						require.GreaterOrEqual(t, load[w.ID], w.Slots, "iteration %d: healthy worker %s had a free slot", iter, w.ID)
					}
				}
			case d.Hold == fmt.Sprintf("region r at its limit of %d active runs", in.MaxActiveRuns):
				require.GreaterOrEqual(t, region, in.MaxActiveRuns, "iteration %d", iter)
			case d.Hold == "no live worker in region r":
				require.Empty(t, in.Workers)
			case d.Hold == "no live worker with a free slot in region r":
				require.False(t, d.Health)
				for _, w := range in.Workers {
					require.GreaterOrEqual(t, load[w.ID], w.Slots, "iteration %d: worker %s had a free slot", iter, w.ID)
				}
			default:
				found := false
				for _, s := range runSystems(r) {
					if d.Hold == fmt.Sprintf("system %s at its limit of %d concurrent runs", s, in.SystemLimits[s]) {
						require.GreaterOrEqual(t, sys[s], in.SystemLimits[s], "iteration %d", iter)
						found = true
					}
				}
				require.True(t, found, "iteration %d: unexpected hold reason %q", iter, d.Hold)
			}
		}
	}
}
