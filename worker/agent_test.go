package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/worker"
)

// fakeAgents answers for the dispatcher agents linked to systems (the real
// ones are exercised on loopback in cmd/weir's agentcall_test.go).
type fakeAgents struct {
	count  func(system string, q worker.AgentCount) (*worker.AgentCountResult, error)
	verify func(system, runID string) (*worker.AgentVerifyResult, error)
}

func (f *fakeAgents) Count(_ context.Context, system string, q worker.AgentCount) (*worker.AgentCountResult, error) {
	return f.count(system, q)
}

func (f *fakeAgents) Verify(_ context.Context, system, runID string) (*worker.AgentVerifyResult, error) {
	return f.verify(system, runID)
}

func eventsOf(evs []catalog.RunEvent, kind string) []string {
	var out []string
	for _, ev := range evs {
		if ev.Kind == kind {
			out = append(out, ev.Message)
		}
	}
	return out
}

// TestVerifyThroughAgent: a file delivery is verified by the target's
// agent after its manifest is written; a delivery the agent finds changed
// fails the run for good, an agent that does not answer leaves a delivered
// run succeeded with a warning, and a system with no agent is not verified.
func TestVerifyThroughAgent(t *testing.T) {
	e := newEnv(t, catalog.DialectPostgres)
	write(t, e.src, map[string]int{"in/a.bin": 100, "in/b.bin": 2000})
	e.mapping("copy", "src", "in", "dst", "out/{day}")
	var answer func(system, runID string) (*worker.AgentVerifyResult, error)
	asked := map[string]string{}
	cfg := e.config("w1")
	cfg.Agents = &fakeAgents{
		count: func(string, worker.AgentCount) (*worker.AgentCountResult, error) { return nil, worker.ErrNoAgent },
		verify: func(system, runID string) (*worker.AgentVerifyResult, error) {
			asked[runID] = system
			return answer(system, runID)
		},
	}
	cfg.AgentTimeout = 5 * time.Second
	e.start(cfg, e.store, nil)

	for _, c := range []struct {
		name   string
		answer func(system, runID string) (*worker.AgentVerifyResult, error)
		state  catalog.RunState
		event  string
		msg    string
	}{
		{"intact", func(string, string) (*worker.AgentVerifyResult, error) {
			return &worker.AgentVerifyResult{Node: "a1", OK: true, Expected: 2, Matched: 2, BytesChecked: 2100, Extra: 1}, nil
		}, catalog.StateSucceeded, "verified", "agent a1 verified the delivery at dst: 2 of 2 files intact (2100 bytes hashed); 1 other file there the manifest does not list"},
		{"changed", func(string, string) (*worker.AgentVerifyResult, error) {
			return &worker.AgentVerifyResult{Node: "a1", Expected: 2, Matched: 1, ChangedCount: 1, Problems: []string{"b.bin: sha256 differs (2000 bytes, 2000 expected)"}}, nil
		}, catalog.StateFailed, "verified", "verify failed: agent a1 found the delivery at dst incomplete: 1 of 2 files intact, 0 missing, 1 changed (b.bin: sha256 differs (2000 bytes, 2000 expected))"},
		{"unreachable", func(string, string) (*worker.AgentVerifyResult, error) {
			return nil, errors.New("dial tcp 127.0.0.9:7071: connection refused")
		}, catalog.StateSucceeded, "agent-unreachable", "the dispatcher agent of system dst did not verify the delivery: dial tcp 127.0.0.9:7071: connection refused; the delivery is left unverified"},
		{"no agent", func(string, string) (*worker.AgentVerifyResult, error) { return nil, worker.ErrNoAgent }, catalog.StateSucceeded, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			answer = c.answer
			id := e.submit("copy", map[string]string{"day": c.name})
			e.dispatch(id, "w1", 2)
			r := e.waitState(id, 30*time.Second, c.state)
			require.Equal(t, c.state, r.State, r.Error)
			require.Equal(t, "dst", asked[id], "the target's agent was not asked")
			evs := e.events(id)
			if c.event == "" {
				require.Empty(t, eventsOf(evs, "verified"))
				require.Empty(t, eventsOf(evs, "agent-unreachable"))
				return
			}
			require.Equal(t, []string{c.msg}, eventsOf(evs, c.event))
			if c.state == catalog.StateFailed {
				require.Equal(t, c.msg, r.Error)
				require.Equal(t, 1, r.Attempt, "a changed delivery was retried")
			}
		})
	}
}
