package worker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
)

func readManifest(t *testing.T, path string) catalog.Manifest {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err, "the delivery manifest is at the target")
	var m catalog.Manifest
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// TestCopyEndToEnd copies a tree of files of varied sizes from one fs system
// to another through the catalog, and checks the files, the delivery
// manifest, the run's progress, plan, tasks and events, and the node row.
func TestCopyEndToEnd(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sizes := map[string]int{
			"in/2026-11-20/empty.csv":            0,
			"in/2026-11-20/one.csv":              1,
			"in/2026-11-20/page.csv":             4095,
			"in/2026-11-20/AAPL.csv":             64 << 10,
			"in/2026-11-20/MSFT.csv":             1<<20 + 3,
			"in/2026-11-20/big/IBM.bin":          9<<20 + 17, // more than one copy chunk
			"in/2026-11-20/sub/deeper/GOOG.csv":  300_000,
			"in/2026-11-21/not-selected.csv":     10,
			"in/2026-11-20-other/not-either.csv": 10,
		}
		for i := range 20 {
			sizes[filepath.ToSlash(filepath.Join("in/2026-11-20/many", string(rune('a'+i))+".csv"))] = 1000 * (i + 1)
		}
		write(t, e.src, sizes)
		e.mapping("copy", "src", "in/{day}", "dst", "out/{day}")
		id := e.submit("copy", map[string]string{"day": "2026-11-20"})
		e.dispatch(id, "w1", 0)
		e.start(e.config("w1"), e.store, connector.Default())

		r := e.waitState(id, 30*time.Second, catalog.StateSucceeded)
		require.Equal(t, catalog.StateSucceeded, r.State, r.Error)

		// Byte-identical files, exactly the selection, plus the manifest.
		src := tree(t, filepath.Join(e.src, "in/2026-11-20"))
		got := tree(t, filepath.Join(e.dst, "out/2026-11-20"))
		require.Contains(t, got, connector.ManifestName)
		delete(got, connector.ManifestName)
		require.Equal(t, len(src), len(got))
		for p, b := range src {
			require.True(t, bytes.Equal(b, got[p]), "file %s differs", p)
		}
		require.Len(t, src, 27)
		all := tree(t, e.dst)
		require.Len(t, all, 28, "nothing else at the target: no staging left, nothing unselected")

		// The delivery manifest lists every file with its checksum, and totals.
		m := readManifest(t, filepath.Join(e.dst, "out/2026-11-20", connector.ManifestName))
		require.Equal(t, id, m.RunID)
		require.Equal(t, "copy", m.Mapping)
		require.Equal(t, 1, m.MappingVersion)
		require.Equal(t, 1, m.Attempt)
		require.Equal(t, catalog.StateSucceeded, m.State)
		require.Equal(t, map[string]string{"day": "2026-11-20"}, m.Params)
		require.Equal(t, catalog.PlanEndpoint{System: "dst", Kind: "fs", Path: "out/2026-11-20"}, m.Target)
		require.False(t, m.StartedAt.IsZero())
		require.False(t, m.FinishedAt.Before(m.StartedAt))
		require.Len(t, m.Files, len(src))
		var total int64
		paths := make([]string, 0, len(m.Files))
		for _, f := range m.Files {
			b, ok := src[f.Path]
			require.True(t, ok, "manifest lists %s, which is not in the source", f.Path)
			sum := sha256.Sum256(b)
			require.Equal(t, hex.EncodeToString(sum[:]), f.SHA256, f.Path)
			require.EqualValues(t, len(b), f.Size, f.Path)
			total += f.Size
			paths = append(paths, f.Path)
		}
		require.True(t, sort.StringsAreSorted(paths))
		require.EqualValues(t, len(src), m.TotalFiles)
		require.Equal(t, total, m.TotalBytes)

		// The catalog: the same manifest, progress equal to the totals.
		require.NotNil(t, r.Manifest.V)
		require.Equal(t, m.Files, r.Manifest.V.Files)
		require.Equal(t, catalog.Progress{TasksTotal: 3, TasksDone: 3, FilesTotal: 27, FilesDone: 27, BytesTotal: total, BytesDone: total}, r.Progress)

		// The plan records the parallelism and why; one task per thread.
		plan := r.Plan.V
		require.NotNil(t, plan)
		require.Equal(t, 3, plan.Parallelism)
		require.Contains(t, plan.Reason, "3 threads for 27 files")
		require.Contains(t, plan.Reason, "the worker's 3 threads")
		require.Equal(t, 1, plan.Attempt)
		require.Equal(t, "in/2026-11-20", plan.Source.Path)
		require.Len(t, plan.Partitions, 3)
		tasks, err := e.store.ListRunTasks(ctx, id)
		require.NoError(t, err)
		require.Len(t, tasks, 3)
		var files, taskBytes int64
		for i, tk := range tasks {
			require.Equal(t, catalog.TaskDone, tk.State)
			require.Equal(t, i, tk.Thread)
			require.Equal(t, tk.FilesTotal, tk.FilesDone)
			require.Equal(t, tk.BytesTotal, tk.BytesDone)
			require.EqualValues(t, len(tk.Files.V), tk.FilesTotal)
			require.Equal(t, plan.Partitions[i].Bytes, tk.BytesTotal)
			files += tk.FilesTotal
			taskBytes += tk.BytesTotal
		}
		require.EqualValues(t, 27, files)
		require.Equal(t, total, taskBytes)
		require.Equal(t, "big/IBM.bin", tasks[0].Files.V[0], "the largest file is dealt first")
		require.Equal(t, "MSFT.csv", tasks[1].Files.V[0])

		evs := e.events(id)
		for _, k := range []string{"planned", "committed", "succeeded"} {
			require.True(t, hasKind(evs, k), "event %s in %+v", k, evs)
		}

		nodes, err := e.store.ListNodes(ctx, region)
		require.NoError(t, err)
		require.Len(t, nodes, 1)
		require.Equal(t, catalog.NodeAlive, nodes[0].State)
		require.Equal(t, 2, nodes[0].Slots)
		require.Equal(t, []string{"worker"}, nodes[0].Roles.V)
		require.Equal(t, "127.0.0.1:0", nodes[0].Address)
		require.Equal(t, "test", nodes[0].Version)
	})
}

