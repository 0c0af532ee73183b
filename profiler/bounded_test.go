package profiler

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// openFast opens a fresh migrated catalog of dialect for tests that write a
// great many small transactions. On PostgreSQL the test database commits
// without waiting for the WAL flush (synchronous_commit off): the SQL and
// the results are the same, only the fsync per commit (several ms on this
// machine) is skipped; durability is not what these tests are about.
func openFast(t *testing.T, dialect string) *catalog.Store {
	t.Helper()
	dsn := catalogtest.DSN(t, dialect)
	if dialect == catalog.DialectPostgres {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		var db string
		require.NoError(t, conn.QueryRow(ctx, "SELECT current_database()").Scan(&db))
		_, err = conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" SET synchronous_commit = off")
		require.NoError(t, err)
		require.NoError(t, conn.Close(ctx))
	}
	return catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn})
}

// eachFast runs fn as a parallel subtest against a fresh openFast catalog of every dialect.
func eachFast(t *testing.T, fn func(t *testing.T, s *catalog.Store)) {
	for _, d := range catalogtest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, openFast(t, d))
		})
	}
}

// TestCatalogBoundedOverSimulatedWeek runs 50 nodes' profilers for a
// simulated week against one catalog and checks, every simulated 12 hours,
// that no profiler table grows past a bound computed from the retentions,
// and at the end that pruning kept what the retentions promise.
//
// Why not 5 s samples at the default retentions: that is 6M raw samples for
// 50 nodes. The size of each table depends only on retention / resolution
// (raw: RawRetention/Interval per node; minutes: MinuteRetention/max(Interval,
// 1m); hours: HourRetention/max(Interval, 1h); baselines: at most 168), so
// the test samples every two simulated hours, writes a batch every 12
// samples (a day), prunes daily, and shrinks the retentions (raw 30h,
// minutes 3 days, hours 4 days) so that one week spans more than one
// retention window of every tier. Every code path of the real profiler
// (batch write, rollup of closed minutes and hours, baseline merge, prune of
// all three tiers) runs for every node, every table reaches its steady
// state, and the week is 4,200 samples and about 10,000 statements per
// dialect: a few seconds, under a minute with -race on a busy machine.
// Time is driven through step, never slept.
//
// On day two, ten nodes restart under new IDs (the default node ID carries
// the process ID): their old IDs fall silent and must be forgotten, so that
// renamed nodes do not leave rows behind forever.
func TestCatalogBoundedOverSimulatedWeek(t *testing.T) {
	for _, d := range catalogtest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			cs := openFast(t, d)
			ctx := context.Background()
			const nodes = 50
			interval := 2 * time.Hour
			cfg := Config{
				Region:          "eu",
				FlushEvery:      12,
				RawRetention:    30 * time.Hour,
				MinuteRetention: 72 * time.Hour,
				HourRetention:   96 * time.Hour,
				PruneEvery:      24 * time.Hour,
				ForgetAfter:     48 * time.Hour,
			}
			const renamed, renameAt = 10, 12 // nodes 0-9 restart as node-0x-b at step 12 (day two)
			newProfiler := func(i int, id string) *Profiler {
				c := cfg
				c.NodeID = id
				smp, _ := series(func(k int) catalog.Sample {
					return catalog.Sample{CPUPct: float64((k*7 + i) % 100), MemUsedPct: 50, DiskWriteBps: float64(k % 13 * 1000),
						Disks: []catalog.Disk{{Path: "/", UsedPct: 40, FreeBytes: 1 << 40}, {Path: "/data", UsedPct: 70, FreeBytes: 1 << 39}}}
				})
				p, err := New(c, cs, smp)
				require.NoError(t, err)
				return p
			}
			ps := make([]*Profiler, nodes)
			for i := range ps {
				ps[i] = newProfiler(i, fmt.Sprintf("node-%02d", i))
			}
			// A row may outlive its retention by one prune period. A renamed
			// node's two IDs never sample at once, so they share one node's
			// bound of history; its latest row, state and baselines count twice
			// until the old ID is forgotten.
			per := func(keep, res time.Duration) int64 { return int64((keep+cfg.PruneEvery)/res) + 1 }
			bound := catalog.HostTableCounts{
				Latest:        nodes + renamed,
				Samples:       nodes * per(cfg.RawRetention, interval),
				MinuteRollups: nodes * per(cfg.MinuteRetention, interval), // one minute bucket per sample
				HourRollups:   nodes * per(cfg.HourRetention, interval),   // one hour bucket per sample
				Baselines:     (nodes + renamed) * catalog.HoursPerWeek,
				RollupStates:  nodes + renamed,
			}
			check := func(now time.Time) catalog.HostTableCounts {
				c, err := cs.CountHostRows(ctx)
				require.NoError(t, err)
				require.LessOrEqual(t, c.Latest, bound.Latest, "latest at %s", now)
				require.LessOrEqual(t, c.Samples, bound.Samples, "raw samples at %s", now)
				require.LessOrEqual(t, c.MinuteRollups, bound.MinuteRollups, "minute rollups at %s", now)
				require.LessOrEqual(t, c.HourRollups, bound.HourRollups, "hour rollups at %s", now)
				require.LessOrEqual(t, c.Baselines, bound.Baselines, "baselines at %s", now)
				require.LessOrEqual(t, c.RollupStates, bound.RollupStates, "rollup states at %s", now)
				return c
			}

			// A week, ending right after a batch.
			steps := int(7 * 24 * time.Hour / interval)
			require.Zero(t, steps%cfg.FlushEvery)
			var now time.Time
			var peak catalog.HostTableCounts
			for k := range steps {
				now = t0.Add(time.Duration(k) * interval)
				if k == renameAt {
					for i := range renamed {
						ps[i] = newProfiler(i, fmt.Sprintf("node-%02d-b", i))
					}
				}
				// The nodes sample at the same moment, concurrently, as they would.
				var wg sync.WaitGroup
				work := make(chan *Profiler)
				for range 8 {
					wg.Go(func() {
						for p := range work {
							p.step(ctx, now)
						}
					})
				}
				for _, p := range ps {
					work <- p
				}
				close(work)
				wg.Wait()
				if k%6 == 5 { // every simulated twelve hours
					c := check(now)
					peak = catalog.HostTableCounts{
						Latest: max(peak.Latest, c.Latest), Samples: max(peak.Samples, c.Samples),
						MinuteRollups: max(peak.MinuteRollups, c.MinuteRollups), HourRollups: max(peak.HourRollups, c.HourRollups),
						Baselines: max(peak.Baselines, c.Baselines), RollupStates: max(peak.RollupStates, c.RollupStates),
					}
				}
			}
			c := check(now)
			t.Logf("after a week of %d nodes: %+v (bound %+v, peak %+v)", nodes, c, bound, peak)

			// Steady state reached, nothing over-pruned: each tier holds what
			// its retention promises.
			require.Equal(t, int64(nodes+renamed), peak.Latest, "the renamed nodes' old IDs were there for a while")
			require.Equal(t, int64(nodes), c.Latest)
			require.Equal(t, int64(nodes), c.RollupStates)
			// Every sampled hour of the week (every other hour) has its cell but
			// the last, whose minute is still open; the renamed nodes' new IDs
			// since they started; the old IDs are forgotten.
			require.Equal(t, int64((nodes-renamed)*(steps-1)+renamed*(steps-1-renameAt)), c.Baselines)
			for i := range renamed {
				_, err := cs.GetLatestSample(ctx, fmt.Sprintf("node-%02d", i))
				require.ErrorIs(t, err, catalog.ErrNotFound, "a node silent for longer than ForgetAfter is forgotten")
				cells, err := cs.ListBaselines(ctx, fmt.Sprintf("node-%02d", i))
				require.NoError(t, err)
				require.Empty(t, cells)
			}
			// The run ends on a batch and a prune at now: each tier holds exactly
			// the rows of its retention window, nothing older (a week is longer
			// than every retention, so each tier was pruned).
			require.Equal(t, int64(nodes)*int64(cfg.RawRetention/interval+1), c.Samples, "raw: now-30h .. now")
			require.Equal(t, int64(nodes)*int64(cfg.MinuteRetention/interval), c.MinuteRollups, "minutes: now-3d .. now, the current one still open")
			require.Equal(t, int64(nodes)*int64(cfg.HourRetention/interval), c.HourRollups, "hours: now-4d .. now, the current one still open")
			for _, p := range []*Profiler{ps[0], ps[renamed], ps[nodes-1]} {
				id := p.Config().NodeID
				hours, err := cs.ListRollups(ctx, id, catalog.RollupHour, now.Add(-cfg.HourRetention), now)
				require.NoError(t, err)
				require.Len(t, hours, int(cfg.HourRetention/interval), "%s: every sampled hour of the retention", id)
				for i := 1; i < len(hours); i++ {
					require.Equal(t, interval, hours[i].Bucket.Sub(hours[i-1].Bucket), "%s: no hole in the hour rollups", id)
					require.Equal(t, int64(1), hours[i].Samples)
				}
				mins, err := cs.ListRollups(ctx, id, catalog.RollupMinute, now.Add(-cfg.MinuteRetention), now)
				require.NoError(t, err)
				require.Len(t, mins, int(cfg.MinuteRetention/interval), id)
				b, err := cs.GetBaseline(ctx, id, catalog.HourOfWeek(t0.Add(24*time.Hour)))
				require.NoError(t, err)
				require.Equal(t, int64(1), b.Metrics.V[catalog.MetricCPU].N, "%s: a week holds each hour of the week once", id)
				_, err = cs.GetBaseline(ctx, id, catalog.HourOfWeek(t0.Add(time.Hour)))
				require.ErrorIs(t, err, catalog.ErrNotFound, "%s: an hour never sampled has no cell", id)
			}
		})
	}
}
