package fs

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/weirdata/weir/connector/format"
	"github.com/weirdata/weir/connector/spi"
)

// Rows into files (spi.RowTarget), exactly once per run.
//
// A dataset's Path is the directory the files land in; its Format (csv,
// jsonl, parquet) is required, and option "compression" compresses text
// files (none by default; Parquet: its page codec, Snappy by default).
//
// Each thread writes its rows to its own part file in the attempt's staging
// area, <root>/.weir-staging/<run_id>/<attempt>/: part-<thread><ext> (with
// ModeAppend, part-<run_id>-<thread><ext>, so that a run never replaces the
// files of an earlier one). A load that wrote no row delivers one empty
// part (a CSV header, an empty Parquet file), so that its consumers find
// the schema. ModeUpsert is refused: files have no key.
//
// Commit, in this order, each step durable (fsync) before the next:
//
//  1. the run's marker <root>/.weir-commits/<run_id> exists: ErrAlreadyCommitted,
//     nothing changes;
//  2. the part files are completed (flushed, compressed, synced), hashed;
//  3. an intent file .weir-commits/<run_id>.pending lists the files about to
//     be delivered; it is created exclusively, so two attempts cannot
//     commit at once, and one left by a dead attempt is rolled back first
//     (the files it lists are removed);
//  4. the parts are renamed into Path, replacing files of the same name;
//     with ModeTruncateInsert, other files named part-* in Path are removed;
//  5. the marker is written (a temporary file linked to its name, so it
//     appears whole and only once): this is the commit point, holding the
//     files with sizes and SHA-256, the rows, the mapping and the watermark;
//  6. the intent file and the staging area are removed.
//
// The worker writes the delivery manifest after Commit returns: the
// manifest is last. A crash before step 5 leaves no marker, so the run is
// not committed and a retry delivers again (replacing what a dead attempt
// renamed, removing what it renamed that the retry does not); a crash after
// it leaves a committed run that no retry can commit twice.
//
// LastWatermark reads the markers of a mapping and returns the watermark
// of the last one committed with a watermark.

// partPattern matches the part files a load writes.
var partPattern = regexp.MustCompile(`^part-[0-9]+(-[0-9]+)?\.[a-z]+(\.gz|\.zst)?$`)

// marker is the content of a commit marker (and of an intent file).
type marker struct {
	RunID       string            `json:"run_id"`
	Attempt     int               `json:"attempt"`
	Mapping     string            `json:"mapping,omitempty"`
	Watermark   string            `json:"watermark,omitempty"`
	Path        string            `json:"path"`
	Format      string            `json:"format"`
	Rows        int64             `json:"rows"`
	Files       []markerFile      `json:"files"`
	CommittedAt time.Time         `json:"committed_at,omitzero"`
	Options     map[string]string `json:"options,omitempty"`
}

type markerFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Rows   int64  `json:"rows"`
}

// Check verifies that rows of schema can be written to the dataset: the
// format and options are known, the schema can be written in that format,
// and the path is, or can be made, a writable directory. It writes nothing
// that stays.
func (c *Conn) Check(ctx context.Context, ds spi.Dataset, schema spi.Schema) error {
	o, dir, err := c.targetOptions("check", ds)
	if err != nil {
		return err
	}
	if err := c.checkWriter(dir, schema, o); err != nil {
		return err
	}
	// The nearest existing directory on the path must be writable.
	d := dir
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := c.root.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return c.fail("check", d, fmt.Errorf("%w: not a directory", spi.ErrInvalid))
			}
			break
		}
		if !errors.Is(err, iofs.ErrNotExist) {
			return c.fail("check", d, err)
		}
		if d == "." {
			return c.fail("check", d, err)
		}
		d = path.Dir(d)
	}
	probe := path.Join(d, spi.ManifestTempPrefix+"check-"+randomHex()+".tmp")
	f, err := c.root.OpenFile(probe, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return c.fail("check", d, fmt.Errorf("not writable: %w", err))
	}
	f.Close()
	if err := c.root.Remove(probe); err != nil {
		return c.fail("check", probe, err)
	}
	return nil
}

