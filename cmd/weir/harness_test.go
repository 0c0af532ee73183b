package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// weirBin is the weir binary the end-to-end tests run, built once by TestMain.
var weirBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "weir-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	weirBin = filepath.Join(dir, "weir")
	args := []string{"build", "-o", weirBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build weir:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one weir process started by a test.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

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

// startWeir starts the weir binary with args and env; it is stopped at cleanup
// and its output is shown when the test fails.
func startWeir(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(weirBin, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{t: t, name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("---- output of %s ----\n%s", name, tail(out.String(), 6000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// stop sends SIGTERM and waits for a graceful exit (SIGKILL after 15 s).
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Errorf("%s did not stop within 15s of SIGTERM", p.name)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill9 kills the process at once, as a crash would.
func (p *proc) kill9() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// freeAddr returns a free 127.0.0.1 TCP address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitReady polls url/healthz until it answers 200.
func waitReady(t *testing.T, p *proc, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			t.Fatalf("%s exited before it was ready", p.name)
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready at %s within 60s", p.name, base)
}

// api is a minimal REST caller for end-to-end tests.
type api struct {
	t     *testing.T
	base  string
	token string
}

// call sends a JSON request and decodes the answer into out (when not nil),
// returning the status code.
func (a api) call(method, path string, body, out any) int {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	if resp.StatusCode >= 300 && out == nil {
		a.t.Logf("%s %s -> %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return resp.StatusCode
}

// runView is the part of a run the tests read.
type runView struct {
	ID         string `json:"run_id"`
	State      string `json:"state"`
	Attempt    int    `json:"attempt"`
	Worker     string `json:"worker"`
	Error      string `json:"error"`
	HoldReason string `json:"hold_reason"`
	Progress   struct {
		FilesTotal int64 `json:"files_total"`
		FilesDone  int64 `json:"files_done"`
		BytesTotal int64 `json:"bytes_total"`
		BytesDone  int64 `json:"bytes_done"`
	} `json:"progress"`
}

func terminal(state string) bool {
	switch state {
	case "succeeded", "empty", "failed", "canceled", "aborted":
		return true
	}
	return false
}

// waitRun polls a run until cond holds or the timeout passes.
func (a api) waitRun(id string, timeout time.Duration, cond func(runView) bool) runView {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	var r runView
	for {
		r = runView{}
		if code := a.call("GET", "/api/v1/runs/"+id, nil, &r); code != 200 {
			a.t.Fatalf("get run %s: status %d", id, code)
		}
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("run %s: condition not met within %s; last: %+v", id, timeout, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sameTree fails t unless every regular file under want exists under got with
// the same bytes, and got has no other files than those and except names.
func sameTree(t *testing.T, want, got string, except ...string) {
	t.Helper()
	skip := map[string]bool{}
	for _, e := range except {
		skip[e] = true
	}
	wantFiles := map[string]bool{}
	err := filepath.WalkDir(want, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		wantFiles[rel] = true
		a, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil {
			t.Errorf("missing at target: %s", rel)
			return nil
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs: %d bytes at source, %d at target", rel, len(a), len(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(got, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(got, p)
		if !wantFiles[rel] && !skip[rel] {
			t.Errorf("unexpected file at target: %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
