package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// usersAPI is a real broker on a real SQLite catalog with the users admin
// (admin) and viewer (viewer), for the users, groups and audit commands.
type usersAPI struct {
	t      *testing.T
	store  *catalog.Store
	url    string
	tokens map[string]string
}

func newUsersAPI(t *testing.T) *usersAPI {
	t.Helper()
	ctx := context.Background()
	st := catalogtest.Open(t, catalog.DialectSQLite)
	a := &usersAPI{t: t, store: st, tokens: map[string]string{}}
	for _, u := range []struct{ name, role string }{{"admin", catalog.RoleAdmin}, {"viewer", catalog.RoleViewer}} {
		user := &catalog.User{Name: u.name, Role: u.role}
		require.NoError(t, st.CreateUser(ctx, user))
		secret, _, err := st.CreateToken(ctx, catalog.CreateTokenParams{UserID: user.ID, Name: u.name})
		require.NoError(t, err)
		a.tokens[u.name] = secret
	}
	hs := httptest.NewServer(broker.New(broker.Config{Region: RegionDefault, NodeID: "srv-1"}, st).Handler())
	t.Cleanup(hs.Close)
	a.url = hs.URL
	return a
}

// cli runs the weir CLI as user with stdin.
func (a *usersAPI) cli(user, stdin string, args ...string) cliResult {
	a.t.Helper()
	var out, errb bytes.Buffer
	m := NewMain(&out, &errb)
	root := newRootCmd(m)
	root.SetArgs(append([]string{"--server", a.url, "--token", a.tokens[user], "--data-dir", a.t.TempDir()}, args...))
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(stdin))
	code := ExitOK
	if err := root.ExecuteContext(context.Background()); err != nil {
		code = exitCode(err)
		errb.WriteString("Error: " + err.Error() + "\n")
		var h interface{ Hint() string }
		if errors.As(err, &h) {
			errb.WriteString("Hint: " + h.Hint() + "\n")
		}
	}
	return cliResult{stdout: out.String(), stderr: errb.String(), code: code}
}

func TestUsersGroupsAuditCommands(t *testing.T) {
	a := newUsersAPI(t)
	ctx := context.Background()
	const pw = "correct horse battery staple"

	res := a.cli("admin", pw+"\n", "users", "create", "carol", "--role", "submitter", "--password-stdin")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Regexp(t, `^User carol created \(id \d+, role submitter\)\.\n$`, res.stdout)
	_, err := a.store.VerifyPassword(ctx, "carol", pw)
	require.NoError(t, err, "the password from stdin was set")

	res = a.cli("admin", "short\n", "users", "create", "dave", "--password-stdin")
	assert.Equal(t, ExitUsage, res.code)
	assert.Contains(t, res.stderr, "password: must be at least 12 characters")
	assert.Contains(t, res.stderr, "Hint: choose a password")
	res = a.cli("admin", "", "users", "create", "dave", "--role", "root")
	assert.Equal(t, ExitUsage, res.code)
	assert.Contains(t, res.stderr, "Hint: use one of viewer, submitter, operator, admin")
	res = a.cli("admin", "", "users", "create", "dave", "--password-stdin")
	assert.Equal(t, ExitUsage, res.code)
	assert.Contains(t, res.stderr, "no line left")
	_, err = a.store.GetUserByName(ctx, "dave")
	require.ErrorIs(t, err, catalog.ErrNotFound, "no user was created by the refused commands")

	res = a.cli("admin", "", "users", "list")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Regexp(t, `\d+\s+carol\s+submitter\s+enabled`, res.stdout)

	res = a.cli("admin", "", "users", "role", "carol", "operator")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Contains(t, res.stdout, "User carol now has the role operator.")
	res = a.cli("admin", "", "users", "passwd", "nobody", "--password-stdin")
	assert.Equal(t, ExitNotFound, res.code)
	assert.Contains(t, res.stderr, "weir users list")

	res = a.cli("admin", "a brand new password\n", "users", "passwd", "carol", "--password-stdin")
	require.Equal(t, ExitOK, res.code, res.stderr)
	_, err = a.store.VerifyPassword(ctx, "carol", "a brand new password")
	require.NoError(t, err)

	// A non-admin changes only its own password, with the current one.
	res = a.cli("viewer", "whatever password\nanother password here\n", "users", "passwd", "carol", "--current", "--password-stdin")
	assert.Equal(t, ExitUsage, res.code)
	assert.Contains(t, res.stderr, "--current sets only your own password, and you are viewer")
	res = a.cli("viewer", "another password here\n", "users", "passwd", "carol", "--password-stdin")
	assert.Equal(t, ExitAuth, res.code)
	assert.Contains(t, res.stderr, "forbidden")

	res = a.cli("admin", "", "groups", "create", "desk", "--description", "trading desk")
	require.Equal(t, ExitOK, res.code, res.stderr)
	res = a.cli("admin", "", "groups", "add", "desk", "carol")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Equal(t, "carol is now a member of desk.\n", res.stdout)
	res = a.cli("admin", "", "groups", "show", "desk")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Contains(t, res.stdout, "Members: carol")
	res = a.cli("admin", "", "groups", "list")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Regexp(t, `\d+\s+desk\s+1\s+trading desk`, res.stdout)
	res = a.cli("admin", "", "groups", "add", "nogroup", "carol")
	assert.Equal(t, ExitNotFound, res.code)
	assert.Contains(t, res.stderr, "weir groups list")
	res = a.cli("viewer", "", "groups", "list")
	assert.Equal(t, ExitAuth, res.code)
	assert.Contains(t, res.stderr, "Hint: your user has no entitlement")
	res = a.cli("admin", "", "groups", "remove", "desk", "carol")
	require.Equal(t, ExitOK, res.code, res.stderr)
	res = a.cli("admin", "", "groups", "delete", "desk")
	require.Equal(t, ExitOK, res.code, res.stderr)

	res = a.cli("admin", "", "users", "disable", "carol")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Contains(t, res.stdout, "User carol (role operator) disabled")

	res = a.cli("admin", "", "audit", "--action", "group.*")
	require.Equal(t, ExitOK, res.code, res.stderr)
	for _, want := range []string{"group.create", "group.member_add", "group.member_remove", "group.delete"} {
		assert.Contains(t, res.stdout, want)
	}
	res = a.cli("admin", "", "-o", "json", "audit", "--outcome", "forbidden", "--since", "1h")
	require.Equal(t, ExitOK, res.code, res.stderr)
	var page struct{ Entries []catalog.AuditEntry }
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &page), res.stdout)
	require.NotEmpty(t, page.Entries)
	for _, e := range page.Entries {
		assert.Equal(t, "viewer", e.Actor)
		assert.NotContains(t, e.Args, "password here")
	}
	res = a.cli("admin", "", "audit", "--outcome", "maybe")
	assert.Equal(t, ExitUsage, res.code)
	assert.Contains(t, res.stderr, "Hint: use one of ok")
	res = a.cli("admin", "", "audit", "--since", "yesterday")
	assert.Equal(t, ExitUsage, res.code)
	assert.Contains(t, res.stderr, "RFC 3339")
}
