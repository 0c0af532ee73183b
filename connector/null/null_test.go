package null_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/connector/null"
	"github.com/weirdata/weir/connector/spi"
)

func TestNullSourceYieldsNothing(t *testing.T) {
	ctx := context.Background()
	c, err := null.Open(ctx, spi.System{Name: "void", Kind: null.Kind})
	require.NoError(t, err)
	src := c.(spi.FileSource)
	files, err := src.ListFiles(ctx, "anything/{x}/*.csv")
	require.NoError(t, err)
	require.Empty(t, files)
	_, err = src.ListFiles(ctx, "../up")
	require.ErrorIs(t, err, spi.ErrEscape)
	_, err = src.OpenFile(ctx, "a")
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestNullTargetDiscards(t *testing.T) {
	ctx := context.Background()
	c, err := null.Open(ctx, spi.System{Name: "void", Kind: null.Kind})
	require.NoError(t, err)
	dst := c.(spi.FileTarget)
	st, err := dst.Stage(ctx, "1", 1)
	require.NoError(t, err)
	data := strings.Repeat("weir", 300_000)
	var seen int64
	w, err := st.Put(ctx, "a.csv", strings.NewReader(data), func(n int64) { seen += n })
	require.NoError(t, err)
	sum := sha256.Sum256([]byte(data))
	require.Equal(t, spi.Written{Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}, w)
	require.Equal(t, int64(len(data)), seen)
	require.NoError(t, st.Commit(ctx, "out", []string{"a.csv"}))
	require.NoError(t, dst.WriteManifest(ctx, "out", []byte("{}")))

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = st.Put(canceled, "b", strings.NewReader("x"), nil)
	require.ErrorIs(t, err, context.Canceled)
}