// targetOptions parses a target dataset's options and path.
func (c *Conn) targetOptions(op string, ds spi.Dataset) (format.Options, string, error) {
	o, err := format.ParseOptions(ds.Format, ds.Options)
	if err != nil {
		return o, "", c.fail(op, ds.Path, err)
	}
	if o.Format == "" {
		return o, "", c.fail(op, ds.Path, fmt.Errorf("%w: a file target needs a format (csv, jsonl, parquet)", spi.ErrInvalid))
	}
	if !o.CompressionSet {
		o.Compression = format.None
		if o.Format == format.Parquet {
			o.Compression = format.Snappy
		}
	}
	dir, err := c.cleanData(op, ds.Path)
	if err != nil {
		return o, "", err
	}
	return o, dir, nil
}

// checkWriter makes a writer of schema to nowhere, which checks the schema
// against the format (names, types, quoting of the header).
func (c *Conn) checkWriter(dir string, schema spi.Schema, o format.Options) error {
	w, err := format.NewWriter(io.Discard, schema, o)
	if err != nil {
		return c.fail("check", dir, err)
	}
	if err := w.Close(); err != nil {
		return c.fail("check", dir, err)
	}
	return nil
}

// checkRunID refuses a run id that is not a plain file name.
func (c *Conn) checkRunID(op, runID string) error {
	if runID == "" || strings.HasPrefix(runID, ".") || path.Base(runID) != runID || strings.ContainsAny(runID, "\\\x00") || spi.HasMeta(runID) {
		return c.fail(op, runID, fmt.Errorf("%w: run id %q", spi.ErrInvalid, runID))
	}
	return nil
}

// Committed tells whether runID's marker exists.
func (c *Conn) Committed(_ context.Context, runID string) (bool, error) {
	if err := c.checkRunID("committed", runID); err != nil {
		return false, err
	}
	_, err := c.root.Stat(path.Join(spi.CommitDir, runID))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, iofs.ErrNotExist):
		return false, nil
	}
	return false, c.fail("committed", runID, err)
}

// LastWatermark returns the watermark of the mapping's last commit that
// carried one.
func (c *Conn) LastWatermark(ctx context.Context, mapping string) (string, bool, error) {
	entries, err := iofs.ReadDir(c.root.FS(), spi.CommitDir)
	if errors.Is(err, iofs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, c.fail("watermark", spi.CommitDir, err)
	}
	var best *marker
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return "", false, err
		}
		n := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(n, ".") || strings.HasSuffix(n, pendingSuffix) {
			continue
		}
		data, err := c.root.ReadFile(path.Join(spi.CommitDir, n))
		if err != nil {
			return "", false, c.fail("watermark", path.Join(spi.CommitDir, n), err)
		}
		var m marker
		if err := json.Unmarshal(data, &m); err != nil {
			return "", false, c.fail("watermark", path.Join(spi.CommitDir, n), fmt.Errorf("%w: unreadable commit marker: %v", spi.ErrInvalid, err))
		}
		if m.Mapping != mapping || m.Watermark == "" {
			continue
		}
		if best == nil || m.CommittedAt.After(best.CommittedAt) || (m.CommittedAt.Equal(best.CommittedAt) && m.RunID > best.RunID) {
			best = &m
		}
	}
	if best == nil {
		return "", false, nil
	}
	return best.Watermark, true, nil
}

const pendingSuffix = ".pending"

// Begin starts an attempt's load: a fresh staging area.
func (c *Conn) Begin(ctx context.Context, spec spi.LoadSpec) (spi.Load, error) {
	if err := c.checkRunID("begin", spec.RunID); err != nil {
		return nil, err
	}
	o, dir, err := c.targetOptions("begin", spec.Dataset)
	if err != nil {
		return nil, err
	}
	switch spec.Mode {
	case "", spi.ModeAppend, spi.ModeTruncateInsert:
	case spi.ModeUpsert:
		return nil, c.fail("begin", dir, fmt.Errorf("%w: write mode upsert needs a keyed table; files take append or truncate_insert", spi.ErrInvalid))
	default:
		return nil, c.fail("begin", dir, fmt.Errorf("%w: unknown write mode %q", spi.ErrInvalid, spec.Mode))
	}
	if err := c.checkWriter(dir, spec.Schema, o); err != nil {
		return nil, err
	}
	st, err := c.Stage(ctx, spec.RunID, spec.Attempt)
	if err != nil {
		return nil, err
	}
	return &load{c: c, spec: spec, o: o, dir: dir, st: st.(*stage), parts: map[int]*part{}}, nil
}

