package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
	"github.com/weirdata/weir/transform"
)

// The row path. A run takes it when either side is not a raw file copy
// (catalog.Mapping.DataPath): a database on either side, a format, fields,
// a filter, a watermark... An attempt:
//
//  1. resolves both datasets, describes the source, compiles the mapping
//     once (a projection of source fields needs no program at all) and
//     checks that the target takes the output schema;
//  2. finds the run's commit marker at the target when an earlier attempt
//     committed: then nothing is loaded again and the run succeeds;
//  3. for an incremental mapping, reads the last committed watermark from
//     the target and the source's greatest one BEFORE reading, so that the
//     rows read are those in (last, max], rows beyond max left to the next
//     run;
//  4. asks the source for at most as many partitions as threads allow
//     (rowThreads), saves the plan and one task per partition, and runs
//     one pipeline per thread: read -> filter/map -> write, the stages
//     joined by a bounded queue, batches reused;
//  5. sets bad rows aside by the mapping's policy (fail, or reject into a
//     reject file up to max_rejects);
//  6. confirms its lease and commits the load once, with the watermark;
//  7. counts the rows at the target and compares them with the rows
//     written, then writes the delivery manifest.

// Steps of a row run's plan.
const (
	StepDescribe = "describe"
	StepRead     = "read"
	StepFilter   = "filter"
	StepMap      = "map"
	StepWrite    = "write"
	StepCommit   = "commit"
	StepCount    = "count"
	StepManifest = "manifest"
)

// RejectPathDefault is the directory, at the reject system's root, of
// reject files (<run_id>.jsonl).
const RejectPathDefault = "_weir_rejects"

// rowJob is what an attempt's row run needs, prepared before data moves.
type rowJob struct {
	m              *catalog.Mapping
	srcSys, dstSys *catalog.System
	src            connector.RowSource
	dst            connector.RowTarget
	dstConn        connector.Conn
	srcDS, dstDS   connector.Dataset
	schema         connector.Schema // the source's
	out            connector.Schema // the target's: the mapping's fields
	prog           *transform.Program
	proj           []int // without prog: output field i is source field proj[i]
	filter         bool
	bound          *bound
	wm             *catalog.ManifestWatermark
	rej            *rejects
	counts         *rowCounts
}

