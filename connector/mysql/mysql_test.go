package mysql_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/connector/mysql"
	"github.com/weirdata/weir/connector/spi"
)

const allTypes = "CREATE TABLE `%s` (" +
	"id BIGINT NOT NULL PRIMARY KEY, i INT NULL, b BOOLEAN NULL, f DOUBLE NULL, d DECIMAL(38,9) NULL, " +
	"s VARCHAR(255) NULL, txt LONGTEXT NULL, j JSON NULL, e ENUM('a','b''c') NULL, dt DATE NULL, ts DATETIME(6) NULL, " +
	"tsz TIMESTAMP(6) NULL DEFAULT NULL, bin VARBINARY(64) NULL, blb LONGBLOB NULL, u BIGINT UNSIGNED NULL) ENGINE=InnoDB"

var allTypesSchema = spi.Schema{
	{Name: "id", Type: spi.TypeInt}, {Name: "i", Type: spi.TypeInt, Nullable: true}, {Name: "b", Type: spi.TypeBool, Nullable: true},
	{Name: "f", Type: spi.TypeFloat, Nullable: true}, {Name: "d", Type: spi.TypeDecimal, Nullable: true, Precision: 38, Scale: 9},
	{Name: "s", Type: spi.TypeString, Nullable: true}, {Name: "txt", Type: spi.TypeString, Nullable: true},
	{Name: "j", Type: spi.TypeString, Nullable: true}, {Name: "e", Type: spi.TypeString, Nullable: true},
	{Name: "dt", Type: spi.TypeDate, Nullable: true}, {Name: "ts", Type: spi.TypeTimestamp, Nullable: true},
	{Name: "tsz", Type: spi.TypeTimestamp, Nullable: true}, {Name: "bin", Type: spi.TypeBytes, Nullable: true},
	{Name: "blb", Type: spi.TypeBytes, Nullable: true}, {Name: "u", Type: spi.TypeDecimal, Nullable: true, Precision: 20},
}

// allTypesRows are values of every type: NULLs, unicode with 4-byte
// characters, quotes and delimiters, a 1 MB text, times given in several
// zones, exact decimals, extreme integers.
func allTypesRows() []spi.Row {
	tokyo := time.FixedZone("JST", 9*3600)
	ny := time.FixedZone("EST", -5*3600)
	big := strings.Repeat("0123456789abcdef€😀", 1<<16)[:1<<20]
	big = strings.ToValidUTF8(big, "")
	return []spi.Row{
		{int64(1), int64(42), true, 3.14159, "12345678901234567890123456789.123456789", "plain", "text", `{"a": [1, 2]}`, "a",
			date(2024, 2, 29), time.Date(2024, 3, 10, 1, 59, 59, 999999000, ny), time.Date(2024, 12, 31, 23, 0, 0, 1000, tokyo),
			[]byte{0, 1, 2, 255}, []byte("blob\x00data"), "18446744073709551615"},
		{int64(2), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
		{int64(math.MinInt64), int64(math.MinInt32), false, -1.5e-300, "-99999999999999999999999999999.999999999",
			"quotes ' \" ` \\ ; , \t tab\nnewline\r\n", "emoji 😀🎉 ünïcødé 中文 𝄞", `"string"`, "b'c",
			date(1000, 1, 1), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2038, 1, 19, 3, 14, 7, 0, time.UTC),
			[]byte{}, []byte{}, "0"},
		{int64(math.MaxInt64), int64(math.MaxInt32), true, math.MaxFloat64, "-0.000000001", "", big, "null", "a",
			date(9999, 12, 31), time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC),
			[]byte(strings.Repeat("x", 64)), []byte(big), "9223372036854775808"},
		{int64(3), int64(0), false, 0.0, "0.000000000", "NULL", "\\N", "[]", nil,
			date(1970, 1, 1), time.Date(2000, 1, 1, 12, 0, 0, 0, time.FixedZone("X", 5*3600+45*60)), nil,
			nil, []byte("\\N"), nil},
	}
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// requireSameRows compares rows by their first column, times as instants.
func requireSameRows(t *testing.T, want, got []spi.Row) {
	t.Helper()
	sortRows(want)
	sortRows(got)
	require.Len(t, got, len(want))
	for i := range want {
		require.Len(t, got[i], len(want[i]))
		for j := range want[i] {
			w, g := want[i][j], got[i][j]
			if wt, ok := w.(time.Time); ok {
				gt, ok := g.(time.Time)
				require.True(t, ok, "row %v column %d: got %T", want[i][0], j, g)
				require.True(t, wt.Equal(gt), "row %v column %d: want %v got %v", want[i][0], j, wt, gt)
				continue
			}
			if ws, ok := w.(string); ok && len(ws) > 1000 {
				require.True(t, ws == g, "row %v column %d: long strings differ", want[i][0], j)
				continue
			}
			require.Equal(t, w, g, "row %v column %d", want[i][0], j)
		}
	}
}

