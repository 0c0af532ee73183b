package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
	"github.com/weirdata/weir/transform"
)

// rowCounts are a run's row counters, kept in memory by its threads.
type rowCounts struct {
	read, bad, filtered, beyond, written atomic.Int64
}

// manifest returns the counts for the delivery manifest; the target's
// count and the check are filled after the commit.
func (c *rowCounts) manifest(rejected int64) *catalog.ManifestCounts {
	return &catalog.ManifestCounts{SourceRows: c.read.Load(), SourceBad: c.bad.Load(),
		Filtered: c.filtered.Load() + c.beyond.Load(), Rejected: rejected, Written: c.written.Load()}
}

// outBatch is a reusable batch of output rows: one backing array of cells,
// rows sliced from it.
type outBatch struct {
	width int
	cells []any
	rows  []connector.Row
	locs  []string
}

func newOutBatch(size, width int) *outBatch {
	return &outBatch{width: width, cells: make([]any, size*width), rows: make([]connector.Row, 0, size)}
}

func (b *outBatch) full() bool {
	return (len(b.rows)+1)*b.width > len(b.cells) || len(b.rows) == cap(b.rows)
}

// next returns the cells of the row being built.
func (b *outBatch) next() []any {
	n := len(b.rows) * b.width
	return b.cells[n : n+b.width : n+b.width]
}

// keep adds the row being built, with its source location when known.
func (b *outBatch) keep(loc string, hasLoc bool) {
	b.rows = append(b.rows, b.next())
	if hasLoc {
		b.locs = append(b.locs, loc)
	}
}

// reset empties the batch, dropping its values so that they can be freed.
func (b *outBatch) reset() {
	clear(b.cells[:len(b.rows)*b.width])
	b.rows, b.locs = b.rows[:0], b.locs[:0]
}

func (b *outBatch) batch() connector.Batch {
	out := connector.Batch{Rows: b.rows}
	if len(b.locs) == len(b.rows) {
		out.Locs = b.locs
	}
	return out
}

// moveRows runs one pipeline per partition, each on its own thread; the
// first failure stops the others.
func (w *Worker) moveRows(a *attempt, job *rowJob, load connector.Load, parts []connector.Partition, prog *progress) error {
	ctx, stop := context.WithCancelCause(a.runCtx)
	defer stop(nil)
	flushCtx, stopFlush := context.WithCancel(context.Background())
	var flusher sync.WaitGroup
	flusher.Go(func() { w.flushLoop(flushCtx, a, prog) })
	defer func() { stopFlush(); flusher.Wait() }()

	var threads sync.WaitGroup
	for t, p := range parts {
		threads.Go(func() {
			prog.setState(t, taskActive)
			if err := w.pipeline(ctx, job, load, t, p, prog); err != nil {
				prog.setState(t, taskFailed)
				stop(err)
				return
			}
			prog.setState(t, taskDone)
		})
	}
	threads.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// pipeline moves one partition on thread t: a reader goroutine reads and
// decodes batches, filters and maps them into output batches and queues
// them; this goroutine writes them to the load. The queue holds at most
// QueueDepth batches, so reading the next batch overlaps writing the last
// while memory stays bounded; output batches are reused.
func (w *Worker) pipeline(ctx context.Context, job *rowJob, load connector.Load, t int, p connector.Partition, prog *progress) error {
	depth, size, width := w.cfg.QueueDepth, w.cfg.BatchSize, len(job.out)
	free := make(chan *outBatch, depth+2)
	for range depth + 2 {
		free <- newOutBatch(size, width)
	}
	queue := make(chan *outBatch, depth)
	rctx, stopRead := context.WithCancelCause(ctx)
	defer stopRead(nil)
	var th *transform.Thread
	if job.prog != nil {
		th = job.prog.NewThread()
	}
	var (
		seen    int64 // rows of this partition met so far
		readErr error
		reader  sync.WaitGroup
	)
	send := func(ob *outBatch) error {
		select {
		case queue <- ob:
			return nil
		case <-rctx.Done():
			return context.Cause(rctx)
		}
	}
	take := func() (*outBatch, error) {
		select {
		case ob := <-free:
			return ob, nil
		case <-rctx.Done():
			return nil, context.Cause(rctx)
		}
	}
	emit := func(b connector.Batch) error {
		job.counts.read.Add(int64(len(b.Rows)))
		job.counts.bad.Add(int64(len(b.Bad)))
		for _, e := range b.Bad {
			if err := job.rej.add(e); err != nil {
				return err
			}
		}
		ob, err := take()
		if err != nil {
			return err
		}
		var filtered, beyond int64
		for i, row := range b.Rows {
			seen++
			if job.bound != nil && job.bound.beyond(row) {
				beyond++
				continue
			}
			if ob.full() {
				if err := send(ob); err != nil {
					return err
				}
				if ob, err = take(); err != nil {
					return err
				}
			}
			out := ob.next()
			if th == nil {
				for j, k := range job.proj {
					out[j] = row[k]
				}
			} else {
				keep, err := th.Apply(row, out)
				if err != nil {
					if err := job.rej.add(rowError(b, i, row, p, seen, err)); err != nil {
						return err
					}
					continue
				}
				if !keep {
					filtered++
					continue
				}
			}
			if i < len(b.Locs) {
				ob.keep(b.Locs[i], true)
			} else {
				ob.keep("", false)
			}
		}
		job.counts.filtered.Add(filtered)
		job.counts.beyond.Add(beyond)
		if len(ob.rows) == 0 {
			free <- ob
			return nil
		}
		return send(ob)
	}
	reader.Go(func() {
		defer close(queue)
		readErr = job.src.Read(rctx, job.srcDS, p, size, emit)
	})
	var writeErr error
	for ob := range queue {
		if writeErr == nil {
			n := int64(len(ob.rows))
			if err := load.Write(ctx, t, ob.batch()); err != nil {
				writeErr = fmt.Errorf("write partition %d (%s): %w", p.Seq, p.Desc, err)
				stopRead(writeErr)
			} else {
				job.counts.written.Add(n)
				prog.addRows(t, n)
			}
		}
		ob.reset()
		free <- ob
	}
	reader.Wait()
	switch {
	case writeErr != nil:
		return classify(writeErr)
	case readErr != nil && ctx.Err() != nil:
		return context.Cause(ctx)
	case readErr != nil:
		var be *badRowsError
		if errors.As(readErr, &be) {
			return permanent(be)
		}
		return classify(fmt.Errorf("read partition %d (%s): %w", p.Seq, p.Desc, readErr))
	}
	return nil
}

// rowError is the bad row a transform failure makes: where the row came
// from, its raw record (or its values as JSON) and why.
func rowError(b connector.Batch, i int, row connector.Row, p connector.Partition, seen int64, err error) *connector.RowError {
	e := &connector.RowError{Reason: err.Error()}
	if i < len(b.Locs) && b.Locs[i] != "" {
		e.Loc = b.Locs[i]
	} else {
		e.Loc = fmt.Sprintf("%s, row %d", p.Desc, seen)
	}
	if i < len(b.Raw) && b.Raw[i] != nil {
		e.Raw = append([]byte(nil), b.Raw[i]...)
	} else if raw, jerr := json.Marshal([]any(row)); jerr == nil {
		e.Raw = raw
	}
	return e
}
