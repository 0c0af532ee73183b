package dispatcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector/spi"
)

// Target manifest states of VerifyResult.TargetManifest.
const (
	TargetManifestPresent  = "present"
	TargetManifestMissing  = "missing"
	TargetManifestOtherRun = "other_run:" // followed by the run_id it belongs to
)

func (a *Agent) verifyCommand() *command {
	return &command{
		info: CommandInfo{
			Name: CommandVerify,
			Summary: "verify a run's delivery manifest against the files at its target: every file present with its size and SHA-256; " +
				"files the manifest does not list are reported as extra and do not fail the check",
			Needs: "read on mapping:NAME (the run's mapping)",
			Args: []ArgInfo{
				{Name: "run_id", Type: "string", Required: true, Doc: "the run whose delivery is verified"},
				{Name: "manifest", Type: "string", Doc: `where the manifest is read: "catalog" (default, as the worker recorded it) or "target" (the _weir_manifest.json at the target)`},
			},
		},
		newArgs: func() any { return &VerifyArgs{} },
		check:   checkVerify,
		prepare: a.prepareVerify,
		run:     a.verify,
	}
}

func checkVerify(c *call) error {
	args := c.args.(*VerifyArgs)
	if args.RunID == "" {
		return invalidArg("args.run_id", "is required")
	}
	if _, _, err := catalog.ParseRunID(args.RunID); err != nil {
		var ve *catalog.ValidationError
		if errors.As(err, &ve) {
			return invalidArg("args.run_id", "%s", ve.Message)
		}
		return err
	}
	switch args.Manifest {
	case "":
		args.Manifest = ManifestFromCatalog
	case ManifestFromCatalog, ManifestFromTarget:
	default:
		return invalidArg("args.manifest", "must be %q or %q, got %q", ManifestFromCatalog, ManifestFromTarget, clipText(args.Manifest, 64))
	}
	if c.system != "" {
		if err := catalog.ValidateName("system", c.system); err != nil {
			return toAPIError(err)
		}
	}
	c.target = "run:" + args.RunID
	return nil
}

// prepareVerify loads the run: its mapping is what the caller must be
// entitled to read, its target system where the files are.
func (a *Agent) prepareVerify(ctx context.Context, c *call) error {
	args := c.args.(*VerifyArgs)
	run, err := a.store.GetRun(ctx, args.RunID)
	if err != nil {
		return catalogError(fmt.Sprintf("no run %s", args.RunID), err)
	}
	if c.system != "" && c.system != run.TargetSystem {
		return invalidArg("system", "run %s delivers to system %s, not %s (system may be left out)", run.ID, run.TargetSystem, c.system)
	}
	c.system = run.TargetSystem
	c.resource = "mapping:" + run.Mapping
	c.prepared = run
	return nil
}

