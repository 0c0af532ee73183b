package format

import (
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// NewDecompressor returns a reader of the decompressed bytes of r
// compressed with c (None returns r itself). Closing it releases the
// decoder, not r.
func NewDecompressor(r io.Reader, c string) (io.ReadCloser, error) {
	switch c {
	case "", None:
		return io.NopCloser(r), nil
	case Gzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("%w: not gzip data: %v", ErrFormat, err)
		}
		return zr, nil
	case Zstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(false))
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrFormat, err)
		}
		return zr.IOReadCloser(), nil
	}
	return nil, fmt.Errorf("%w: cannot decompress %q", ErrFormat, c)
}

// NewCompressor returns a writer that compresses into w with c (None
// passes bytes through). Close ends the compressed stream, not w.
func NewCompressor(w io.Writer, c string) (io.WriteCloser, error) {
	switch c {
	case "", None:
		return nopWriteCloser{w}, nil
	case Gzip:
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case Zstd:
		zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zw, nil
	}
	return nil, fmt.Errorf("%w: cannot compress with %q", ErrFormat, c)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
