package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/catalog/catalogtest"

	"github.com/weirdata/weir/connector/spi"
)

func TestParseTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want tableName
		err  string
	}{
		{"trades", tableName{Name: "trades"}, ""},
		{"sales.trades", tableName{Schema: "sales", Name: "trades"}, ""},
		{`"Odd Schema"."Odd ""Table"""`, tableName{Schema: "Odd Schema", Name: `Odd "Table"`}, ""},
		{`"a.b".c`, tableName{Schema: "a.b", Name: "c"}, ""},
		{"Odd Table", tableName{Name: "Odd Table"}, ""},
		{"a.b.c", tableName{}, "want table or schema.table"},
		{"", tableName{}, "empty name"},
		{".t", tableName{}, "empty name part"},
		{`"unterminated`, tableName{}, "unterminated quote"},
		{`"a"b`, tableName{}, "text after a closing quote"},
		{`a"b"`, tableName{}, "misplaced quote"},
		{`""`, tableName{}, "empty name part"},
		{"a\x00b", tableName{}, "NUL byte"},
	}
	for _, tc := range cases {
		got, err := parseTable(tc.in)
		if tc.err != "" {
			require.ErrorIs(t, err, spi.ErrInvalid, tc.in)
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
		again, err := parseTable(got.sanitize())
		require.NoError(t, err)
		require.Equal(t, got, again, "sanitize parses back")
	}
	require.Equal(t, `"Odd Schema"."Odd ""Table"""`, tableName{Schema: "Odd Schema", Name: `Odd "Table"`}.String())
	require.Equal(t, "sales.trades_2024", tableName{Schema: "sales", Name: "trades_2024"}.String())
}

func TestCheckQuery(t *testing.T) {
	t.Parallel()
	ok := []struct{ in, out string }{
		{"SELECT 1", "SELECT 1"},
		{"select 1;", "select 1"},
		{"  WITH a AS (SELECT 1) SELECT * FROM a ; -- done\n", "  WITH a AS (SELECT 1) SELECT * FROM a "},
		{"/* a /* nested */ comment; */ SELECT ';' AS x", "/* a /* nested */ comment; */ SELECT ';' AS x"},
		{"SELECT E'\\';' AS x", "SELECT E'\\';' AS x"},
		{`SELECT 1 AS ";"`, `SELECT 1 AS ";"`},
		{"SELECT $x$;$x$, $$;$$", "SELECT $x$;$x$, $$;$$"},
		{"(SELECT 1) UNION (SELECT 2)", "(SELECT 1) UNION (SELECT 2)"},
		{"SELECT a$b FROM t", "SELECT a$b FROM t"},
	}
	for _, tc := range ok {
		got, err := checkQuery(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.out, got)
	}
	bad := []struct{ in, want string }{
		{"INSERT INTO t VALUES (1)", "starts with INSERT"},
		{"SELECT 1; SELECT 2", "more than one statement"},
		{"SELECT 'a'';' ; DELETE FROM t", "more than one statement"},
		{"SELECT '\\'; DELETE FROM t; --'", "more than one statement"},
		{"SELECT $$ ;", "unterminated dollar quote"},
		{"SELECT \"x", "unterminated quoted identifier"},
		{"/* SELECT", "unterminated comment"},
		{"-- only a comment", "it is empty"},
		{"EXPLAIN ANALYZE DELETE FROM t", "starts with EXPLAIN"},
	}
	for _, tc := range bad {
		_, err := checkQuery(tc.in)
		require.ErrorIs(t, err, spi.ErrInvalid, tc.in)
		require.ErrorContains(t, err, tc.want, tc.in)
	}
}

func FuzzCheckQuery(f *testing.F) {
	for _, s := range []string{"SELECT 1", "SELECT ';'; x", "WITH a AS (SELECT $$;$$) SELECT 1;", "SELECT E'\\'' ;", `SELECT "a""b"`, "/* /* */ */ SELECT 1 -- ;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out, err := checkQuery(q)
		if err != nil {
			require.ErrorIs(t, err, spi.ErrInvalid)
			return
		}
		require.True(t, strings.HasPrefix(q, out), "the result is a prefix of the query")
		again, err := checkQuery(out)
		require.NoError(t, err, "an accepted query stays accepted without its semicolon")
		require.Equal(t, out, again)
	})
}

