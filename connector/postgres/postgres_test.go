package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/catalog/catalogtest"
	"github.com/weirdata/weir/connector/postgres"
	"github.com/weirdata/weir/connector/spi"
)

// db is a fresh test database and an admin connection to it.
type db struct {
	dsn string
	pg  *pgx.Conn
}

func newDB(t testing.TB) *db {
	t.Helper()
	dsn := catalogtest.NewPostgresDSN(t)
	ctx := context.Background()
	pg, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Close(context.Background()) })
	return &db{dsn: dsn, pg: pg}
}

func (d *db) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	_, err := d.pg.Exec(context.Background(), sql, args...)
	require.NoError(t, err, sql)
}

func (d *db) scalar(t testing.TB, sql string, args ...any) string {
	t.Helper()
	var s *string
	require.NoError(t, d.pg.QueryRow(context.Background(), sql, args...).Scan(&s), sql)
	if s == nil {
		return "<nil>"
	}
	return *s
}

// open opens a connector on d with extra settings (key, value pairs).
func (d *db) open(t testing.TB, kv ...string) *postgres.Conn {
	t.Helper()
	sys := spi.System{Name: "pg", Kind: postgres.Kind, Settings: map[string]string{"dsn": d.dsn}}
	for i := 0; i+1 < len(kv); i += 2 {
		sys.Settings[kv[i]] = kv[i+1]
	}
	c, err := postgres.Open(context.Background(), sys)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c.(*postgres.Conn)
}

// readAll reads every partition of ds (its Spec passed through JSON, as the
// plan keeps it) and returns copies of the rows.
func readAll(t testing.TB, c *postgres.Conn, ds spi.Dataset, max int) ([]spi.Row, []*spi.RowError, []spi.Partition) {
	t.Helper()
	ctx := context.Background()
	parts, err := c.Partitions(ctx, ds, max)
	require.NoError(t, err)
	require.NotEmpty(t, parts)
	require.LessOrEqual(t, len(parts), max)
	raw, err := json.Marshal(parts)
	require.NoError(t, err)
	var planned []spi.Partition
	require.NoError(t, json.Unmarshal(raw, &planned))
	var rows []spi.Row
	var bad []*spi.RowError
	for _, p := range planned {
		err := c.Read(ctx, ds, p, 97, func(b spi.Batch) error {
			require.LessOrEqual(t, len(b.Rows), 97)
			for _, r := range b.Rows {
				rows = append(rows, append(spi.Row(nil), r...))
			}
			bad = append(bad, b.Bad...)
			return nil
		})
		require.NoError(t, err, "partition %d %s", p.Seq, p.Desc)
	}
	return rows, bad, parts
}

// load writes rows into ds in one attempt, batches of size n spread over
// threads, and commits; on failure it aborts and returns the error.
func load(t testing.TB, c *postgres.Conn, spec spi.LoadSpec, rows []spi.Row, n int) (spi.Commit, error) {
	t.Helper()
	ctx := context.Background()
	l, err := c.Begin(ctx, spec)
	if err != nil {
		return spi.Commit{}, err
	}
	for i, th := 0, 0; i < len(rows); i, th = i+n, th+1 {
		if err := l.Write(ctx, th%3, spi.Batch{Rows: rows[i:min(i+n, len(rows))]}); err != nil {
			require.NoError(t, l.Abort(ctx))
			return spi.Commit{}, err
		}
	}
	cm, err := l.Commit(ctx)
	if err != nil {
		require.NoError(t, l.Abort(ctx))
	}
	return cm, err
}

