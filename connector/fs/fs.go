// Package fs is the filesystem connector: a system of kind "fs" is a
// directory tree under its "root" setting (an absolute path). Every path is
// confined to that root through os.Root, so neither ".." nor a symbolic link
// pointing outside can escape it.
//
// Files are copied with the kernel's fast path (copy_file_range), staged under
// <root>/.weir-staging/<run_id>/<attempt>/ and renamed into place on commit.
//
// The same Conn reads and writes rows of CSV, JSON Lines and Parquet files
// (spi.RowSource in rows.go, spi.RowTarget in load.go), with the codecs of
// connector/format. It imports the standard library, connector/spi and
// connector/format only.
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/weirdata/weir/connector/spi"
)

// Kind is the system kind this connector serves.
const Kind = "fs"

// Register adds the fs connector to r.
func Register(r *spi.Registry) { r.Register(Kind, Open) }

// Conn is an open fs system: a handle on its root directory.
type Conn struct {
	name string
	root *os.Root
	connCache
}

var (
	_ spi.FileSource = (*Conn)(nil)
	_ spi.FileTarget = (*Conn)(nil)
)

// Open opens the root directory named by the system's "root" setting, which
// must be an absolute path to an existing directory.
func Open(_ context.Context, sys spi.System) (spi.Conn, error) {
	dir := sys.Settings["root"]
	if dir == "" || !filepath.IsAbs(dir) {
		return nil, &spi.Error{Op: "connect", System: sys.Name, Err: fmt.Errorf("%w: setting root must be an absolute directory, got %q", spi.ErrInvalid, dir)}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			// A root that is missing or unreadable is a configuration error: retrying does not help.
			err = fmt.Errorf("%w: root directory: %w", spi.ErrInvalid, err)
		}
		return nil, &spi.Error{Op: "connect", System: sys.Name, Err: err}
	}
	return &Conn{name: sys.Name, root: root}, nil
}

// Close releases the root directory.
func (c *Conn) Close() error { return c.root.Close() }