// load is one attempt's staged load into files.
type load struct {
	c    *Conn
	spec spi.LoadSpec
	o    format.Options
	dir  string
	st   *stage

	mu      sync.Mutex
	parts   map[int]*part
	done    bool
	pending bool // this attempt wrote the intent file and no marker yet
	intent  []string
}

// part is one thread's file being written.
type part struct {
	mu   sync.Mutex
	name string
	f    *os.File
	hw   *hashWriter
	bw   *bufio.Writer
	zw   io.WriteCloser
	fw   format.Writer
	rows int64
	err  error // sticky: a failed part fails the load
}

// hashWriter counts and hashes what goes to the file.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (h *hashWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

const partBufferSize = 1 << 20

func (l *load) partName(thread int) string {
	ext := format.Ext(l.o.Format, l.o.Compression)
	if l.spec.Mode == spi.ModeAppend {
		return "part-" + l.spec.RunID + "-" + strconv.Itoa(thread) + ext
	}
	return "part-" + strconv.Itoa(thread) + ext
}

// part returns thread's part, creating its file on first use.
func (l *load) part(thread int) (*part, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return nil, fmt.Errorf("%w: the load was committed or aborted", spi.ErrInvalid)
	}
	if p, ok := l.parts[thread]; ok {
		return p, nil
	}
	name := l.partName(thread)
	f, err := l.c.root.OpenFile(path.Join(l.st.dir, name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, l.c.fail("write", name, err)
	}
	p := &part{name: name, f: f}
	p.hw = &hashWriter{w: f, h: sha256.New()}
	p.bw = bufio.NewWriterSize(p.hw, partBufferSize)
	var out io.Writer = p.bw
	if l.o.Format != format.Parquet {
		if p.zw, err = format.NewCompressor(p.bw, l.o.Compression); err != nil {
			f.Close()
			return nil, l.c.fail("write", name, err)
		}
		out = p.zw
	}
	if p.fw, err = format.NewWriter(out, l.spec.Schema, l.o); err != nil {
		f.Close()
		return nil, l.c.fail("write", name, err)
	}
	l.parts[thread] = p
	return p, nil
}

// Write encodes the batch's rows into thread's part file.
func (l *load) Write(ctx context.Context, thread int, b spi.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if thread < 0 {
		return l.c.fail("write", l.dir, fmt.Errorf("%w: thread %d", spi.ErrInvalid, thread))
	}
	p, err := l.part(thread)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if err := p.fw.Write(b.Rows); err != nil {
		p.err = l.c.fail("write", p.name, err)
		return p.err
	}
	p.rows += int64(len(b.Rows))
	return nil
}

// finish completes a part file: flushed, synced, closed.
func (p *part) finish() error {
	if p.err != nil {
		return p.err
	}
	err := p.fw.Close()
	if err == nil && p.zw != nil {
		err = p.zw.Close()
	}
	if err == nil {
		err = p.bw.Flush()
	}
	if err == nil {
		err = p.f.Sync()
	}
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	p.f = nil
	return err
}

