package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
)

// clearWeirEnv unsets every WEIR_* variable for the test, so the machine's
// environment cannot decide a source.
func clearWeirEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "WEIR_") {
			t.Setenv(k, "")
		}
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "weir.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

// runMain runs one command line in process and returns its exit code, stdout and stderr.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := NewMain(&out, &errb).Run(context.Background(), args)
	return code, out.String(), errb.String()
}

type printedConfig struct {
	Command  string    `json:"command"`
	File     string    `json:"file"`
	Settings []setting `json:"settings"`
}

func (p printedConfig) get(t *testing.T, key string) setting {
	t.Helper()
	for _, s := range p.Settings {
		if s.Key == key {
			return s
		}
	}
	t.Fatalf("weir config print has no %s", key)
	return setting{}
}

func printConfig(t *testing.T, args ...string) printedConfig {
	t.Helper()
	code, out, errs := runMain(t, append([]string{"config", "print", "-o", "json"}, args...)...)
	require.Equal(t, ExitOK, code, errs)
	var p printedConfig
	require.NoError(t, json.Unmarshal([]byte(out), &p), out)
	return p
}

// TestConfigBadFilesStopTheStart: every kind of bad file stops both
// `weir config print` and the service itself before it starts, with the
// file, the line, the key and the reason, a hint, and ExitUsage.
func TestConfigBadFilesStopTheStart(t *testing.T) {
	clearWeirEnv(t)
	cases := []struct {
		name, body string
		want       []string
	}{
		{"unknown key", "slots: 2\nslot: 4\n", []string{`line 2: unknown key "slot"`, `Hint: did you mean "slots"?`}},
		{"flag spelling", "--slots: 4\n", []string{`unknown key "--slots"`, `did you mean "slots"`}},
		{"far key", "colour: blue\n", []string{`unknown key "colour"`, "Hint: the keys are the flags of weir server, worker"}},
		{"not an integer", "slots: four\n", []string{`line 1: bad value "four" for key "slots": invalid syntax (want an integer)`, "Hint: the value takes the same form as the --slots flag"}},
		{"not a duration", "region: eu\nsample-interval: soon\n", []string{`line 2: bad value "soon" for key "sample-interval": invalid duration "soon"`}},
		{"list for a single value", "threads: [1, 2]\n", []string{`key "threads" takes a single value, not a list`}},
		{"mapping for a list", "disk-path: {a: 1}\n", []string{`key "disk-path" takes a list of values, not a mapping`}},
		{"mapping in a list", "disk-path:\n  - {a: 1}\n", []string{`line 2: key "disk-path": every item of the list must be a single value, not a mapping`}},
		{"no value", "slots:\n", []string{`key "slots" has no value`}},
		{"twice", "slots: 1\nslots: 2\n", []string{`line 2: key "slots" is set twice (first on line 1)`}},
		{"key of another command", "worker:\n  listen: 0.0.0.0:1\n", []string{`line 2: key "listen" is not a setting of weir worker`, "Hint: see `weir worker --help`"}},
		{"section not a mapping", "worker: 4\n", []string{`section "worker" must be a mapping`}},
		{"top is a list", "- slots\n", []string{"the file must be a mapping of keys to values, not a list"}},
		{"not YAML", "slots: [1,\n", []string{"config file", "yaml: line", "Hint: the file must be YAML"}},
		{"empty secret", "gossip-key: ''\n", []string{`key "gossip-key" must be a non-empty single value`}},
		{"bad gossip key", "gossip-key: c2hvcnQ=\n", []string{`line 1: bad value for key "gossip-key": parse gossip key: is 5 bytes`, "Hint: give 16, 24 or 32 random bytes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.body)
			for _, args := range [][]string{
				{"config", "print", "worker", "--config", p},
				{"worker", "--config", p, "--catalog", "postgres://nobody@127.0.0.1:1/none"},
			} {
				code, out, stderr := runMain(t, args...)
				require.Equal(t, ExitUsage, code, "%v: %s", args, stderr)
				assert.Empty(t, out)
				assert.Contains(t, stderr, "Error: ")
				assert.Contains(t, stderr, "Hint: ")
				for _, w := range tc.want {
					assert.Contains(t, stderr, w, args)
				}
				assert.NotContains(t, stderr, "c2hvcnQ", "a secret reached the error output")
			}
		})
	}

	t.Run("unreadable", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope.yaml")
		code, _, stderr := runMain(t, "worker", "--config", missing)
		require.Equal(t, ExitUsage, code)
		assert.Contains(t, stderr, "read config file: open "+missing+": no such file or directory")
		assert.Contains(t, stderr, "Hint: check --config / WEIR_CONFIG")

		t.Setenv(EnvConfig, missing)
		code, _, stderr = runMain(t, "config", "print", "server")
		require.Equal(t, ExitUsage, code)
		assert.Contains(t, stderr, missing)
	})
	t.Run("bad environment variable", func(t *testing.T) {
		t.Setenv("WEIR_SLOTS", "many")
		code, _, stderr := runMain(t, "config", "print", "worker")
		require.Equal(t, ExitUsage, code)
		assert.Contains(t, stderr, `bad WEIR_SLOTS "many": invalid syntax (want an integer)`)
	})
	t.Run("bad role", func(t *testing.T) {
		code, _, stderr := runMain(t, "config", "print", "submit")
		require.Equal(t, ExitUsage, code)
		assert.Contains(t, stderr, "weir config print takes one of server, worker, agent, dev, migrate")
	})
}