func sortRows(rows []spi.Row) {
	sort.Slice(rows, func(a, b int) bool { return rows[a][0].(int64) < rows[b][0].(int64) })
}

func TestRoundTripEveryType(t *testing.T) {
	dsn, db := newDatabase(t)
	for i, path := range stagingPaths {
		t.Run(path, func(t *testing.T) {
			table := "all types " + path
			exec(t, db, strings.ReplaceAll(allTypes, "%s", table))
			c := openStaging(t, dsn, path)
			ctx := context.Background()
			ds := spi.Dataset{Table: table}

			schema, err := c.Describe(ctx, ds)
			require.NoError(t, err)
			require.Equal(t, allTypesSchema, schema)

			rows := allTypesRows()
			com, err := load(t, c, spi.LoadSpec{RunID: fmt.Sprintf("10000000000000000000000%d", i), Attempt: 1, Mapping: "m", Dataset: ds, Schema: schema, Mode: spi.ModeAppend}, rows, 3)
			require.NoError(t, err)
			require.Equal(t, int64(len(rows)), com.Rows)

			got, bad := readAll(t, c, ds, 1)
			require.Empty(t, bad)
			requireSameRows(t, allTypesRows(), got)
			for _, r := range got {
				for _, v := range r {
					if tv, ok := v.(time.Time); ok {
						require.Equal(t, time.UTC, tv.Location())
					}
				}
			}

			// NULL and the empty value stay apart.
			var nulls, empties int
			require.NoError(t, db.QueryRow("SELECT SUM(bin IS NULL), SUM(bin = '') FROM `"+table+"`").Scan(&nulls, &empties))
			require.Equal(t, [2]int{2, 1}, [2]int{nulls, empties})
			require.NoError(t, db.QueryRow("SELECT SUM(txt IS NULL), SUM(txt = '') FROM `"+table+"`").Scan(&nulls, &empties))
			require.Equal(t, [2]int{1, 0}, [2]int{nulls, empties})
			require.NoError(t, db.QueryRow("SELECT SUM(s IS NULL), SUM(s = '') FROM `"+table+"`").Scan(&nulls, &empties))
			require.Equal(t, [2]int{1, 1}, [2]int{nulls, empties})
			// Timestamps are stored in UTC.
			var ts string
			require.NoError(t, db.QueryRow("SELECT CAST(ts AS CHAR) FROM `"+table+"` WHERE id = 1").Scan(&ts))
			require.Equal(t, "2024-03-10 06:59:59.999999", ts)
		})
	}
}

// TestStagingRefusesBadValues: a value the column cannot hold fails the
// write, by every staging path, and never lands truncated.
func TestStagingRefusesBadValues(t *testing.T) {
	dsn, db := newDatabase(t)
	exec(t, db, "CREATE TABLE t (n INT NOT NULL, s VARCHAR(10), b BIT(1), ts TIMESTAMP NULL)")
	for i, path := range stagingPaths {
		t.Run(path, func(t *testing.T) {
			c := openStaging(t, dsn, path)
			ctx := context.Background()
			l, err := c.Begin(ctx, spi.LoadSpec{RunID: fmt.Sprintf("11000000000000000000000%d", i), Attempt: 1, Mapping: "m", Dataset: spi.Dataset{Table: "t"},
				Schema: spi.Schema{{Name: "n", Type: spi.TypeInt}, {Name: "s", Type: spi.TypeString}, {Name: "b", Type: spi.TypeBool}, {Name: "ts", Type: spi.TypeTimestamp}}, Mode: spi.ModeAppend})
			require.NoError(t, err)
			defer l.Abort(ctx)
			ok := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
			err = l.Write(ctx, 0, spi.Batch{Rows: []spi.Row{{int64(1), "short", true, ok}, {int64(2), "much too long for ten", false, ok}}})
			require.Error(t, err)
			require.Contains(t, err.Error(), "'s'")
			err = l.Write(ctx, 0, spi.Batch{Rows: []spi.Row{{int64(1), "ok", true, ok}, {"2", "ok", true, ok}}})
			require.ErrorIs(t, err, spi.ErrInvalid)
			require.Contains(t, err.Error(), "row 1 column n: string is not a value of a int field")
			err = l.Write(ctx, 0, spi.Batch{Rows: []spi.Row{{nil, "ok", nil, nil}}})
			require.Error(t, err, "NULL into NOT NULL")
			err = l.Write(ctx, 0, spi.Batch{Rows: []spi.Row{{int64(1), "ok", nil, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}}})
			require.Error(t, err, "TIMESTAMP out of range")
			err = l.Write(ctx, 0, spi.Batch{Rows: []spi.Row{{int64(3), "ok", nil, nil}, {int64(1 << 40), "ok", nil, nil}}})
			require.Error(t, err, "INT out of range")
			if path == mysql.StageInfile {
				require.ErrorContains(t, err, "Out of range value for column 'n' at row 2")
			}
			require.NoError(t, l.Write(ctx, 0, spi.Batch{Rows: []spi.Row{{int64(7), "fine", true, ok}, {int64(8), "", false, nil}}}))
			rows, _ := readAll(t, c, spi.Dataset{Table: "weir_stage_" + fmt.Sprintf("11000000000000000000000%d", i) + "_1", Watermark: &spi.Watermark{Column: "n", After: "6"}}, 1)
			require.Equal(t, []spi.Row{{int64(7), "fine", true, ok}, {int64(8), "", false, nil}}, rows)
		})
	}
}