// executeRows runs one attempt of a row run.
func (w *Worker) executeRows(a *attempt, m *catalog.Mapping, srcSys, dstSys *catalog.System) (*outcome, error) {
	ctx, r := a.runCtx, &a.run
	job := &rowJob{m: m, srcSys: srcSys, dstSys: dstSys, counts: &rowCounts{}}
	var err error
	if job.srcDS, err = dataset("source", m.Source.V, srcSys, r.Params.V); err != nil {
		return nil, permanent(err)
	}
	if job.dstDS, err = dataset("target", m.Target.V, dstSys, r.Params.V); err != nil {
		return nil, permanent(err)
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
	var ok bool
	if job.src, ok = srcConn.(connector.RowSource); !ok {
		return nil, permanent(fmt.Errorf("system %s of kind %s cannot be read as rows", srcSys.Name, srcSys.Kind))
	}
	if job.dst, ok = dstConn.(connector.RowTarget); !ok {
		return nil, permanent(fmt.Errorf("system %s of kind %s cannot be loaded with rows", dstSys.Name, dstSys.Kind))
	}
	job.dstConn = dstConn

	if job.schema, err = job.src.Describe(ctx, job.srcDS); err != nil {
		return nil, classify(fmt.Errorf("describe source %s: %w", describe(srcSys, job.srcDS), err))
	}
	if err := w.compile(ctx, a, job); err != nil {
		return nil, err
	}
	if err := job.dst.Check(ctx, job.dstDS, job.out); err != nil {
		return nil, classify(fmt.Errorf("check target %s: %w", describe(dstSys, job.dstDS), err))
	}
	// Exactly once: a retried attempt after a commit loads nothing again.
	if done, err := job.dst.Committed(ctx, r.ID); err != nil {
		return nil, fmt.Errorf("look up the run's commit marker at %s: %w", dstSys.Name, err)
	} else if done {
		return w.alreadyDelivered(a, job, "its commit marker was found before reading")
	}
	if col := m.WatermarkColumn; col != "" {
		last, _, err := job.dst.LastWatermark(ctx, m.Name)
		if err != nil {
			return nil, fmt.Errorf("read the last watermark at %s: %w", dstSys.Name, err)
		}
		job.srcDS.Watermark = &connector.Watermark{Column: col, After: last}
		top, err := job.src.MaxWatermark(ctx, job.srcDS, col)
		if err != nil {
			return nil, classify(fmt.Errorf("read the greatest %s at the source: %w", col, err))
		}
		job.wm = &catalog.ManifestWatermark{Column: col, From: last, To: top}
		if top == "" {
			job.wm.To = last // nothing new: the watermark stays
		}
		if job.bound, err = newBound(job.schema, col, top); err != nil {
			return nil, permanent(err)
		}
	}
	spool := w.cfg.SpoolDir
	job.rej = newRejects(m.Policy(), m.BadRows.V.MaxRejects, spool)
	defer job.rej.close()

	// Counted before the load: an append or upsert adds to what is there.
	var before *int64
	if countable(dstSys.Kind) && m.Mode() != catalog.WriteTruncateInsert && job.dstDS.Table != "" {
		n, _, err := w.countTable(ctx, dstSys, job.dstDS.Table)
		if err != nil {
			return nil, fmt.Errorf("count the target's rows before the load: %w", err)
		}
		before = &n
	}

	limit, why := w.rowLimit(a)
	parts, err := job.src.Partitions(ctx, job.srcDS, limit)
	if err != nil {
		return nil, classify(fmt.Errorf("split source %s into partitions: %w", describe(srcSys, job.srcDS), err))
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("split source %s: the connector returned no partition", describe(srcSys, job.srcDS))
	}
	plan, tasks, est := w.rowPlan(a, job, parts, why)
	if err := w.store.SaveTasks(ctx, catalog.SaveTasksParams{RunID: r.ID, FencingToken: r.FencingToken, Plan: plan, Tasks: tasks}); err != nil {
		if errors.Is(err, catalog.ErrStaleLease) {
			a.fence(errLeaseLost)
		}
		return nil, fmt.Errorf("save plan: %w", err)
	}
	a.log.Info("planned", slog.Int("partitions", len(parts)), slog.Int("parallelism", plan.Parallelism), slog.String("reason", plan.Reason))
	w.event(a, "planned", "%s → %s; %s; steps %s", describe(srcSys, job.srcDS), describe(dstSys, job.dstDS), plan.Reason, strings.Join(plan.Steps, ", "))

	load, err := job.dst.Begin(ctx, connector.LoadSpec{RunID: r.ID, Attempt: r.Attempt, Mapping: m.Name, Dataset: job.dstDS,
		Schema: job.out, Mode: connector.WriteMode(m.Mode()), Key: m.WriteKey.V, Watermark: newWatermark(job.wm)})
	if err != nil {
		return nil, classify(fmt.Errorf("begin the load into %s: %w", describe(dstSys, job.dstDS), err))
	}
	committed := false
	defer func() {
		if !committed {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.LeaseTTL/2)
			defer cancel()
			if err := load.Abort(actx); err != nil {
				a.log.Warn("abort the load", slog.String("error", err.Error()))
			}
		}
	}()
	prog := newRowProgress(tasks, est)
	began := time.Now()
	if err := w.moveRows(a, job, load, parts, prog); err != nil {
		return nil, err
	}
	if err := w.flush(a, prog); err != nil {
		return nil, err
	}
	var rejectFile *catalog.ManifestFile
	if job.rej.count() > 0 {
		if rejectFile, err = w.writeRejects(a, job); err != nil {
			return nil, err
		}
		w.event(a, "rejected", "%s set aside in %s:%s; the first: %s", plural(int(job.rej.count()), "row"),
			job.rej.system, rejectFile.Path, job.rej.firstError())
	}
	if err := w.confirmLease(a); err != nil {
		return nil, err
	}
	// Under fenceCtx: a cancellation requested now comes too late to undo
	// a commit in progress, but a lost lease still stops it.
	cm, err := load.Commit(a.fenceCtx)
	if errors.Is(err, connector.ErrAlreadyCommitted) {
		committed = true
		return w.alreadyDelivered(a, job, "its commit marker appeared during this attempt")
	}
	if err != nil {
		return nil, classify(fmt.Errorf("commit the load into %s: %w", describe(dstSys, job.dstDS), err))
	}
	committed = true
	took := time.Since(began)
	written := job.counts.written.Load()
	a.log.Info("committed", slog.Int64("rows", cm.Rows), slog.Duration("took", took))
	w.event(a, "committed", "committed %d rows to %s in %s (%.0f rows/s)%s", cm.Rows, describe(dstSys, job.dstDS),
		took.Round(time.Millisecond), float64(cm.Rows)/max(took.Seconds(), 1e-3), watermarkNote(job.wm))
	if cm.Rows != written {
		return nil, permanent(fmt.Errorf("the target committed %d rows, the pipelines wrote %d", cm.Rows, written))
	}
	counts := job.counts.manifest(job.rej.count())
	if err := w.countTarget(a, job, cm, before, counts); err != nil {
		return nil, err
	}
	w.countSource(a, job, counts)
	state := catalog.StateSucceeded
	if written == 0 {
		state = catalog.StateEmpty
	}
	man := w.rowManifest(a, job, state, cm, counts, rejectFile)
	total := prog.total()
	total.Rows = written
	return w.deliverRows(a, job, man, total)
}