func TestEmptySelectionAndNullSystems(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		write(t, e.src, map[string]int{"in/2026-11-20/a.txt": 10, "in/2026-11-20/b.txt": 2 << 20})
		e.mapping("csv", "src", "in/{day}/*.csv", "dst", "out/{day}")
		e.mapping("nothing", "void", "x", "void", "y")
		e.mapping("drain", "src", "in/{day}", "void", "")
		empty := e.submit("csv", map[string]string{"day": "2026-11-20"})
		null := e.submit("nothing", nil)
		drain := e.submit("drain", map[string]string{"day": "2026-11-20"})
		for _, id := range []string{empty, null, drain} {
			e.dispatch(id, "w1", 0)
		}
		e.start(e.config("w1"), e.store, connector.Default())

		r := e.waitState(empty, 20*time.Second, catalog.StateEmpty)
		require.Equal(t, catalog.StateEmpty, r.State, r.Error)
		require.Equal(t, catalog.Progress{}, r.Progress)
		require.NotNil(t, r.Manifest.V)
		require.Empty(t, r.Manifest.V.Files)
		m := readManifest(t, filepath.Join(e.dst, "out/2026-11-20", connector.ManifestName))
		require.Equal(t, catalog.StateEmpty, m.State)
		require.Empty(t, m.Files)
		require.Zero(t, m.TotalFiles)
		require.Equal(t, "nothing to copy: the selection is empty", r.Plan.V.Reason)

		r = e.waitState(null, 20*time.Second, catalog.StateEmpty)
		require.Equal(t, catalog.StateEmpty, r.State, r.Error)

		// fs to null reads everything and keeps nothing.
		r = e.waitState(drain, 20*time.Second, catalog.StateSucceeded)
		require.Equal(t, catalog.StateSucceeded, r.State, r.Error)
		require.EqualValues(t, 2, r.Manifest.V.TotalFiles)
		require.EqualValues(t, 10+2<<20, r.BytesDone)
		require.Len(t, r.Manifest.V.Files[0].SHA256, 64)
		require.Len(t, tree(t, e.dst), 1, "only the empty run's manifest is at the fs target")
	})
}

// slowRun prepares a run of 6 files of 1 MiB read at about 640 KB/s per
// thread (two threads: about 5 s in all) and returns its run_id.
func slowRun(e *env) string {
	sizes := map[string]int{}
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		sizes["in/slow/"+n+".bin"] = 1 << 20
	}
	write(e.t, e.src, sizes)
	e.mapping("slow", "src", "in/slow", "dst", "out")
	id := e.submit("slow", nil)
	e.dispatch(id, "w1", 0)
	return id
}