func TestOpenSettingsAndSecrets(t *testing.T) {
	dsn, db := newDatabase(t)
	ctx := context.Background()
	const secret = "s3cret-Pw-never-shown"
	for _, s := range []map[string]string{
		{},
		{"dsn": "root:" + secret + "@tcp(127.0.0.1:3306)/test"},
		{"dsn": "root:" + secret + "@tcp(127.0.0.1:3306"},
		{"dsn": "root@tcp(127.0.0.1:3306)/"},
		{"dsn": "root@tcp(127.0.0.1:3306)/test?password=" + secret},
		{"dsn": "root@tcp(127.0.0.1:3306)/test?PASSWORD=" + secret},
	} {
		_, err := mysql.Open(ctx, spi.System{Name: "m", Kind: mysql.Kind, Settings: s})
		require.ErrorIs(t, err, spi.ErrInvalid, "%v", s)
		require.NotContains(t, err.Error(), secret)
	}
	// A wrong password is refused without being shown.
	_, err := mysql.Open(ctx, spi.System{Name: "m", Kind: mysql.Kind, Settings: map[string]string{"dsn": dsn}, Secrets: map[string]string{"password": secret}})
	require.Error(t, err)
	require.NotContains(t, err.Error(), secret)

	// A user with a password logs in with the secret only.
	var dbName string
	require.NoError(t, db.QueryRow("SELECT DATABASE()").Scan(&dbName))
	user := "weir_u" + dbName[len(dbName)-8:]
	exec(t, db, "CREATE USER '"+user+"'@'%' IDENTIFIED BY '"+secret+"'")
	t.Cleanup(func() { _, _ = db.Exec("DROP USER '" + user + "'@'%'") })
	exec(t, db, "GRANT ALL ON `"+dbName+"`.* TO '"+user+"'@'%'")
	udsn := user + "@tcp(127.0.0.1:3306)/" + dbName
	_, err = mysql.Open(ctx, spi.System{Name: "m", Kind: mysql.Kind, Settings: map[string]string{"dsn": udsn}})
	require.Error(t, err, "no password")
	require.NotContains(t, err.Error(), secret)
	// Log lines (the connector's and the driver's) do not show it.
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(prev)
	c, err := mysql.Open(ctx, spi.System{Name: "m", Kind: mysql.Kind, Settings: map[string]string{"dsn": udsn}, Secrets: map[string]string{"password": secret}})
	require.NoError(t, err)
	defer c.Close()
	// Kill the connector's idle connection: the driver logs that it drops it.
	var ids []int64
	rows, err := db.Query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?", user)
	require.NoError(t, err)
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	rows.Close()
	require.NotEmpty(t, ids)
	for _, id := range ids {
		exec(t, db, fmt.Sprintf("KILL CONNECTION %d", id))
	}
	_, err = c.(*mysql.Conn).Describe(ctx, spi.Dataset{Query: "SELECT 1 AS one"})
	require.NoError(t, err, "a fresh connection replaces the killed one")
	require.Contains(t, logs.String(), "mysql driver")
	require.NotContains(t, logs.String(), secret)
	// Errors of later operations do not show it either.
	_, err = c.(*mysql.Conn).Describe(ctx, spi.Dataset{Table: "nope"})
	require.ErrorIs(t, err, iofs.ErrNotExist)
	require.NotContains(t, err.Error(), secret)
	_, err = c.(*mysql.Conn).Describe(ctx, spi.Dataset{Query: "SELECT * FROM mysql.user"})
	require.Error(t, err)
	require.NotContains(t, err.Error(), secret)
	var se *spi.Error
	require.True(t, errors.As(err, &se))
}
