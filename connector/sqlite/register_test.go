package sqlite_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/connector/sqlite"
)

func TestRegister(t *testing.T) {
	root, name, _ := newDB(t, "CREATE TABLE t (x)")
	r := spi.NewRegistry()
	sqlite.Register(r)
	require.Equal(t, []string{"sqlite"}, r.Kinds())
	c, err := r.Open(context.Background(), spi.System{Name: "s", Kind: sqlite.Kind, Settings: map[string]string{"root": root, "path": name}})
	require.NoError(t, err)
	defer c.Close()
	_, isSource := c.(spi.RowSource)
	_, isTarget := c.(spi.RowTarget)
	require.True(t, isSource && isTarget)
	_, err = r.Open(context.Background(), spi.System{Name: "s", Kind: sqlite.Kind, Settings: map[string]string{"root": root, "path": "../x.db"}})
	require.ErrorIs(t, err, spi.ErrEscape)
}
