package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// TestDevAdminPasswordNeverWritesAGivenPasswordAndKeepsSessions: a password
// given in WEIR_ADMIN_PASSWORD is not written to disk and, once set, not set
// again (which would end the admin's sessions); a password file of an
// earlier run is made private and kept.
func TestDevAdminPasswordNeverWritesAGivenPasswordAndKeepsSessions(t *testing.T) {
	ctx := context.Background()
	store := catalogtest.Open(t, "sqlite")
	admin := &catalog.User{Name: AdminUserName, Role: catalog.RoleAdmin}
	require.NoError(t, store.CreateUser(ctx, admin))
	dir := t.TempDir()
	file := filepath.Join(dir, AdminPasswordFile)

	// Made the first time, in a 0600 file; a loose mode is tightened on restart.
	pw, err := devAdminPassword(ctx, store, dir)
	require.NoError(t, err)
	require.NotEmpty(t, pw)
	require.NoError(t, os.Chmod(file, 0o644))
	raw, _, err := store.CreateSession(ctx, catalog.CreateSessionParams{UserID: admin.ID})
	require.NoError(t, err)
	again, err := devAdminPassword(ctx, store, dir)
	require.NoError(t, err)
	require.Empty(t, again, "the file's password still works: kept")
	st, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	_, _, err = store.AuthenticateSession(ctx, raw)
	require.NoError(t, err, "a restart keeps the admin's sessions")

	// Given: set, never written, the stale file removed; a restart with the
	// same password keeps the sessions.
	const given = "a given password of the operator"
	t.Setenv("WEIR_ADMIN_PASSWORD", given)
	got, err := devAdminPassword(ctx, store, dir)
	require.NoError(t, err)
	require.Empty(t, got)
	_, err = os.Stat(file)
	require.ErrorIs(t, err, os.ErrNotExist, "the given password is not on disk")
	_, err = store.VerifyPassword(ctx, AdminUserName, given)
	require.NoError(t, err)
	raw, _, err = store.CreateSession(ctx, catalog.CreateSessionParams{UserID: admin.ID})
	require.NoError(t, err)
	_, err = devAdminPassword(ctx, store, dir)
	require.NoError(t, err)
	_, _, err = store.AuthenticateSession(ctx, raw)
	require.NoError(t, err, "a restart with the same WEIR_ADMIN_PASSWORD keeps the admin's sessions")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		require.False(t, strings.Contains(string(b), given), e.Name())
	}
}

// TestServerSecurityFlagsRefusedPrecisely: bad --trusted-proxy and
// --audit-retention stop weir server and weir dev with a hint.
func TestServerSecurityFlagsRefusedPrecisely(t *testing.T) {
	catalogArg := []string{"--catalog", "postgres://nobody@127.0.0.1:1/none"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"server", "--trusted-proxy", "10.0.0.0/33"}, `bad --trusted-proxy "10.0.0.0/33"`},
		{[]string{"dev", "--trusted-proxy", "proxy.example"}, `bad --trusted-proxy "proxy.example"`},
		{[]string{"server", "--audit-retention", "1m"}, "bad --audit-retention 1m0s: must be at least 1h"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stderr := runWeir(t, append(tc.args, catalogArg...)...)
			require.Equal(t, ExitUsage, code, stderr)
			require.Contains(t, stderr, tc.want)
			require.Contains(t, stderr, "Hint: ")
		})
	}
	t.Setenv("WEIR_TRUSTED_PROXIES", "10.0.0.0/8, bad")
	code, stderr := runWeir(t, append([]string{"server"}, catalogArg...)...)
	require.Equal(t, ExitUsage, code, stderr)
	require.Contains(t, stderr, `bad --trusted-proxy "bad"`)
}
