package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuickStart runs the README's quick start: `weir dev` on a fresh data
// dir, then `weir submit demo-trades -p business_date=2026-11-20 --wait`. The
// run must succeed, the target files must be byte-identical to the source and
// the delivery manifest must list every one of them with its checksum.
func TestQuickStart(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	dev := startWeir(t, "weir dev", []string{"WEIR_ADMIN_TOKEN=", "WEIR_TOKEN=", "WEIR_SERVER="},
		"dev", "--data-dir", dataDir, "--listen", addr)
	waitReady(t, dev, base)

	// The token is printed once and written to the data dir, mode 0600.
	tokFile := filepath.Join(dataDir, "admin-token")
	st, err := os.Stat(tokFile)
	if err != nil {
		t.Fatalf("admin token file: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("admin-token mode %v, want 0600", st.Mode().Perm())
	}
	tok, _ := os.ReadFile(tokFile)
	token := strings.TrimSpace(string(tok))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(dev.out.String(), "submit demo-trades -p business_date=2026-11-20") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	out := dev.out.String()
	if !strings.Contains(out, token) {
		t.Errorf("weir dev did not print the admin token on first start")
	}
	if !strings.Contains(out, "submit demo-trades -p business_date=2026-11-20") {
		t.Errorf("weir dev did not print the command to submit a run:\n%s", out)
	}

	calmHostsAPI(t, api{t: t, base: base, token: token})

	src := filepath.Join(dataDir, "demo-src", "trades", "2026-11-20")
	entries, err := os.ReadDir(src)
	if err != nil || len(entries) < 20 {
		t.Fatalf("demo data: %d files in %s (%v)", len(entries), src, err)
	}

	cmd := exec.Command(weirBin, "submit", "demo-trades", "-p", "business_date=2026-11-20", "--wait",
		"--server", base, "--data-dir", dataDir)
	cmd.Env = append(os.Environ(), "WEIR_TOKEN=", "WEIR_SERVER=")
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("weir submit --wait: %v\n%s", err, got)
	}
	if !strings.Contains(string(got), "succeeded") {
		t.Errorf("submit output does not say succeeded:\n%s", got)
	}

	dst := filepath.Join(dataDir, "demo-dst", "trades", "2026-11-20")
	sameTree(t, src, dst, "_weir_manifest.json")

	var m struct {
		RunID string `json:"run_id"`
		State string `json:"state"`
		Files []struct {
			Path   string `json:"path"`
			Size   int64  `json:"size"`
			SHA256 string `json:"sha256"`
		} `json:"files"`
		TotalFiles int64 `json:"total_files"`
		TotalBytes int64 `json:"total_bytes"`
	}
	b, err := os.ReadFile(filepath.Join(dst, "_weir_manifest.json"))
	if err != nil {
		t.Fatalf("delivery manifest: %v", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("delivery manifest: %v", err)
	}
	if len(m.Files) != len(entries) || m.TotalFiles != int64(len(entries)) {
		t.Errorf("manifest lists %d files (total %d), source has %d", len(m.Files), m.TotalFiles, len(entries))
	}
	var total int64
	for _, f := range m.Files {
		data, err := os.ReadFile(filepath.Join(src, filepath.Base(f.Path)))
		if err != nil {
			t.Errorf("manifest file %s: %v", f.Path, err)
			continue
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(data)) != f.Size {
			t.Errorf("manifest entry %s: size %d sha %s; file has %d bytes, sha %x", f.Path, f.Size, f.SHA256, len(data), sum)
		}
		total += f.Size
	}
	if total != m.TotalBytes {
		t.Errorf("manifest total_bytes %d, files sum to %d", m.TotalBytes, total)
	}

	// The run is visible through the API and the CLI's JSON output.
	a := api{t: t, base: base, token: token}
	r := a.waitRun(m.RunID, 5*time.Second, func(r runView) bool { return terminal(r.State) })
	if r.State != "succeeded" || r.Progress.FilesDone != int64(len(entries)) {
		t.Errorf("run %s: state %s, files %d/%d", r.ID, r.State, r.Progress.FilesDone, r.Progress.FilesTotal)
	}
	list := exec.Command(weirBin, "runs", "list", "-o", "json", "--server", base, "--data-dir", dataDir)
	list.Env = cmd.Env
	lj, err := list.Output()
	if err != nil {
		t.Fatalf("weir runs list -o json: %v", err)
	}
	if !strings.Contains(string(lj), m.RunID) {
		t.Errorf("runs list does not show run %s:\n%s", m.RunID, lj)
	}

	// SIGTERM stops weir dev gracefully, and a restart reuses the catalog and token.
	dev.stop()
	if code := dev.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("weir dev exited %d after SIGTERM", code)
	}
	dev2 := startWeir(t, "weir dev (restart)", []string{"WEIR_ADMIN_TOKEN=", "WEIR_TOKEN="}, "dev", "--data-dir", dataDir, "--listen", addr)
	waitReady(t, dev2, base)
	if code := a.call("GET", "/api/v1/runs/"+m.RunID, nil, &runView{}); code != 200 {
		t.Errorf("after restart, run %s: status %d", m.RunID, code)
	}
	if strings.Contains(dev2.out.String(), token) {
		t.Errorf("weir dev printed the admin token again on restart")
	}
	// The restarted process is the same node, not a second one left dead.
	var nodes struct {
		Nodes []struct {
			ID string `json:"id"`
		} `json:"nodes"`
	}
	if code := a.call("GET", "/api/v1/nodes", nil, &nodes); code != 200 || len(nodes.Nodes) != 1 {
		t.Errorf("after restart, GET /api/v1/nodes: status %d, nodes %+v; want the one dev node", code, nodes.Nodes)
	}
}
