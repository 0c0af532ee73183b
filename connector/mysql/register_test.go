package mysql_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/connector/mysql"
	"github.com/weirdata/weir/connector/spi"
)

func TestRegister(t *testing.T) {
	dsn, _ := newDatabase(t)
	r := spi.NewRegistry()
	mysql.Register(r)
	require.Equal(t, []string{"mysql"}, r.Kinds())
	c, err := r.Open(context.Background(), spi.System{Name: "m", Kind: mysql.Kind, Settings: map[string]string{"dsn": dsn}})
	require.NoError(t, err)
	defer c.Close()
	_, isSource := c.(spi.RowSource)
	_, isTarget := c.(spi.RowTarget)
	require.True(t, isSource && isTarget)
	_, err = r.Open(context.Background(), spi.System{Name: "m", Kind: mysql.Kind})
	require.ErrorIs(t, err, spi.ErrInvalid)
}
