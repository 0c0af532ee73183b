package monitor_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain doubles as the external command the supervisor tests run: with
// MONITOR_HELPER set, the test binary behaves as that helper instead.
func TestMain(m *testing.M) {
	if mode := os.Getenv("MONITOR_HELPER"); mode != "" {
		helperMain(mode)
		return
	}
	os.Exit(m.Run())
}

// helperMain is a real process with a behaviour the tests need:
//
//	exit      record its pid, print a line on stdout and stderr, exit 3
//	serve     record its pid, run until SIGTERM, then exit 0
//	stubborn  record its pid, ignore SIGTERM, run until killed
//	tree      start a stubborn child (HELPER_CHILD_FILE), then serve
//	env       write its environment to HELPER_FILE, then serve
func helperMain(mode string) {
	file := os.Getenv("HELPER_FILE")
	record := func(line string) {
		f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			os.Exit(90)
		}
		fmt.Fprintln(f, line)
		f.Close()
	}
	pid := os.Getpid()
	serve := func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		<-ch
		fmt.Println("terminating on SIGTERM")
		os.Exit(0)
	}
	switch mode {
	case "exit":
		record(strconv.Itoa(pid))
		fmt.Printf("hello from %d\n", pid)
		fmt.Fprintf(os.Stderr, "oops from %d\n", pid)
		os.Exit(3)
	case "serve":
		record(strconv.Itoa(pid))
		serve()
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		record(strconv.Itoa(pid))
		select {}
	case "tree":
		child := exec.Command(os.Args[0])
		child.Env = []string{"MONITOR_HELPER=stubborn", "HELPER_FILE=" + os.Getenv("HELPER_CHILD_FILE")}
		child.Stdout = os.Stdout // keeps the supervisor's pipe open
		if err := child.Start(); err != nil {
			os.Exit(91)
		}
		record(strconv.Itoa(pid))
		serve()
	case "env":
		record(strings.Join(os.Environ(), "\n"))
		serve()
	default:
		os.Exit(92)
	}
}

// readPIDs returns the pids recorded in file so far.
func readPIDs(t *testing.T, file string) []int {
	t.Helper()
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, l := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(l)
		if err != nil {
			t.Fatalf("bad pid line %q", l)
		}
		out = append(out, n)
	}
	return out
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// logBuffer collects log records for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// within fails t unless cond holds before d passes.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