// Commit delivers the parts and writes the marker; see the steps above.
func (l *load) Commit(ctx context.Context) (spi.Commit, error) {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return spi.Commit{}, l.c.fail("commit", l.dir, fmt.Errorf("%w: the load was committed or aborted already", spi.ErrInvalid))
	}
	l.mu.Unlock()
	runID := l.spec.RunID
	// 1. Committed before?
	if ok, err := l.c.Committed(ctx, runID); err != nil {
		return spi.Commit{}, err
	} else if ok {
		return spi.Commit{}, l.c.fail("commit", runID, fmt.Errorf("%w: marker %s exists", spi.ErrAlreadyCommitted, path.Join(spi.CommitDir, runID)))
	}
	// 2. Complete the parts.
	if len(l.parts) == 0 {
		if _, err := l.part(0); err != nil {
			return spi.Commit{}, err
		}
	}
	l.mu.Lock()
	threads := make([]int, 0, len(l.parts))
	for t := range l.parts {
		threads = append(threads, t)
	}
	l.mu.Unlock()
	slices.Sort(threads)
	m := marker{RunID: runID, Attempt: l.spec.Attempt, Mapping: l.spec.Mapping, Watermark: l.spec.Watermark,
		Path: l.dir, Format: l.o.Format, Options: l.spec.Dataset.Options}
	var names []string
	var files []spi.Written
	for _, t := range threads {
		p := l.parts[t]
		p.mu.Lock()
		err := p.finish()
		p.mu.Unlock()
		if err != nil {
			return spi.Commit{}, l.c.fail("commit", p.name, err)
		}
		dst := path.Join(l.dir, p.name)
		w := spi.Written{Path: dst, Size: p.hw.n, SHA256: hex.EncodeToString(p.hw.h.Sum(nil)), Rows: p.rows}
		files = append(files, w)
		names = append(names, p.name)
		m.Files = append(m.Files, markerFile{Path: dst, Size: w.Size, SHA256: w.SHA256, Rows: w.Rows})
		m.Rows += p.rows
	}
	if err := ctx.Err(); err != nil {
		return spi.Commit{}, err
	}
	// 3. The intent.
	if err := l.c.mkdirAll(spi.CommitDir); err != nil {
		return spi.Commit{}, l.c.fail("commit", spi.CommitDir, err)
	}
	intent := make([]string, len(files))
	for i, w := range files {
		intent[i] = w.Path
	}
	if err := l.takeIntent(intent); err != nil {
		return spi.Commit{}, err
	}
	// 4. Deliver.
	if err := l.st.Commit(ctx, l.dir, names); err != nil {
		return spi.Commit{}, err
	}
	if l.spec.Mode == spi.ModeTruncateInsert {
		if err := l.removeOtherParts(names); err != nil {
			return spi.Commit{}, err
		}
	}
	// 5. The marker: the commit point.
	m.CommittedAt = time.Now().UTC()
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return spi.Commit{}, fmt.Errorf("encode commit marker: %w", err)
	}
	if err := l.c.createExclusive(path.Join(spi.CommitDir, runID), data); err != nil {
		if errors.Is(err, iofs.ErrExist) {
			err = fmt.Errorf("%w: marker written by another attempt meanwhile", spi.ErrAlreadyCommitted)
		}
		return spi.Commit{}, l.c.fail("commit", path.Join(spi.CommitDir, runID), err)
	}
	l.mu.Lock()
	l.pending, l.done = false, true
	l.mu.Unlock()
	// 6. Clean up; the commit stands whatever happens here.
	_ = l.c.root.Remove(path.Join(spi.CommitDir, runID+pendingSuffix))
	_ = l.c.syncDir(spi.CommitDir)
	return spi.Commit{Rows: m.Rows, Files: files}, nil
}