// TestCopyStream encodes rows of every field type as a binary COPY stream
// (the staging path) and decodes it with the reader's parser, fed in pieces
// of random sizes, as the network delivers it.
func TestCopyStream(t *testing.T) {
	t.Parallel()
	schema := spi.Schema{
		{Name: "s", Type: spi.TypeString}, {Name: "i", Type: spi.TypeInt}, {Name: "f", Type: spi.TypeFloat},
		{Name: "n", Type: spi.TypeDecimal}, {Name: "b", Type: spi.TypeBool}, {Name: "d", Type: spi.TypeDate},
		{Name: "ts", Type: spi.TypeTimestamp}, {Name: "by", Type: spi.TypeBytes},
	}
	zone := time.FixedZone("x", 5*3600+1800)
	var rows []spi.Row
	rows = append(rows, spi.Row{nil, nil, nil, nil, nil, nil, nil, nil})
	for i := range 300 {
		rows = append(rows, spi.Row{
			strings.Repeat("é,\"'\n", i), int64(i * -7919), float64(i) / 3, strings.TrimSuffix("-123456789012345678901234567890."+strings.Repeat("9", i%40), "."),
			i%2 == 0, time.Date(1900+i, 2, 28, 0, 0, 0, 0, time.UTC), time.Date(1969+i%70, 12, 31, 23, 59, 59, i*1000, zone), []byte{byte(i), 0, 255},
		})
	}
	stream, err := stageStream(schema, rows)
	require.NoError(t, err)
	cols := make([]column, len(schema))
	for i, f := range schema {
		cols[i] = column{name: f.Name, dec: decoderFor(stageOID(f.Type))}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, maxChunk := range []int{1, 7, 64, 100000} {
		var got []spi.Row
		sink := newRowSink(cols, 13, func(b spi.Batch) error {
			require.Empty(t, b.Bad)
			for _, r := range b.Rows {
				got = append(got, append(spi.Row(nil), r...))
			}
			return nil
		}, "test")
		p := &copyParser{sink: sink, fields: make([][]byte, len(cols))}
		in := stream
		if maxChunk < 10 {
			in = stream[:len(stream)/5]
		}
		for rest := in; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(maxChunk))
			_, err := p.Write(rest[:n])
			require.NoError(t, err)
			rest = rest[n:]
		}
		require.NoError(t, sink.flush())
		if maxChunk < 10 {
			require.NotEmpty(t, got)
			require.False(t, p.done)
		} else {
			require.True(t, p.done)
			require.Len(t, got, len(rows))
		}
		for i, r := range rows[:len(got)] {
			for j, v := range r {
				if tv, ok := v.(time.Time); ok {
					require.True(t, tv.Equal(got[i][j].(time.Time)), "row %d col %d: %v vs %v", i, j, tv, got[i][j])
					continue
				}
				require.Equal(t, v, got[i][j], "row %d col %d", i, j)
			}
		}
	}
	// An error of emit stops the parse and comes back as it is.
	stop := errors.New("stop")
	sink := newRowSink(cols, 2, func(spi.Batch) error { return stop }, "test")
	p := &copyParser{sink: sink, fields: make([][]byte, len(cols))}
	_, err = p.Write(stream)
	require.ErrorIs(t, err, stop)
	require.ErrorIs(t, p.emitErr, stop)
}

func TestNumericCanonical(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"0": "0", "-0": "0", "0.000": "0.000", "00012.3400": "12.3400", "-.5": "-0.5", "1e5": "100000",
		"1.5e-3": "0.0015", "-12345678.87654321": "-12345678.87654321", "10000.0001": "10000.0001", "9999": "9999",
	} {
		b, err := appendNumeric(nil, in)
		require.NoError(t, err, in)
		got, err := decodeNumeric(nil, b)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "-", ".", "1.2.3", "1e", "abc", "1,5", "NaN", "1e999999"} {
		_, err := appendNumeric(nil, in)
		require.Error(t, err, in)
	}
}