// alreadyDelivered ends an attempt that found the run committed at the
// target by an earlier attempt: it succeeds without loading, recording the
// target's count when it can take one.
func (w *Worker) alreadyDelivered(a *attempt, job *rowJob, how string) (*outcome, error) {
	a.log.Info("already delivered by an earlier attempt; nothing loaded again", slog.String("how", how))
	w.event(a, "already-delivered", "the run was committed at %s by an earlier attempt (%s): nothing loaded again",
		describe(job.dstSys, job.dstDS), how)
	counts := &catalog.ManifestCounts{Check: "not compared: the rows were delivered by an earlier attempt, whose counts died with it"}
	if countable(job.dstSys.Kind) && job.dstDS.Table != "" {
		n, method, err := w.countTable(a.runCtx, job.dstSys, job.dstDS.Table)
		if err != nil {
			return nil, fmt.Errorf("count the target's rows: %w", err)
		}
		counts.TargetRows, counts.TargetMethod = &n, method
	}
	man := w.rowManifest(a, job, catalog.StateSucceeded, connector.Commit{}, counts, nil)
	man.AlreadyCommitted = true
	man.Watermark = nil
	return w.deliverRows(a, job, man, catalog.Progress{})
}

// dataset resolves one side of a mapping into a connector dataset: a file
// system's path expanded with the run's parameters, a database's table or
// query as declared.
func dataset(side string, ep catalog.Endpoint, sys *catalog.System, params map[string]string) (connector.Dataset, error) {
	ds := connector.Dataset{Table: ep.Table, Query: ep.Query, Format: ep.Format, Options: ep.Options, Schema: schemaOf(ep.Schema)}
	switch sys.Kind {
	case catalog.KindFS, catalog.KindNull:
		if ep.Table != "" || ep.Query != "" {
			return ds, catalog.Invalid(side, "system %s of kind %s holds files: give %s.path, not a table or query", sys.Name, sys.Kind, side)
		}
		p, err := catalog.ExpandPath(side+".path", ep.Path, params)
		if err != nil {
			return ds, err
		}
		ds.Path = p
	default:
		if ep.Path != "" || ep.Format != "" {
			return ds, catalog.Invalid(side, "system %s of kind %s holds tables: give %s.table (or a source's query), not a path or format", sys.Name, sys.Kind, side)
		}
		if ep.Table == "" && ep.Query == "" {
			return ds, catalog.Invalid(side+".table", "system %s of kind %s needs a table to %s", sys.Name, sys.Kind, map[bool]string{true: "read", false: "load"}[side == "source"])
		}
	}
	return ds, nil
}

