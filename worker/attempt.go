package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
)

// attempt is one claimed attempt of a run, executed by this worker.
type attempt struct {
	run catalog.Run // as claimed: Attempt and FencingToken are this attempt's
	log *slog.Logger
	// fenceCtx ends when the attempt must stop for good and never commit:
	// lease lost, catalog unreachable, worker stopping. Commit runs under it.
	fenceCtx context.Context
	fence    context.CancelCauseFunc
	// runCtx also ends on a requested cancellation. Copying runs under it.
	runCtx    context.Context
	cancel    context.CancelCauseFunc
	finishing atomic.Bool // FinishRun is being called: a lost lease is our own doing
}

func newAttempt(r catalog.Run, log *slog.Logger) *attempt {
	a := &attempt{run: r, log: log.With(slog.String("run_id", r.ID), slog.Int("attempt", r.Attempt))}
	a.fenceCtx, a.fence = context.WithCancelCause(context.Background())
	a.runCtx, a.cancel = context.WithCancelCause(a.fenceCtx)
	return a
}

// outcome is what a successful attempt reports.
type outcome struct {
	state    catalog.RunState
	manifest *catalog.Manifest
	progress catalog.Progress
}

// permanentError marks a failure that another attempt would meet again.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

// isPermanent reports whether err is not worth a retry: bad declarations,
// paths escaping a root, unknown systems, a missing source path. Anything
// else (I/O, the catalog, a source changing under us) is retried.
func isPermanent(err error) bool {
	var pe *permanentError
	var ve *catalog.ValidationError
	return errors.As(err, &pe) || errors.As(err, &ve) ||
		errors.Is(err, connector.ErrEscape) || errors.Is(err, connector.ErrInvalid) ||
		errors.Is(err, connector.ErrUnknownKind) || errors.Is(err, catalog.ErrNotFound)
}

func (w *Worker) runAttempt(a *attempt) {
	began := time.Now()
	a.log.Info("run started", slog.String("mapping", a.run.Mapping), slog.Int("mapping_version", a.run.MappingVersion))
	out, err := w.execute(a)
	w.finish(a, out, err, time.Since(began))
}

// finish records how the attempt ended, fenced by its token.
func (w *Worker) finish(a *attempt, out *outcome, err error, took time.Duration) {
	p := catalog.FinishParams{RunID: a.run.ID, FencingToken: a.run.FencingToken, Worker: w.cfg.NodeID}
	switch {
	case err == nil:
		p.State, p.Manifest, p.Progress = out.state, out.manifest, &out.progress
	case a.fenceCtx.Err() != nil:
		switch cause := context.Cause(a.fenceCtx); cause {
		case errLeaseLost:
			a.log.Warn("attempt abandoned: lease lost; nothing committed")
			w.metrics.leaseLost()
			w.event(a, "abandoned", "worker %s abandoned attempt %d: its lease was lost; nothing committed", w.cfg.NodeID, a.run.Attempt)
			return
		case errUnreachable:
			a.log.Warn("attempt stopped: catalog unreachable; nothing committed; will hand it back")
			w.deferFinish(catalog.FinishParams{RunID: a.run.ID, FencingToken: a.run.FencingToken, Worker: w.cfg.NodeID,
				State: catalog.StateFailed, Retryable: true,
				Error: fmt.Sprintf("worker %s lost contact with the catalog during attempt %d; nothing committed", w.cfg.NodeID, a.run.Attempt)})
			return
		default: // errStopping
			p.State, p.Retryable = catalog.StateFailed, true
			p.Error = fmt.Sprintf("worker %s stopped during attempt %d; nothing committed", w.cfg.NodeID, a.run.Attempt)
		}
	case errors.Is(context.Cause(a.runCtx), errCanceled):
		p.State, p.Error = catalog.StateCanceled, "canceled by request during the copy; nothing committed"
	default:
		p.State, p.Error, p.Retryable = catalog.StateFailed, err.Error(), !isPermanent(err)
	}
	a.finishing.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.LeaseTTL/2)
	defer cancel()
	st, ferr := w.store.FinishRun(ctx, p)
	if ferr != nil {
		if errors.Is(ferr, catalog.ErrStaleLease) || errors.Is(ferr, catalog.ErrIllegalTransition) {
			a.log.Warn("finish refused: the attempt is no longer ours", slog.String("error", ferr.Error()))
		} else {
			a.log.Error("finish run; will record it when the catalog answers", slog.String("state", string(p.State)), slog.String("error", ferr.Error()))
			w.deferFinish(p)
		}
		return
	}
	w.metrics.finishedRun(&a.run, st, p.Manifest, p.Progress, took)
	attrs := []any{slog.String("state", string(st)), slog.Duration("took", took)}
	if p.Error != "" {
		attrs = append(attrs, slog.String("error", p.Error), slog.Bool("retryable", p.Retryable))
	}
	a.log.Info("run finished", attrs...)
}

