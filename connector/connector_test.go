package connector_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/connector"
)

func TestDefaultHasFSAndNull(t *testing.T) {
	r := connector.Default()
	require.Equal(t, []string{"fs", "null"}, r.Kinds())
	ctx := context.Background()

	c, err := r.Open(ctx, connector.System{Name: "d", Kind: "fs", Settings: map[string]string{"root": t.TempDir()}})
	require.NoError(t, err)
	require.Implements(t, (*connector.FileSource)(nil), c)
	require.Implements(t, (*connector.FileTarget)(nil), c)
	require.NoError(t, c.Close())

	n, err := r.Open(ctx, connector.System{Name: "n", Kind: "null"})
	require.NoError(t, err)
	require.Implements(t, (*connector.FileSource)(nil), n)
	require.Implements(t, (*connector.FileTarget)(nil), n)

	_, err = r.Open(ctx, connector.System{Name: "p", Kind: "postgres"})
	require.ErrorIs(t, err, connector.ErrUnknownKind)
}
