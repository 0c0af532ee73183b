package monitor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/weirdata/weir/catalog"
)

// commandEnvPassed are the variables of the node's environment a command inherits.
var commandEnvPassed = []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"}

func commandEnv(extra []string) []string {
	var env []string
	for _, k := range commandEnvPassed {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...) // later entries win
}

// runCommand runs one life of a command: it starts it, waits until it
// exits or ctx ends (then stops it), and says how it ended.
func (s *Supervisor) runCommand(ctx context.Context, u *unit, log *slog.Logger) error {
	c := u.cmd
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = commandEnv(c.Env)
	stdout := &lineLog{log: log, stream: "stdout"}
	stderr := &lineLog{log: log, stream: "stderr"}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Wait returns at most this long after the process exited even when a
	// child that left the process group keeps its output open.
	cmd.WaitDelay = s.cfg.KillGrace
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.Path, err)
	}
	pid := cmd.Process.Pid
	s.update(u, func(r *catalog.Service) { r.PID = pid })
	log.Info("command running", slog.Int("pid", pid))

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-ctx.Done():
		terminate(cmd)
		t := time.NewTimer(s.cfg.KillGrace)
		select {
		case err = <-waited:
		case <-t.C:
			log.Warn("command ignored SIGTERM; killing it", slog.Int("pid", pid), slog.Duration("kill_grace", s.cfg.KillGrace))
			kill(cmd)
			err = <-waited
		}
		t.Stop()
	}
	kill(cmd) // whatever the command left behind in its process group
	stdout.flush()
	stderr.flush()
	return exitError(cmd, err, stderr.lastLine())
}

// exitError says how a command ended, with the last line it wrote to stderr.
func exitError(cmd *exec.Cmd, err error, lastStderr string) error {
	var how string
	var ee *exec.ExitError
	switch {
	case err == nil || errors.Is(err, exec.ErrWaitDelay) || errors.As(err, &ee):
		if cmd.ProcessState == nil {
			return fmt.Errorf("wait for command: %w", err)
		}
		how = "exited: " + cmd.ProcessState.String() // "exit status 3", "signal: killed"
	default:
		return fmt.Errorf("wait for command: %w", err)
	}
	if lastStderr != "" {
		how += "; last stderr line: " + lastStderr
	}
	return errors.New(how)
}

// lineLogMax is the longest line logged whole; longer ones are split.
const lineLogMax = 8 << 10

// lineLog writes what a command prints to the log, one record per line.
type lineLog struct {
	log    *slog.Logger
	stream string

	mu   sync.Mutex
	buf  []byte
	last string
}

// Write implements io.Writer.
func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		switch {
		case i >= 0 && i <= lineLogMax:
			l.emit(l.buf[:i])
			l.buf = l.buf[i+1:]
		case len(l.buf) > lineLogMax:
			l.emit(l.buf[:lineLogMax])
			l.buf = l.buf[lineLogMax:]
		default:
			l.buf = append([]byte(nil), l.buf...) // let the consumed prefix go
			return len(p), nil
		}
	}
}

func (l *lineLog) emit(line []byte) {
	s := strings.TrimRight(string(line), "\r")
	if strings.TrimSpace(s) == "" {
		return
	}
	l.last = s
	l.log.Info("command output", slog.String("stream", l.stream), slog.String("line", s))
}

// flush logs an unfinished last line.
func (l *lineLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = nil
	}
}

func (l *lineLog) lastLine() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}