// describe names a side of a run for messages: system:path or system:table.
func describe(sys *catalog.System, ds connector.Dataset) string {
	switch {
	case ds.Table != "":
		return sys.Name + ":" + ds.Table
	case ds.Query != "":
		q := strings.Join(strings.Fields(ds.Query), " ")
		if len(q) > 60 {
			q = q[:57] + "..."
		}
		return fmt.Sprintf("%s:(%s)", sys.Name, q)
	}
	return sys.Name + ":" + ds.Path
}

// classify marks a connector error permanent when another attempt would
// meet it again: invalid declarations, a missing table or file, something
// unsupported, a path escaping its root.
func classify(err error) error {
	if errors.Is(err, connector.ErrInvalid) || errors.Is(err, iofs.ErrNotExist) || errors.Is(err, errors.ErrUnsupported) ||
		errors.Is(err, connector.ErrEscape) {
		return permanent(err)
	}
	return err
}

// countable tells whether a system of kind counts a table's rows.
func countable(kind string) bool {
	return kind == catalog.KindPostgres || kind == catalog.KindMySQL || kind == catalog.KindSQLite
}

func schemaOf(fs []catalog.SchemaField) connector.Schema {
	if len(fs) == 0 {
		return nil
	}
	out := make(connector.Schema, len(fs))
	for i, f := range fs {
		out[i] = connector.Field{Name: f.Name, Type: connector.FieldType(f.Type), Nullable: f.Nullable, Precision: f.Precision, Scale: f.Scale}
	}
	return out
}

func catalogFields(s connector.Schema) []catalog.SchemaField {
	out := make([]catalog.SchemaField, len(s))
	for i, f := range s {
		out[i] = catalog.SchemaField{Name: f.Name, Type: string(f.Type), Nullable: f.Nullable, Precision: f.Precision, Scale: f.Scale}
	}
	return out
}

// compile resolves the mapping's fields against the source's schema and
// compiles them once for the run: a projection of source fields (the
// fields as they are, reordered or renamed) needs no program.
func (w *Worker) compile(ctx context.Context, a *attempt, job *rowJob) error {
	m := job.m
	fields, err := m.ResolveFields(catalogFields(job.schema))
	if err != nil {
		return permanent(fmt.Errorf("mapping %s v%d: %w", m.Name, m.Version, err))
	}
	byRef := make(map[string]int, len(job.schema))
	for i, f := range job.schema {
		byRef[catalog.FieldRef(f.Name)] = i
	}
	job.filter = m.Filter != ""
	if !job.filter {
		proj := make([]int, len(fields))
		out := make(connector.Schema, len(fields))
		for i, f := range fields {
			k, ok := byRef[strings.TrimSpace(f.Expr)]
			if !ok || string(job.schema[k].Type) != f.Type {
				proj = nil
				break
			}
			proj[i] = k
			out[i] = job.schema[k]
			out[i].Name = f.Name
		}
		if proj != nil {
			job.proj, job.out = proj, out
			return nil
		}
	}
	all, err := w.store.ListFunctions(ctx)
	if err != nil {
		return fmt.Errorf("load user functions: %w", err)
	}
	exprs := []string{m.Filter}
	for _, f := range fields {
		exprs = append(exprs, f.Expr)
	}
	loc, err := m.Location()
	if err != nil {
		return permanent(err)
	}
	spec := transform.Spec{Filter: m.Filter, Functions: transform.UsedFunctions(exprs, transformFunctions(all)), Tables: m.Tables.V, Location: loc,
		Params: a.run.Params.V, Now: a.run.CreatedAt}
	for _, f := range job.schema {
		spec.Source = append(spec.Source, transform.Field{Name: f.Name, Type: transform.Type(f.Type)})
	}
	for _, f := range fields {
		spec.Fields = append(spec.Fields, transform.FieldSpec{Name: f.Name, Type: transform.Type(f.Type), Expr: f.Expr})
	}
	prog, err := transform.Compile(spec)
	if err != nil {
		return permanent(fmt.Errorf("compile mapping %s v%d: %w", m.Name, m.Version, err))
	}
	job.prog = prog
	job.out = make(connector.Schema, len(fields))
	for i, f := range fields {
		job.out[i] = connector.Field{Name: f.Name, Type: connector.FieldType(f.Type), Nullable: true}
		if k, ok := byRef[strings.TrimSpace(f.Expr)]; ok && string(job.schema[k].Type) == f.Type {
			job.out[i] = job.schema[k]
			job.out[i].Name = f.Name
		}
	}
	return nil
}

