package catalog_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// designTransitions is the run state machine of DESIGN.md, written out
// independently of the code: pending -> queued -> active -> one of the end
// states; a failed attempt with attempts left goes back to pending; users
// cancel, the system aborts (timeout, held too long) and reassigns queued
// runs of dead workers.
var designTransitions = map[[2]catalog.RunState]bool{
	{catalog.StatePending, catalog.StateQueued}:   true, // dispatched
	{catalog.StatePending, catalog.StateCanceled}: true, // canceled by a user before it ran
	{catalog.StatePending, catalog.StateAborted}:  true, // held too long
	{catalog.StateQueued, catalog.StateActive}:    true, // claimed
	{catalog.StateQueued, catalog.StatePending}:   true, // its worker died: reassigned
	{catalog.StateQueued, catalog.StateCanceled}:  true, // canceled by a user before it ran
	{catalog.StateQueued, catalog.StateAborted}:   true, // aborted by the system before it ran
	{catalog.StateActive, catalog.StateSucceeded}: true,
	{catalog.StateActive, catalog.StateEmpty}:     true,
	{catalog.StateActive, catalog.StateFailed}:    true, // no attempts left
	{catalog.StateActive, catalog.StateCanceled}:  true,
	{catalog.StateActive, catalog.StateAborted}:   true, // timeout
	{catalog.StateActive, catalog.StatePending}:   true, // failed attempt with attempts left
}

func TestCanTransitionMatchesDesign(t *testing.T) {
	t.Parallel()
	for _, from := range catalog.AllRunStates {
		for _, to := range catalog.AllRunStates {
			want := designTransitions[[2]catalog.RunState{from, to}]
			t.Run(fmt.Sprintf("%s->%s", from, to), func(t *testing.T) {
				require.Equal(t, want, catalog.CanTransition(from, to))
			})
		}
	}
	// Unknown states go nowhere and come from nowhere.
	require.False(t, catalog.CanTransition("bogus", catalog.StateQueued))
	require.False(t, catalog.CanTransition(catalog.StatePending, "bogus"))
	require.False(t, catalog.CanTransition("", ""))
}

func TestRunStateTerminalAndValid(t *testing.T) {
	t.Parallel()
	terminal := map[catalog.RunState]bool{catalog.StateSucceeded: true, catalog.StateEmpty: true, catalog.StateFailed: true, catalog.StateCanceled: true, catalog.StateAborted: true}
	require.Len(t, catalog.AllRunStates, 8)
	for _, s := range catalog.AllRunStates {
		require.True(t, s.Valid(), s)
		require.Equal(t, terminal[s], s.Terminal(), s)
		for _, to := range catalog.AllRunStates {
			if s.Terminal() {
				require.False(t, catalog.CanTransition(s, to), "%s is terminal but may go to %s", s, to)
			}
		}
	}
	require.False(t, catalog.RunState("bogus").Valid())
	require.False(t, catalog.RunState("").Valid())
	require.False(t, catalog.RunState("bogus").Terminal())
}