// BenchmarkDecode measures the reader's client side alone: parsing a binary
// COPY stream of trade rows into reused batches (the server's share of a
// read is in BenchmarkRead).
func BenchmarkDecode(b *testing.B) {
	schema := spi.Schema{
		{Name: "id", Type: spi.TypeInt}, {Name: "sym", Type: spi.TypeString}, {Name: "ts", Type: spi.TypeTimestamp},
		{Name: "price", Type: spi.TypeDecimal}, {Name: "qty", Type: spi.TypeInt}, {Name: "buy", Type: spi.TypeBool},
		{Name: "note", Type: spi.TypeString},
	}
	const n = 100000
	rows := make([]spi.Row, n)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		rows[i] = spi.Row{int64(i), "AAPL", t0.Add(time.Duration(i) * time.Millisecond), "1234.5678", int64(i % 1000), i%2 == 0, "note \"x\", with, commas"}
	}
	stream, err := stageStream(schema, rows)
	if err != nil {
		b.Fatal(err)
	}
	cols := make([]column, len(schema))
	for i, f := range schema {
		cols[i] = column{name: f.Name, dec: decoderFor(stageOID(f.Type))}
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		sink := newRowSink(cols, 4096, func(spi.Batch) error { return nil }, "bench")
		p := &copyParser{sink: sink, fields: make([][]byte, len(cols))}
		if _, err := p.Write(stream); err != nil {
			b.Fatal(err)
		}
		_ = sink.flush()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// stageStream encodes rows as a whole binary COPY stream in the staging types.
func stageStream(schema spi.Schema, rows []spi.Row) ([]byte, error) {
	l := &load{spec: spi.LoadSpec{Schema: schema}}
	for _, f := range schema {
		l.encoders = append(l.encoders, encoderFor(f.Type, stageOID(f.Type)))
	}
	tuples, err := l.encode(nil, spi.Batch{Rows: rows})
	if err != nil {
		return nil, err
	}
	return append(append(append([]byte(nil), copyHeader...), tuples...), 0xFF, 0xFF), nil
}

// TestLoadPath: rows go straight into the target unless a field has no
// binary form for its column or the load is an upsert.
func TestLoadPath(t *testing.T) {
	t.Parallel()
	dsn := catalogtest.NewPostgresDSN(t)
	ctx := context.Background()
	pg, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer pg.Close(ctx)
	_, err = pg.Exec(ctx, `CREATE TABLE t (id int4 PRIMARY KEY, f real, n numeric(9,2), s varchar(9), u uuid, j jsonb, d date, ts timestamp, b bytea, iv interval)`)
	require.NoError(t, err)
	c, err := open(ctx, spi.System{Name: "pg", Settings: map[string]string{"dsn": dsn}})
	require.NoError(t, err)
	defer c.Close()
	all := spi.Schema{{Name: "id", Type: spi.TypeInt}, {Name: "f", Type: spi.TypeFloat}, {Name: "n", Type: spi.TypeDecimal},
		{Name: "s", Type: spi.TypeString}, {Name: "u", Type: spi.TypeString}, {Name: "j", Type: spi.TypeString},
		{Name: "d", Type: spi.TypeDate}, {Name: "ts", Type: spi.TypeTimestamp}, {Name: "b", Type: spi.TypeBytes}}
	for _, tc := range []struct {
		schema spi.Schema
		mode   spi.WriteMode
		direct bool
	}{
		{all, spi.ModeAppend, true},
		{all, spi.ModeTruncateInsert, true},
		{all, spi.ModeUpsert, false},
		{append(all, spi.Field{Name: "iv", Type: spi.TypeString}), spi.ModeAppend, false},
		{spi.Schema{{Name: "id", Type: spi.TypeInt}, {Name: "ts", Type: spi.TypeDate}, {Name: "n", Type: spi.TypeInt}, {Name: "f", Type: spi.TypeDecimal}}, spi.ModeAppend, true},
		{spi.Schema{{Name: "id", Type: spi.TypeInt}, {Name: "n", Type: spi.TypeFloat}}, spi.ModeAppend, false},
	} {
		l, err := c.begin(ctx, spi.LoadSpec{RunID: "1", Dataset: spi.Dataset{Table: "t"}, Schema: tc.schema, Mode: tc.mode, Key: []string{"id"}})
		require.NoError(t, err)
		require.Equal(t, tc.direct, l.direct, "%v %s", tc.schema, tc.mode)
		require.NoError(t, l.Abort(ctx))
	}
}
