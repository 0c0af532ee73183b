package postgres_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/connector/spi"
)

const allTypesDDL = `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
CREATE TABLE %s (
	id int8 PRIMARY KEY,
	i2 int2, i4 int4, pi posint, f4 float4, f8 float8,
	n numeric, n2 numeric(30,9),
	t text, vc varchar(20), ch char(5), u uuid, j json, jb jsonb,
	b bool, d date, ts timestamp, tstz timestamptz(6), by bytea,
	iv interval, arr int4[], ip inet, m mood
)`

// directCols are the columns of allTypesDDL a load copies straight into the table.
const directCols = "id, i2, i4, pi, f4, f8, n, n2, t, vc, ch, u, j, jb, b, d, ts, tstz, by"

// TestRoundTripEveryType reads a row of every type (and a row of NULLs)
// and loads what it read into a twin table: both tables then print the same.
func TestRoundTripEveryType(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	d.exec(t, fmt.Sprintf(allTypesDDL, "src"))
	d.exec(t, `CREATE TABLE dst (LIKE src)`)
	big := strings.Repeat("é\"',;\t\n\\x", 1<<20/10)
	d.exec(t, `INSERT INTO src (id) VALUES (1)`)
	d.exec(t, `INSERT INTO src VALUES (2, -32768, -2147483648, 7, 1.1, -1.5e300,
		12345678901234567890.123456789, -0.000000001,
		$1, 'héllo 世界 🎉', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 2,  "a": [1, "x"]}', '{"b": 2, "a": [1, "x"]}',
		true, '1999-12-31', '2024-02-29 23:59:59.999999', '2024-03-10 12:34:56.789012+05:30', '\x00ff10',
		'1 day 02:03:04', '{1,NULL,3}', '192.168.0.1/24', 'happy')`, big)
	d.exec(t, `INSERT INTO src (id, i2, i4, f8, n, n2, t, b, d, ts, tstz, by) VALUES
		(3, 32767, 2147483647, 'NaN', '-0', 0, '', false, '0001-01-01', '1900-01-01 00:00:00', '1970-01-01 00:00:00-08', ''),
		(4, 0, 0, '-Infinity', '100000000000000000000000000000000.5', 123.4, 'O''Brien "quoted"', NULL, '9999-12-31', '2262-04-12 00:00:00', '0044-03-15 12:00:00+00 BC', '\x')`)
	c := d.open(t)
	ds := spi.Dataset{Table: "src"}
	schema, err := c.Describe(ctx, ds)
	require.NoError(t, err)
	types := map[string]spi.FieldType{}
	for _, f := range schema {
		types[f.Name] = f.Type
	}
	require.Equal(t, map[string]spi.FieldType{
		"id": spi.TypeInt, "i2": spi.TypeInt, "i4": spi.TypeInt, "pi": spi.TypeInt, "f4": spi.TypeFloat, "f8": spi.TypeFloat,
		"n": spi.TypeDecimal, "n2": spi.TypeDecimal, "t": spi.TypeString, "vc": spi.TypeString, "ch": spi.TypeString,
		"u": spi.TypeString, "j": spi.TypeString, "jb": spi.TypeString, "b": spi.TypeBool, "d": spi.TypeDate,
		"ts": spi.TypeTimestamp, "tstz": spi.TypeTimestamp, "by": spi.TypeBytes, "iv": spi.TypeString,
		"arr": spi.TypeString, "ip": spi.TypeString, "m": spi.TypeString,
	}, types)
	require.Equal(t, spi.Field{Name: "n2", Type: spi.TypeDecimal, Nullable: true, Precision: 30, Scale: 9}, schema[7])
	require.Equal(t, spi.Field{Name: "n", Type: spi.TypeDecimal, Nullable: true}, schema[6])
	require.False(t, schema[0].Nullable)
	require.True(t, schema[1].Nullable)

	for _, method := range []string{"rows", "copy"} {
		t.Run(method, func(t *testing.T) {
			ds := spi.Dataset{Table: "src", Options: map[string]string{"read_method": method}}
			rows, bad, _ := readAll(t, c, ds, 1)
			require.Empty(t, bad)
			require.Len(t, rows, 4)
			byID := map[int64]spi.Row{}
			for _, r := range rows {
				byID[r[0].(int64)] = r
			}
			for i := 1; i < len(schema); i++ {
				require.Nil(t, byID[1][i], schema[i].Name)
			}
			r := byID[2]
			col := func(name string) any {
				for i, f := range schema {
					if f.Name == name {
						return r[i]
					}
				}
				t.Fatalf("no column %s", name)
				return nil
			}
			require.Equal(t, int64(-32768), col("i2"))
			require.Equal(t, int64(-2147483648), col("i4"))
			require.Equal(t, int64(7), col("pi"))
			require.Equal(t, float64(float32(1.1)), col("f4"))
			require.Equal(t, -1.5e300, col("f8"))
			require.Equal(t, "12345678901234567890.123456789", col("n"))
			require.Equal(t, "-0.000000001", col("n2"))
			require.Equal(t, big, col("t"))
			require.Equal(t, "héllo 世界 🎉", col("vc"))
			require.Equal(t, "ab   ", col("ch"))
			require.Equal(t, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", col("u"))
			require.Equal(t, `{"b": 2,  "a": [1, "x"]}`, col("j"))
			require.Equal(t, `{"a": [1, "x"], "b": 2}`, col("jb"))
			require.Equal(t, true, col("b"))
			require.Equal(t, time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), col("d"))
			require.Equal(t, time.Date(2024, 2, 29, 23, 59, 59, 999999000, time.UTC), col("ts"))
			require.True(t, time.Date(2024, 3, 10, 7, 4, 56, 789012000, time.UTC).Equal(col("tstz").(time.Time)))
			require.Equal(t, []byte{0, 0xff, 0x10}, col("by"))
			require.Equal(t, "1 day 02:03:04", col("iv"))
			require.Equal(t, "{1,NULL,3}", col("arr"))
			require.Equal(t, "192.168.0.1/24", col("ip"))
			require.Equal(t, "happy", col("m"))
			require.True(t, math.IsNaN(byID[3][5].(float64)))
			require.Equal(t, "0", byID[3][6])
			require.Equal(t, "0.000000000", byID[3][7])
			require.Equal(t, "", byID[3][8])
			require.Equal(t, []byte{}, byID[3][22-4])
			require.Equal(t, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), byID[3][15])
			require.Equal(t, "100000000000000000000000000000000.5", byID[4][6])
			require.Equal(t, "123.400000000", byID[4][7])
			require.Equal(t, time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC), byID[4][17])

			// dst takes every type (through the staging table: intervals,
			// arrays, inet and enums have no binary form here); direct only
			// the types copied straight into the target.
			d.exec(t, "TRUNCATE dst")
			cm, err := load(t, c, spi.LoadSpec{RunID: "rt" + method, Mapping: "m", Dataset: spi.Dataset{Table: "dst"}, Schema: schema, Mode: spi.ModeAppend}, rows, 2)
			require.NoError(t, err)
			require.Equal(t, int64(4), cm.Rows)
			d.exec(t, "DROP TABLE IF EXISTS direct")
			d.exec(t, "CREATE TABLE direct AS SELECT "+directCols+" FROM src WITH NO DATA")
			var directRows []spi.Row
			for _, r := range rows {
				directRows = append(directRows, r[:19])
			}
			cm, err = load(t, c, spi.LoadSpec{RunID: "rd" + method, Mapping: "m", Dataset: spi.Dataset{Table: "direct"}, Schema: schema[:19], Mode: spi.ModeAppend}, directRows, 3)
			require.NoError(t, err)
			require.Equal(t, int64(4), cm.Rows)
			require.Equal(t, d.scalar(t, "SELECT md5(string_agg(ROW("+directCols+")::text, '|' ORDER BY id)) FROM src s"),
				d.scalar(t, "SELECT md5(string_agg(s::text, '|' ORDER BY id)) FROM direct s"))
			want := d.scalar(t, "SELECT md5(string_agg(s::text, '|' ORDER BY id)) FROM src s")
			got := d.scalar(t, "SELECT md5(string_agg(s::text, '|' ORDER BY id)) FROM dst s")
			if want != got {
				for _, f := range schema {
					t.Log(f.Name, d.scalar(t, fmt.Sprintf(`SELECT string_agg(a.id || ': ' || left(a.%[1]s::text, 80) || ' <> ' || left(b.%[1]s::text, 80), ', ') FROM src a JOIN dst b USING (id) WHERE a.%[1]s::text IS DISTINCT FROM b.%[1]s::text`, f.Name)))
				}
			}
			require.Equal(t, want, got)
		})
	}
}