// execute runs one attempt up to its commit and delivery manifest: a copy
// of files byte for byte, or, when the mapping is row-level, the row path.
func (w *Worker) execute(a *attempt) (*outcome, error) {
	ctx, r := a.runCtx, &a.run
	m, err := w.store.GetMappingVersion(ctx, r.Mapping, r.MappingVersion)
	if err != nil {
		return nil, fmt.Errorf("load mapping: %w", err)
	}
	srcSys, err := w.store.GetSystem(ctx, r.SourceSystem)
	if err != nil {
		return nil, fmt.Errorf("load source system: %w", err)
	}
	dstSys, err := w.store.GetSystem(ctx, r.TargetSystem)
	if err != nil {
		return nil, fmt.Errorf("load target system: %w", err)
	}
	if m.DataPath(srcSys.Kind, dstSys.Kind) == catalog.DataPathRows {
		return w.executeRows(a, m, srcSys, dstSys)
	}
	srcPath, err := catalog.ExpandPath("source.path", m.Source.V.Path, r.Params.V)
	if err != nil {
		return nil, permanent(fmt.Errorf("expand source path: %w", err))
	}
	dstPath, err := catalog.ExpandPath("target.path", m.Target.V.Path, r.Params.V)
	if err != nil {
		return nil, permanent(fmt.Errorf("expand target path: %w", err))
	}
	srcConn, err := w.conns.Open(ctx, spec(srcSys))
	if err != nil {
		return nil, err
	}
	defer srcConn.Close()
	dstConn, err := w.conns.Open(ctx, spec(dstSys))
	if err != nil {
		return nil, err
	}
	defer dstConn.Close()
	src, ok := srcConn.(connector.FileSource)
	if !ok {
		return nil, permanent(fmt.Errorf("system %s of kind %s cannot be read as files", srcSys.Name, srcSys.Kind))
	}
	dst, ok := dstConn.(connector.FileTarget)
	if !ok {
		return nil, permanent(fmt.Errorf("system %s of kind %s cannot receive files", dstSys.Name, dstSys.Kind))
	}

	files, err := src.ListFiles(ctx, srcPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, permanent(fmt.Errorf("source path %q does not exist in system %s: %w", srcPath, srcSys.Name, err))
	}
	if err != nil {
		return nil, fmt.Errorf("list source: %w", err)
	}
	plan, parts := w.plan(a, srcSys, dstSys, srcPath, dstPath, files)
	tasks := make([]catalog.RunTask, len(parts))
	for i, part := range parts {
		names := make([]string, len(part))
		var bytes int64
		for j, f := range part {
			names[j], bytes = f.Rel, bytes+f.Size
		}
		tasks[i] = catalog.RunTask{Seq: i, Attempt: r.Attempt, Thread: i, Files: catalog.NewJSON(names), State: catalog.TaskPending,
			Progress: catalog.Progress{TasksTotal: 1, FilesTotal: int64(len(part)), BytesTotal: bytes}}
	}
	if err := w.store.SaveTasks(ctx, catalog.SaveTasksParams{RunID: r.ID, FencingToken: r.FencingToken, Plan: plan, Tasks: tasks}); err != nil {
		if errors.Is(err, catalog.ErrStaleLease) {
			a.fence(errLeaseLost)
		}
		return nil, fmt.Errorf("save plan: %w", err)
	}
	a.log.Info("planned", slog.Int("files", len(files)), slog.Int("parallelism", plan.Parallelism), slog.String("reason", plan.Reason))
	w.event(a, "planned", "%s:%s → %s:%s; %s", srcSys.Name, srcPath, dstSys.Name, dstPath, plan.Reason)

	if len(files) == 0 {
		if err := w.confirmLease(a); err != nil {
			return nil, err
		}
		return w.deliver(a, dst, dstSys, dstPath, catalog.StateEmpty, nil, catalog.Progress{})
	}

	stage, err := dst.Stage(ctx, r.ID, r.Attempt)
	if err != nil {
		return nil, fmt.Errorf("prepare staging: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			if err := stage.Discard(); err != nil {
				a.log.Warn("discard staging", slog.String("error", err.Error()))
			}
		}
	}()
	prog := newProgress(tasks)
	began := time.Now()
	delivered, err := w.copyAll(a, src, stage, parts, prog)
	if err != nil {
		return nil, err
	}
	if err := w.flush(a, prog); err != nil {
		return nil, err
	}
	if err := w.confirmLease(a); err != nil {
		return nil, err
	}
	rels := make([]string, len(delivered))
	for i, f := range delivered {
		rels[i] = f.Path
	}
	// Under fenceCtx: a cancellation requested now comes too late to undo a
	// commit in progress, but a lost lease still stops it between files.
	if err := stage.Commit(a.fenceCtx, dstPath, rels); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	committed = true
	total := prog.total()
	took := time.Since(began)
	a.log.Info("committed", slog.Int64("files", total.FilesDone), slog.Int64("bytes", total.BytesDone), slog.Duration("took", took))
	w.event(a, "committed", "committed %d files, %s to %s:%s in %s (%s/s)", total.FilesDone, humanBytes(total.BytesDone),
		dstSys.Name, dstPath, took.Round(time.Millisecond), humanBytes(int64(float64(total.BytesDone)/max(took.Seconds(), 1e-3))))
	return w.deliver(a, dst, dstSys, dstPath, catalog.StateSucceeded, delivered, total)
}

