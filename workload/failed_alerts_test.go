package workload

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// Runs of one mapping that fail together are one alert, not one per run;
// a new leader does not count them again; once an operator resolved it, the
// next failure opens a new alert.
func TestFailedRunsOfAMappingAreOneAlert(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		e := newEnv(t, s)
		e.system("src", 0)
		e.system("dst", 0)
		e.mapping("m", "src", "dst")
		heartbeat(t, s, "w1", 20)
		const n = 13
		var ids []string
		for range n {
			ids = append(ids, e.submit("m", 0).ID)
		}
		m1 := start(t, testConfig(t, "mgr1"), s)
		for _, id := range ids {
			e.waitState(id, catalog.StateQueued, 5*time.Second)
		}
		m1.stop(t)

		// While no leader looks, 12 runs fail.
		claimed := claim(t, s, "w1", time.Minute)
		require.Len(t, claimed, n)
		for i, id := range ids[:n-1] {
			r := claimed[id]
			st, err := s.FinishRun(ctx, catalog.FinishParams{RunID: id, FencingToken: r.FencingToken, Worker: "w1",
				State: catalog.StateFailed, Error: fmt.Sprintf("disk quota exceeded (%d)", i)})
			require.NoError(t, err)
			require.Equal(t, catalog.StateFailed, st)
		}
		key := AlertKeyRunFailed + "m"
		m2 := start(t, testConfig(t, "mgr2"), s)
		waitLeader(t, m2, 5*time.Second)
		require.Eventually(t, func() bool { return len(alertsOf(t, s, key)) == 1 }, 5*time.Second, 5*time.Millisecond)
		time.Sleep(10 * testConfig(t, "").PollInterval)
		as := alertsOf(t, s, key)
		require.Len(t, as, 1, "12 failed runs of one mapping are one alert")
		a := as[0]
		require.Equal(t, int64(1), a.Count)
		require.Equal(t, catalog.AlertCritical, a.Severity)
		require.Equal(t, "12 runs of mapping m failed or were aborted", a.Subject)
		require.Contains(t, a.Message, "disk quota exceeded (11)", "the newest failure's error")
		require.Contains(t, a.Message, "and 8 more")

		// A new leader looks back an hour: it does not count them again.
		m2.stop(t)
		m3 := start(t, testConfig(t, "mgr3"), s)
		waitLeader(t, m3, 5*time.Second)
		time.Sleep(10 * testConfig(t, "").PollInterval)
		as = alertsOf(t, s, key)
		require.Len(t, as, 1)
		require.Equal(t, int64(1), as[0].Count, "a failover does not count failures twice")

		// Resolved by an operator; the next failure opens a new alert.
		_, err := s.ResolveAlert(ctx, key)
		require.NoError(t, err)
		last := claimed[ids[n-1]]
		_, err = s.FinishRun(ctx, catalog.FinishParams{RunID: last.ID, FencingToken: last.FencingToken, Worker: "w1",
			State: catalog.StateFailed, Error: "checksum mismatch"})
		require.NoError(t, err)
		require.Eventually(t, func() bool { return len(alertsOf(t, s, key)) == 2 }, 5*time.Second, 5*time.Millisecond)
		time.Sleep(10 * testConfig(t, "").PollInterval)
		as = alertsOf(t, s, key)
		require.Len(t, as, 2)
		var open []catalog.Alert
		for _, a := range as {
			if a.Open() {
				open = append(open, a)
			}
		}
		require.Len(t, open, 1)
		require.Equal(t, fmt.Sprintf("run %s of mapping m failed", last.ID), open[0].Subject)
		require.Equal(t, "checksum mismatch", open[0].Message)
		require.Equal(t, int64(1), open[0].Count)
	})
}
