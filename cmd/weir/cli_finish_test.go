package main

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQuietKeepsResultsDropsProgress: -q draws no progress and says nothing
// informational, but the result and the exit code are the same.
func TestQuietKeepsResultsDropsProgress(t *testing.T) {
	f := newFakeWeir(t)
	res := runCLI(t, context.Background(), f.url(), "-q", "submit", "demo-trades", "-p", "business_date=2026-11-20", "--wait", "--poll", "1ms")
	require.Equal(t, ExitOK, res.code, res.stderr)
	id := f.runs[0].run.ID
	assert.Empty(t, res.stderr, "nothing but errors on stderr with -q")
	assert.Contains(t, res.stdout, "Run "+id+" succeeded")

	res = runCLI(t, context.Background(), f.url(), "--quiet", "runs", "cancel")
	assert.Equal(t, ExitUsage, res.code)
	assert.Contains(t, res.stderr, "weir runs cancel takes 1 argument", "errors are still printed")
}

func TestVersion(t *testing.T) {
	code, out, stderr := runMain(t, "version", "-o", "json")
	require.Equal(t, ExitOK, code, stderr)
	var b buildInfo
	require.NoError(t, json.Unmarshal([]byte(out), &b))
	assert.Equal(t, runtime.Version(), b.GoVersion)
	assert.Equal(t, runtime.GOOS, b.OS)
	assert.Equal(t, runtime.GOARCH, b.Arch)
	assert.NotEmpty(t, b.Version)
	assert.NotEmpty(t, b.Commit)

	code, out, _ = runMain(t, "version")
	require.Equal(t, ExitOK, code)
	assert.True(t, strings.HasPrefix(out, "weir "+b.Version+"\n"), out)
	assert.Contains(t, out, "platform:   "+runtime.GOOS+"/"+runtime.GOARCH)

	// A packager's -ldflags -X stamps win over what the toolchain recorded.
	buildVersion, buildCommit, buildDate = "v1.2.3", "0123456789abcdef", "2026-11-29T12:00:00Z"
	t.Cleanup(func() { buildVersion, buildCommit, buildDate = "", "", "" })
	code, out, _ = runMain(t, "version")
	require.Equal(t, ExitOK, code)
	assert.Contains(t, out, "weir v1.2.3\ncommit:     0123456789abcdef\nbuild date: 2026-11-29T12:00:00Z\n")

	code, _, stderr = runMain(t, "version", "extra")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, stderr, `weir version takes no arguments, got "extra"`)
}

// TestCompletion: cobra's scripts for each shell, and run ids and mapping
// names completed from the server.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, stderr := runMain(t, "completion", sh)
		require.Equal(t, ExitOK, code, stderr)
		assert.Contains(t, out, "weir", sh)
		assert.Greater(t, len(out), 1000, sh)
	}
	f := newFakeWeir(t)
	ids := submitN(t, f, 2)
	res := runCLI(t, context.Background(), f.url(), "__complete", "runs", "show", "")
	require.Equal(t, ExitOK, res.code, res.stderr)
	for _, id := range ids {
		assert.Contains(t, res.stdout, id+"\tdemo-trades pending\n")
	}
	res = runCLI(t, context.Background(), f.url(), "__complete", "submit", "demo")
	require.Equal(t, ExitOK, res.code, res.stderr)
	assert.Contains(t, res.stdout, "demo-trades")
	assert.Contains(t, res.stdout, ":4\n", "no file names offered")

	// A server that is away completes nothing, quickly, without an error.
	res = runCLI(t, context.Background(), "http://127.0.0.1:1", "__complete", "runs", "cancel", "")
	assert.Equal(t, ExitOK, res.code)
	assert.Equal(t, ":4\n", res.stdout)
}

// TestExitCodes: the codes scripts rely on, one per kind of failure.
func TestExitCodes(t *testing.T) {
	f := newFakeWeir(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		server string
		args   []string
		code   int
		hint   string
	}{
		{"unknown command", f.url(), []string{"sumbit"}, ExitUsage, "did you mean `weir submit`?"},
		{"unknown flag", f.url(), []string{"runs", "list", "--colour"}, ExitUsage, "see `weir runs list --help`"},
		{"bad flag value", f.url(), []string{"runs", "list", "--limit", "many"}, ExitUsage, "see `weir runs list --help`"},
		{"bad alert id", f.url(), []string{"alerts", "ack", "x"}, ExitUsage, "the number in the ID column"},
		{"bad severity", f.url(), []string{"alerts", "list", "--severity", "loud"}, ExitUsage, "use one of"},
		{"bad threshold metric", f.url(), []string{"thresholds", "set", "default", "heat", "--warn", "1"}, ExitUsage, "use one of"},
		{"not found", f.url(), []string{"runs", "show", "017635551234500099999999"}, ExitNotFound, "`weir runs list`"},
		{"unreachable", "http://127.0.0.1:1", []string{"runs", "list"}, ExitUnreachable, "is the server running"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, ctx, tc.server, tc.args...)
			assert.Equal(t, tc.code, res.code, res.stderr)
			assert.Contains(t, res.stderr, "Hint: ")
			assert.Contains(t, res.stderr, tc.hint)
		})
	}
	code, out, _ := runMain(t, "--help")
	require.Equal(t, ExitOK, code)
	assert.Contains(t, out, exitCodesHelp)
}
