package catalogtest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// unreachablePostgres is a server nobody listens on (port 1 on loopback).
const unreachablePostgres = "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2"

// TestHelperOpenPostgres is run in a child process by the tests below; on
// its own it does nothing.
func TestHelperOpenPostgres(t *testing.T) {
	if os.Getenv("CATALOGTEST_CHILD") != "1" {
		t.Skip("run by TestRequirePostgres in a child process")
	}
	catalogtest.Open(t, catalog.DialectPostgres)
	t.Log("CHILD-OPENED")
}

func runChild(t *testing.T, require string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOpenPostgres$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "CATALOGTEST_CHILD=1", "WEIR_TEST_POSTGRES="+unreachablePostgres, "WEIR_REQUIRE_POSTGRES="+require)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestRequirePostgresFailsWhenUnreachable(t *testing.T) {
	t.Parallel()
	out, err := runChild(t, "1")
	if err == nil {
		t.Fatalf("with WEIR_REQUIRE_POSTGRES=1 an unreachable PostgreSQL must fail the test, got success:\n%s", out)
	}
	if !strings.Contains(out, "--- FAIL: TestHelperOpenPostgres") || !strings.Contains(out, "WEIR_REQUIRE_POSTGRES=1") {
		t.Fatalf("the child did not fail for the missing PostgreSQL:\n%s", out)
	}
	if strings.Contains(out, "CHILD-OPENED") {
		t.Fatalf("the child went on after the failure:\n%s", out)
	}
}

func TestPostgresSkippedWhenNotRequired(t *testing.T) {
	t.Parallel()
	out, err := runChild(t, "")
	if err != nil {
		t.Fatalf("without WEIR_REQUIRE_POSTGRES an unreachable PostgreSQL skips: %v\n%s", err, out)
	}
	if !strings.Contains(out, "--- SKIP: TestHelperOpenPostgres") {
		t.Fatalf("the child was not skipped:\n%s", out)
	}
}

func TestOpenGivesFreshMigratedCatalogs(t *testing.T) {
	for _, d := range catalogtest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			a, b := catalogtest.Open(t, d), catalogtest.Open(t, d)
			ctx := context.Background()
			if err := a.CreateUser(ctx, &catalog.User{Name: "alice"}); err != nil {
				t.Fatal(err)
			}
			// b is another catalog: the same name is free there.
			if err := b.CreateUser(ctx, &catalog.User{Name: "alice"}); err != nil {
				t.Fatalf("catalogs are not independent: %v", err)
			}
			ids, err := a.AppliedMigrations(ctx)
			if err != nil || len(ids) == 0 || ids[len(ids)-1] != catalog.LatestMigration() {
				t.Fatalf("not migrated: %v %v", ids, err)
			}
			if a.Dialect() != d {
				t.Fatalf("dialect %s, want %s", a.Dialect(), d)
			}
		})
	}
}