// TestStoreTransitionsAreConditional drives every Store operation that moves
// a run against a run in every state: the allowed ones move it, the others
// change nothing and say why.
func TestStoreTransitionsAreConditional(t *testing.T) {
	type outcome struct {
		to  catalog.RunState // state after success
		err error            // or the error, with the row unchanged
	}
	ok := func(to catalog.RunState) outcome { return outcome{to: to} }
	illegal := outcome{err: catalog.ErrIllegalTransition}
	stale := outcome{err: catalog.ErrStaleLease}
	none := outcome{} // the operation is not an error but must not touch the run

	type op struct {
		name string
		do   func(f *fixture, r *catalog.Run) error
		want map[catalog.RunState]outcome // missing: same as default
		def  outcome
	}
	finish := func(st catalog.RunState) func(f *fixture, r *catalog.Run) error {
		return func(f *fixture, r *catalog.Run) error {
			_, err := f.s.FinishRun(f.ctx, catalog.FinishParams{RunID: r.ID, FencingToken: r.FencingToken, Worker: testWorker, State: st, Error: "x"})
			return err
		}
	}
	ops := []op{
		{name: "dispatch", do: func(f *fixture, r *catalog.Run) error {
			return f.s.DispatchRun(f.ctx, catalog.DispatchParams{RunID: r.ID, Worker: workerFor(r.ID), Plan: &catalog.Plan{RunID: r.ID},
				LeaseName: f.lease.Name, LeaseHolder: f.lease.Holder, LeaseToken: f.lease.Token})
		}, want: map[catalog.RunState]outcome{catalog.StatePending: ok(catalog.StateQueued)}, def: illegal},
		{name: "claim", do: func(f *fixture, r *catalog.Run) error {
			_, err := f.s.ClaimRuns(f.ctx, catalog.ClaimParams{Worker: workerFor(r.ID), Limit: 1, LeaseTTL: 60e9})
			return err
		}, want: map[catalog.RunState]outcome{catalog.StateQueued: ok(catalog.StateActive)}, def: none},
		{name: "finish-succeeded", do: finish(catalog.StateSucceeded),
			want: map[catalog.RunState]outcome{catalog.StateActive: ok(catalog.StateSucceeded), catalog.StatePending: stale, catalog.StateQueued: stale}, def: illegal},
		{name: "finish-empty", do: finish(catalog.StateEmpty),
			want: map[catalog.RunState]outcome{catalog.StateActive: ok(catalog.StateEmpty), catalog.StatePending: stale, catalog.StateQueued: stale}, def: illegal},
		{name: "finish-canceled", do: finish(catalog.StateCanceled),
			want: map[catalog.RunState]outcome{catalog.StateActive: ok(catalog.StateCanceled), catalog.StatePending: stale, catalog.StateQueued: stale}, def: illegal},
		{name: "finish-failed", do: finish(catalog.StateFailed),
			want: map[catalog.RunState]outcome{catalog.StateActive: ok(catalog.StateFailed), catalog.StatePending: stale, catalog.StateQueued: stale}, def: illegal},
		{name: "finish-aborted", do: finish(catalog.StateAborted), def: illegal},
		{name: "finish-pending", do: finish(catalog.StatePending), def: illegal},
		{name: "cancel", do: func(f *fixture, r *catalog.Run) error {
			_, err := f.s.RequestCancel(f.ctx, r.ID, "alice")
			return err
		}, want: map[catalog.RunState]outcome{
			catalog.StatePending: ok(catalog.StateCanceled), catalog.StateQueued: ok(catalog.StateCanceled), catalog.StateActive: ok(catalog.StateActive),
		}, def: illegal},
		{name: "save-tasks", do: func(f *fixture, r *catalog.Run) error {
			return f.s.SaveTasks(f.ctx, catalog.SaveTasksParams{RunID: r.ID, FencingToken: r.FencingToken, Plan: &catalog.Plan{RunID: r.ID}, Tasks: []catalog.RunTask{{Seq: 1}}})
		}, want: map[catalog.RunState]outcome{catalog.StateActive: ok(catalog.StateActive)}, def: stale},
		{name: "flush-progress", do: func(f *fixture, r *catalog.Run) error {
			return f.s.FlushProgress(f.ctx, catalog.FlushProgressParams{RunID: r.ID, FencingToken: r.FencingToken, Run: catalog.Progress{FilesDone: 1}})
		}, want: map[catalog.RunState]outcome{catalog.StateActive: ok(catalog.StateActive)}, def: stale},
	}
	runOps := func(t *testing.T, s *catalog.Store) {
		// The catalog of each dialect is shared by the cases: every case makes its own run.
		f := newFixture(t, s)
		for _, o := range ops {
			for _, from := range catalog.AllRunStates {
				want, found := o.want[from]
				if !found {
					want = o.def
				}
				t.Run(o.name+"/"+string(from), func(t *testing.T) {
					f := *f
					f.t = t
					r := f.inState(from)
					before := f.reload(r.ID)
					err := o.do(&f, before)
					switch {
					case want.err != nil:
						require.ErrorIs(t, err, want.err)
						if want.err == catalog.ErrIllegalTransition || want.err == catalog.ErrStaleLease {
							var te *catalog.TransitionError
							if errors.As(err, &te) {
								require.Equal(t, r.ID, te.RunID)
							}
						}
						f.unchanged(before)
					case want.to == "":
						require.NoError(t, err)
						f.unchanged(before)
					default:
						require.NoError(t, err)
						require.Equal(t, want.to, f.reload(r.ID).State)
					}
				})
			}
		}
	}
	catalogtest.Each(t, runOps)
}
