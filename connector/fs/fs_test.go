package fs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/connector/fs"
	"github.com/weirdata/weir/connector/spi"
)

// tree writes files (slash paths relative to dir) with the given contents.
func tree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(data), 0o644))
	}
}

func openFS(t *testing.T, root string) *fs.Conn {
	t.Helper()
	c, err := fs.Open(context.Background(), spi.System{Name: "sys", Kind: fs.Kind, Settings: map[string]string{"root": root}})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c.(*fs.Conn)
}

func rels(files []spi.File) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		out[f.Path] = f.Rel
	}
	return out
}

func TestOpenSettings(t *testing.T) {
	ctx := context.Background()
	for _, root := range []string{"", "relative/dir", filepath.Join(t.TempDir(), "missing")} {
		_, err := fs.Open(ctx, spi.System{Name: "s", Kind: fs.Kind, Settings: map[string]string{"root": root}})
		require.ErrorIs(t, err, spi.ErrInvalid, "root %q", root)
	}
}

func TestListFiles(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{
		"trades/2026-11-20/AAPL.csv":            "aapl",
		"trades/2026-11-20/MSFT.csv":            "msft!",
		"trades/2026-11-20/sub/IBM.csv":         "ibm",
		"trades/2026-11-21/AAPL.csv":            "later",
		"trades/2026-11-20/_weir_manifest.json": "{}",
		".weir-staging/9/1/partial":             "x",
		"trades/2026-11-20/.weir-staging/1/x":   "x",
	})
	c := openFS(t, root)
	ctx := context.Background()

	files, err := c.ListFiles(ctx, "trades/2026-11-20")
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"trades/2026-11-20/AAPL.csv":    "AAPL.csv",
		"trades/2026-11-20/MSFT.csv":    "MSFT.csv",
		"trades/2026-11-20/sub/IBM.csv": "sub/IBM.csv",
	}, rels(files))
	for _, f := range files {
		if f.Rel == "MSFT.csv" {
			require.EqualValues(t, 5, f.Size)
		}
	}

	files, err = c.ListFiles(ctx, "trades/*/AAPL.csv")
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"trades/2026-11-20/AAPL.csv": "2026-11-20/AAPL.csv",
		"trades/2026-11-21/AAPL.csv": "2026-11-21/AAPL.csv",
	}, rels(files))

	files, err = c.ListFiles(ctx, "trades/2026-11-2[01]")
	require.NoError(t, err)
	require.Len(t, files, 4, "matched directories are walked")
	require.Equal(t, "2026-11-20/sub/IBM.csv", rels(files)["trades/2026-11-20/sub/IBM.csv"])

	files, err = c.ListFiles(ctx, "trades/2026-11-20/MSFT.csv")
	require.NoError(t, err)
	require.Equal(t, []spi.File{{Path: "trades/2026-11-20/MSFT.csv", Rel: "MSFT.csv", Size: 5}}, files)

	files, err = c.ListFiles(ctx, "")
	require.NoError(t, err)
	require.Len(t, files, 4, "the whole root, without staging or manifests")

	files, err = c.ListFiles(ctx, "trades/1999-*/x.csv")
	require.NoError(t, err)
	require.Empty(t, files, "a glob matching nothing is an empty selection")

	_, err = c.ListFiles(ctx, "trades/1999-01-01")
	require.ErrorIs(t, err, iofs.ErrNotExist)
	require.Contains(t, err.Error(), "sys:trades/1999-01-01")

	_, err = c.ListFiles(ctx, "trades/[")
	require.ErrorIs(t, err, spi.ErrInvalid)

	for _, p := range []string{".weir-staging", ".weir-staging/9/1", "trades/2026-11-20/_weir_manifest.json"} {
		_, err = c.ListFiles(ctx, p)
		require.ErrorIs(t, err, spi.ErrInvalid, "list %q", p)
	}
	require.ErrorIs(t, c.WriteManifest(ctx, ".weir-staging/x", []byte("{}")), spi.ErrInvalid)

	require.NoError(t, os.MkdirAll(filepath.Join(root, "empty"), 0o755))
	files, err = c.ListFiles(ctx, "empty")
	require.NoError(t, err)
	require.Empty(t, files)
}

