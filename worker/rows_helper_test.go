package worker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	drv "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
	"github.com/weirdata/weir/connector"
	"github.com/weirdata/weir/worker"
)

// A kind of dataset a round trip goes through: a file format on an fs
// system, or a table of a database.
type dataKind struct {
	name   string // fs-csv, postgres ...
	system string // catalog system kind
	format string // files only
}

var dataKinds = []dataKind{
	{"fs-csv", "fs", "csv"}, {"fs-jsonl", "fs", "jsonl"}, {"fs-parquet", "fs", "parquet"},
	{"postgres", "postgres", ""}, {"mysql", "mysql", ""}, {"sqlite", "sqlite", ""},
}

// golden is the data every round trip keeps: NULLs, unicode, quotes and
// delimiters inside fields, a 1 MB field, instants in several zones,
// negative and large numbers, exact decimals, bytes.
var goldenSchema = connector.Schema{
	{Name: "id", Type: connector.TypeInt},
	{Name: "name", Type: connector.TypeString, Nullable: true},
	{Name: "amount", Type: connector.TypeDecimal, Nullable: true, Precision: 18, Scale: 4},
	{Name: "ratio", Type: connector.TypeFloat, Nullable: true},
	{Name: "flag", Type: connector.TypeBool, Nullable: true},
	{Name: "day", Type: connector.TypeDate, Nullable: true},
	{Name: "at", Type: connector.TypeTimestamp, Nullable: true},
	{Name: "data", Type: connector.TypeBytes, Nullable: true},
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func goldenRows() []connector.Row {
	ny := time.FixedZone("EST", -5*3600)
	tokyo := time.FixedZone("JST", 9*3600)
	odd := time.FixedZone("+0545", 5*3600+45*60)
	mega := strings.ToValidUTF8(strings.Repeat("0123456789abcdef€😀\"',;\n", 1<<16)[:1<<20], "")
	return []connector.Row{
		{int64(1), "plain", "1234.5600", 3.25, true, day(2024, 2, 29), time.Date(2024, 3, 10, 1, 59, 59, 123456000, ny), []byte{0, 1, 2, 255}},
		{int64(2), nil, nil, nil, nil, nil, nil, nil},
		{int64(3), "quotes ' \" ` \\ ; , | \t tab\nnewline\r\ncrlf", "-0.0001", -1.5e-300, false, day(1900, 1, 1),
			time.Date(2024, 12, 31, 23, 0, 0, 1000, tokyo), []byte("a,b\n\"c\"")},
		{int64(4), "emoji 😀🎉 ünïcødé 中文 𝄞", "99999999999999.9999", 0.1, true, day(9999, 12, 31),
			time.Date(2000, 1, 1, 12, 0, 0, 0, odd), []byte{}},
		{int64(5), mega, "0.0000", math.MaxFloat64, false, day(1970, 1, 1), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), []byte(mega[:1000])},
		{int64(6), "", "-99999999999999.9999", -0.0, nil, day(2038, 1, 19), time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC), nil},
		{int64(-9007199254740993), "NULL", "1", 1e21, true, day(1000, 1, 1), time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC), []byte("\\N")},
		{int64(math.MaxInt64), "\\N", "42.4200", -273.15, false, day(2000, 2, 29), time.Date(2024, 3, 31, 2, 30, 0, 0, time.UTC), []byte("x")},
	}
}

// sameValue compares a value read back with the golden one by its type:
// decimals by value, dates by day, timestamps as instants.
func sameValue(typ connector.FieldType, want, got any) error {
	if want == nil || got == nil {
		if want == nil && got == nil {
			return nil
		}
		return fmt.Errorf("want %s, got %s", show(want), show(got))
	}
	ok := false
	switch typ {
	case connector.TypeDecimal:
		w, _ := new(big.Rat).SetString(want.(string))
		g, gok := new(big.Rat).SetString(fmt.Sprint(got))
		ok = gok && w.Cmp(g) == 0
	case connector.TypeDate:
		w, g := want.(time.Time), got.(time.Time)
		ok = w.Year() == g.Year() && w.YearDay() == g.YearDay()
	case connector.TypeTimestamp:
		ok = want.(time.Time).Equal(got.(time.Time))
	case connector.TypeFloat:
		ok = want.(float64) == got.(float64)
	case connector.TypeBytes:
		ok = bytes.Equal(want.([]byte), got.([]byte))
	default:
		ok = want == got
	}
	if !ok {
		return fmt.Errorf("want %s, got %s", show(want), show(got))
	}
	return nil
}

