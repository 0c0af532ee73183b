package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	iofs "io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/connector/sqlite"
)

func TestOpenConfinesThePath(t *testing.T) {
	root, name, _ := newDB(t, "CREATE TABLE t (id INTEGER)")
	outside := t.TempDir()
	// A database outside the root, reachable by .., an absolute path or a link.
	odb, err := sql.Open("sqlite", filepath.Join(outside, "secret.db"))
	require.NoError(t, err)
	_, err = odb.Exec("CREATE TABLE secret (x)")
	require.NoError(t, err)
	odb.Close()
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret.db"), filepath.Join(root, "link.db")))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "linkdir")))
	require.NoError(t, os.Mkdir(filepath.Join(root, "sub"), 0o755))
	require.NoError(t, os.Symlink(filepath.Join(root, name), filepath.Join(root, "sub", "inside.db")))

	ctx := context.Background()
	openWith := func(s map[string]string) error {
		c, err := sqlite.Open(ctx, spi.System{Name: "lite", Kind: sqlite.Kind, Settings: s})
		if err == nil {
			c.Close()
		}
		return err
	}
	rel, err := filepath.Rel(root, filepath.Join(outside, "secret.db"))
	require.NoError(t, err)
	for _, p := range []string{rel, "../secret.db", "sub/../../x.db", filepath.Join(outside, "secret.db"), "link.db", "linkdir/secret.db"} {
		err := openWith(map[string]string{"root": root, "path": p})
		require.ErrorIs(t, err, spi.ErrEscape, p)
	}
	require.NoError(t, openWith(map[string]string{"root": root, "path": name}))
	require.NoError(t, openWith(map[string]string{"root": root, "path": filepath.Join(root, name)}), "absolute inside the root")
	require.NoError(t, openWith(map[string]string{"root": root, "path": "sub/inside.db"}), "link inside the root")
	require.NoError(t, openWith(map[string]string{"root": root, "dsn": name}), "dsn for path")
	require.NoError(t, openWith(map[string]string{"path": filepath.Join(root, name)}), "absolute without a root")

	for _, s := range []map[string]string{
		{"root": root},
		{"path": name},
		{"root": "relative", "path": name},
		{"root": root, "path": "sub"},
		{"root": root, "path": "a\x00b"},
		{"root": filepath.Join(root, "missing"), "path": name},
	} {
		require.ErrorIs(t, openWith(s), spi.ErrInvalid, "%v", s)
	}
	err = openWith(map[string]string{"root": root, "path": "missing.db"})
	require.ErrorIs(t, err, iofs.ErrNotExist)
	_, statErr := os.Stat(filepath.Join(root, "missing.db"))
	require.ErrorIs(t, statErr, iofs.ErrNotExist, "a missing database is not created")

	// Odd characters in file names are passed to SQLite intact.
	odd := "we?ird #name %41.db"
	db, err := sql.Open("sqlite", "file:"+strings.NewReplacer("?", "%3f", "#", "%23", "%", "%25").Replace(filepath.Join(root, odd)))
	require.NoError(t, err)
	_, err = db.Exec("CREATE TABLE odd (x)")
	require.NoError(t, err)
	db.Close()
	c := open(t, root, odd)
	_, err = c.Describe(ctx, spi.Dataset{Table: "odd"})
	require.NoError(t, err)
}

const allTypes = `CREATE TABLE "all types" (id INTEGER PRIMARY KEY, i BIGINT, b BOOLEAN, f DOUBLE, d TEXT DECIMAL(38,9),
	s VARCHAR(255), txt TEXT, j JSON, dt DATE, ts DATETIME, tsz TIMESTAMP, bin BLOB, nd DECIMAL(12,3), anything)`

