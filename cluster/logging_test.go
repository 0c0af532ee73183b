package cluster

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseLogLine(t *testing.T) {
	for _, tc := range []struct {
		line  string
		level slog.Level
		msg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:5000\n", slog.LevelDebug, "Stream connection from=127.0.0.1:5000"},
		{"[INFO] memberlist: Suspect w2 has failed, no acks received\n", slog.LevelInfo, "Suspect w2 has failed, no acks received"},
		{"[WARN] memberlist: Refuting a suspect message (from: w1)\n", slog.LevelWarn, "Refuting a suspect message (from: w1)"},
		{"[ERR] memberlist: Failed to send gossip to 127.0.0.2:7946: boom\n", slog.LevelError, "Failed to send gossip to 127.0.0.2:7946: boom"},
		{"[ERROR] memberlist: Failed to encrypt local state: x\n", slog.LevelError, "Failed to encrypt local state: x"},
		{"[ERR] Failed to shutdown transport: x\n", slog.LevelError, "Failed to shutdown transport: x"},
		{"Err: Could not set the deadline: x\n", slog.LevelError, "Could not set the deadline: x"},
		{"no level at all\n", slog.LevelInfo, "no level at all"},
		{"[odd] memberlist: kept whole", slog.LevelInfo, "[odd] memberlist: kept whole"},
	} {
		level, msg := parseLogLine(tc.line)
		require.Equal(t, tc.level, level, tc.line)
		require.Equal(t, tc.msg, msg, tc.line)
	}
}

func TestMemberlistLoggerBridge(t *testing.T) {
	var b bytes.Buffer
	l := newMemberlistLogger(slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.Printf("[DEBUG] memberlist: hidden at info level")
	l.Printf("[WARN] memberlist: Was able to connect to %s over TCP but UDP probes failed", "w2")
	out := b.String()
	require.NotContains(t, out, "hidden")
	require.Contains(t, out, `level=WARN msg="Was able to connect to w2 over TCP but UDP probes failed" lib=memberlist`)
}