// ListFiles returns the regular files pattern selects, sorted by path. Weir's
// own bookkeeping (the staging directory, manifests) is never listed. A
// symbolic link to a file inside the root is listed with the target's size;
// one pointing outside is ErrEscape, and one to a directory is ErrInvalid
// (links to directories are not followed, so that a tree cannot loop).
func (c *Conn) ListFiles(ctx context.Context, pattern string) ([]spi.File, error) {
	p, err := c.cleanData("list", pattern)
	if err != nil {
		return nil, err
	}
	var out []spi.File
	if !spi.HasMeta(p) {
		fi, err := c.root.Stat(p)
		if err != nil {
			return nil, c.fail("list", p, err)
		}
		if fi.IsDir() {
			out, err = c.walk(ctx, p, p, nil)
			if err != nil {
				return nil, err
			}
			return out, nil
		}
		f, err := c.file(p, path.Dir(p), fi)
		if err != nil {
			return nil, err
		}
		if f != nil {
			out = append(out, *f)
		}
		return out, nil
	}
	if _, err := path.Match(p, ""); err != nil {
		return nil, c.fail("list", p, fmt.Errorf("%w: bad glob: %w", spi.ErrInvalid, err))
	}
	base := staticPrefix(p)
	matches, err := c.glob(ctx, ".", strings.Split(p, "/"))
	if err != nil {
		return nil, err
	}
	for _, m := range matches {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if reservedPath(m) {
			continue
		}
		fi, err := c.root.Stat(m)
		if err != nil {
			return nil, c.fail("list", m, err)
		}
		if fi.IsDir() {
			if out, err = c.walk(ctx, m, base, out); err != nil {
				return nil, err
			}
			continue
		}
		f, err := c.file(m, base, fi)
		if err != nil {
			return nil, err
		}
		if f != nil {
			out = append(out, *f)
		}
	}
	slices.SortFunc(out, func(a, b spi.File) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// glob returns the paths under dir that match the pattern elements els.
// Unlike fs.Glob it reports errors instead of skipping them, so that a link
// leading out of the root is refused rather than silently not matched.
func (c *Conn) glob(ctx context.Context, dir string, els []string) ([]string, error) {
	if len(els) == 0 {
		return []string{dir}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	el, rest := els[0], els[1:]
	if !spi.HasMeta(el) {
		p := path.Join(dir, el)
		if len(rest) == 0 {
			if _, err := c.root.Lstat(p); errors.Is(err, iofs.ErrNotExist) {
				return nil, nil
			} else if err != nil {
				return nil, c.fail("list", p, err)
			}
			return []string{p}, nil
		}
		return c.globDir(ctx, p, rest)
	}
	entries, err := iofs.ReadDir(c.root.FS(), dir)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, c.fail("list", dir, err)
	}
	var out []string
	for _, e := range entries {
		if ok, _ := path.Match(el, e.Name()); !ok || spi.Reserved(e.Name()) {
			continue
		}
		p := path.Join(dir, e.Name())
		if len(rest) == 0 {
			out = append(out, p)
			continue
		}
		sub, err := c.globDir(ctx, p, rest)
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
	}
	return out, nil
}

// globDir descends into p when it is a directory (following links inside the root).
func (c *Conn) globDir(ctx context.Context, p string, rest []string) ([]string, error) {
	fi, err := c.root.Stat(p)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, c.fail("list", p, err)
	}
	if !fi.IsDir() {
		return nil, nil
	}
	return c.glob(ctx, p, rest)
}

// walk appends every regular file under dir to out, with paths relative to base.
func (c *Conn) walk(ctx context.Context, dir, base string, out []spi.File) ([]spi.File, error) {
	err := iofs.WalkDir(c.root.FS(), dir, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return c.fail("list", p, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p != dir && spi.Reserved(d.Name()) {
			if d.IsDir() {
				return iofs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		var fi iofs.FileInfo
		if d.Type()&iofs.ModeSymlink != 0 {
			fi, err = c.root.Stat(p) // follows the link, inside the root only
			if err != nil {
				return c.fail("list", p, err)
			}
			if fi.IsDir() {
				return c.fail("list", p, fmt.Errorf("%w: a symbolic link to a directory, which Weir does not follow", spi.ErrInvalid))
			}
		} else if fi, err = d.Info(); err != nil {
			return c.fail("list", p, err)
		}
		f, err := c.file(p, base, fi)
		if err != nil {
			return err
		}
		if f != nil {
			out = append(out, *f)
		}
		return nil
	})
	return out, err
}

// file describes the regular file p, or refuses anything else.
func (c *Conn) file(p, base string, fi iofs.FileInfo) (*spi.File, error) {
	if reservedPath(p) {
		return nil, nil
	}
	if !fi.Mode().IsRegular() {
		return nil, c.fail("list", p, fmt.Errorf("%w: not a regular file (%s)", spi.ErrInvalid, fi.Mode().Type()))
	}
	rel := p
	if base != "." {
		rel = strings.TrimPrefix(p, base+"/")
	}
	return &spi.File{Path: p, Rel: rel, Size: fi.Size()}, nil
}

// OpenFile opens a file of the system for reading. The result is an *os.File,
// so that io.Copy into another *os.File reaches copy_file_range.
func (c *Conn) OpenFile(_ context.Context, name string) (io.ReadCloser, error) {
	p, err := spi.CleanPath(name)
	if err != nil {
		return nil, c.fail("open", name, err)
	}
	f, err := c.root.Open(p)
	if err != nil {
		return nil, c.fail("open", p, err)
	}
	return f, nil
}

// cleanData cleans a path naming data (a source pattern, a target
// directory), refusing one that leads into Weir's own bookkeeping.
func (c *Conn) cleanData(op, p string) (string, error) {
	clean, err := spi.CleanPath(p)
	if err != nil {
		return "", c.fail(op, p, err)
	}
	if reservedPath(clean) {
		return "", c.fail(op, p, fmt.Errorf("%w: the path leads into Weir's staging area or manifest", spi.ErrInvalid))
	}
	return clean, nil
}

// staticPrefix returns the leading elements of a glob that hold no metacharacter.
func staticPrefix(p string) string {
	els := strings.Split(p, "/")
	i := 0
	for i < len(els) && !spi.HasMeta(els[i]) {
		i++
	}
	if i == 0 {
		return "."
	}
	return strings.Join(els[:i], "/")
}

// reservedPath reports whether any element of p is Weir's bookkeeping.
func reservedPath(p string) bool {
	for _, el := range strings.Split(p, "/") {
		if spi.Reserved(el) {
			return true
		}
	}
	return false
}

// fail wraps err as an *spi.Error, marking root escapes with spi.ErrEscape.
func (c *Conn) fail(op, p string, err error) error {
	if errors.Is(err, errRootEscape()) {
		err = fmt.Errorf("%w: %w", spi.ErrEscape, err)
	}
	return &spi.Error{Op: op, System: c.name, Path: p, Err: err}
}

// errRootEscape is the os package's unexported "path escapes from parent"
// error, captured once by provoking it, so that escapes are recognised with
// errors.Is rather than by their text.
var errRootEscape = sync.OnceValue(func() error {
	r, err := os.OpenRoot(string(filepath.Separator))
	if err != nil {
		return errors.New("os.Root escape sentinel unavailable")
	}
	defer r.Close()
	_, err = r.Stat("..")
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return errors.New("os.Root escape sentinel unavailable")
})
