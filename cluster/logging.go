package cluster

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// newMemberlistLogger returns a *log.Logger (what memberlist accepts) that
// forwards each line to l at the level its "[LEVEL]" prefix names.
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(&slogWriter{log: l.With(slog.String("lib", "memberlist"))}, "", 0)
}

// slogWriter turns memberlist's log lines ("[WARN] memberlist: text") into
// slog records. log.Logger calls Write once per line.
type slogWriter struct{ log *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	level, msg := parseLogLine(string(p))
	if w.log.Enabled(context.Background(), level) {
		w.log.Log(context.Background(), level, msg)
	}
	return len(p), nil
}

// parseLogLine splits a memberlist log line into its level and message.
// memberlist writes [DEBUG], [INFO], [WARN], [ERR] and [ERROR], and a few
// lines start with "Err:" instead; anything else is logged at info.
func parseLogLine(line string) (slog.Level, string) {
	line = strings.TrimRight(line, "\r\n")
	level := slog.LevelInfo
	if rest, ok := strings.CutPrefix(line, "["); ok {
		if tag, msg, ok := strings.Cut(rest, "]"); ok {
			switch strings.ToUpper(tag) {
			case "TRACE", "DEBUG":
				level = slog.LevelDebug
			case "INFO":
				level = slog.LevelInfo
			case "WARN", "WARNING":
				level = slog.LevelWarn
			case "ERR", "ERROR":
				level = slog.LevelError
			default:
				return level, line
			}
			line = strings.TrimSpace(msg)
		}
	} else if rest, ok := strings.CutPrefix(line, "Err:"); ok {
		level, line = slog.LevelError, strings.TrimSpace(rest)
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	return level, line
}
