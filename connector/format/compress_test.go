package format_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/connector/format"
	"github.com/weirdata/weir/connector/spi"
)

func TestCompressionRoundTrip(t *testing.T) {
	rows := hardRows(t)
	for _, f := range []string{"csv", "jsonl"} {
		for _, c := range []string{format.Gzip, format.Zstd, format.None} {
			o := opts(t, f, "compression", c)
			var buf bytes.Buffer
			zw, err := format.NewCompressor(&buf, c)
			require.NoError(t, err)
			w, err := format.NewWriter(zw, allTypes, o)
			require.NoError(t, err)
			require.NoError(t, w.Write(rows))
			require.NoError(t, w.Close())
			require.NoError(t, zw.Close())
			plain := write(t, allTypes, o, rows)
			if c != format.None {
				require.Less(t, buf.Len(), len(plain)/4, "%s %s compresses", f, c)
			}
			zr, err := format.NewDecompressor(bytes.NewReader(buf.Bytes()), c)
			require.NoError(t, err)
			r, err := format.NewReader(zr, allTypes, o, format.Source{Name: "x"})
			require.NoError(t, err)
			res := readAll(t, r, 100)
			require.NoError(t, zr.Close())
			require.Empty(t, res.Bad)
			equalRows(t, rows, res.Rows, true)
		}
	}
	_, err := format.NewDecompressor(strings.NewReader("plain text"), format.Gzip)
	require.ErrorIs(t, err, spi.ErrInvalid)
	zr, err := format.NewDecompressor(strings.NewReader("plain text, not zstd"), format.Zstd)
	if err == nil {
		_, err = io.ReadAll(zr)
	}
	require.Error(t, err)
}

func TestDetect(t *testing.T) {
	for name, want := range map[string][2]string{
		"a/b.csv": {"csv", "none"}, "b.CSV.GZ": {"csv", "gzip"}, "c.jsonl.zst": {"jsonl", "zstd"},
		"d.ndjson": {"jsonl", "none"}, "e.parquet": {"parquet", "none"}, "f.tsv": {"csv", "none"}, "g.bin": {"", "none"},
	} {
		f, c := format.Detect(name)
		require.Equal(t, want, [2]string{f, c}, name)
	}
	require.Equal(t, ".csv.gz", format.Ext("csv", format.Gzip))
	require.Equal(t, ".jsonl.zst", format.Ext("jsonl", format.Zstd))
	require.Equal(t, ".parquet", format.Ext("parquet", format.Zstd))
}