// takeIntent writes this attempt's intent file, rolling back one that a
// dead earlier attempt left, and refusing while another attempt commits.
func (l *load) takeIntent(files []string) error {
	name := path.Join(spi.CommitDir, l.spec.RunID+pendingSuffix)
	data, err := json.Marshal(marker{RunID: l.spec.RunID, Attempt: l.spec.Attempt, Path: l.dir, Files: filesOf(files)})
	if err != nil {
		return fmt.Errorf("encode intent: %w", err)
	}
	for range 3 {
		err := l.c.createExclusive(name, data)
		if err == nil {
			l.mu.Lock()
			l.pending, l.intent = true, files
			l.mu.Unlock()
			return nil
		}
		if !errors.Is(err, iofs.ErrExist) {
			return l.c.fail("commit", name, err)
		}
		old, err := l.c.root.ReadFile(name)
		if errors.Is(err, iofs.ErrNotExist) {
			continue
		}
		if err != nil {
			return l.c.fail("commit", name, err)
		}
		var m marker
		if err := json.Unmarshal(old, &m); err != nil {
			return l.c.fail("commit", name, fmt.Errorf("%w: unreadable intent file: %v", spi.ErrInvalid, err))
		}
		if m.Attempt >= l.spec.Attempt {
			return l.c.fail("commit", name, fmt.Errorf("%w: attempt %d of run %s is committing", spi.ErrInvalid, m.Attempt, l.spec.RunID))
		}
		// A dead earlier attempt stopped mid-commit: undo its delivery.
		for _, f := range m.Files {
			if slices.Contains(files, f.Path) {
				continue // replaced by this attempt's file of the same name
			}
			if p, err := spi.CleanPath(f.Path); err == nil && !reservedPath(p) {
				if err := l.c.root.Remove(p); err != nil && !gone(err) {
					return l.c.fail("commit", p, fmt.Errorf("roll back attempt %d: %w", m.Attempt, err))
				}
			}
		}
		if err := l.c.root.Remove(name); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return l.c.fail("commit", name, err)
		}
	}
	return l.c.fail("commit", name, fmt.Errorf("%w: the intent file keeps changing", spi.ErrInvalid))
}

func filesOf(paths []string) []markerFile {
	out := make([]markerFile, len(paths))
	for i, p := range paths {
		out[i] = markerFile{Path: p}
	}
	return out
}

// removeOtherParts removes the part files in the target directory that
// this load did not write (truncate_insert).
func (l *load) removeOtherParts(keep []string) error {
	entries, err := iofs.ReadDir(l.c.root.FS(), l.dir)
	if err != nil {
		return l.c.fail("commit", l.dir, err)
	}
	removed := false
	for _, e := range entries {
		if !e.Type().IsRegular() || !partPattern.MatchString(e.Name()) || slices.Contains(keep, e.Name()) {
			continue
		}
		if err := l.c.root.Remove(path.Join(l.dir, e.Name())); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return l.c.fail("commit", path.Join(l.dir, e.Name()), err)
		}
		removed = true
	}
	if removed {
		if err := l.c.syncDir(l.dir); err != nil {
			return l.c.fail("commit", l.dir, err)
		}
	}
	return nil
}

// Abort closes and drops the staged parts. After a Commit that failed
// before its marker, it also removes what that commit had delivered.
func (l *load) Abort(_ context.Context) error {
	l.mu.Lock()
	if l.done && !l.pending {
		l.mu.Unlock()
		return l.st.Discard()
	}
	l.done = true
	pending, intent := l.pending, l.intent
	l.pending = false
	parts := l.parts
	l.mu.Unlock()
	for _, p := range parts {
		p.mu.Lock()
		if p.f != nil {
			p.f.Close()
			p.f = nil
		}
		p.mu.Unlock()
	}
	var errs []error
	if pending {
		for _, f := range intent {
			if err := l.c.root.Remove(f); err != nil && !gone(err) {
				errs = append(errs, l.c.fail("abort", f, err))
			}
		}
		if err := l.c.root.Remove(path.Join(spi.CommitDir, l.spec.RunID+pendingSuffix)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			errs = append(errs, l.c.fail("abort", l.spec.RunID+pendingSuffix, err))
		}
	}
	if err := l.st.Discard(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// createExclusive writes data as name, whole or not at all, failing with
// fs.ErrExist when name exists: a synced temporary file is hard-linked to
// the name, then removed, and the directory synced.
func (c *Conn) createExclusive(name string, data []byte) error {
	dir := path.Dir(name)
	tmp := path.Join(dir, ".tmp-"+randomHex())
	f, err := c.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = c.root.Link(tmp, name)
	}
	_ = c.root.Remove(tmp)
	if err != nil {
		return err
	}
	return c.syncDir(dir)
}

// gone tells whether a removal failed because there was nothing to remove.
func gone(err error) bool {
	return errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