// TestBadValues: a value without a field value (NaN decimal, infinite date)
// makes its row a Bad record; the read goes on.
func TestBadValues(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	d.exec(t, `CREATE TABLE t (id int, n numeric, d date)`)
	d.exec(t, `INSERT INTO t VALUES (1, 1, '2024-01-01'), (2, 'NaN', '2024-01-01'), (3, 3, 'infinity'), (4, 4, NULL)`)
	c := d.open(t)
	for _, method := range []string{"rows", "copy"} {
		rows, bad, _ := readAll(t, c, spi.Dataset{Table: "t", Options: map[string]string{"read_method": method}}, 1)
		require.Len(t, rows, 2)
		require.Len(t, bad, 2)
		require.Contains(t, bad[0].Error(), "t partition 0 row 2: column n: numeric NaN")
		require.Contains(t, bad[1].Error(), "row 3: column d: infinite date")
	}
}

// TestDecimalExact writes random decimals through the staging COPY and reads
// them back, comparing with PostgreSQL's own text of each value.
func TestDecimalExact(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	d.exec(t, `CREATE TABLE t (id int8 PRIMARY KEY, n numeric, s text)`)
	rng := rand.New(rand.NewPCG(1, 2))
	var rows []spi.Row
	digits := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
		return b.String()
	}
	fixed := []string{"0", "-0", "0.0000", "1", "-1", "10000", "9999.9999", "0.0001", "-0.00010000",
		"12345678901234567890.123456789", "+5", ".5", "5.", "1e3", "1.5E-3", "000123.4500"}
	for i, s := range fixed {
		rows = append(rows, spi.Row{int64(i), s, s})
	}
	for i := range 2000 {
		s := digits(rng.IntN(30))
		if rng.IntN(2) == 0 {
			s += "." + digits(rng.IntN(25))
		}
		if s == "" || s == "." {
			s = "0"
		}
		if rng.IntN(3) == 0 {
			s = "-" + s
		}
		rows = append(rows, spi.Row{int64(len(fixed) + i), s, s})
	}
	c := d.open(t)
	schema := spi.Schema{{Name: "id", Type: spi.TypeInt}, {Name: "n", Type: spi.TypeDecimal}, {Name: "s", Type: spi.TypeString}}
	_, err := load(t, c, spi.LoadSpec{RunID: "1", Dataset: spi.Dataset{Table: "t"}, Schema: schema}, rows, 500)
	require.NoError(t, err)
	// PostgreSQL parses the text itself: the binary we sent must equal it.
	require.Equal(t, "0", d.scalar(t, "SELECT count(*)::text FROM t WHERE n IS DISTINCT FROM s::numeric OR scale(n) <> scale(s::numeric)"))
	got, _, _ := readAll(t, c, spi.Dataset{Table: "t"}, 1)
	require.Len(t, got, len(rows))
	text := map[int64]string{}
	pgRows, err := d.pg.Query(ctx, "SELECT id, n::text FROM t")
	require.NoError(t, err)
	for pgRows.Next() {
		var id int64
		var s string
		require.NoError(t, pgRows.Scan(&id, &s))
		text[id] = s
	}
	require.NoError(t, pgRows.Err())
	for _, r := range got {
		require.Equal(t, text[r[0].(int64)], r[1], "id %d from %q", r[0], r[2])
	}
	// Not decimals at all: a precise error naming the field.
	l, err := c.Begin(ctx, spi.LoadSpec{RunID: "2", Dataset: spi.Dataset{Table: "t"}, Schema: schema})
	require.NoError(t, err)
	err = l.Write(ctx, 0, spi.Batch{Rows: []spi.Row{{int64(1), "1.2.3", ""}}, Locs: []string{"in.csv:7"}})
	require.ErrorContains(t, err, `in.csv:7: field n: "1.2.3" is not a decimal`)
	err = l.Write(ctx, 0, spi.Batch{Rows: []spi.Row{{"1", "1", ""}}})
	require.ErrorContains(t, err, `row 1 of the batch: field id: value of Go type string is not a int`)
	require.NoError(t, l.Abort(ctx))
}