func spec(sys *catalog.System) connector.System {
	return connector.System{Name: sys.Name, Kind: sys.Kind, Settings: sys.Settings.V, Secrets: sys.Secrets.V}
}

// plan completes the run's execution plan with this attempt's partitioning.
func (w *Worker) plan(a *attempt, srcSys, dstSys *catalog.System, srcPath, dstPath string, files []connector.File) (*catalog.Plan, [][]connector.File) {
	r := &a.run
	var p catalog.Plan
	if r.Plan.V != nil {
		p = *r.Plan.V
	} else {
		p = catalog.Plan{SchemaVersion: catalog.PlanSchemaVersion, RunID: r.ID, Mapping: r.Mapping, MappingVersion: r.MappingVersion,
			Params: r.Params.V, Worker: w.cfg.NodeID, CreatedAt: time.Now().UTC()}
	}
	p.Source = catalog.PlanEndpoint{System: srcSys.Name, Kind: srcSys.Kind, Path: srcPath}
	p.Target = catalog.PlanEndpoint{System: dstSys.Name, Kind: dstSys.Kind, Path: dstPath}
	p.Attempt = r.Attempt
	var bytes int64
	for _, f := range files {
		bytes += f.Size
	}
	p.Parallelism, p.Reason = decideParallelism(w.cfg.Threads, p.MaxThreads, len(files), bytes)
	parts := deal(files, p.Parallelism)
	p.Partitions = make([]catalog.PlanPartition, len(parts))
	for i, part := range parts {
		pp := catalog.PlanPartition{Seq: i, Thread: i, Files: len(part)}
		for _, f := range part {
			pp.Bytes += f.Size
		}
		p.Partitions[i] = pp
	}
	return &p, parts
}

// copyAll copies every partition on its own thread into stage and returns
// the delivered files sorted by path. The first failure stops the others.
func (w *Worker) copyAll(a *attempt, src connector.FileSource, stage connector.Stage, parts [][]connector.File, prog *progress) ([]catalog.ManifestFile, error) {
	ctx, stop := context.WithCancelCause(a.runCtx)
	defer stop(nil)
	flushCtx, stopFlush := context.WithCancel(context.Background())
	var flusher sync.WaitGroup
	flusher.Go(func() { w.flushLoop(flushCtx, a, prog) })
	defer func() { stopFlush(); flusher.Wait() }()

	results := make([][]catalog.ManifestFile, len(parts))
	var threads sync.WaitGroup
	for t, part := range parts {
		threads.Go(func() {
			prog.setState(t, taskActive)
			for _, f := range part {
				if ctx.Err() != nil {
					return
				}
				mf, err := copyFile(ctx, src, stage, f, func(n int64) { prog.addBytes(t, n) })
				if err != nil {
					prog.setState(t, taskFailed)
					stop(err)
					return
				}
				prog.fileDone(t)
				results[t] = append(results[t], mf)
			}
			prog.setState(t, taskDone)
		})
	}
	threads.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	var out []catalog.ManifestFile
	for _, r := range results {
		out = append(out, r...)
	}
	slices.SortFunc(out, func(x, y catalog.ManifestFile) int { return strings.Compare(x.Path, y.Path) })
	return out, nil
}