func TestPathEscapesRefused(t *testing.T) {
	outside := t.TempDir()
	tree(t, outside, map[string]string{"secret.txt": "top secret", "dir/x": "x"})
	root := t.TempDir()
	tree(t, root, map[string]string{"data/a.csv": "a", "real.csv": "real"})
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "data", "leak.csv")))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "out")))
	require.NoError(t, os.Symlink("../real.csv", filepath.Join(root, "data", "inside.csv")))
	c := openFS(t, root)
	ctx := context.Background()

	for _, p := range []string{"../", "../" + filepath.Base(outside) + "/secret.txt", "data/../../x", outside + "/secret.txt", "/etc/passwd"} {
		_, err := c.ListFiles(ctx, p)
		require.ErrorIs(t, err, spi.ErrEscape, "list %q", p)
		_, err = c.OpenFile(ctx, p)
		require.ErrorIs(t, err, spi.ErrEscape, "open %q", p)
	}
	// A link inside the tree that points outside the root.
	_, err := c.ListFiles(ctx, "data")
	require.ErrorIs(t, err, spi.ErrEscape)
	require.Contains(t, err.Error(), "data/leak.csv")
	_, err = c.OpenFile(ctx, "data/leak.csv")
	require.ErrorIs(t, err, spi.ErrEscape)
	_, err = c.ListFiles(ctx, "out")
	require.ErrorIs(t, err, spi.ErrEscape)
	_, err = c.ListFiles(ctx, "out/*")
	require.ErrorIs(t, err, spi.ErrEscape)

	// A link that stays inside the root is a file like any other.
	files, err := c.ListFiles(ctx, "data/inside.csv")
	require.NoError(t, err)
	require.Equal(t, []spi.File{{Path: "data/inside.csv", Rel: "inside.csv", Size: 4}}, files)

	// Writing through a link that leaves the root is refused too, and writes nothing outside.
	st, err := c.Stage(ctx, "100", 1)
	require.NoError(t, err)
	_, err = st.Put(ctx, "f.csv", strings.NewReader("payload"), nil)
	require.NoError(t, err)
	err = st.Commit(ctx, "out/dir", []string{"f.csv"})
	require.ErrorIs(t, err, spi.ErrEscape)
	require.ErrorIs(t, c.WriteManifest(ctx, "out", []byte("{}")), spi.ErrEscape)
	_, err = st.Put(ctx, "../../../evil", strings.NewReader("x"), nil)
	require.ErrorIs(t, err, spi.ErrEscape)
	_, err = c.Stage(ctx, "../x", 1)
	require.ErrorIs(t, err, spi.ErrInvalid)
	left, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Len(t, left, 2, "nothing was written outside the root")
	_, err = os.Stat(filepath.Join(outside, spi.ManifestName))
	require.True(t, errors.Is(err, iofs.ErrNotExist))
}

