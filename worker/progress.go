package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirdata/weir/catalog"
)

// Task states as kept in memory, in the order they advance.
const (
	taskPending int32 = iota
	taskActive
	taskDone
	taskFailed
)

var taskStateNames = [...]string{catalog.TaskPending, catalog.TaskActive, catalog.TaskDone, catalog.TaskFailed}

// progress counts a run's progress in memory (atomics, written by the copy
// threads) for the batched flushes; the catalog never sees a write per file.
type progress struct {
	tasks []taskCounter
	mu    sync.Mutex // serialises flushes and guards flushed
}

type taskCounter struct {
	state        atomic.Int32
	files, bytes atomic.Int64
	rows         atomic.Int64 // rows written (row path)
	filesTotal   int64
	bytesTotal   int64
	// estRows, for a row partition, is the source's estimate of its rows:
	// its bytes done are estimated from the rows done.
	estRows int64
	flushed catalog.TaskUpdate // as last written; guarded by progress.mu
}

func newProgress(tasks []catalog.RunTask) *progress {
	p := &progress{tasks: make([]taskCounter, len(tasks))}
	for i, t := range tasks {
		p.tasks[i].filesTotal, p.tasks[i].bytesTotal = t.FilesTotal, t.BytesTotal
		p.tasks[i].flushed = catalog.TaskUpdate{Seq: i, State: catalog.TaskPending}
	}
	return p
}

// newRowProgress counts the progress of row partitions, whose bytes are
// the source's estimates.
func newRowProgress(tasks []catalog.RunTask, estRows []int64) *progress {
	p := newProgress(tasks)
	for i := range p.tasks {
		p.tasks[i].estRows = estRows[i]
	}
	return p
}

func (p *progress) setState(t int, s int32) { p.tasks[t].state.Store(s) }
func (p *progress) addBytes(t int, n int64) { p.tasks[t].bytes.Add(n) }
func (p *progress) addRows(t int, n int64)  { p.tasks[t].rows.Add(n) }
func (p *progress) fileDone(t int)          { p.tasks[t].files.Add(1) }
func (p *progress) update(t int) catalog.TaskUpdate {
	c := &p.tasks[t]
	state := c.state.Load()
	u := catalog.TaskUpdate{Seq: t, State: taskStateNames[state], Progress: catalog.Progress{
		TasksTotal: 1, FilesTotal: c.filesTotal, FilesDone: c.files.Load(), BytesTotal: c.bytesTotal, BytesDone: c.bytes.Load(),
		Rows: c.rows.Load()}}
	if c.estRows > 0 {
		u.BytesDone = int64(float64(c.bytesTotal) * min(1, float64(u.Rows)/float64(c.estRows)))
	}
	if u.State == catalog.TaskDone {
		u.TasksDone = 1
		if c.estRows > 0 || c.filesTotal == 0 {
			u.BytesDone = c.bytesTotal
		}
	}
	return u
}

// total returns the run's counters.
func (p *progress) total() catalog.Progress {
	var r catalog.Progress
	for t := range p.tasks {
		u := p.update(t)
		r.TasksTotal++
		r.TasksDone += u.TasksDone
		r.FilesTotal += u.FilesTotal
		r.FilesDone += u.FilesDone
		r.BytesTotal += u.BytesTotal
		r.BytesDone += u.BytesDone
		r.Rows += u.Rows
	}
	return r
}

// flush writes the run's counters and the tasks changed since the last
// flush in one fenced catalog call; nothing is written when nothing changed.
func (w *Worker) flush(a *attempt, p *progress) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var changed []catalog.TaskUpdate
	for t := range p.tasks {
		if u := p.update(t); u != p.tasks[t].flushed {
			changed = append(changed, u)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(a.fenceCtx, w.cfg.LeaseTTL/4)
	defer cancel()
	err := w.store.FlushProgress(ctx, catalog.FlushProgressParams{RunID: a.run.ID, FencingToken: a.run.FencingToken, Run: p.total(), Tasks: changed})
	if err != nil {
		if errors.Is(err, catalog.ErrStaleLease) {
			a.fence(errLeaseLost)
		}
		return fmt.Errorf("flush progress: %w", err)
	}
	for _, u := range changed {
		p.tasks[u.Seq].flushed = u
	}
	return nil
}

// flushLoop flushes every ProgressInterval until ctx ends. A lost lease stops
// the attempt; other errors wait for the next tick (the heartbeat's
// watchdog decides when the catalog is gone).
func (w *Worker) flushLoop(ctx context.Context, a *attempt, p *progress) {
	t := time.NewTicker(w.cfg.ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := w.flush(a, p); err != nil && a.fenceCtx.Err() == nil {
				a.log.Warn("flush progress", slog.String("error", err.Error()))
			}
		}
	}
}
