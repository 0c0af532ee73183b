package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// progressRuns is a run's life as WaitRun would see it.
func progressRuns() []client.Run {
	eta := 2.0
	base := client.Run{Run: catalog.Run{ID: "017635551234500100000001", MaxAttempts: 3}}
	at := func(f func(r *client.Run)) client.Run { r := base; f(&r); return r }
	return []client.Run{
		at(func(r *client.Run) { r.State = catalog.StatePending }),
		at(func(r *client.Run) { r.State, r.HoldReason = catalog.StatePending, "host db1 is red on disk" }),
		at(func(r *client.Run) { r.State, r.WorkerID = catalog.StateQueued, "node-1" }),
		at(func(r *client.Run) { r.State, r.Attempt = catalog.StateActive, 1 }),
		at(func(r *client.Run) {
			r.State, r.Attempt = catalog.StateActive, 1
			r.Progress = catalog.Progress{FilesTotal: 3, FilesDone: 1, BytesTotal: 3_000_000, BytesDone: 1_000_000}
			r.RateBytesPerSecond, r.ETASeconds = 1_000_000, &eta
		}),
		at(func(r *client.Run) {
			r.State, r.Attempt = catalog.StateActive, 1
			r.Progress = catalog.Progress{FilesTotal: 3, FilesDone: 2, BytesTotal: 3_000_000, BytesDone: 2_000_000}
		}),
		at(func(r *client.Run) {
			r.State, r.Attempt = catalog.StateSucceeded, 1
			r.Progress = catalog.Progress{FilesTotal: 3, FilesDone: 3, BytesTotal: 3_000_000, BytesDone: 3_000_000}
		}),
	}
}

func TestBarProgressDrawsSpinnerThenBar(t *testing.T) {
	var buf bytes.Buffer
	p := &barProgress{w: &buf}
	runs := progressRuns()
	for _, r := range runs {
		p.update(r)
	}
	last := runs[len(runs)-1]
	p.finish(&last)
	out := buf.String()
	assert.Contains(t, out, "\r", "a terminal line is redrawn in place")
	assert.Contains(t, out, "pending: waiting for the workload manager")
	assert.Contains(t, out, "pending: held: host db1 is red on disk")
	assert.Contains(t, out, "queued: assigned to node-1")
	assert.Contains(t, out, "active: inspecting the source")
	assert.Contains(t, out, "33% |█████████                     |  files 1/3, 1.0 MB/3.0 MB, 1.0 MB/s, ETA 2s")
	assert.Contains(t, out, "66% |███████████████████           |  files 2/3, 2.0 MB/3.0 MB")
	assert.Contains(t, out, "100% |██████████████████████████████|  files 3/3, 3.0 MB/3.0 MB")
	assert.NotContains(t, out, "succeeded", "no spinner flickers at the end")
	assert.True(t, strings.HasSuffix(out, "\n"), "the bar ends on a fresh line")
	assert.Nil(t, p.bar)
}

func TestBarProgressClearsOnFailureAndInterrupt(t *testing.T) {
	var buf bytes.Buffer
	p := &barProgress{w: &buf}
	runs := progressRuns()
	p.update(runs[4])
	failed := runs[4]
	failed.State = catalog.StateFailed
	p.finish(&failed)
	out := buf.String()
	assert.True(t, strings.HasSuffix(out, "\r\x1b[2K\r"), "the bar's line is wiped for the summary: %q", out[max(0, len(out)-20):])
	assert.NotContains(t, out, "100%")

	// Interrupted while pending: finish with nothing seen is harmless.
	buf.Reset()
	p = &barProgress{w: &buf}
	p.finish(nil)
	assert.Empty(t, buf.String())
	p.update(runs[0])
	p.finish(nil)
	assert.True(t, strings.HasSuffix(buf.String(), "\x1b[2K\r"))
}

func TestLineProgressWritesChangesAndThrottlesProgress(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	p := &lineProgress{w: &buf, every: 10 * time.Second, now: func() time.Time { return now }}
	runs := progressRuns()
	for _, r := range runs[:5] {
		p.update(r)
		p.update(r) // a repeated poll writes nothing
	}
	p.update(runs[5]) // 2/3 within 10 s of 1/3: skipped
	now = now.Add(11 * time.Second)
	p.update(runs[5]) // ... but written once 10 s have passed
	p.update(runs[6])
	p.finish(&runs[6])
	id := runs[0].ID
	want := strings.Join([]string{
		"run " + id + ": pending: waiting for the workload manager",
		"run " + id + ": pending: held: host db1 is red on disk",
		"run " + id + ": queued: assigned to node-1",
		"run " + id + ": active: inspecting the source",
		"run " + id + ": active: files 1/3, 1.0 MB/3.0 MB, 1.0 MB/s, ETA 2s",
		"run " + id + ": active: files 2/3, 2.0 MB/3.0 MB",
		"run " + id + ": succeeded",
	}, "\n") + "\n"
	assert.Equal(t, want, buf.String())
}

func TestWaitingTextOfARetry(t *testing.T) {
	r := client.Run{Run: catalog.Run{State: catalog.StatePending, Attempt: 1, MaxAttempts: 3, HoldReason: "backing off after a failure"}}
	assert.Equal(t, "pending, retry 2/3: held: backing off after a failure", waitingText(r))
}

func TestFormatters(t *testing.T) {
	assert.Equal(t, "999 B", fmtBytes(999))
	assert.Equal(t, "1.0 kB", fmtBytes(1000))
	assert.Equal(t, "1.5 MB", fmtBytes(1_500_000))
	assert.Equal(t, "2.0 GB", fmtBytes(2_000_000_000))
	assert.Equal(t, "-", fmtRate(0))
	assert.Equal(t, "250ms", fmtSeconds(0.25))
	assert.Equal(t, "12.3s", fmtSeconds(12.34))
	assert.Equal(t, "2m5s", fmtSeconds(125.4))
	assert.Equal(t, "a=1 b=2", fmtParams(map[string]string{"b": "2", "a": "1"}))
	assert.Equal(t, "-", fmtTimePtr(nil))
}

func TestParseParams(t *testing.T) {
	p, err := parseParams([]string{"business_date=2026-11-20", "filter=a=b", "empty="})
	assert.NoError(t, err)
	assert.Equal(t, map[string]string{"business_date": "2026-11-20", "filter": "a=b", "empty": ""}, p, "only the first = splits")
}
