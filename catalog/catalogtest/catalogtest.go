// Package catalogtest opens real catalogs for tests: a fresh SQLite file, or a
// fresh database on the PostgreSQL server named by WEIR_TEST_POSTGRES
// (default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable).
//
// When PostgreSQL cannot be reached its tests are skipped, unless
// WEIR_REQUIRE_POSTGRES=1 (as CI sets it), which makes them fail instead.
//
// Only tests import it; it imports catalog and the pgx driver.
package catalogtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/weirdata/weir/catalog"
)

// PostgresAdminDSNDefault is the server used when WEIR_TEST_POSTGRES is unset.
const PostgresAdminDSNDefault = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Dialects lists the catalogs every conformance test runs against.
var Dialects = []string{catalog.DialectSQLite, catalog.DialectPostgres}

// AdminDSN returns the PostgreSQL server tests create databases on.
func AdminDSN() string {
	if v := os.Getenv("WEIR_TEST_POSTGRES"); v != "" {
		return v
	}
	return PostgresAdminDSNDefault
}

var (
	pgOnce sync.Once
	pgErr  error
)

// RequirePostgres skips (or, with WEIR_REQUIRE_POSTGRES=1, fails) t when the
// test PostgreSQL server is not reachable.
func RequirePostgres(t testing.TB) {
	t.Helper()
	pgOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, AdminDSN())
		if err != nil {
			pgErr = err
			return
		}
		pgErr = conn.Ping(ctx)
		_ = conn.Close(ctx)
	})
	if pgErr != nil {
		if os.Getenv("WEIR_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL required (WEIR_REQUIRE_POSTGRES=1) but not reachable at %s: %v", AdminDSN(), pgErr)
		}
		t.Skipf("PostgreSQL not reachable at %s (%v); set WEIR_TEST_POSTGRES", AdminDSN(), pgErr)
	}
}

// NewPostgresDSN creates an empty database for t, dropped at cleanup, and returns its DSN.
func NewPostgresDSN(t testing.TB) string {
	t.Helper()
	RequirePostgres(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "weir_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, AdminDSN())
	if err != nil {
		t.Fatalf("connect to test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, AdminDSN())
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	u, err := url.Parse(AdminDSN())
	if err != nil {
		t.Fatalf("parse WEIR_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// NewSQLiteDSN returns the path of a new SQLite catalog in t's temp dir.
func NewSQLiteDSN(t testing.TB) string {
	return filepath.Join(t.TempDir(), "catalog.db")
}

// DSN returns a fresh catalog DSN of dialect.
func DSN(t testing.TB, dialect string) string {
	switch dialect {
	case catalog.DialectPostgres:
		return NewPostgresDSN(t)
	case catalog.DialectSQLite:
		return NewSQLiteDSN(t)
	}
	panic(fmt.Sprintf("unknown dialect %q", dialect))
}

// Open returns a migrated Store on a fresh catalog of dialect, closed at cleanup.
func Open(t testing.TB, dialect string) *catalog.Store {
	t.Helper()
	return OpenConfig(t, catalog.StoreConfig{DSN: DSN(t, dialect)})
}

// OpenConfig opens a Store with cfg (cfg.DSN from DSN or NewPostgresDSN, for
// example a second Store on the same catalog), migrates it and closes it at cleanup.
func OpenConfig(t testing.TB, cfg catalog.StoreConfig) *catalog.Store {
	t.Helper()
	ctx := context.Background()
	s, err := catalog.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open catalog: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s catalog: %v", s.Dialect(), err)
	}
	return s
}

// Each runs fn as a parallel subtest against a fresh catalog of every dialect.
func Each(t *testing.T, fn func(t *testing.T, s *catalog.Store)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, Open(t, d))
		})
	}
}