var allTypesSchema = spi.Schema{
	{Name: "id", Type: spi.TypeInt, Nullable: true}, {Name: "i", Type: spi.TypeInt, Nullable: true}, {Name: "b", Type: spi.TypeBool, Nullable: true},
	{Name: "f", Type: spi.TypeFloat, Nullable: true}, {Name: "d", Type: spi.TypeDecimal, Nullable: true, Precision: 38, Scale: 9},
	{Name: "s", Type: spi.TypeString, Nullable: true}, {Name: "txt", Type: spi.TypeString, Nullable: true},
	{Name: "j", Type: spi.TypeString, Nullable: true}, {Name: "dt", Type: spi.TypeDate, Nullable: true},
	{Name: "ts", Type: spi.TypeTimestamp, Nullable: true}, {Name: "tsz", Type: spi.TypeTimestamp, Nullable: true},
	{Name: "bin", Type: spi.TypeBytes, Nullable: true}, {Name: "nd", Type: spi.TypeDecimal, Nullable: true, Precision: 12, Scale: 3},
	{Name: "anything", Type: spi.TypeString, Nullable: true},
}

func allTypesRows() []spi.Row {
	tokyo := time.FixedZone("JST", 9*3600)
	ny := time.FixedZone("EST", -5*3600)
	big := strings.ToValidUTF8(strings.Repeat("0123456789abcdef€😀", 1<<16)[:1<<20], "")
	return []spi.Row{
		{int64(1), int64(42), true, 3.14159, "12345678901234567890123456789.123456789", "plain", "text", `{"a": [1, 2]}`,
			date(2024, 2, 29), time.Date(2024, 3, 10, 1, 59, 59, 999999999, ny), time.Date(2024, 12, 31, 23, 0, 0, 1, tokyo),
			[]byte{0, 1, 2, 255}, "123456789.125", "x"},
		{int64(2), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
		{int64(math.MinInt64), int64(math.MinInt64), false, -1.5e-300, "-99999999999999999999999999999.999999999",
			"quotes ' \" ` \\ ; , \t tab\nnewline\r\n\x00nul", "emoji 😀🎉 ünïcødé 中文 𝄞", `"string"`,
			date(1, 1, 1), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
			[]byte{}, "-0.001", ""},
		{int64(math.MaxInt64), int64(math.MaxInt64), true, math.MaxFloat64, "-0.000000001", "", big, "null",
			date(9999, 12, 31), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
			[]byte(big), "999999999.999", "NULL"},
		{int64(3), int64(0), false, math.Inf(-1), "0.000000000", "NULL", "\\N", "[]",
			date(1970, 1, 1), time.Date(2000, 1, 1, 12, 0, 0, 0, time.FixedZone("X", 5*3600+45*60)), nil,
			nil, "0", nil},
	}
}

func TestRoundTripEveryType(t *testing.T) {
	root, name, db := newDB(t, allTypes)
	c := open(t, root, name)
	ctx := context.Background()
	ds := spi.Dataset{Table: "all types"}
	schema, err := c.Describe(ctx, ds)
	require.NoError(t, err)
	require.Equal(t, allTypesSchema, schema, "an untyped column of an empty table reads as string")
	rows := allTypesRows()
	com, err := load(t, c, spi.LoadSpec{RunID: "100000000000000000000001", Attempt: 1, Mapping: "m", Dataset: ds, Schema: schema, Mode: spi.ModeAppend}, rows, 3)
	require.NoError(t, err)
	require.Equal(t, int64(len(rows)), com.Rows)

	c2 := open(t, root, name) // a fresh connection describes the untyped column from its values
	schema, err = c2.Describe(ctx, ds)
	require.NoError(t, err)
	require.Equal(t, allTypesSchema, schema)
	got, bad := readAll(t, c2, ds, 3)
	require.Empty(t, bad)
	requireSameRows(t, allTypesRows(), got)

	// The stored forms follow the documented convention.
	var ts, dt, typ, nd string
	require.NoError(t, db.QueryRow(`SELECT ts || '', dt || '', typeof(d), typeof(nd) FROM "all types" WHERE id = 1`).Scan(&ts, &dt, &typ, &nd))
	require.Equal(t, "2024-03-10 06:59:59.999999999", ts)
	require.Equal(t, "2024-02-29", dt)
	require.Equal(t, [2]string{"text", "real"}, [2]string{typ, nd})
	var nulls, empties int
	require.NoError(t, db.QueryRow(`SELECT SUM(bin IS NULL), SUM(length(bin) = 0) FROM "all types"`).Scan(&nulls, &empties))
	require.Equal(t, [2]int{2, 1}, [2]int{nulls, empties})
	var none int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE 'weir_stage%'`).Scan(&none))
	require.Zero(t, none, "staging never touches the database file's schema")
}

// TestDecimalsKeepTheirDigits: a NUMERIC-affinity column refuses decimals
// it would round, a TEXT DECIMAL column keeps them exactly.
func TestDecimalsKeepTheirDigits(t *testing.T) {
	root, name, _ := newDB(t, "CREATE TABLE n (id INTEGER PRIMARY KEY, d DECIMAL(38,9))", "CREATE TABLE x (id INTEGER PRIMARY KEY, d TEXT DECIMAL(38,9))")
	c := open(t, root, name)
	schema := spi.Schema{{Name: "id", Type: spi.TypeInt}, {Name: "d", Type: spi.TypeDecimal}}
	exact := []spi.Row{{int64(1), "12345678901234567890.123456789"}, {int64(2), "1.50"}, {int64(3), "-7"}, {int64(4), "9223372036854775807"}}
	_, err := load(t, c, spi.LoadSpec{RunID: "110000000000000000000001", Attempt: 1, Mapping: "m", Dataset: spi.Dataset{Table: "n"}, Schema: schema, Mode: spi.ModeAppend}, exact, 1)
	require.ErrorIs(t, err, spi.ErrInvalid)
	require.ErrorContains(t, err, "row 0 column d: decimal 12345678901234567890.123456789 has 29 significant digits; a column of NUMERIC affinity keeps 15")
	_, err = load(t, c, spi.LoadSpec{RunID: "110000000000000000000002", Attempt: 1, Mapping: "m", Dataset: spi.Dataset{Table: "n"}, Schema: schema, Mode: spi.ModeAppend}, exact[1:], 1)
	require.NoError(t, err)
	got, _ := readAll(t, c, spi.Dataset{Table: "n"}, 1)
	requireSameRows(t, []spi.Row{{int64(2), "1.5"}, {int64(3), "-7"}, {int64(4), "9223372036854775807"}}, got)

	_, err = load(t, c, spi.LoadSpec{RunID: "110000000000000000000003", Attempt: 1, Mapping: "m", Dataset: spi.Dataset{Table: "x"}, Schema: schema, Mode: spi.ModeAppend}, exact, 2)
	require.NoError(t, err)
	got, _ = readAll(t, c, spi.Dataset{Table: "x"}, 1)
	requireSameRows(t, exact, got)
	// A float into an exact decimal column is its shortest exact text.
	tenth := 0.1
	_, err = load(t, c, spi.LoadSpec{RunID: "110000000000000000000004", Attempt: 1, Mapping: "m", Dataset: spi.Dataset{Table: "x"},
		Schema: spi.Schema{{Name: "id", Type: spi.TypeInt}, {Name: "d", Type: spi.TypeFloat}}, Mode: spi.ModeAppend}, []spi.Row{{int64(9), tenth + 2*tenth}}, 1)
	require.NoError(t, err)
	got, _ = readAll(t, c, spi.Dataset{Table: "x", Watermark: &spi.Watermark{Column: "id", After: "8"}}, 1)
	require.Equal(t, []spi.Row{{int64(9), "0.30000000000000004"}}, got)
	_, err = load(t, c, spi.LoadSpec{RunID: "110000000000000000000005", Attempt: 1, Mapping: "m", Dataset: spi.Dataset{Table: "x"},
		Schema: spi.Schema{{Name: "id", Type: spi.TypeInt}, {Name: "d", Type: spi.TypeFloat}}, Mode: spi.ModeAppend}, []spi.Row{{int64(10), math.NaN()}}, 1)
	require.ErrorContains(t, err, "NaN")
}

// TestBadValuesAreBadRows: SQLite lets any column hold any value; one that
// is not of the column's type is a bad row located by its rowid.
func TestBadValuesAreBadRows(t *testing.T) {
	root, name, db := newDB(t, "CREATE TABLE t (n INTEGER, d DATE, b BOOLEAN, ts DATETIME)")
	exec(t, db, "INSERT INTO t VALUES (1, '2024-01-02', 1, '2024-01-02T03:04:05Z')",
		"INSERT INTO t VALUES ('x', '2024-01-02', 0, 1700000000)",
		"INSERT INTO t VALUES (3, '2024-01-02 10:00', 0, NULL)",
		"INSERT INTO t VALUES (4, NULL, 7, NULL)",
		"INSERT INTO t VALUES (5, '2024-02-30', 0, NULL)",
		"INSERT INTO t VALUES (6, NULL, 'true', '2024-01-02 03:04:05.5+02:00')",
		"INSERT INTO t VALUES (7, NULL, NULL, 1.5)")
	c := open(t, root, name)
	rows, bad := readAll(t, c, spi.Dataset{Table: "t"}, 2)
	sortRows(rows)
	require.Equal(t, []spi.Row{
		{int64(1), date(2024, 1, 2), true, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		{int64(6), nil, true, time.Date(2024, 1, 2, 3, 4, 5, 5e8, time.FixedZone("", 2*3600))},
	}, rows)
	reasons := map[string]string{}
	for _, b := range bad {
		reasons[b.Loc] = b.Reason
	}
	require.Equal(t, map[string]string{
		"lite:t rowid 2": `column n: TEXT "x" is not a int`,
		"lite:t rowid 3": `column d: 2024-01-02 10:00:00 +0000 UTC is not a date (it has a time of day)`,
		"lite:t rowid 4": `column b: INTEGER "7" is not a bool`,
		"lite:t rowid 5": `column d: "2024-02-30" is not an ISO-8601 date or time`,
		"lite:t rowid 7": `column ts: REAL "1.5" is not a time (REAL times are ambiguous)`,
	}, reasons)
}

func TestQuerySource(t *testing.T) {
	root, name, db := newDB(t, "CREATE TABLE t (id INTEGER PRIMARY KEY, amount DECIMAL(10,2), name TEXT, at DATETIME)")
	exec(t, db, "INSERT INTO t VALUES (1, 10.5, 'a', '2024-01-01 00:00:00'), (2, -3.25, 'b', NULL), (3, NULL, 'c;', '2024-01-03 00:00:00')")
	c := open(t, root, name)
	ctx := context.Background()
	ds := spi.Dataset{Query: "WITH x AS (SELECT id, amount, name || '!' AS n, at, count(*) OVER () AS total FROM t) SELECT * FROM x -- all\n;"}
	schema, err := c.Describe(ctx, ds)
	require.NoError(t, err)
	require.Equal(t, []spi.FieldType{spi.TypeInt, spi.TypeDecimal, spi.TypeString, spi.TypeTimestamp, spi.TypeInt},
		[]spi.FieldType{schema[0].Type, schema[1].Type, schema[2].Type, schema[3].Type, schema[4].Type})
	require.Equal(t, [2]int{10, 2}, [2]int{schema[1].Precision, schema[1].Scale})
	rows, bad := readAll(t, c, ds, 4)
	require.Empty(t, bad)
	sortRows(rows)
	require.Equal(t, []spi.Row{
		{int64(1), "10.5", "a!", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), int64(3)},
		{int64(2), "-3.25", "b!", nil, int64(3)},
		{int64(3), nil, "c;!", time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC), int64(3)},
	}, rows)
	parts, err := c.Partitions(ctx, ds, 4)
	require.NoError(t, err)
	require.Len(t, parts, 1, "a query without partition_by is one partition")
	ds.Options = map[string]string{"partition_by": "id"}
	ds.Watermark = &spi.Watermark{Column: "at", After: "2024-01-01 00:00:00"}
	rows, _ = readAll(t, c, ds, 4)
	require.Len(t, rows, 1)
	for _, q := range []string{"DELETE FROM t", "SELECT 1; DROP TABLE t", "UPDATE t SET id = 5", "INSERT INTO t (id) SELECT 9"} {
		_, err := c.Describe(ctx, spi.Dataset{Query: q})
		require.ErrorIs(t, err, spi.ErrInvalid, q)
	}
	_, err = c.Describe(ctx, spi.Dataset{Query: "SELECT nope FROM t"})
	require.ErrorContains(t, err, "nope")
	var n int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM t").Scan(&n))
	require.Equal(t, 3, n)
}

func TestPartitionsReadEveryRowOnce(t *testing.T) {
	root, name, db := newDB(t,
		"CREATE TABLE ev (k INTEGER, note TEXT)",
		"CREATE TABLE wr (id TEXT PRIMARY KEY, k INTEGER) WITHOUT ROWID",
		"CREATE VIEW v AS SELECT k FROM ev",
		"CREATE TABLE has_rowid_col (rowid TEXT, k INTEGER)")
	tx, err := db.Begin()
	require.NoError(t, err)
	for i := 1; i <= 5000; i++ {
		var k any = i * 3
		if i%97 == 0 {
			k = nil
		}
		_, err := tx.Exec("INSERT INTO ev VALUES (?, ?)", k, fmt.Sprint("n", i))
		require.NoError(t, err)
		_, err = tx.Exec("INSERT INTO wr VALUES (?, ?)", fmt.Sprint(i), k)
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
	exec(t, db, "DELETE FROM ev WHERE rowid BETWEEN 100 AND 1999", "INSERT INTO has_rowid_col VALUES ('a', 1), ('b', 2)")
	c := open(t, root, name)
	ctx := context.Background()
	for _, ds := range []spi.Dataset{
		{Table: "ev"},
		{Table: "ev", Options: map[string]string{"partition_by": "k"}},
		{Table: "wr", Options: map[string]string{"partition_by": "k"}},
		{Query: "SELECT * FROM ev", Options: map[string]string{"partition_by": "k"}},
	} {
		parts, err := c.Partitions(ctx, ds, 5)
		require.NoError(t, err)
		require.Len(t, parts, 5, "%+v", ds)
		rows, bad := readAll(t, c, ds, 5)
		require.Empty(t, bad)
		seen := map[string]int{}
		for _, r := range rows {
			seen[fmt.Sprint(r[len(r)-1])+fmt.Sprint(r[0])]++
		}
		if ds.Table == "wr" {
			require.Len(t, seen, 5000)
		} else {
			require.Len(t, seen, 3100, "%+v", ds)
		}
		for k, n := range seen {
			require.Equal(t, 1, n, k)
		}
	}
	parts, err := c.Partitions(ctx, spi.Dataset{Table: "ev"}, 5)
	require.NoError(t, err)
	require.Equal(t, "rowid in [1, 1001)", parts[0].Desc)
	require.Equal(t, int64(1000), parts[0].EstRows)
	for _, tbl := range []string{"wr", "v"} {
		parts, err := c.Partitions(ctx, spi.Dataset{Table: tbl}, 5)
		require.NoError(t, err)
		require.Len(t, parts, 1, "%s has no rowid", tbl)
	}
	parts, err = c.Partitions(ctx, spi.Dataset{Table: "has_rowid_col"}, 2)
	require.NoError(t, err)
	require.Equal(t, "_rowid_ in [1, 2)", parts[0].Desc, "a column named rowid hides the rowid")
	rows, _ := readAll(t, c, spi.Dataset{Table: "has_rowid_col"}, 2)
	require.Len(t, rows, 2)
	_, err = c.Partitions(ctx, spi.Dataset{Table: "ev", Options: map[string]string{"partition_by": "note"}}, 4)
	require.ErrorIs(t, err, spi.ErrInvalid)
	for _, opts := range []map[string]string{{"partitioning": "declared"}, {"partitioning": "key"}, {"partitioning": "blocks", "partition_by": "k"}, {"chunk": "9"}} {
		_, err = c.Partitions(ctx, spi.Dataset{Table: "ev", Options: opts}, 4)
		require.ErrorIs(t, err, spi.ErrInvalid, "%v", opts)
	}
	parts, err = c.Partitions(ctx, spi.Dataset{Table: "ev", Options: map[string]string{"partitioning": "blocks"}}, 4)
	require.NoError(t, err)
	require.Equal(t, "rowid in [1, 1251)", parts[0].Desc)
	_, err = c.Describe(ctx, spi.Dataset{Table: "missing"})
	require.ErrorIs(t, err, iofs.ErrNotExist)
	require.ErrorContains(t, err, "table missing does not exist")
}
