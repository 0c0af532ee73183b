package worker

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"
	"unicode/utf8"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
)

// badRowsError stops a run for its bad rows: the first one under the fail
// policy, or one too many under the reject policy.
type badRowsError struct {
	row *connector.RowError
	msg string
}

func (e *badRowsError) Error() string { return e.msg }

// rejects applies a mapping's bad-row policy. Under BadRowsReject it
// spools each bad row as a JSON line into a local temporary file, which
// writeRejects delivers as the run's reject file; it is safe for
// concurrent use by the run's threads.
type rejects struct {
	policy string
	max    int64
	dir    string
	system string // where the reject file went, for messages

	mu    sync.Mutex
	n     int64
	first *connector.RowError
	f     *os.File
	bw    *bufio.Writer
	err   error // sticky spool failure
}

func newRejects(policy string, max int64, dir string) *rejects {
	return &rejects{policy: policy, max: max, dir: dir}
}

// rejectRecord is one line of a reject file.
type rejectRecord struct {
	Loc    string `json:"loc"`
	Reason string `json:"reason"`
	// Raw is the raw record when it is UTF-8 text; RawBase64 otherwise.
	Raw       *string `json:"raw,omitempty"`
	RawBase64 []byte  `json:"raw_base64,omitempty"`
}

// add takes one bad row: under the fail policy it fails the run; under the
// reject policy it sets the row aside, and fails the run once more than
// max rows were set aside (max 0: no limit).
func (r *rejects) add(e *connector.RowError) error {
	if r.policy != catalog.BadRowsReject {
		return &badRowsError{row: e, msg: fmt.Sprintf("bad row at %s: %s (bad_rows policy fail)", e.Loc, e.Reason)}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	if r.f == nil {
		f, err := os.CreateTemp(r.dir, "weir-rejects-*.jsonl")
		if err != nil {
			r.err = fmt.Errorf("spool rejected rows: %w", err)
			return r.err
		}
		r.f, r.bw = f, bufio.NewWriterSize(f, 256<<10)
	}
	rec := rejectRecord{Loc: e.Loc, Reason: e.Reason}
	if e.Raw != nil {
		if utf8.Valid(e.Raw) {
			s := string(e.Raw)
			rec.Raw = &s
		} else {
			rec.RawBase64 = e.Raw
		}
	}
	line, err := json.Marshal(rec)
	if err == nil {
		_, err = r.bw.Write(append(line, '\n'))
	}
	if err != nil {
		r.err = fmt.Errorf("spool rejected rows: %w", err)
		return r.err
	}
	r.n++
	if r.first == nil {
		r.first = e
	}
	if r.max > 0 && r.n > r.max {
		return &badRowsError{row: e, msg: fmt.Sprintf("%d rows rejected, more than bad_rows.max_rejects (%d); the last at %s: %s",
			r.n, r.max, e.Loc, e.Reason)}
	}
	return nil
}

func (r *rejects) count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *rejects) firstError() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first == nil {
		return ""
	}
	return r.first.Error()
}

// spooled returns the spooled reject lines from their start.
func (r *rejects) spooled() (io.Reader, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil, errors.New("no rejected rows")
	}
	if err := r.bw.Flush(); err != nil {
		return nil, err
	}
	if _, err := r.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return r.f, nil
}

// close removes the spool file.
func (r *rejects) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f != nil {
		r.f.Close()
		os.Remove(r.f.Name())
		r.f = nil
	}
}

// rejectSystem returns the file system that takes a mapping's reject file:
// the declared one, else the target when it is a file system, else the source.
func rejectSystem(m *catalog.Mapping, srcSys, dstSys *catalog.System) (string, error) {
	switch {
	case m.BadRows.V.RejectSystem != "":
		return m.BadRows.V.RejectSystem, nil
	case dstSys.Kind == catalog.KindFS:
		return dstSys.Name, nil
	case srcSys.Kind == catalog.KindFS:
		return srcSys.Name, nil
	}
	return "", catalog.Invalid("bad_rows.reject_system", "the reject policy writes a reject file, and neither %s (%s) nor %s (%s) is a file system: name one",
		srcSys.Name, srcSys.Kind, dstSys.Name, dstSys.Kind)
}

// writeRejects delivers the run's reject file, <run_id>.jsonl in the
// mapping's reject path (RejectPathDefault) of its reject system, staged
// and renamed into place like any delivered file.
func (w *Worker) writeRejects(a *attempt, job *rowJob) (*catalog.ManifestFile, error) {
	ctx, r := a.runCtx, &a.run
	name, err := rejectSystem(job.m, job.srcSys, job.dstSys)
	if err != nil {
		return nil, permanent(err)
	}
	sys, err := w.store.GetSystem(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("load reject system %s: %w", name, err)
	}
	conn, err := w.conns.Open(ctx, spec(sys))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ft, ok := conn.(connector.FileTarget)
	if !ok || sys.Kind != catalog.KindFS {
		return nil, permanent(catalog.Invalid("bad_rows.reject_system", "system %s of kind %s cannot hold a reject file: name a file system", sys.Name, sys.Kind))
	}
	dir := job.m.BadRows.V.RejectPath
	if dir == "" {
		dir = RejectPathDefault
	}
	if dir, err = catalog.CleanRelPath("bad_rows.reject_path", dir); err != nil {
		return nil, permanent(err)
	}
	src, err := job.rej.spooled()
	if err != nil {
		return nil, fmt.Errorf("read spooled rejects: %w", err)
	}
	stage, err := ft.Stage(ctx, r.ID+".rejects", r.Attempt)
	if err != nil {
		return nil, fmt.Errorf("stage reject file: %w", err)
	}
	file := r.ID + ".jsonl"
	wr, err := stage.Put(ctx, file, src, nil)
	if err == nil {
		err = stage.Commit(a.fenceCtx, dir, []string{file})
	}
	if err != nil {
		_ = stage.Discard()
		return nil, fmt.Errorf("write reject file: %w", err)
	}
	job.rej.system = sys.Name
	return &catalog.ManifestFile{Path: path.Join(dir, file), Size: wr.Size, SHA256: wr.SHA256, Rows: job.rej.count()}, nil
}
