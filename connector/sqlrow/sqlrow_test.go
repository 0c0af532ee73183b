package sqlrow_test

import (
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/connector/sqlrow"
)

func TestDecimal(t *testing.T) {
	good := map[string]string{
		"0":        "0",
		"-0":       "0",
		"-0.000":   "0.000",
		"12.340":   "12.340",
		"+12.340":  "12.340",
		"-12.340":  "-12.340",
		"007.5":    "7.5",
		".5":       "0.5",
		"5.":       "5",
		"1.5e3":    "1500",
		"15e-1":    "1.5",
		"-1.25E-3": "-0.00125",
		"1e0":      "1",
		"123456789012345678901234567890.123456789": "123456789012345678901234567890.123456789",
		"-99999999999999999999999999999.999999999": "-99999999999999999999999999999.999999999",
	}
	for in, want := range good {
		got, err := sqlrow.Decimal(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "-", ".", "1.2.3", "abc", "1e", "1e5000", "0x10", " 1", "1 ", "NaN", "--1"} {
		_, err := sqlrow.Decimal(in)
		require.Error(t, err, "%q", in)
	}
	for _, f := range []float64{0, 1.5, -2.25, 1e20, 1e-7, math.MaxFloat64, math.SmallestNonzeroFloat64, 0.1} {
		s, err := sqlrow.DecimalFromFloat(f)
		require.NoError(t, err)
		require.NotContains(t, s, "e")
		back, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err)
		require.Equal(t, f, back)
	}
	_, err := sqlrow.DecimalFromFloat(math.NaN())
	require.Error(t, err)
}

// TestSplitKeyRange checks that the ranges cover every key of [lo, hi]
// exactly once, including at the edges of int64.
func TestSplitKeyRange(t *testing.T) {
	cases := []struct {
		lo, hi int64
		n      int
	}{
		{1, 100, 4}, {1, 3, 8}, {5, 5, 3}, {-10, 10, 7}, {0, 1000003, 16},
		{math.MinInt64, math.MaxInt64, 5}, {math.MaxInt64 - 3, math.MaxInt64, 2}, {math.MinInt64, math.MinInt64 + 9, 3},
	}
	in := func(k sqlrow.KeyRange, v int64) bool {
		return v >= k.Lo && (v < k.Hi || (k.Last && v <= k.Hi))
	}
	for _, c := range cases {
		ranges := sqlrow.SplitKeyRange("id", c.lo, c.hi, c.n, true)
		require.LessOrEqual(t, len(ranges), c.n)
		require.True(t, ranges[0].Nulls)
		require.True(t, ranges[len(ranges)-1].Last)
		require.Equal(t, c.lo, ranges[0].Lo)
		require.Equal(t, c.hi, ranges[len(ranges)-1].Hi)
		for i, r := range ranges {
			if i > 0 {
				require.Equal(t, ranges[i-1].Hi, r.Lo, "ranges touch")
				require.False(t, r.Nulls)
			}
			require.True(t, r.Lo < r.Hi || (r.Last && r.Lo == r.Hi), "range %v is not empty", r)
			p, ok, err := sqlrow.ParsePartition(spi.Partition{Seq: i, Spec: r.Spec()})
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, r, p)
		}
		// Keys at the edges and around every boundary fall in exactly one range.
		probe := []int64{c.lo, c.hi}
		for _, r := range ranges {
			probe = append(probe, r.Lo, r.Hi)
			if r.Lo > math.MinInt64 {
				probe = append(probe, r.Lo-1)
			}
		}
		for _, v := range probe {
			if v < c.lo || v > c.hi {
				continue
			}
			hits := 0
			for _, r := range ranges {
				if in(r, v) {
					hits++
				}
			}
			require.Equal(t, 1, hits, "key %d in %v", v, ranges)
		}
	}
	if len(sqlrow.SplitKeyRange("id", 1, 1000, 4, false)) != 4 {
		t.Fatal("want 4 ranges")
	}
	w, args := sqlrow.KeyRange{Column: "id", Lo: 1, Hi: 9, Last: true, Nulls: true}.Where("`id`")
	require.Equal(t, "(`id` >= ? AND `id` <= ? OR `id` IS NULL)", w)
	require.Equal(t, []any{int64(1), int64(9)}, args)
	_, _, err := sqlrow.ParsePartition(spi.Partition{Spec: map[string]string{"kind": "key", "column": "id", "lo": "9", "hi": "1"}})
	require.ErrorIs(t, err, spi.ErrInvalid)
	_, _, err = sqlrow.ParsePartition(spi.Partition{Spec: map[string]string{"kind": "blocks"}})
	require.ErrorIs(t, err, spi.ErrInvalid)
}