func show(v any) string {
	s := fmt.Sprintf("%T %#v", v, v)
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// sameRows fails t unless got holds exactly the golden rows, in any order.
func sameRows(t *testing.T, schema connector.Schema, want, got []connector.Row) {
	t.Helper()
	require.Len(t, got, len(want), "rows")
	sorted := func(rs []connector.Row) []connector.Row {
		out := append([]connector.Row(nil), rs...)
		sort.Slice(out, func(i, j int) bool { return out[i][0].(int64) < out[j][0].(int64) })
		return out
	}
	w, g := sorted(want), sorted(got)
	for i := range w {
		for j, f := range schema {
			if err := sameValue(f.Type, w[i][j], g[i][j]); err != nil {
				t.Errorf("row id %v, field %s: %v", w[i][0], f.Name, err)
			}
		}
	}
}

// dataWorld is the systems of a data-plane test: one fs system, one
// PostgreSQL database, one MariaDB database and SQLite files, registered in
// the env's catalog.
type dataWorld struct {
	e        *env
	files    string // the fs system "files"'s root
	pgDSN    string
	myDSN    string
	myAdmin  *sql.DB
	liteRoot string
	lites    map[string]bool
}

func newDataWorld(t testing.TB, e *env) *dataWorld {
	ctx := context.Background()
	d := &dataWorld{e: e, files: t.TempDir(), liteRoot: t.TempDir(), lites: map[string]bool{}}
	d.pgDSN = catalogtest.NewPostgresDSN(t)
	d.myDSN, d.myAdmin = newMariaDB(t)
	for _, sys := range []*catalog.System{
		{Name: "files", Kind: "fs", Region: region, Settings: catalog.NewJSON(map[string]string{"root": d.files})},
		{Name: "pg", Kind: "postgres", Region: region, Settings: catalog.NewJSON(map[string]string{"dsn": d.pgDSN})},
		{Name: "my", Kind: "mysql", Region: region, Settings: catalog.NewJSON(map[string]string{"dsn": d.myDSN})},
	} {
		require.NoError(t, e.store.CreateSystem(ctx, sys))
	}
	return d
}

// newMariaDB creates a database on the test MariaDB, dropped at cleanup,
// and returns its DSN (root, no password) and a handle on it.
func newMariaDB(t testing.TB) (string, *sql.DB) {
	t.Helper()
	admin := os.Getenv("WEIR_MYSQL_DSN")
	if admin == "" {
		admin = "root@tcp(127.0.0.1:3306)/test"
	}
	cfg, err := drv.ParseDSN(admin)
	require.NoError(t, err)
	cfg.ParseTime, cfg.Loc = true, time.UTC
	db, err := sql.Open("mysql", cfg.FormatDSN())
	require.NoError(t, err)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		if os.Getenv("WEIR_REQUIRE_MYSQL") == "1" {
			t.Fatalf("MariaDB at %s: %v", cfg.Addr, err)
		}
		t.Skipf("no MariaDB at %s (set WEIR_REQUIRE_MYSQL=1 to fail): %v", cfg.Addr, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "weir_w_" + hex.EncodeToString(b)
	_, err = db.Exec("CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
	require.NoError(t, err)
	cfg.DBName = name
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	h, err := sql.Open("mysql", cfg.FormatDSN())
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = h.Exec("DROP DATABASE `" + name + "`")
		h.Close()
	})
	return cfg.User + "@tcp(" + cfg.Addr + ")/" + name, h
}

// lite returns the name of an SQLite system on its own database file,
// created (with the catalog) on first use.
func (d *dataWorld) lite(name string) string {
	t := d.e.t
	if !d.lites[name] {
		d.lites[name] = true
		db, err := sql.Open("sqlite", filepath.Join(d.liteRoot, name+".db"))
		require.NoError(t, err)
		_, err = db.Exec("PRAGMA journal_mode=WAL")
		require.NoError(t, err)
		require.NoError(t, db.Close())
		require.NoError(t, d.e.store.CreateSystem(context.Background(), &catalog.System{Name: name, Kind: "sqlite", Region: region,
			Settings: catalog.NewJSON(map[string]string{"root": d.liteRoot, "path": name + ".db"})}))
	}
	return name
}

// sql runs DDL on a database system of the world.
func (d *dataWorld) exec(system, stmt string) {
	t := d.e.t
	ctx := context.Background()
	switch {
	case system == "pg":
		c, err := pgx.Connect(ctx, d.pgDSN)
		require.NoError(t, err)
		defer c.Close(ctx)
		_, err = c.Exec(ctx, stmt)
		require.NoError(t, err, stmt)
	case system == "my":
		_, err := d.myAdmin.ExecContext(ctx, stmt)
		require.NoError(t, err, stmt)
	default:
		db, err := sql.Open("sqlite", filepath.Join(d.liteRoot, system+".db"))
		require.NoError(t, err)
		defer db.Close()
		_, err = db.ExecContext(ctx, stmt)
		require.NoError(t, err, stmt)
	}
}

// goldenTable creates a table for the golden schema.
func (d *dataWorld) goldenTable(system, table string) {
	switch system {
	case "pg":
		d.exec(system, `CREATE TABLE `+pgx.Identifier{table}.Sanitize()+` (id bigint PRIMARY KEY, name text, amount numeric(18,4),
			ratio double precision, flag boolean, day date, at timestamptz, data bytea)`)
	case "my":
		d.exec(system, "CREATE TABLE `"+table+"` (id BIGINT PRIMARY KEY, name LONGTEXT, amount DECIMAL(18,4), ratio DOUBLE, flag BOOLEAN, "+
			"day DATE, at DATETIME(6), data LONGBLOB) ENGINE=InnoDB")
	default:
		d.exec(system, `CREATE TABLE "`+table+`" (id INTEGER PRIMARY KEY, name TEXT, amount TEXT DECIMAL(18,4), ratio DOUBLE,
			flag BOOLEAN, day DATE, at TIMESTAMP, data BLOB)`)
	}
}

// endpoint returns the system and endpoint of kind k named name (a
// directory of files, or a table), creating the table of a database.
func (d *dataWorld) endpoint(k dataKind, name string, create bool) catalog.Endpoint {
	switch k.system {
	case "fs":
		return catalog.Endpoint{System: "files", Path: name, Format: k.format, Schema: catalogSchema(goldenSchema)}
	case "postgres":
		if create {
			d.goldenTable("pg", name)
		}
		return catalog.Endpoint{System: "pg", Table: name}
	case "mysql":
		if create {
			d.goldenTable("my", name)
		}
		return catalog.Endpoint{System: "my", Table: name}
	}
	sys := d.lite(name)
	if create {
		d.goldenTable(sys, name)
	}
	return catalog.Endpoint{System: sys, Table: name}
}

func catalogSchema(s connector.Schema) []catalog.SchemaField {
	out := make([]catalog.SchemaField, len(s))
	for i, f := range s {
		out[i] = catalog.SchemaField{Name: f.Name, Type: string(f.Type), Nullable: f.Nullable, Precision: f.Precision, Scale: f.Scale}
	}
	return out
}

func (d *dataWorld) open(system string) connector.Conn {
	t := d.e.t
	ctx := context.Background()
	sys, err := d.e.store.GetSystem(ctx, system)
	require.NoError(t, err)
	c, err := connector.Default().Open(ctx, connector.System{Name: sys.Name, Kind: sys.Kind, Settings: sys.Settings.V, Secrets: sys.Secrets.V})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func datasetOf(ep catalog.Endpoint) connector.Dataset {
	ds := connector.Dataset{Path: ep.Path, Table: ep.Table, Format: ep.Format, Options: ep.Options}
	if len(ep.Schema) > 0 {
		for _, f := range ep.Schema {
			ds.Schema = append(ds.Schema, connector.Field{Name: f.Name, Type: connector.FieldType(f.Type), Nullable: f.Nullable, Precision: f.Precision, Scale: f.Scale})
		}
	}
	return ds
}

// put loads rows into an endpoint with its connector, as a source's data.
func (d *dataWorld) put(ep catalog.Endpoint, schema connector.Schema, rows []connector.Row) {
	t := d.e.t
	ctx := context.Background()
	dst := d.open(ep.System).(connector.RowTarget)
	l, err := dst.Begin(ctx, connector.LoadSpec{RunID: d.e.gen.Next(), Dataset: datasetOf(ep),
		Schema: schema, Mode: connector.ModeAppend})
	require.NoError(t, err)
	require.NoError(t, l.Write(ctx, 0, connector.Batch{Rows: rows}))
	_, err = l.Commit(ctx)
	require.NoError(t, err)
}

// read reads every row of an endpoint back with its connector.
func (d *dataWorld) read(ep catalog.Endpoint) []connector.Row {
	t := d.e.t
	ctx := context.Background()
	src := d.open(ep.System).(connector.RowSource)
	ds := datasetOf(ep)
	parts, err := src.Partitions(ctx, ds, 3)
	require.NoError(t, err)
	var out []connector.Row
	for _, p := range parts {
		require.NoError(t, src.Read(ctx, ds, p, 100, func(b connector.Batch) error {
			require.Empty(t, b.Bad, "bad records reading back %+v", ep)
			for _, r := range b.Rows {
				out = append(out, append(connector.Row(nil), r...))
			}
			return nil
		}))
	}
	return out
}

// rowMapping stores a row mapping from src to dst and returns its name.
func (d *dataWorld) rowMapping(name string, src, dst catalog.Endpoint, edit func(m *catalog.Mapping)) string {
	m := &catalog.Mapping{Name: name, Enabled: true, Source: catalog.NewJSON(src), Target: catalog.NewJSON(dst), MaxAttempts: 1}
	if edit != nil {
		edit(m)
	}
	require.NoError(d.e.t, d.e.store.PutMapping(context.Background(), m))
	return name
}

// run submits a run of mapping, dispatches it to w1 and returns its id.
func (d *dataWorld) run(mapping string, params map[string]string) string {
	id := d.e.submit(mapping, params)
	d.e.dispatch(id, "w1", 4)
	return id
}

// rowConfig is a worker configuration for row tests: 4 threads whatever
// the machine's load.
func (e *env) rowConfig(node string) worker.Config {
	cfg := e.config(node)
	cfg.Threads, cfg.Slots = 4, 4
	cfg.BatchSize = 64
	cfg.LeaseTTL, cfg.HeartbeatInterval = 10*time.Second, 500*time.Millisecond
	cfg.Load = func(context.Context) (float64, int, error) { return 0, 4, nil }
	return cfg
}