func (a *Agent) verify(ctx context.Context, c *call) (any, error) {
	args := c.args.(*VerifyArgs)
	run := c.prepared.(*catalog.Run)
	began := time.Now()
	sys, conn, err := a.openSystem(ctx, run.TargetSystem)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	src, ok := conn.(spi.FileSource)
	if !ok {
		return nil, unsupported("system %s of kind %s holds no files: verify checks delivered files", sys.Name, sys.Kind)
	}
	man := run.Manifest.V
	var dir string
	switch {
	case man != nil:
		dir = man.Target.Path
	case args.Manifest == ManifestFromCatalog:
		return nil, conflict("run %s is %s and has no delivery manifest in the catalog; pass args.manifest=%q to verify the one at the target",
			run.ID, run.State, ManifestFromTarget)
	default:
		if dir, err = a.targetDir(ctx, run); err != nil {
			return nil, err
		}
	}
	dir, err = spi.CleanPath(dir)
	if err != nil {
		return nil, conflict("run %s delivers to target path %q, which is not a clean path relative to the root: %v", run.ID, dir, err)
	}
	res := &VerifyResult{RunID: run.ID, Mapping: run.Mapping, System: sys.Name, Kind: sys.Kind, Node: a.cfg.NodeID,
		Path: dir, ManifestSource: args.Manifest, Missing: []string{}, Changed: []VerifyDiff{}, Extra: []FileEntry{}}

	manPath := path.Join(dir, spi.ManifestName)
	atTarget, terr := readManifest(ctx, src, manPath)
	switch {
	case errors.Is(terr, iofs.ErrNotExist):
		res.TargetManifest = TargetManifestMissing
	case terr != nil:
		if args.Manifest == ManifestFromTarget {
			return nil, terr
		}
		res.TargetManifest = "unreadable: " + terr.Error()
	case atTarget.RunID != run.ID:
		res.TargetManifest = TargetManifestOtherRun + atTarget.RunID
	default:
		res.TargetManifest = TargetManifestPresent
	}
	if args.Manifest == ManifestFromTarget {
		switch {
		case res.TargetManifest == TargetManifestMissing:
			return nil, notFound("no delivery manifest at %s:%s: the run never delivered there, or the manifest was removed", sys.Name, manPath)
		case atTarget.RunID != run.ID:
			return nil, conflict("the manifest at %s:%s belongs to run %s, not %s: a later delivery to the same path replaced it",
				sys.Name, manPath, clipText(atTarget.RunID, 32), run.ID)
		}
		man = atTarget
	}
	res.State, res.Attempt = string(man.State), man.Attempt
	if err := a.compare(ctx, src, dir, manifestFiles(man, dir), res); err != nil {
		return nil, err
	}
	res.TookMS = time.Since(began).Milliseconds()
	return res, nil
}

// targetDir resolves where a run without a recorded manifest delivers: its
// mapping version's target path with the run's parameters.
func (a *Agent) targetDir(ctx context.Context, run *catalog.Run) (string, error) {
	m, err := a.store.GetMappingVersion(ctx, run.Mapping, run.MappingVersion)
	if err != nil {
		return "", catalogError(fmt.Sprintf("no mapping %s version %d", run.Mapping, run.MappingVersion), err)
	}
	dir, err := catalog.ExpandPath("target.path", m.Target.V.Path, run.Params.V)
	if err != nil {
		return "", conflict("cannot resolve the target path of run %s: %v", run.ID, err)
	}
	return dir, nil
}

// readManifest reads and decodes the delivery manifest at p.
func readManifest(ctx context.Context, src spi.FileSource, p string) (*catalog.Manifest, error) {
	rc, err := src.OpenFile(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, ManifestMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", p, err)
	}
	if len(data) > ManifestMaxBytes {
		return nil, conflict("the manifest %s is larger than %d bytes", p, ManifestMaxBytes)
	}
	var m catalog.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, conflict("the manifest %s is not a valid delivery manifest: %v", p, err)
	}
	return &m, nil
}