func TestCheckQuery(t *testing.T) {
	good := map[string]string{
		"SELECT 1":                              "SELECT 1",
		"  select a from t ;  ":                 "select a from t",
		"with x as (select 1) select * from x;": "with x as (select 1) select * from x",
		"-- note\nSELECT ';' AS s -- trailing":  "-- note\nSELECT ';' AS s -- trailing",
		"/* c; */ SELECT \"a;b\" FROM `t;`;;":   "/* c; */ SELECT \"a;b\" FROM `t;`",
		"SELECT 'it''s; fine'":                  "SELECT 'it''s; fine'",
		"SELECT 1; -- done":                     "SELECT 1",
	}
	for in, want := range good {
		got, err := sqlrow.CheckQuery(in, false)
		require.NoError(t, err, in)
		require.Equal(t, want, got)
	}
	bad := []string{
		"", "DELETE FROM t", "SELECT 1; DROP TABLE t", "UPDATE t SET a = 1", "SELECT 'open",
		"/* SELECT */ INSERT INTO t VALUES (1)", "SELECT 1 /* open", "SHOW TABLES",
	}
	for _, in := range bad {
		_, err := sqlrow.CheckQuery(in, false)
		require.ErrorIs(t, err, spi.ErrInvalid, in)
	}
	// A backslash escapes a quote in MySQL, not in SQLite.
	_, err := sqlrow.CheckQuery(`SELECT 'a\'; DROP TABLE t; --'`, true)
	require.NoError(t, err)
	_, err = sqlrow.CheckQuery(`SELECT 'a\'; DROP TABLE t; --'`, false)
	require.ErrorIs(t, err, spi.ErrInvalid)
}

func TestCheckColumns(t *testing.T) {
	cols := []sqlrow.TargetColumn{
		{Name: "id", Native: "bigint", Type: spi.TypeInt},
		{Name: "Amount", Native: "decimal(38,9)", Type: spi.TypeDecimal},
		{Name: "note", Native: "text", Type: spi.TypeString},
		{Name: "req", Native: "int", Type: spi.TypeInt, Required: true},
		{Name: "gen", Native: "int", Type: spi.TypeInt, Generated: true},
		{Name: "any", Native: "", Type: ""},
	}
	got, err := sqlrow.CheckColumns("t", cols, spi.Schema{{Name: "req", Type: spi.TypeBool}, {Name: "amount", Type: spi.TypeInt}, {Name: "any", Type: spi.TypeBytes}})
	require.NoError(t, err)
	require.Equal(t, []string{"req", "Amount", "any"}, []string{got[0].Name, got[1].Name, got[2].Name})

	_, err = sqlrow.CheckColumns("t", cols, spi.Schema{{Name: "id", Type: spi.TypeString}, {Name: "missing", Type: spi.TypeInt}, {Name: "gen", Type: spi.TypeInt}, {Name: "ID", Type: spi.TypeInt}})
	require.ErrorIs(t, err, spi.ErrInvalid)
	msg := err.Error()
	for _, want := range []string{
		`column t.id is bigint (int), it cannot take field "id" of type string`,
		`table t has no column "missing"`,
		"column t.gen is generated",
		`fields "id" and "ID" both name column t.id`,
		"column t.req is NOT NULL without a default",
	} {
		require.True(t, strings.Contains(msg, want), "%q lacks %q", msg, want)
	}
	_, err = sqlrow.CheckColumns("t", cols, nil)
	require.ErrorIs(t, err, spi.ErrInvalid)

	for _, c := range []struct {
		col, f spi.FieldType
		ok     bool
	}{
		{spi.TypeString, spi.TypeInt, false}, {spi.TypeInt, spi.TypeDecimal, false}, {spi.TypeDecimal, spi.TypeInt, true},
		{spi.TypeDate, spi.TypeTimestamp, false}, {spi.TypeTimestamp, spi.TypeDate, true}, {spi.TypeBytes, spi.TypeString, true},
		{spi.TypeString, spi.TypeBytes, false}, {spi.TypeBool, spi.TypeInt, false}, {spi.TypeInt, spi.TypeBool, true},
	} {
		require.Equal(t, c.ok, sqlrow.Assignable(c.col, c.f), "%s <- %s", c.col, c.f)
	}
}

func TestQuote(t *testing.T) {
	q, err := sqlrow.Quote("select `x` y", '`')
	require.NoError(t, err)
	require.Equal(t, "`select ``x`` y`", q)
	q, err = sqlrow.Quote(`a "b"`, '"')
	require.NoError(t, err)
	require.Equal(t, `"a ""b"""`, q)
	_, err = sqlrow.Quote("", '"')
	require.ErrorIs(t, err, spi.ErrInvalid)
	_, err = sqlrow.Quote("a\x00b", '"')
	require.ErrorIs(t, err, spi.ErrInvalid)
	s, tb := sqlrow.SplitTable("sales.trades")
	require.Equal(t, [2]string{"sales", "trades"}, [2]string{s, tb})
	s, tb = sqlrow.SplitTable("trades")
	require.Equal(t, [2]string{"", "trades"}, [2]string{s, tb})
}

// FuzzDecimal: what Decimal accepts it returns canonical (a fixed point of
// Decimal) and equal in value to its input.
func FuzzDecimal(f *testing.F) {
	for _, s := range []string{"0", "-12.340", "1.5e3", ".5", "007", "-0.0", "1e-30", "+9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := sqlrow.Decimal(s)
		if err != nil {
			return
		}
		again, err := sqlrow.Decimal(out)
		require.NoError(t, err, "%q -> %q", s, out)
		require.Equal(t, out, again)
		a, ok1 := new(big.Rat).SetString(s)
		b, ok2 := new(big.Rat).SetString(out)
		if ok1 && ok2 {
			require.Zero(t, a.Cmp(b), "%q -> %q", s, out)
		}
	})
}
