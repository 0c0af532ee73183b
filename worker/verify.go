package worker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
)

// countTarget counts, after the commit, the rows at the target for the
// run's selection and compares them with the rows written; it fills the
// target's side of counts. A mismatch fails the run for good (the data is
// committed: a retry would find the commit marker and succeed, hiding it).
//
//   - a file target: the rows of the files delivered, read back;
//   - a table loaded with truncate_insert: its rows, which must be the rows written;
//   - a table loaded with append: its rows now less its rows before the
//     load, which must be at least the rows written: fewer means rows were
//     lost; more means other writers appended meanwhile (another run into
//     the same table, say), which the manifest records. The commit marker
//     rules out this run's rows counting twice, and each database
//     connector checks in its commit transaction that it moved exactly the
//     rows staged;
//   - a table loaded with upsert: the rows added, which must lie between 0
//     and the rows written (a written row updates or adds one);
//   - a null target keeps nothing and is not counted.
func (w *Worker) countTarget(a *attempt, job *rowJob, cm connector.Commit, before *int64, c *catalog.ManifestCounts) error {
	ctx, kind := a.runCtx, job.dstSys.Kind
	written := c.Written
	switch {
	case kind == catalog.KindNull:
		c.Check = "not counted: a null target keeps nothing"
		return nil
	case kind == catalog.KindFS:
		n, method, ok, err := w.agentCountFiles(a, job, writtenPaths(cm.Files))
		if !ok {
			method = connector.CountedByScan
			n, err = w.countFiles(a, job, cm.Files)
		}
		if err != nil {
			return fmt.Errorf("count the delivered rows: %w", err)
		}
		c.TargetRows, c.TargetMethod = &n, method
		if n != written {
			c.Check = "mismatch"
			return permanent(fmt.Errorf("count mismatch: the %s delivered to %s hold %d rows, %d were written",
				plural(len(cm.Files), "file"), describe(job.dstSys, job.dstDS), n, written))
		}
		c.Check = fmt.Sprintf("ok: %d rows in the %s delivered", n, plural(len(cm.Files), "file"))
		return nil
	case job.dstDS.Table == "":
		c.Check = "not counted: the target has no table"
		return nil
	}
	label := describe(job.dstSys, job.dstDS)
	n, method, ok, err := w.agentCountRows(a, job.dstSys, AgentCount{Table: job.dstDS.Table}, label, countInstead)
	if !ok {
		n, method, err = w.countTable(ctx, job.dstSys, job.dstDS.Table)
	}
	if err != nil {
		return fmt.Errorf("count the target's rows after the commit: %w", err)
	}
	c.TargetBefore, c.TargetRows, c.TargetMethod = before, &n, method
	switch job.m.Mode() {
	case catalog.WriteTruncateInsert:
		if n != written {
			c.Check = "mismatch"
			return permanent(fmt.Errorf("count mismatch: %s holds %d rows after truncate_insert, %d were written", label, n, written))
		}
		c.Check = fmt.Sprintf("ok: %s holds the %d rows written", label, n)
	case catalog.WriteUpsert:
		added := n - *before
		if added < 0 || added > written {
			c.Check = "mismatch"
			return permanent(fmt.Errorf("count mismatch: %s went from %d to %d rows by an upsert of %d rows", label, *before, n, written))
		}
		c.Check = fmt.Sprintf("ok: %d rows added and %d updated in %s", added, written-added, label)
	default:
		switch grew := n - *before; {
		case grew < written:
			c.Check = "mismatch"
			return permanent(fmt.Errorf("count mismatch: %s went from %d to %d rows, %d were appended", label, *before, n, written))
		case grew > written:
			c.Check = fmt.Sprintf("ok: %s went from %d to %d rows: the %d appended by this run and %d by other writers meanwhile", label, *before, n, written, grew-written)
		default:
			c.Check = fmt.Sprintf("ok: %s went from %d to %d rows, the %d appended", label, *before, n, written)
		}
	}
	a.log.Info("target counted", slog.Int64("rows", n), slog.String("method", method), slog.String("check", c.Check))
	return nil
}

// countFiles reads back the delivered files, several at once, and counts
// their rows.
func (w *Worker) countFiles(a *attempt, job *rowJob, files []connector.Written) (int64, error) {
	var (
		mu    sync.Mutex
		total int64
		first error
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, max(1, w.cfg.Threads))
	for _, f := range files {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ds := connector.Dataset{Path: f.Path, Format: job.dstDS.Format, Options: readOptions(job.dstDS.Options)}
			if !headerNamesFields(job.dstDS) {
				ds.Schema = job.out
			}
			n, bad, _, err := connector.Count(a.runCtx, job.dstConn, job.dstSys.Kind, ds, 1)
			if err == nil && bad > 0 {
				err = fmt.Errorf("%s holds %d records that do not read back", f.Path, bad)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			total += n
		})
	}
	wg.Wait()
	return total, first
}

// writeOnly are format options that apply to writing only.
var writeOnly = map[string]bool{"row_group_rows": true, "timestamp_unit": true}

func readOptions(o map[string]string) map[string]string {
	out := make(map[string]string, len(o))
	for k, v := range o {
		if !writeOnly[k] {
			out[k] = v
		}
	}
	return out
}

// countTable counts a table's rows on a connection of its own, so that the
// count sees what is committed now (a connection that has read may hold a
// snapshot from before the load).
func (w *Worker) countTable(ctx context.Context, sys *catalog.System, table string) (int64, string, error) {
	conn, err := w.conns.Open(ctx, spec(sys))
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	n, _, method, err := connector.Count(ctx, conn, sys.Kind, connector.Dataset{Table: table}, 1)
	return n, method, err
}

// headerNamesFields tells whether delivered files can be counted without
// their schema: CSV with a header reads as text fields, which is all a
// count needs, and faster than decoding every value again.
func headerNamesFields(ds connector.Dataset) bool {
	if ds.Format != "csv" {
		return false
	}
	o, err := connector.ParseFormatOptions(ds.Format, ds.Options)
	return err == nil && o.Header
}

// writtenPaths are the paths of the files a load delivered.
func writtenPaths(files []connector.Written) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.Path
	}
	return out
}