// compare checks the manifest's files against those under dir and fills res.
func (a *Agent) compare(ctx context.Context, src spi.FileSource, dir string, files []catalog.ManifestFile, res *VerifyResult) error {
	listed, err := src.ListFiles(ctx, dir)
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("list target: %w", err)
	}
	actual := make(map[string]int64, len(listed))
	for _, f := range listed {
		actual[f.Rel] = f.Size
	}
	res.Expected = len(files)
	var changed []VerifyDiff
	var missing []string
	var toHash []catalog.ManifestFile
	expected := make(map[string]bool, len(files))
	for _, f := range files {
		rel, err := spi.CleanPath(f.Path)
		if err != nil || rel == "." {
			changed = append(changed, VerifyDiff{Path: f.Path, Problem: ProblemBadPath, ExpectedSize: f.Size, ExpectedSHA256: f.SHA256,
				Detail: "the manifest names a path that is not a clean relative path"})
			continue
		}
		expected[rel] = true
		size, ok := actual[rel]
		switch {
		case !ok:
			missing = append(missing, rel)
		case size != f.Size:
			changed = append(changed, VerifyDiff{Path: rel, Problem: ProblemSize, ExpectedSize: f.Size, ActualSize: size, ExpectedSHA256: f.SHA256})
		default:
			toHash = append(toHash, catalog.ManifestFile{Path: rel, Size: f.Size, SHA256: f.SHA256})
		}
	}
	hashed, bytes, err := a.hashAll(ctx, src, dir, toHash)
	if err != nil {
		return err
	}
	res.BytesChecked = bytes
	changed = append(changed, hashed...)
	res.Matched = len(toHash) - len(hashed)
	var extra []FileEntry
	for rel, size := range actual {
		if !expected[rel] {
			extra = append(extra, FileEntry{Path: rel, Size: size})
		}
	}
	slices.Sort(missing)
	slices.SortFunc(changed, func(x, y VerifyDiff) int { return strings.Compare(x.Path, y.Path) })
	slices.SortFunc(extra, func(x, y FileEntry) int { return strings.Compare(x.Path, y.Path) })
	res.MissingCount, res.ChangedCount, res.ExtraCount = len(missing), len(changed), len(extra)
	lim := a.cfg.ReportLimit
	res.Truncated = len(missing) > lim || len(changed) > lim || len(extra) > lim
	res.Missing = append(res.Missing, missing[:min(lim, len(missing))]...)
	res.Changed = append(res.Changed, changed[:min(lim, len(changed))]...)
	res.Extra = append(res.Extra, extra[:min(lim, len(extra))]...)
	res.OK = res.MissingCount == 0 && res.ChangedCount == 0
	return nil
}

// hashAll hashes files (relative to dir) on VerifyThreads threads and
// returns those whose content differs from the manifest, and the bytes read.
func (a *Agent) hashAll(ctx context.Context, src spi.FileSource, dir string, files []catalog.ManifestFile) ([]VerifyDiff, int64, error) {
	jobs := make(chan catalog.ManifestFile)
	var (
		mu    sync.Mutex
		diffs []VerifyDiff
		total int64
		wg    sync.WaitGroup
	)
	for range min(a.cfg.VerifyThreads, max(1, len(files))) {
		wg.Go(func() {
			for f := range jobs {
				d, n := hashOne(ctx, src, dir, f)
				mu.Lock()
				total += n
				if d != nil {
					diffs = append(diffs, *d)
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, f := range files {
		select {
		case jobs <- f:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("hash delivered files: %w", err)
	}
	return diffs, total, nil
}

// hashOne reads one delivered file and compares it with its manifest entry.
func hashOne(ctx context.Context, src spi.FileSource, dir string, f catalog.ManifestFile) (*VerifyDiff, int64) {
	d := &VerifyDiff{Path: f.Path, ExpectedSize: f.Size, ExpectedSHA256: f.SHA256}
	rc, err := src.OpenFile(ctx, path.Join(dir, f.Path))
	if err != nil {
		d.Problem, d.Detail = ProblemUnreadable, err.Error()
		return d, 0
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, rc})
	d.ActualSize = n
	if err != nil {
		d.Problem, d.Detail = ProblemUnreadable, err.Error()
		return d, n
	}
	d.ActualSHA256 = hex.EncodeToString(h.Sum(nil))
	switch {
	case n != f.Size:
		d.Problem, d.Detail = ProblemSize, "the file changed while it was read"
	case !strings.EqualFold(d.ActualSHA256, f.SHA256):
		d.Problem = ProblemChecksum
		if f.SHA256 == "" {
			d.Detail = "the manifest lists no checksum for this file"
		}
	default:
		return nil, n
	}
	return d, n
}

// ctxReader stops a read when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// manifestFiles are the manifest's files relative to dir. A file copy's
// manifest names them so already; a row delivery's (one with a Source)
// names them from the system's root, as its connector wrote them.
func manifestFiles(man *catalog.Manifest, dir string) []catalog.ManifestFile {
	if man.Source == nil || dir == "" || dir == "." {
		return man.Files
	}
	out := make([]catalog.ManifestFile, len(man.Files))
	for i, f := range man.Files {
		out[i] = f
		if rel, ok := strings.CutPrefix(f.Path, dir+"/"); ok {
			out[i].Path = rel
		}
	}
	return out
}
