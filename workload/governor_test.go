package workload

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func run(id string, prio int, age int, src, dst string) PendingRun {
	return PendingRun{ID: id, Priority: prio, CreatedAt: t0.Add(time.Duration(age) * time.Second), Source: src, Target: dst}
}

func admit(id, worker string) Decision { return Decision{RunID: id, Worker: worker} }
func hold(id, reason string) Decision  { return Decision{RunID: id, Hold: reason} }

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
		{"none", nil, -1},
		{"all full", []WorkerLoad{{ID: "a", Slots: 1, Active: 1}, {ID: "b", Slots: 0}}, -1},
		{"most free slots", []WorkerLoad{{ID: "a", Slots: 4, Active: 3}, {ID: "b", Slots: 8, Active: 5}}, 1},
		{"tie on free: fewest active", []WorkerLoad{{ID: "a", Slots: 4, Active: 2}, {ID: "b", Slots: 2}}, 1},
		{"tie on free and active: smallest ID", []WorkerLoad{{ID: "w2", Slots: 2}, {ID: "w10", Slots: 2}, {ID: "w3", Slots: 2}}, 1},
		{"overloaded worker is never picked", []WorkerLoad{{ID: "a", Slots: 1, Active: 5}, {ID: "b", Slots: 1}}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, PickWorker(tc.workers))
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
		for w := range rng.IntN(4) {
			slots := rng.IntN(4)
			in.Workers = append(in.Workers, WorkerLoad{ID: fmt.Sprintf("w%d", w), Slots: slots, Active: rng.IntN(slots + 1)})
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
			switch {
			case d.Hold == fmt.Sprintf("region r at its limit of %d active runs", in.MaxActiveRuns):
				require.GreaterOrEqual(t, region, in.MaxActiveRuns, "iteration %d", iter)
			case d.Hold == "no live worker in region r":
				require.Empty(t, in.Workers)
			case d.Hold == "no live worker with a free slot in region r":
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