func copying(r *catalog.Run) bool { return r.State == catalog.StateActive && r.BytesDone > 0 }

func TestCancelActiveRun(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		id := slowRun(e)
		var reads atomic.Int64
		e.start(e.config("w1"), e.store, slowRegistry(50*time.Millisecond, &reads, ""))
		r := e.waitRun(id, 20*time.Second, "progress flushed while copying", copying)
		require.Less(t, r.BytesDone, r.BytesTotal)

		asked := time.Now()
		_, err := e.store.RequestCancel(context.Background(), id, "tester")
		require.NoError(t, err)
		r = e.waitState(id, 5*time.Second, catalog.StateCanceled)
		took := time.Since(asked)
		require.Equal(t, catalog.StateCanceled, r.State, r.Error)
		require.Less(t, took, 2*time.Second, "cancellation is observed within a second or two")
		t.Logf("canceled %s after the request", took)

		require.Empty(t, tree(t, e.dst), "nothing committed, staging removed")
		require.True(t, hasKind(e.events(id), "canceled"))
	})
}

func TestLostLeaseAbandonsWithoutCommit(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		id := slowRun(e)
		var reads atomic.Int64
		e.start(e.config("w1"), e.store, slowRegistry(50*time.Millisecond, &reads, ""))
		e.waitRun(id, 20*time.Second, "copying", copying)

		// The workload manager, an hour later by its clock, reaps the lease.
		reaper := e.openStore()
		reaper.SetClock(func() time.Time { return time.Now().UTC().Add(time.Hour) })
		reaped, err := reaper.ReapExpiredLeases(context.Background(), region)
		require.NoError(t, err)
		require.Equal(t, []string{id}, reaped)

		ev := e.waitEvent(id, "abandoned", 5*time.Second)
		require.Contains(t, ev.Message, "lease was lost")
		waitStill(t, &reads, 300*time.Millisecond, 5*time.Second)
		time.Sleep(300 * time.Millisecond)

		r := e.run(id)
		require.Equal(t, catalog.StatePending, r.State, "the reaper's decision stands")
		require.Less(t, r.BytesDone, r.BytesTotal)
		require.Empty(t, tree(t, e.dst), "an abandoned attempt commits nothing and leaves no staging")
		attempts, err := e.store.ListRunAttempts(context.Background(), id)
		require.NoError(t, err)
		require.Len(t, attempts, 1)
		require.Equal(t, catalog.StateFailed, attempts[0].State)
	})
}

