package workload

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// countingStore counts the manager's alert and hold writes.
type countingStore struct {
	*catalog.Store
	raises, resolves, holdWrites atomic.Int64
}

func (c *countingStore) RaiseAlert(ctx context.Context, p catalog.RaiseAlertParams) (*catalog.Alert, bool, error) {
	c.raises.Add(1)
	return c.Store.RaiseAlert(ctx, p)
}

func (c *countingStore) ResolveAlert(ctx context.Context, key string) (bool, error) {
	c.resolves.Add(1)
	return c.Store.ResolveAlert(ctx, key)
}

func (c *countingStore) StartRunHolds(ctx context.Context, holds []catalog.RunHold) error {
	if len(holds) > 0 {
		c.holdWrites.Add(1)
	}
	return c.Store.StartRunHolds(ctx, holds)
}

// redHostEnv puts system src on host db-1, whose disk is nearly full, and a
// healthy worker w1 in the region.
func redHostEnv(t *testing.T, s *catalog.Store) *env {
	ctx := context.Background()
	e := newEnv(t, s)
	e.system("src", 0)
	e.system("dst", 0)
	require.NoError(t, s.SetSystemAttributes(ctx, "src", map[string]string{catalog.SystemNodeAttribute: "db-1"}))
	heartbeat(t, s, "db-1", 0, "agent")
	heartbeat(t, s, "w1", 4)
	sample(t, s, "db-1", hostStats{cpu: 5, mem: 20, disks: map[string]float64{"/": 10, "/tmp": 97}})
	sample(t, s, "w1", hostStats{cpu: 5, mem: 20})
	return e
}

const db1Reason = "source host db-1: free disk on /tmp 3% < 5% critical"

// TestManagerRaisesOneAlertPerHoldCause holds many runs on one red host:
// one alert row for the host, its message counting them, and a bounded
// number of alert writes however many ticks pass.
func TestManagerRaisesOneAlertPerHoldCause(t *testing.T) {
	const n = 150
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := redHostEnv(t, s)
		e.mapping("m", "src", "dst")
		runs := make([]*catalog.Run, n)
		for i := range runs {
			runs[i] = e.submit("m", 0)
		}
		cs := &countingStore{Store: s}
		cfg := testConfig(t, "mgr1")
		// A tick over many runs is slow under -race on a busy machine: a
		// longer lease and dead-node delay keep one leader and a live worker.
		cfg.LeaseTTL, cfg.NodeDeadAfter = 5*time.Second, 20*time.Second
		m := start(t, cfg, cs)
		require.Eventually(t, func() bool {
			return len(holdsOf(t, s)) == n && e.run(runs[n-1].ID).HoldReason == db1Reason
		}, 60*time.Second, 20*time.Millisecond)
		afterFirst := cs.raises.Load()
		time.Sleep(20 * cfg.PollInterval) // twenty ticks and more
		m.stop(t)

		for _, r := range []*catalog.Run{runs[0], runs[n-1]} {
			require.Equal(t, db1Reason, e.run(r.ID).HoldReason, "each run still shows its own hold reason")
		}
		all, _, err := s.ListAlerts(context.Background(), catalog.AlertFilter{Region: region, Limit: catalog.ListLimitMax})
		require.NoError(t, err)
		var holdAlerts []catalog.Alert
		for _, a := range all {
			require.False(t, strings.HasPrefix(a.Key, AlertKeyRunHeld), "no alert per held run: %s", a.Key)
			if strings.HasPrefix(a.Key, AlertKeyHold) {
				holdAlerts = append(holdAlerts, a)
			}
		}
		require.Len(t, holdAlerts, 1, "one alert for the one cause")
		a := holdAlerts[0]
		require.Equal(t, AlertKeyHold+"host db-1", a.Key)
		require.Equal(t, "host db-1 holds runs", a.Subject)
		require.Equal(t, fmt.Sprintf("%d runs held (%s, %s, %s and %d more): %s", n, runs[0].ID, runs[1].ID, runs[2].ID, n-3, db1Reason), a.Message)
		require.True(t, a.Open())
		// The node alert (db-1 red) is raised once; the hold cause's alert once
		// when the holds began: no write per run, none per tick.
		require.LessOrEqual(t, afterFirst, int64(3))
		require.Equal(t, afterFirst, cs.raises.Load(), "twenty ticks later: no alert written again")
		require.Equal(t, int64(1), cs.holdWrites.Load(), "the holds start in one write")
		require.Equal(t, int64(0), cs.resolves.Load())

		// The host recovers: the runs go, the alert is resolved, once.
		sample(t, s, "db-1", hostStats{cpu: 5, mem: 20, disks: map[string]float64{"/": 10, "/tmp": 50}})
		start(t, cfg, cs)
		require.Eventually(t, func() bool {
			as := alertsOf(t, s, AlertKeyHold+"host db-1")
			return len(as) == 1 && !as[0].Open()
		}, 60*time.Second, 20*time.Millisecond)
		e.waitState(runs[0].ID, catalog.StateQueued, 30*time.Second)
	})
}

// TestManagerAbortsByTheMappingsMaximumHoldTime: a mapping's max_hold
// overrides the region's for its runs only.
func TestManagerAbortsByTheMappingsMaximumHoldTime(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		e := redHostEnv(t, s)
		e.mapping("patient", "src", "dst")
		e.mapping("quick", "src", "dst")
		quickMapping, err := s.GetMapping(ctx, "quick")
		require.NoError(t, err)
		quickMapping.MaxHold = catalog.Duration(time.Second)
		require.NoError(t, s.PutMapping(ctx, quickMapping))
		patient := e.submit("patient", 0)
		quick := e.submit("quick", 0)

		cfg := testConfig(t, "mgr1")
		cfg.MaxHold = time.Hour
		start(t, cfg, s)
		got := e.waitState(quick.ID, catalog.StateAborted, 10*time.Second)
		require.Equal(t, "held longer than the maximum hold time of 1s: "+db1Reason, got.Error)
		time.Sleep(10 * cfg.PollInterval)
		p := e.run(patient.ID)
		require.Equal(t, catalog.StatePending, p.State, "the region's hour applies to the other mapping")
		require.Equal(t, db1Reason, p.HoldReason)
	})
}
