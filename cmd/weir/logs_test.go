package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
	gossip "github.com/weirdata/weir/cluster"
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestLogsCarryRunIDAndNoSecrets runs a whole run through the real binary,
// configured by a file, with debug logs in JSON on a PostgreSQL catalog whose
// DSN has a password, gossip encrypted and every secret set. No secret it
// used may appear anywhere in the processes' output, and every log line
// that mentions the run carries its run_id.
func TestLogsCarryRunIDAndNoSecrets(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(catalogtest.NewPostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	catalogPW := "catalog-pw-" + randomHex(8)
	u.User = url.UserPassword(u.User.Username(), catalogPW) // trust auth: accepted, never needed
	adminToken := catalog.NewTokenSecret()
	gossipKey := gossip.GenerateGossipKey()
	fedSecret := "fed-" + randomHex(16)
	hookSecret := "hook-" + randomHex(16)
	badToken := "weir_" + randomHex(20)
	secrets := map[string]string{"admin token": adminToken, "gossip key": gossipKey, "federation secret": fedSecret,
		"webhook secret": hookSecret, "catalog password": catalogPW, "refused token": badToken}

	dataDir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	cfg := filepath.Join(t.TempDir(), "weir.yaml")
	body := strings.Join([]string{
		"catalog: " + u.String(),
		"log-level: debug",
		"log-format: json",
		"admin-token: " + adminToken,
		"gossip-key: " + gossipKey,
		"federation-secret: " + fedSecret,
		"alert-webhook-secret: " + hookSecret,
		"dev:",
		"  bind: 127.0.0.1:0", // gossip on, encrypted with the key
		"  sample-interval: 200ms",
	}, "\n") + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	clean := []string{"WEIR_ADMIN_TOKEN=", "WEIR_TOKEN=", "WEIR_SERVER=", "WEIR_GOSSIP_KEY=", "WEIR_FEDERATION_SECRET=",
		"WEIR_ALERT_WEBHOOK_SECRET=", "WEIR_CATALOG=", "WEIR_LOG_LEVEL=", "WEIR_LOG_FORMAT=", "WEIR_CONFIG="}
	dev := startWeir(t, "weir dev", clean, "dev", "--config", cfg, "--data-dir", dataDir, "--listen", addr)
	waitReady(t, dev, base)
	a := api{t: t, base: base, token: adminToken} // the file's admin token works
	calmHostsAPI(t, a)
	if code := (api{t: t, base: base, token: badToken}).call("GET", "/api/v1/runs", nil, nil); code != 401 {
		t.Errorf("a wrong token: status %d, want 401", code)
	}

	submit := exec.Command(weirBin, "submit", "demo-trades", "-p", "business_date=2026-11-20", "--wait", "-o", "json",
		"--server", base, "--token", adminToken)
	submit.Env = append(os.Environ(), clean...)
	out, err := submit.CombinedOutput()
	if err != nil {
		t.Fatalf("weir submit --wait: %v\n%s", err, out)
	}
	var res runView
	if err := json.Unmarshal(out, &res); err != nil || res.State != "succeeded" {
		t.Fatalf("submit output (%v):\n%s", err, out)
	}
	id := res.ID
	a.call("GET", "/api/v1/runs/"+id, nil, nil)
	a.call("GET", "/api/v1/runs/"+id+"/events", nil, nil)
	time.Sleep(500 * time.Millisecond) // a few more ticks after the run
	dev.stop()

	all := dev.out.String()
	for what, s := range secrets {
		for _, line := range strings.Split(all, "\n") {
			if strings.Contains(line, s) {
				t.Errorf("the %s appears in weir dev's output: %s", what, line)
			}
		}
	}
	runLines, debugLines := map[string]int{}, 0
	idRE := regexp.MustCompile(`\b` + id + `\b`)
	for _, line := range strings.Split(all, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			if idRE.MatchString(line) {
				t.Errorf("a line that is not a JSON log record mentions run %s: %s", id, line)
			}
			continue
		}
		if k := repeatedKey(line); k != "" {
			t.Errorf("a log line repeats %q: %s", k, line)
		}
		if rec["level"] == "DEBUG" {
			debugLines++
		}
		if !idRE.MatchString(line) {
			continue
		}
		if rec["run_id"] != id {
			t.Errorf("a log line mentions run %s without run_id: %s", id, line)
			continue
		}
		c, _ := rec["component"].(string)
		runLines[c]++
	}
	if debugLines == 0 {
		t.Errorf("log-level: debug from the file gave no debug line")
	}
	for _, c := range []string{"broker", "workload", "worker"} {
		if runLines[c] == 0 {
			t.Errorf("no %s log line about run %s (lines by component: %v)", c, id, runLines)
		}
	}
}

// repeatedKey returns a top-level key a JSON log record has twice, or "".
func repeatedKey(line string) string {
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil { // {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		k, _ := tok.(string)
		if seen[k] {
			return k
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}