func TestOpenSettings(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	const secret = "s3cret-Pa55"
	cases := []struct {
		name     string
		settings map[string]string
		want     string
	}{
		{"no dsn", map[string]string{}, "setting dsn is required"},
		{"password in url", map[string]string{"dsn": "postgres://u:" + secret + "@127.0.0.1:5432/x"}, "must not hold a password"},
		{"password in query", map[string]string{"dsn": "postgres://u@127.0.0.1:5432/x?password=" + secret}, "must not hold a password"},
		{"password in key/value", map[string]string{"dsn": "host=127.0.0.1 password=" + secret}, "must not hold a password"},
		{"bad max_conns", map[string]string{"dsn": d.dsn, "max_conns": "lots"}, "max_conns must be an integer"},
		{"unreachable", map[string]string{"dsn": "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"}, "connect"},
		{"no database", map[string]string{"dsn": strings.Replace(d.dsn, "/weir_test_", "/nope_", 1)}, "does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := postgres.Open(ctx, spi.System{Name: "pg", Kind: postgres.Kind, Settings: tc.settings, Secrets: map[string]string{"password": secret}})
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), secret)
		})
	}

	r := spi.NewRegistry()
	postgres.Register(r)
	c, err := r.Open(ctx, spi.System{Name: "pg", Kind: "postgres", Settings: map[string]string{"dsn": d.dsn}, Secrets: map[string]string{"password": secret}})
	require.NoError(t, err)
	require.NoError(t, c.Close())
}

// TestPasswordNeverInErrors provokes errors whose text would hold the
// password: a table and a column named like it.
func TestPasswordNeverInErrors(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	const secret = "Hunter2Pw"
	d.exec(t, `CREATE ROLE weir_pw_user LOGIN PASSWORD 'Hunter2Pw'`)
	t.Cleanup(func() {
		_, _ = d.pg.Exec(context.Background(), "DROP OWNED BY weir_pw_user")
		_, _ = d.pg.Exec(context.Background(), "DROP ROLE IF EXISTS weir_pw_user")
	})
	d.exec(t, `GRANT ALL ON SCHEMA public TO weir_pw_user`)
	d.exec(t, `CREATE TABLE t (id int)`)
	dsn := strings.Replace(d.dsn, "postgres@", "weir_pw_user@", 1)
	c, err := postgres.Open(ctx, spi.System{Name: "pg", Kind: postgres.Kind, Settings: map[string]string{"dsn": dsn}, Secrets: map[string]string{"password": secret}})
	require.NoError(t, err)
	defer c.Close()
	pc := c.(*postgres.Conn)

	var errs []error
	_, err = pc.Describe(ctx, spi.Dataset{Table: "x" + secret})
	errs = append(errs, err)
	_, err = pc.Describe(ctx, spi.Dataset{Query: `SELECT "` + secret + `" FROM t`})
	errs = append(errs, err)
	errs = append(errs, pc.Check(ctx, spi.Dataset{Table: "t"}, spi.Schema{{Name: secret, Type: spi.TypeInt}}))
	_, err = pc.MaxWatermark(ctx, spi.Dataset{Table: "t"}, secret)
	errs = append(errs, err)
	_, err = pc.Begin(ctx, spi.LoadSpec{RunID: "1", Dataset: spi.Dataset{Table: "t"}, Schema: spi.Schema{{Name: "id", Type: spi.TypeInt}}, Mode: spi.ModeUpsert, Key: []string{secret}})
	errs = append(errs, err)
	for i, err := range errs {
		require.Error(t, err, i)
		require.NotContains(t, err.Error(), secret, i)
		require.Contains(t, err.Error(), "xxxxx", i)
	}
	// The scrubbed error still unwraps.
	require.True(t, errors.Is(errs[0], spi.ErrInvalid))
}

func TestContextEnds(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	c := d.open(t)
	d.exec(t, "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100000) g")
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := c.Read(ctx, spi.Dataset{Table: "t"}, spi.Partition{}, 100, func(b spi.Batch) error {
		n += len(b.Rows)
		if n >= 1000 {
			cancel()
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	// The connection the read used was closed, not handed back mid-query.
	_, err = c.Describe(context.Background(), spi.Dataset{Table: "t"})
	require.NoError(t, err)
	start := time.Now()
	stop := errors.New("stop")
	err = c.Read(context.Background(), spi.Dataset{Table: "t"}, spi.Partition{}, 100, func(b spi.Batch) error { return stop })
	require.ErrorIs(t, err, stop)
	require.Less(t, time.Since(start), 5*time.Second)
}
