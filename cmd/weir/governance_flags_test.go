package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runWeir runs one command line in process and returns its exit code and stderr.
func runWeir(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := NewMain(&out, &errb).Run(context.Background(), args)
	return code, errb.String()
}

// TestNodeFlagsRefusedPrecisely: bad governance flags stop a node before it
// touches the catalog, with an error that names the flag and a hint.
func TestNodeFlagsRefusedPrecisely(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "tool")
	require.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\nexit 0\n"), 0o755))
	plain := filepath.Join(t.TempDir(), "plain")
	require.NoError(t, os.WriteFile(plain, []byte("x"), 0o644))
	// No catalog is reachable here: every case must fail on its flag first.
	catalogArg := []string{"--catalog", "postgres://nobody@127.0.0.1:1/none"}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"worker", "--sample-interval", "1ms"}, "bad --sample-interval 1ms: must be at least 10ms"},
		{[]string{"worker", "--command", "Bad Name=/bin/true"}, `bad --command "Bad Name=/bin/true"`},
		{[]string{"worker", "--command", "x=relative/tool"}, `"relative/tool" is not an absolute path`},
		{[]string{"worker", "--command", "x=/no/such/tool"}, "bad --command x: stat /no/such/tool: no such file or directory"},
		{[]string{"worker", "--command", "x=" + plain}, "is not an executable file"},
		{[]string{"worker", "--command", "x=" + exe, "--command", "x=" + exe + ",-v"}, "two commands are named x"},
		{[]string{"worker", "--catalog-commands", "/no/such/dir"}, `bad --catalog-commands "/no/such/dir"`},
		{[]string{"agent", "--systems", "a", "--catalog-commands", plain}, "is not a directory"},
		{[]string{"dev", "--catalog-commands", exe}, "is not a directory"},
		{[]string{"worker", "--disk-path", "/no/such/dir"}, `bad --disk-path "/no/such/dir": not a directory on this host`},
		{[]string{"worker", "--slots", "0"}, "--slots and --threads must be at least 1"},
		{[]string{"worker", "--high-load", "0"}, "bad --high-load 0: must be a positive number"},
		{[]string{"server", "--alert-min-severity", "loud"}, `bad --alert-min-severity "loud"`},
		{[]string{"server", "--max-active-runs", "0"}, "bad --max-active-runs 0"},
		{[]string{"server", "--max-hold", "10ms"}, "bad --max-hold 10ms: must be at least 1s"},
		{[]string{"agent"}, "weir agent needs the systems of this host: --systems"},
		{[]string{"agent", "--systems", "a,a"}, "bad --systems: a is named twice"},
		{[]string{"agent", "--systems", "a", "--probe-interval", "10ms"}, "bad --probe-interval 10ms: must be at least 1s"},
		{[]string{"dev", "--alert-min-severity", "loud"}, `bad --alert-min-severity "loud"`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stderr := runWeir(t, append(tc.args, catalogArg...)...)
			require.Equal(t, ExitUsage, code, stderr)
			require.Contains(t, stderr, tc.want)
			require.Contains(t, stderr, "Hint: ")
		})
	}
}

func TestNodeFlagsFromEnvironment(t *testing.T) {
	t.Setenv("WEIR_SAMPLE_INTERVAL", "soon")
	code, stderr := runWeir(t, "worker", "--catalog", "postgres://nobody@127.0.0.1:1/none")
	require.Equal(t, ExitUsage, code)
	require.Contains(t, stderr, `bad WEIR_SAMPLE_INTERVAL "soon"`)

	t.Setenv("WEIR_SAMPLE_INTERVAL", "")
	t.Setenv("WEIR_COMMANDS", "a=/bin/true;b=/nope")
	code, stderr = runWeir(t, "worker", "--catalog", "postgres://nobody@127.0.0.1:1/none")
	require.Equal(t, ExitUsage, code)
	require.Contains(t, stderr, "bad --command b: stat /nope")

	t.Setenv("WEIR_COMMANDS", "")
	t.Setenv("WEIR_CATALOG_COMMANDS", "/no/such/dir")
	code, stderr = runWeir(t, "server", "--catalog", "postgres://nobody@127.0.0.1:1/none")
	require.Equal(t, ExitUsage, code)
	require.Contains(t, stderr, `bad --catalog-commands "/no/such/dir"`)
}

func TestParseCommands(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "tool")
	require.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755))
	cmds, err := parseCommands([]string{"exporter=" + exe + ",--listen,:9100,", "b.2=" + exe})
	require.NoError(t, err)
	require.Len(t, cmds, 2)
	require.Equal(t, "exporter", cmds[0].Name)
	require.Equal(t, exe, cmds[0].Path)
	require.Equal(t, []string{"--listen", ":9100", ""}, cmds[0].Args)
	require.Equal(t, "b.2", cmds[1].Name)
	require.Empty(t, cmds[1].Args)
}

func TestAdvertiseURL(t *testing.T) {
	host, err := os.Hostname()
	require.NoError(t, err)
	cases := []struct{ given, addr, want, err string }{
		{"", "127.0.0.1:7071", "http://127.0.0.1:7071", ""},
		{"", "0.0.0.0:7071", "http://" + host + ":7071", ""},
		{"", "[::]:7071", "http://" + host + ":7071", ""},
		{"https://w3.example.com:7071/", "0.0.0.0:7071", "https://w3.example.com:7071", ""},
		{"w3:7071", "0.0.0.0:7071", "", "bad --agent-advertise"},
		{"http://u:p@w3:7071", "0.0.0.0:7071", "", "bad --agent-advertise"},
		{"http://w3:7071/agent", "0.0.0.0:7071", "", "bad --agent-advertise"},
	}
	for _, tc := range cases {
		got, err := advertiseURL(tc.given, tc.addr, "--agent-advertise")
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.given)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
	require.Equal(t, "http://127.0.0.1:80", loopbackURL("0.0.0.0:80"))
	require.Equal(t, "http://[::1]:80", loopbackURL("[::]:80"))
	require.Equal(t, "http://10.1.2.3:80", loopbackURL("10.1.2.3:80"))
}

func TestDiskPaths(t *testing.T) {
	dir := t.TempDir()
	f := &serviceFlags{}
	// Defaults that are not on this host are skipped; none left means "/".
	got, err := f.diskPathsFor("", "/no/such/root", dir, dir)
	require.NoError(t, err)
	require.Equal(t, []string{dir}, got)
	got, err = f.diskPathsFor("/no/such/root")
	require.NoError(t, err)
	require.Equal(t, []string{"/"}, got)
	// Given paths replace the defaults, relative ones made absolute.
	t.Chdir(dir)
	require.NoError(t, os.Mkdir("data", 0o755))
	f.diskPaths = []string{"data"}
	got, err = f.diskPathsFor("/")
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(dir, "data")}, got)
}

func TestCatalogDir(t *testing.T) {
	require.Equal(t, "", catalogDir("postgres://u@h/db"))
	require.Equal(t, "/var/lib/weir", catalogDir("/var/lib/weir/catalog.db"))
	require.Equal(t, "/var/lib/weir", catalogDir("sqlite:///var/lib/weir/c.db"))
}