// TestConfigOrder: flags win over WEIR_<FLAG_NAME>, which wins over the
// file, whose command section wins over its top level, which wins over the
// defaults; config print says which source each value came from.
func TestConfigOrder(t *testing.T) {
	clearWeirEnv(t)
	p := writeConfig(t, `
region: from-file
slots: 3
threads: 5
max-hold: 2h
disk-path: [/a, /b]
worker:
  threads: 7
`)
	t.Setenv("WEIR_SLOTS", "9")
	t.Setenv("WEIR_LEADER_LEASE", "20s") // a flag that had no variable before
	got := printConfig(t, "worker", "--config", p)
	assert.Equal(t, p, got.File)
	for key, want := range map[string][2]any{
		"region":          {"from-file", SourceFile},
		"slots":           {"9", SourceEnv},
		"threads":         {"7", SourceFile}, // the worker section over the top level
		"disk-path":       {[]any{"/a", "/b"}, SourceFile},
		"log-level":       {"info", SourceDefault},
		"run-lease":       {"30s", SourceDefault},
		"sample-interval": {"5s", SourceDefault},
	} {
		s := got.get(t, key)
		assert.Equal(t, want[0], s.Value, key)
		assert.Equal(t, want[1], s.Source, key)
	}
	srv := printConfig(t, "server", "--config", p)
	assert.Equal(t, "2h0m0s", srv.get(t, "max-hold").Value)
	assert.Equal(t, SourceEnv, srv.get(t, "leader-lease").Source)
	assert.Equal(t, "20s", srv.get(t, "leader-lease").Value)
	assert.Equal(t, "WEIR_LEADER_LEASE", srv.get(t, "leader-lease").Env)

	// The YAML output is itself a configuration file that gives the same settings.
	code, out, stderr := runMain(t, "config", "print", "worker", "--config", p)
	require.Equal(t, ExitOK, code, stderr)
	assert.Contains(t, out, "threads: 7 # file (WEIR_THREADS)")
	assert.Contains(t, out, "slots: 9 # env (WEIR_SLOTS)")
	t.Setenv("WEIR_SLOTS", "")
	again := printConfig(t, "worker", "--config", writeConfig(t, out))
	assert.Equal(t, "9", again.get(t, "slots").Value)
	assert.Equal(t, "7", again.get(t, "threads").Value)
	assert.Equal(t, []any{"/a", "/b"}, again.get(t, "disk-path").Value)
}

// TestConfigOrderTakesEffect: the order holds for a command that runs, seen
// in what it does: weir migrate creates the catalog the winning source names.
func TestConfigOrderTakesEffect(t *testing.T) {
	clearWeirEnv(t)
	dir := t.TempDir()
	fileDB, envDB, flagDB := filepath.Join(dir, "file.db"), filepath.Join(dir, "env.db"), filepath.Join(dir, "flag.db")
	p := writeConfig(t, "catalog: "+fileDB+"\nlog-level: warn\n")
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }

	code, out, stderr := runMain(t, "migrate", "--config", p)
	require.Equal(t, ExitOK, code, stderr)
	assert.Contains(t, out, "catalog is at migration")
	assert.True(t, exists(fileDB), "the file's catalog was migrated")

	t.Setenv("WEIR_CATALOG", envDB)
	code, _, stderr = runMain(t, "migrate", "--config", p)
	require.Equal(t, ExitOK, code, stderr)
	assert.True(t, exists(envDB), "WEIR_CATALOG wins over the file")

	code, _, stderr = runMain(t, "migrate", "--config", p, "--catalog", flagDB)
	require.Equal(t, ExitOK, code, stderr)
	assert.True(t, exists(flagDB), "--catalog wins over WEIR_CATALOG")

	// WEIR_CONFIG names the file when --config is not given.
	t.Setenv("WEIR_CATALOG", "")
	require.NoError(t, os.Remove(fileDB))
	t.Setenv(EnvConfig, p)
	code, _, stderr = runMain(t, "migrate")
	require.Equal(t, ExitOK, code, stderr)
	assert.True(t, exists(fileDB), "WEIR_CONFIG's file was read")

	// A bad value in the file stops the start: log-level is checked by the command.
	bad := writeConfig(t, "catalog: "+fileDB+"\nlog-level: loud\n")
	code, _, stderr = runMain(t, "migrate", "--config", bad)
	require.Equal(t, ExitUsage, code)
	assert.Contains(t, stderr, `bad --log-level "loud"`)
}

