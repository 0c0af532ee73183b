package catalog_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestOpenDSNForms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	for _, dsn := range []string{
		filepath.Join(dir, "a.db"),
		"sqlite:" + filepath.Join(dir, "b"),
		"sqlite://" + filepath.Join(dir, "c.sqlite"),
		filepath.Join(dir, "sub", "dir", "d.db"), // directories are made
		":memory:",
	} {
		s, err := catalog.Open(ctx, catalog.StoreConfig{DSN: dsn})
		require.NoError(t, err, dsn)
		require.Equal(t, catalog.DialectSQLite, s.Dialect())
		require.NoError(t, s.Migrate(ctx), dsn)
		require.NoError(t, s.Ping(ctx))
		require.NoError(t, s.Close())
	}
	for _, dsn := range []string{"", "mysql://u:p@h/db", "catalog.txt", "sqlite:"} {
		_, err := catalog.Open(ctx, catalog.StoreConfig{DSN: dsn})
		requireInvalid(t, err, "catalog", dsn)
	}
	// A password in a DSN is not repeated in the error.
	_, err := catalog.Open(ctx, catalog.StoreConfig{DSN: "mysql://user:hunter2@db/x"})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
	_, err = catalog.Open(ctx, catalog.StoreConfig{DSN: "postgres://user:hunter2@127.0.0.1:1/x?connect_timeout=2"})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
}

func TestStoreConfigDefaults(t *testing.T) {
	t.Parallel()
	c := catalog.StoreConfig{}.WithDefaults()
	require.NotNil(t, c.Logger)
	require.Equal(t, catalog.MaxOpenConnsDefault, c.MaxOpenConns)
	require.Equal(t, catalog.SlowQueryDefault, c.SlowQuery)
	kept := catalog.StoreConfig{MaxOpenConns: 3, SlowQuery: time.Second}.WithDefaults()
	require.Equal(t, 3, kept.MaxOpenConns)
	require.Equal(t, time.Second, kept.SlowQuery)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoSecretsInLogs logs every query (a 1ns slow-query threshold) and
// every error while secrets go through the Store: none reaches the log.
func TestNoSecretsInLogs(t *testing.T) {
	for _, d := range catalogtest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			var buf syncBuffer
			logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			s := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: catalogtest.DSN(t, d), Logger: logger, SlowQuery: time.Nanosecond})
			ctx := context.Background()
			const password = "Sup3r-s3cret-passw0rd"
			u := &catalog.User{Name: "alice", Role: catalog.RoleAdmin}
			require.NoError(t, s.CreateUser(ctx, u))
			raw, _, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: u.ID, Name: "t"})
			require.NoError(t, err)
			custom := "custom-admin-token-XYZ123"
			_, _, err = s.CreateToken(ctx, catalog.CreateTokenParams{UserID: u.ID, Name: "admin", Secret: custom})
			require.NoError(t, err)
			_, _, err = s.CreateToken(ctx, catalog.CreateTokenParams{UserID: u.ID, Name: "admin-again", Secret: custom}) // duplicate: an error
			require.ErrorIs(t, err, catalog.ErrConflict)
			_, err = s.Authenticate(ctx, raw)
			require.NoError(t, err)
			_, err = s.Authenticate(ctx, "weir_wrong-token-value-abcdef")
			require.Error(t, err)
			sys := fsSystem("db1", "/data")
			sys.Secrets = catalog.NewJSON(map[string]string{"password": password})
			require.NoError(t, s.CreateSystem(ctx, sys))
			require.ErrorIs(t, s.CreateSystem(ctx, sys), catalog.ErrConflict)
			sys.Secrets = catalog.NewJSON(map[string]string{"password": password + "2"})
			require.NoError(t, s.UpdateSystem(ctx, sys))

			out := buf.String()
			require.NotEmpty(t, out, "the logger saw the queries")
			require.Contains(t, out, "SELECT")
			for _, secret := range []string{raw, custom, password, catalog.HashToken(raw), catalog.HashToken(custom), "weir_wrong-token-value"} {
				require.NotContains(t, out, secret)
			}
		})
	}
}

func TestSetClockIsSafeWhileInUse(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		var wg sync.WaitGroup
		ctx, cancel := context.WithCancel(f.ctx)
		wg.Go(func() {
			for ctx.Err() == nil {
				_ = s.Now()
				_, _ = s.ListDispatchable(ctx, testRegion, 1)
			}
		})
		for range 20 {
			s.SetClock(f.clock.Now)
			time.Sleep(time.Millisecond)
		}
		cancel()
		wg.Wait()
		require.Equal(t, f.clock.Now(), s.Now())
		require.Equal(t, time.UTC, s.Now().Location())
		s.SetClock(func() time.Time { return f.clock.Now().In(time.FixedZone("x", 3600)) })
		require.Equal(t, time.UTC, s.Now().Location(), "the Store's time is always UTC")
		require.True(t, strings.HasPrefix(s.Now().String(), "2026-03-01 12:00:00"))
	})
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://weir:s3cret@db:5432/weir?sslmode=disable":         "postgres://weir:xxxxx@db:5432/weir?sslmode=disable",
		"postgres://weir:a#b/c%@db/weir":                              "postgres://weir:xxxxx@db/weir",
		"postgres://weir:p@ss@db/weir":                                "postgres://weir:xxxxx@db/weir",
		"postgres://weir@db/weir?password=s3cret&sslmode=require":     "postgres://weir@db/weir?password=xxxxx&sslmode=require",
		"postgres://weir@db/weir?sslpassword=k3y&sslmode=verify-full": "postgres://weir@db/weir?sslpassword=xxxxx&sslmode=verify-full",
		"host=db user=weir password=s3cret dbname=weir":               "host=db user=weir password=xxxxx dbname=weir",
		"host=db user=weir password='s3 cret' dbname=weir":            "host=db user=weir password=xxxxx dbname=weir",
		"postgres://weir@db/weir":                                     "postgres://weir@db/weir",
		"weir-data/catalog.db":                                        "weir-data/catalog.db",
	} {
		require.Equal(t, want, catalog.RedactDSN(in), in)
	}
}