func TestRetryAfterKilledAttempt(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		write(t, e.src, map[string]int{"in/2026-11-20/a.csv": 5000, "in/2026-11-20/b.csv": 70000, "in/2026-11-20/d/c.csv": 10})
		e.mapping("copy", "src", "in/{day}", "dst", "out/{day}")
		id := e.submit("copy", map[string]string{"day": "2026-11-20"})

		// Attempt 1 is claimed by a worker that dies half way: staged files,
		// one file already renamed into place, another half written.
		e.dispatch(id, "dead", 0)
		claimed, err := e.store.ClaimRuns(ctx, catalog.ClaimParams{Worker: "dead", Limit: 1, LeaseTTL: time.Second})
		require.NoError(t, err)
		require.Len(t, claimed, 1)
		staging := filepath.Join(e.dst, connector.StagingDir, id, "1")
		require.NoError(t, os.MkdirAll(filepath.Join(staging, "d"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(staging, "b.csv"), []byte("half"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(staging, "d", "c.csv"), []byte("x"), 0o644))
		require.NoError(t, os.MkdirAll(filepath.Join(e.dst, "out/2026-11-20"), 0o755))
		a, err := os.ReadFile(filepath.Join(e.src, "in/2026-11-20/a.csv"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(e.dst, "out/2026-11-20/a.csv"), a, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(e.dst, "out/2026-11-20/b.csv"), []byte("truncated"), 0o644))

		reaper := e.openStore()
		reaper.SetClock(func() time.Time { return time.Now().UTC().Add(time.Hour) })
		_, err = reaper.ReapExpiredLeases(ctx, region)
		require.NoError(t, err)
		require.Equal(t, catalog.StatePending, e.run(id).State)

		e.dispatch(id, "w1", 0)
		e.start(e.config("w1"), e.store, connector.Default())
		r := e.waitState(id, 20*time.Second, catalog.StateSucceeded)
		require.Equal(t, catalog.StateSucceeded, r.State, r.Error)
		require.Equal(t, 2, r.Attempt)

		src := tree(t, filepath.Join(e.src, "in/2026-11-20"))
		got := tree(t, e.dst)
		require.Len(t, got, len(src)+1, "exactly the source files and the manifest: %v", keys(got))
		for p, b := range src {
			require.True(t, bytes.Equal(b, got["out/2026-11-20/"+p]), p)
		}
		m := readManifest(t, filepath.Join(e.dst, "out/2026-11-20", connector.ManifestName))
		require.Equal(t, 2, m.Attempt)
		require.Len(t, m.Files, 3)
		_, err = os.Stat(filepath.Join(e.dst, connector.StagingDir))
		require.True(t, os.IsNotExist(err), "no staging left behind")
	})
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestFailuresRetryableOrNot(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		outside := t.TempDir()
		write(t, outside, map[string]int{"secret": 10})
		write(t, e.src, map[string]int{
			"in/io/ok.csv": 100, "in/io/bad.csv": 100_000,
			"in/link/ok.csv": 100,
		})
		require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(e.src, "in/link/leak.csv")))
		e.mapping("m", "src", "in/{day}", "dst", "out/{day}")
		ioErr := e.submit("m", map[string]string{"day": "io"})
		missing := e.submit("m", map[string]string{"day": "2026-01-01"})
		escape := e.submit("m", map[string]string{"day": "../../etc"})
		link := e.submit("m", map[string]string{"day": "link"})
		for _, id := range []string{ioErr, missing, escape, link} {
			e.dispatch(id, "w1", 0)
		}
		var reads atomic.Int64
		cfg := e.config("w1")
		cfg.Slots = 4
		e.start(cfg, e.store, slowRegistry(0, &reads, "in/io/bad.csv"))

		// An I/O error is worth another attempt.
		r := e.waitRun(ioErr, 20*time.Second, "back to pending", func(r *catalog.Run) bool { return r.State != catalog.StateActive && r.State != catalog.StateQueued })
		require.Equal(t, catalog.StatePending, r.State)
		require.Contains(t, r.Error, "input/output error")
		require.Contains(t, r.Error, "in/io/bad.csv")
		require.True(t, r.NotBefore.After(r.CreatedAt), "with a backoff")

		// Retrying cannot fix these: failed at once, attempts left unused.
		for id, want := range map[string]string{missing: "does not exist", escape: "escapes the system's root", link: "escapes"} {
			r := e.waitState(id, 20*time.Second, catalog.StateFailed)
			require.Equal(t, catalog.StateFailed, r.State, "run %s: %s", id, r.Error)
			require.Equal(t, 1, r.Attempt)
			require.Contains(t, r.Error, want)
		}
		require.Empty(t, tree(t, e.dst), "failed attempts leave nothing at the target")
		require.NoFileExists(t, filepath.Join(outside, "..", "etc"))
	})
}

func TestCatalogUnreachableStopsWork(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		id := slowRun(e)
		write(t, e.src, map[string]int{"in/quick/x.csv": 1000})
		e.mapping("quick", "src", "in/quick", "dst", "quick")
		store := &flakyStore{Store: e.store}
		var reads atomic.Int64
		cfg := e.config("w1")
		e.start(cfg, store, slowRegistry(50*time.Millisecond, &reads, ""))
		e.waitRun(id, 20*time.Second, "copying", copying)

		down := time.Now()
		store.down.Store(true)
		stopped := waitStill(t, &reads, 300*time.Millisecond, 10*time.Second)
		t.Logf("work stopped %s after the catalog went away", stopped.Sub(down))
		require.Less(t, stopped.Sub(down), cfg.LeaseTTL/2+time.Second, "work stops within half the lease")
		require.Empty(t, tree(t, e.dst), "nothing committed, staging removed")
		require.Equal(t, catalog.StateActive, e.run(id).State, "the worker could write nothing meanwhile")

		// Reachable again: the stopped run is handed back, and claiming resumes.
		store.down.Store(false)
		r := e.waitState(id, 10*time.Second, catalog.StatePending)
		require.Equal(t, catalog.StatePending, r.State)
		require.Contains(t, r.Error, "lost contact with the catalog")
		q := e.submit("quick", nil)
		e.dispatch(q, "w1", 0)
		r = e.waitState(q, 20*time.Second, catalog.StateSucceeded)
		require.Equal(t, catalog.StateSucceeded, r.State, r.Error)
	})
}

