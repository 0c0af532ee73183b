package spi_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/connector/spi"
)

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"", ".", nil},
		{".", ".", nil},
		{"a/b/../c", "", spi.ErrEscape},
		{"../x", "", spi.ErrEscape},
		{"..", "", spi.ErrEscape},
		{"/etc/passwd", "", spi.ErrEscape},
		{"a\\b", "", spi.ErrInvalid},
		{"a\x00b", "", spi.ErrInvalid},
		{"a//b/./c/", "a/b/c", nil},
		{"trades/2026-11-20/*.csv", "trades/2026-11-20/*.csv", nil},
		{"..foo/bar", "..foo/bar", nil},
	} {
		got, err := spi.CleanPath(tc.in)
		if tc.err != nil {
			require.ErrorIs(t, err, tc.err, "CleanPath(%q)", tc.in)
			continue
		}
		require.NoError(t, err, "CleanPath(%q)", tc.in)
		require.Equal(t, tc.want, got, "CleanPath(%q)", tc.in)
	}
}

func TestReserved(t *testing.T) {
	for name, want := range map[string]bool{
		".weir-staging": true, "_weir_manifest.json": true, ".weir-manifest-0a1b.tmp": true, ".weir-commits": true,
		"weir-staging": false, "data.csv": false, "_weir_manifest.json.bak": false,
	} {
		require.Equal(t, want, spi.Reserved(name), name)
	}
}

type conn struct{}

func (conn) Close() error { return nil }

func TestRegistry(t *testing.T) {
	r := spi.NewRegistry()
	opened := ""
	r.Register("x", func(_ context.Context, sys spi.System) (spi.Conn, error) {
		opened = sys.Name
		return conn{}, nil
	})
	r.Register("bad", func(context.Context, spi.System) (spi.Conn, error) { return nil, spi.ErrInvalid })
	require.Equal(t, []string{"bad", "x"}, r.Kinds())

	c, err := r.Open(context.Background(), spi.System{Name: "s1", Kind: "x"})
	require.NoError(t, err)
	require.NotNil(t, c)
	require.Equal(t, "s1", opened)

	_, err = r.Open(context.Background(), spi.System{Name: "s2", Kind: "ftp"})
	require.ErrorIs(t, err, spi.ErrUnknownKind)
	require.Contains(t, err.Error(), `"ftp"`)

	_, err = r.Open(context.Background(), spi.System{Name: "s3", Kind: "bad"})
	require.ErrorIs(t, err, spi.ErrInvalid)
	require.Contains(t, err.Error(), "s3")

	require.Panics(t, func() { r.Register("x", func(context.Context, spi.System) (spi.Conn, error) { return nil, nil }) })
	require.Panics(t, func() { r.Register("", nil) })
}

func TestErrorUnwrap(t *testing.T) {
	err := &spi.Error{Op: "list", System: "src", Path: "a/b", Err: spi.ErrEscape}
	require.True(t, errors.Is(err, spi.ErrEscape))
	require.Equal(t, "list src:a/b: path escapes the system's root", err.Error())
}