func TestSymlinkToDirectoryRefused(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{"a/x.csv": "x"})
	require.NoError(t, os.Symlink("a", filepath.Join(root, "loop")))
	c := openFS(t, root)
	_, err := c.ListFiles(context.Background(), "")
	require.ErrorIs(t, err, spi.ErrInvalid)
	require.Contains(t, err.Error(), "symbolic link to a directory")
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestStageCommitManifest(t *testing.T) {
	srcRoot, dstRoot := t.TempDir(), t.TempDir()
	big := strings.Repeat("0123456789abcdef", (fs.CopyChunk/16)*2+1000) // more than two chunks
	tree(t, srcRoot, map[string]string{"in/big.bin": big, "in/d/small.txt": "small", "in/empty": ""})
	tree(t, dstRoot, map[string]string{"out/d/small.txt": "old, to be replaced", "keep.txt": "untouched"})
	src, dst := openFS(t, srcRoot), openFS(t, dstRoot)
	ctx := context.Background()

	// Leftovers of an earlier attempt of the same run.
	tree(t, dstRoot, map[string]string{".weir-staging/555/1/big.bin": "half"})

	st, err := dst.Stage(ctx, "555", 2)
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dstRoot, ".weir-staging/555/1"))
	require.True(t, errors.Is(err, iofs.ErrNotExist), "earlier attempts are cleared")

	files, err := src.ListFiles(ctx, "in")
	require.NoError(t, err)
	var reported int64
	var relsDone []string
	for _, f := range files {
		r, err := src.OpenFile(ctx, f.Path)
		require.NoError(t, err)
		_, isFile := r.(*os.File)
		require.True(t, isFile, "fs sources hand out *os.File for copy_file_range")
		w, err := st.Put(ctx, f.Rel, r, func(n int64) { reported += n })
		require.NoError(t, r.Close())
		require.NoError(t, err)
		want, _ := os.ReadFile(filepath.Join(srcRoot, f.Path))
		require.Equal(t, spi.Written{Size: int64(len(want)), SHA256: sha(string(want))}, w, f.Path)
		relsDone = append(relsDone, f.Rel)
	}
	require.EqualValues(t, len(big)+len("small"), reported)
	_, err = os.Stat(filepath.Join(dstRoot, "out/big.bin"))
	require.True(t, errors.Is(err, iofs.ErrNotExist), "nothing is visible before commit")

	require.NoError(t, st.Commit(ctx, "out", relsDone))
	require.NoError(t, dst.WriteManifest(ctx, "out", []byte(`{"ok":true}`)))

	var got []string
	require.NoError(t, filepath.WalkDir(dstRoot, func(p string, d iofs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dstRoot, p)
			got = append(got, filepath.ToSlash(rel))
		}
		return err
	}))
	sort.Strings(got)
	require.Equal(t, []string{"keep.txt", "out/_weir_manifest.json", "out/big.bin", "out/d/small.txt", "out/empty"}, got,
		"the files, the manifest, nothing staged")
	b, err := os.ReadFile(filepath.Join(dstRoot, "out/big.bin"))
	require.NoError(t, err)
	require.True(t, bytes.Equal([]byte(big), b))
	b, _ = os.ReadFile(filepath.Join(dstRoot, "out/d/small.txt"))
	require.Equal(t, "small", string(b))
	b, _ = os.ReadFile(filepath.Join(dstRoot, "out/_weir_manifest.json"))
	require.Equal(t, `{"ok":true}`, string(b))
	_, err = os.Stat(filepath.Join(dstRoot, ".weir-staging"))
	require.True(t, errors.Is(err, iofs.ErrNotExist), "the staging directory is removed")
}

func TestPutStopsWhenCanceled(t *testing.T) {
	dst := openFS(t, t.TempDir())
	st, err := dst.Stage(context.Background(), "7", 1)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	chunks := 0
	_, err = st.Put(ctx, "x", strings.NewReader(strings.Repeat("x", 3*fs.CopyChunk)), func(int64) {
		chunks++
		cancel()
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, chunks, "the copy stops after the chunk in flight")
	require.NoError(t, st.Discard())
}

func TestDiscardKeepsOtherRuns(t *testing.T) {
	root := t.TempDir()
	dst := openFS(t, root)
	ctx := context.Background()
	a, err := dst.Stage(ctx, "1", 1)
	require.NoError(t, err)
	b, err := dst.Stage(ctx, "2", 1)
	require.NoError(t, err)
	_, err = b.Put(ctx, "f", strings.NewReader("b"), nil)
	require.NoError(t, err)
	require.NoError(t, a.Discard())
	_, err = os.Stat(filepath.Join(root, ".weir-staging/2/1/f"))
	require.NoError(t, err, "another run's staging survives")
	require.NoError(t, b.Discard())
	_, err = os.Stat(filepath.Join(root, ".weir-staging"))
	require.True(t, errors.Is(err, iofs.ErrNotExist))
}