func copyFile(ctx context.Context, src connector.FileSource, stage connector.Stage, f connector.File, progress func(int64)) (catalog.ManifestFile, error) {
	rc, err := src.OpenFile(ctx, f.Path)
	if err != nil {
		return catalog.ManifestFile{}, fmt.Errorf("copy %s: %w", f.Path, err)
	}
	defer rc.Close()
	wr, err := stage.Put(ctx, f.Rel, rc, progress)
	if err != nil {
		return catalog.ManifestFile{}, fmt.Errorf("copy %s: %w", f.Path, err)
	}
	if wr.Size != f.Size {
		// The source changed while we read it; a retry lists it afresh.
		return catalog.ManifestFile{}, fmt.Errorf("copy %s: the file changed during the copy: listed %d bytes, read %d", f.Path, f.Size, wr.Size)
	}
	return catalog.ManifestFile{Path: f.Rel, Size: wr.Size, SHA256: wr.SHA256}, nil
}

// confirmLease renews this attempt's lease once more before it commits, and
// refuses when the lease is lost, the run canceled or the catalog silent.
func (w *Worker) confirmLease(a *attempt) error {
	if a.runCtx.Err() != nil {
		return context.Cause(a.runCtx)
	}
	ctx, cancel := context.WithTimeout(a.runCtx, w.cfg.LeaseTTL/4)
	defer cancel()
	res, err := w.store.RenewLeases(ctx, []catalog.RunLease{{RunID: a.run.ID, FencingToken: a.run.FencingToken}}, w.cfg.LeaseTTL)
	if err != nil {
		if a.runCtx.Err() != nil {
			return context.Cause(a.runCtx)
		}
		return fmt.Errorf("renew lease before commit: %w", err)
	}
	if slices.Contains(res.Lost, a.run.ID) {
		a.fence(errLeaseLost)
		return errLeaseLost
	}
	if slices.Contains(res.Cancel, a.run.ID) {
		a.cancel(errCanceled)
		return errCanceled
	}
	return a.runCtx.Err()
}

// deliver writes the delivery manifest, the last thing an attempt writes at the target.
func (w *Worker) deliver(a *attempt, dst connector.FileTarget, dstSys *catalog.System, dstPath string, state catalog.RunState, files []catalog.ManifestFile, total catalog.Progress) (*outcome, error) {
	r := &a.run
	man := &catalog.Manifest{
		SchemaVersion: catalog.ManifestSchemaVersion, RunID: r.ID, Mapping: r.Mapping, MappingVersion: r.MappingVersion,
		Params: r.Params.V, Attempt: r.Attempt, State: state,
		Target:     catalog.PlanEndpoint{System: dstSys.Name, Kind: dstSys.Kind, Path: dstPath},
		FinishedAt: time.Now().UTC(), Files: files, TotalFiles: total.FilesDone, TotalBytes: total.BytesDone, TotalRows: total.Rows,
	}
	if r.StartedAt != nil {
		man.StartedAt = r.StartedAt.UTC()
	}
	if man.Files == nil {
		man.Files = []catalog.ManifestFile{}
	}
	if man.Params == nil {
		man.Params = map[string]string{}
	}
	data, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	if err := dst.WriteManifest(a.fenceCtx, dstPath, append(data, '\n')); err != nil {
		return nil, fmt.Errorf("write manifest: %w", err)
	}
	return &outcome{state: state, manifest: man, progress: total}, nil
}

// event appends a line to the run's log; a failure is logged, not fatal.
func (w *Worker) event(a *attempt, kind, format string, args ...any) {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.LeaseTTL/4)
	defer cancel()
	err := w.store.AddEvent(ctx, &catalog.RunEvent{RunID: a.run.ID, Attempt: a.run.Attempt, Kind: kind, Node: w.cfg.NodeID,
		Message: fmt.Sprintf(format, args...)})
	if err != nil {
		a.log.Warn("record run event", slog.String("kind", kind), slog.String("error", err.Error()))
	}
}