// rowLimit returns the most partitions a row run asks its source for.
func (w *Worker) rowLimit(a *attempt) (int, string) {
	planMax := 0
	if a.run.Plan.V != nil {
		planMax = a.run.Plan.V.MaxThreads
	}
	lctx, cancel := context.WithTimeout(a.runCtx, time.Second)
	defer cancel()
	load1, cores, err := w.cfg.Load(lctx)
	if err != nil {
		a.log.Warn("read the node's load; deciding without it", slog.String("error", err.Error()))
		load1 = 0
	}
	return rowThreads(w.cfg.Threads, planMax, load1, cores, w.cfg.HighLoad)
}

// rowPlan completes the run's plan with the row path's steps and this
// attempt's partitions, one thread each, and returns the tasks to save and
// each partition's estimated rows.
func (w *Worker) rowPlan(a *attempt, job *rowJob, parts []connector.Partition, why string) (*catalog.Plan, []catalog.RunTask, []int64) {
	r := &a.run
	var p catalog.Plan
	if r.Plan.V != nil {
		p = *r.Plan.V
	} else {
		p = catalog.Plan{SchemaVersion: catalog.PlanSchemaVersion, RunID: r.ID, Mapping: r.Mapping, MappingVersion: r.MappingVersion,
			Params: r.Params.V, Worker: w.cfg.NodeID, CreatedAt: time.Now().UTC()}
	}
	p.Steps = []string{StepDescribe, StepRead}
	if job.filter {
		p.Steps = append(p.Steps, StepFilter)
	}
	if job.prog != nil {
		p.Steps = append(p.Steps, StepMap)
	}
	p.Steps = append(p.Steps, StepWrite, StepCommit, StepCount, StepManifest)
	p.Source = catalog.PlanEndpoint{System: job.srcSys.Name, Kind: job.srcSys.Kind, Path: job.srcDS.Path, Table: job.srcDS.Table}
	p.Target = catalog.PlanEndpoint{System: job.dstSys.Name, Kind: job.dstSys.Kind, Path: job.dstDS.Path, Table: job.dstDS.Table}
	p.Attempt = r.Attempt
	p.Parallelism = len(parts)
	var rows, bytes int64
	for _, pt := range parts {
		rows, bytes = rows+pt.EstRows, bytes+pt.EstBytes
	}
	p.Reason = fmt.Sprintf("%s for %s (about %d rows, %s): %s", plural(len(parts), "thread"), plural(len(parts), "partition"), rows, humanBytes(bytes), why)
	p.Partitions = make([]catalog.PlanPartition, len(parts))
	tasks := make([]catalog.RunTask, len(parts))
	est := make([]int64, len(parts))
	for i, pt := range parts {
		p.Partitions[i] = catalog.PlanPartition{Seq: i, Thread: i, Bytes: pt.EstBytes, Desc: pt.Desc, EstRows: pt.EstRows, Spec: pt.Spec}
		tasks[i] = catalog.RunTask{Seq: i, Attempt: r.Attempt, Thread: i, Files: catalog.NewJSON([]string{pt.Desc}), State: catalog.TaskPending,
			Progress: catalog.Progress{TasksTotal: 1, BytesTotal: pt.EstBytes}}
		est[i] = pt.EstRows
	}
	return &p, tasks, est
}

// newWatermark is the watermark a load commits: the new one when the run
// moves the watermark forward, none otherwise.
func newWatermark(wm *catalog.ManifestWatermark) string {
	if wm == nil || wm.To == wm.From {
		return ""
	}
	return wm.To
}

func watermarkNote(wm *catalog.ManifestWatermark) string {
	switch {
	case wm == nil:
		return ""
	case wm.To == wm.From:
		return fmt.Sprintf("; watermark %s stays at %q: nothing newer", wm.Column, wm.From)
	case wm.From == "":
		return fmt.Sprintf("; watermark %s now %q", wm.Column, wm.To)
	}
	return fmt.Sprintf("; watermark %s moved from %q to %q", wm.Column, wm.From, wm.To)
}