func TestClosedCatalogStopsWork(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		id := slowRun(e)
		var reads atomic.Int64
		cfg := e.config("w1")
		store := e.openStore()
		stop := e.start(cfg, store, slowRegistry(50*time.Millisecond, &reads, ""))
		e.waitRun(id, 20*time.Second, "copying", copying)
		closed := time.Now()
		require.NoError(t, store.Close())
		stopped := waitStill(t, &reads, 300*time.Millisecond, 10*time.Second)
		require.Less(t, stopped.Sub(closed), cfg.LeaseTTL/2+time.Second)
		require.Less(t, stop(), 5*time.Second, "Run returns even though the catalog is gone")
		require.Empty(t, tree(t, e.dst))
		require.Equal(t, catalog.StateActive, e.run(id).State, "left for the reaper")
	})
}

func TestStopDrainsThenHandsBack(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		id := slowRun(e)
		var reads atomic.Int64
		cfg := e.config("w1")
		cfg.DrainTimeout = 300 * time.Millisecond
		stop := e.start(cfg, e.store, slowRegistry(50*time.Millisecond, &reads, ""))
		e.waitRun(id, 20*time.Second, "copying", copying)
		require.Less(t, stop(), 3*time.Second)
		r := e.run(id)
		require.Equal(t, catalog.StatePending, r.State, "handed back for another worker")
		require.Contains(t, r.Error, "stopped during attempt 1")
		require.Empty(t, tree(t, e.dst))
		nodes, err := e.store.ListNodes(context.Background(), region)
		require.NoError(t, err)
		require.Equal(t, catalog.NodeLeft, nodes[0].State)
	})
}

// reapBeforeCommit reaps its run right after the worker's last progress
// flush (every task done), that is between the copy and the commit.
type reapBeforeCommit struct {
	*catalog.Store
	reaper *catalog.Store
	reaped atomic.Bool
}

func (s *reapBeforeCommit) FlushProgress(ctx context.Context, p catalog.FlushProgressParams) error {
	if err := s.Store.FlushProgress(ctx, p); err != nil {
		return err
	}
	if p.Run.TasksDone == p.Run.TasksTotal && s.reaped.CompareAndSwap(false, true) {
		if _, err := s.reaper.ReapExpiredLeases(ctx, region); err != nil {
			return err
		}
	}
	return nil
}

func TestLeaseLostBetweenCopyAndCommit(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		write(t, e.src, map[string]int{"in/a.csv": 100_000, "in/b.csv": 200})
		e.mapping("m", "src", "in", "dst", "out")
		id := e.submit("m", nil)
		e.dispatch(id, "w1", 0)
		reaper := e.openStore()
		reaper.SetClock(func() time.Time { return time.Now().UTC().Add(time.Hour) })
		store := &reapBeforeCommit{Store: e.store, reaper: reaper}
		cfg := e.config("w1")
		cfg.HeartbeatInterval = 500 * time.Millisecond // the check before commit must catch it, not a heartbeat
		e.start(cfg, store, connector.Default())

		e.waitEvent(id, "abandoned", 10*time.Second)
		require.True(t, store.reaped.Load())
		r := e.run(id)
		require.Equal(t, catalog.StatePending, r.State)
		require.Empty(t, tree(t, e.dst), "copied in full, yet nothing committed after the lease was lost")
	})
}

// failFirstFinish loses the first FinishRun call, as a catalog blip would.
type failFirstFinish struct {
	*catalog.Store
	failed atomic.Bool
}

func (s *failFirstFinish) FinishRun(ctx context.Context, p catalog.FinishParams) (catalog.RunState, error) {
	if s.failed.CompareAndSwap(false, true) {
		return "", errDown
	}
	return s.Store.FinishRun(ctx, p)
}

func TestFinishRecordedAfterCatalogBlip(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		write(t, e.src, map[string]int{"in/a.csv": 1000})
		e.mapping("m", "src", "in", "dst", "out")
		id := e.submit("m", nil)
		e.dispatch(id, "w1", 0)
		store := &failFirstFinish{Store: e.store}
		e.start(e.config("w1"), store, connector.Default())
		r := e.waitState(id, 10*time.Second, catalog.StateSucceeded)
		require.Equal(t, catalog.StateSucceeded, r.State, r.Error)
		require.True(t, store.failed.Load())
		require.EqualValues(t, 1, r.Manifest.V.TotalFiles)
	})
}