// TestConfigPrintMasksSecrets: secrets from the file and the environment
// never show in config print, in either format; their source still does.
func TestConfigPrintMasksSecrets(t *testing.T) {
	clearWeirEnv(t)
	p := writeConfig(t, `
catalog: postgres://weir:catalog-pw-123@db.example.com:5432/weir?sslmode=disable
gossip-key: Z29zc2lwLWtleS1zZWNyZXQtNzg5MDEyMzQ1Njc4OTA=
federation-secret: fed-secret-789-0123456789abcdef0123456789
admin-token: weir_admin_abc
alert-webhook:
  - https://hook-user:hook-pw-def@hooks.example.com/weir?sig=hook-query-ghi
`)
	t.Setenv("WEIR_ALERT_WEBHOOK_SECRET", "webhook-secret-jkl")
	secrets := []string{"catalog-pw-123", "Z29zc2lwLWtleS1zZWNyZXQtNzg5MDEyMzQ1Njc4OTA=", "fed-secret-789-0123456789abcdef0123456789",
		"weir_admin_abc", "hook-pw-def", "hook-query-ghi", "webhook-secret-jkl"}
	for _, format := range []string{"yaml", "json"} {
		code, out, stderr := runMain(t, "config", "print", "server", "--config", p, "-o", format)
		require.Equal(t, ExitOK, code, stderr)
		for _, s := range secrets {
			assert.NotContains(t, out, s, format)
		}
		assert.Contains(t, out, "postgres://weir:xxxxx@db.example.com:5432/weir?sslmode=disable", format)
		assert.Contains(t, out, "https://hook-user:xxxxx@hooks.example.com/weir?xxxxx", format)
	}
	got := printConfig(t, "server", "--config", p)
	for key, src := range map[string]string{"gossip-key": SourceFile, "federation-secret": SourceFile, "admin-token": SourceFile,
		"alert-webhook-secret": SourceEnv} {
		assert.Equal(t, "********", got.get(t, key).Value, key)
		assert.Equal(t, src, got.get(t, key).Source, key)
	}
	assert.Equal(t, "", os.Getenv("WEIR_GOSSIP_KEY"), "config print exports nothing")
	assert.Equal(t, "host=db user=weir password=xxxxx dbname=weir", catalog.RedactDSN("host=db user=weir password=s3cret dbname=weir"))
}

func TestSuggest(t *testing.T) {
	keys := []string{"slots", "threads", "sample-interval", "listen", "log-level"}
	assert.Contains(t, suggest("thread", keys, "x"), `did you mean "threads"?`)
	assert.Contains(t, suggest("log_level", keys, "x"), `did you mean "log-level"?`)
	assert.Equal(t, "x", suggest("colour", keys, "x"))
	assert.Equal(t, 3, editDistance("kitten", "sitting"))
}

// TestReadmeConfigExample: the README's example file is accepted by every
// command it has a section for, with the sources it promises.
func TestReadmeConfigExample(t *testing.T) {
	clearWeirEnv(t)
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(b), "```yaml\n# /etc/weir/weir.yaml\n")
	require.True(t, ok, "the README has the example configuration file")
	example, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	p := writeConfig(t, example)
	srv := printConfig(t, "server", "--config", p)
	assert.Equal(t, "0.0.0.0:8080", srv.get(t, "listen").Value)
	assert.Equal(t, "postgres://weir:xxxxx@db.internal:5432/weir", srv.get(t, "catalog").Value)
	assert.Equal(t, SourceDefault, srv.get(t, "federation-secret").Source)
	wrk := printConfig(t, "worker", "--config", p)
	assert.Equal(t, "4", wrk.get(t, "slots").Value)
	assert.Equal(t, []any{"/data", "/var/lib/weir"}, wrk.get(t, "disk-path").Value)
}

// TestConfigWarnsWhenSecretsAreReadable: a file with secrets that others
// may read still works, with a warning naming it.
func TestConfigWarnsWhenSecretsAreReadable(t *testing.T) {
	clearWeirEnv(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "c.db")
	p := writeConfig(t, "catalog: "+db+"\n")
	code, _, stderr := runMain(t, "migrate", "--config", p)
	require.Equal(t, ExitOK, code, stderr)
	require.NoError(t, os.Chmod(p, 0o644))
	code, _, stderr = runMain(t, "migrate", "--config", p)
	require.Equal(t, ExitOK, code, stderr)
	assert.NotContains(t, stderr, "Warning", "no secret in the file")

	s := writeConfig(t, "catalog: "+db+"\nfederation-secret: "+strings.Repeat("f", 40)+"\n")
	require.NoError(t, os.Chmod(s, 0o640))
	code, _, stderr = runMain(t, "migrate", "--config", s)
	require.Equal(t, ExitOK, code, stderr)
	assert.Contains(t, stderr, "Warning: config file "+s+" holds secrets and is readable by others (mode 0640); chmod 600 it")
	assert.NotContains(t, stderr, strings.Repeat("f", 40))
}
