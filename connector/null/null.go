// Package null is the connector of kind "null": as a source it selects no
// files, and as a target it reads and discards what it is given (hashing it,
// so that a manifest of an fs-to-null run still describes the data read).
// It measures Weir's orchestration overhead (`weir bench`) and read
// throughput. It imports the standard library and connector/spi only.
package null

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	iofs "io/fs"

	"github.com/weirdata/weir/connector/spi"
)

// Kind is the system kind this connector serves.
const Kind = "null"

// Register adds the null connector to r.
func Register(r *spi.Registry) { r.Register(Kind, Open) }

// Conn is an open null system.
type Conn struct{ name string }

var (
	_ spi.FileSource = (*Conn)(nil)
	_ spi.FileTarget = (*Conn)(nil)
)

// Open returns a null connection; a null system has no settings.
func Open(_ context.Context, sys spi.System) (spi.Conn, error) { return &Conn{name: sys.Name}, nil }

// Close does nothing.
func (c *Conn) Close() error { return nil }

// ListFiles selects nothing, for any valid pattern.
func (c *Conn) ListFiles(_ context.Context, pattern string) ([]spi.File, error) {
	if _, err := spi.CleanPath(pattern); err != nil {
		return nil, &spi.Error{Op: "list", System: c.name, Path: pattern, Err: err}
	}
	return nil, nil
}

// OpenFile fails: a null system holds no files.
func (c *Conn) OpenFile(_ context.Context, name string) (io.ReadCloser, error) {
	return nil, &spi.Error{Op: "open", System: c.name, Path: name, Err: iofs.ErrNotExist}
}

// Stage returns a staging area that discards.
func (c *Conn) Stage(context.Context, string, int) (spi.Stage, error) { return discard{}, nil }

// WriteManifest discards the manifest.
func (c *Conn) WriteManifest(context.Context, string, []byte) error { return nil }

type discard struct{}

// Put reads src to its end, hashing it, and keeps nothing.
func (discard) Put(ctx context.Context, _ string, src io.Reader, progress func(int64)) (spi.Written, error) {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var size int64
	for {
		if err := ctx.Err(); err != nil {
			return spi.Written{}, err
		}
		n, err := src.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			size += int64(n)
			if progress != nil {
				progress(int64(n))
			}
		}
		if err == io.EOF {
			return spi.Written{Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
		}
		if err != nil {
			return spi.Written{}, fmt.Errorf("read: %w", err)
		}
	}
}

func (discard) Commit(context.Context, string, []string) error { return nil }
func (discard) Discard() error                                 { return nil }