// rowManifest describes a row delivery.
func (w *Worker) rowManifest(a *attempt, job *rowJob, state catalog.RunState, cm connector.Commit, counts *catalog.ManifestCounts, rejectFile *catalog.ManifestFile) *catalog.Manifest {
	r := &a.run
	man := &catalog.Manifest{
		SchemaVersion: catalog.ManifestSchemaVersion, RunID: r.ID, Mapping: r.Mapping, MappingVersion: r.MappingVersion,
		Params: r.Params.V, Attempt: r.Attempt, State: state,
		Target:     catalog.PlanEndpoint{System: job.dstSys.Name, Kind: job.dstSys.Kind, Path: job.dstDS.Path, Table: job.dstDS.Table},
		Source:     &catalog.PlanEndpoint{System: job.srcSys.Name, Kind: job.srcSys.Kind, Path: job.srcDS.Path, Table: job.srcDS.Table},
		FinishedAt: time.Now().UTC(), Files: []catalog.ManifestFile{}, TotalRows: cm.Rows,
		Layout: layout(job), Rejects: counts.Rejected, RejectFile: rejectFile, Watermark: job.wm, Counts: counts,
	}
	if r.StartedAt != nil {
		man.StartedAt = r.StartedAt.UTC()
	}
	if man.Params == nil {
		man.Params = map[string]string{}
	}
	for _, f := range cm.Files {
		man.Files = append(man.Files, catalog.ManifestFile{Path: f.Path, Size: f.Size, SHA256: f.SHA256, Rows: f.Rows})
		man.TotalFiles++
		man.TotalBytes += f.Size
	}
	return man
}

// layout describes the delivered rows: fields, and for files how values are written.
func layout(job *rowJob) *catalog.ManifestLayout {
	l := &catalog.ManifestLayout{Fields: catalogFields(job.out), Table: job.dstDS.Table, WriteMode: job.m.Mode(), Key: job.m.WriteKey.V}
	if job.dstSys.Kind != catalog.KindFS || job.dstDS.Format == "" {
		return l
	}
	o, err := connector.ParseFormatOptions(job.dstDS.Format, job.dstDS.Options)
	if err != nil {
		return l
	}
	l.Format = o.Format
	l.Compression = o.Compression
	if !o.CompressionSet {
		l.Compression = "none"
		if o.Format == "parquet" {
			l.Compression = "snappy"
		}
	}
	if o.Format == "parquet" {
		l.NumberFormat = "Parquet physical types: int64, double, decimal as fixed-point with the field's scale"
		return l
	}
	l.NumberFormat = "decimal point '.', no grouping; floats in their shortest exact form; decimals as plain digits"
	l.DateFormat = o.DateLayout
	l.TimestampFormat = o.TimestampLayout
	if l.TimestampFormat == "" {
		l.TimestampFormat = time.RFC3339Nano
	}
	if o.Location != nil {
		l.Timezone = o.Location.String()
	}
	if o.Format == "csv" {
		h := o.Header
		l.Header = &h
		l.Delimiter = string(o.Delimiter)
		if o.Quote != 0 {
			l.Quote = string(o.Quote)
		}
		null := o.Null
		l.Null = &null
	}
	return l
}

// deliverRows writes the delivery manifest, last, into a file target's
// directory; a database target's manifest lives in the catalog only.
func (w *Worker) deliverRows(a *attempt, job *rowJob, man *catalog.Manifest, total catalog.Progress) (*outcome, error) {
	if ft, ok := job.dstConn.(connector.FileTarget); ok && job.dstSys.Kind == catalog.KindFS {
		data, err := json.MarshalIndent(man, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encode manifest: %w", err)
		}
		if err := ft.WriteManifest(a.fenceCtx, job.dstDS.Path, append(data, '\n')); err != nil {
			return nil, fmt.Errorf("write manifest: %w", err)
		}
	}
	return &outcome{state: man.State, manifest: man, progress: total}, nil
}

// transformFunctions gives user functions in transform's form.
func transformFunctions(all []catalog.Function) []transform.Function {
	out := make([]transform.Function, len(all))
	for i, f := range all {
		out[i] = transform.Function{Name: f.Name, Params: f.Params.V, Expr: f.Expr}
	}
	return out
}
