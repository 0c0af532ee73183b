package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// progressView shows a run's progress while `weir submit --wait` polls it.
type progressView interface {
	// update shows the run as last polled.
	update(r client.Run)
	// finish removes or completes the display once the run has ended or the
	// wait stopped, leaving the cursor at the start of a fresh line.
	finish(r *client.Run)
}

// progressLineEvery is how often line mode repeats the progress of an
// active run whose state has not changed.
const progressLineEvery = 10 * time.Second

// newProgressView picks a live bar for a terminal and plain lines otherwise
// (a pipe, a file, a CI log), where carriage returns would garble the output.
func newProgressView(w io.Writer) progressView {
	if isTerminal(w) {
		return &barProgress{w: w}
	}
	return &lineProgress{w: w, every: progressLineEvery, now: time.Now}
}

// isTerminal reports whether w is a terminal that can redraw a line.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}

// waitingText says why a run that is not active yet waits.
func waitingText(r client.Run) string {
	s := string(r.State)
	switch r.State {
	case catalog.StatePending:
		if r.Attempt > 0 {
			s = fmt.Sprintf("pending, retry %d/%d", r.Attempt+1, r.MaxAttempts)
		}
		if r.HoldReason != "" {
			return s + ": held: " + r.HoldReason
		}
		return s + ": waiting for the workload manager"
	case catalog.StateQueued:
		if r.WorkerID != "" {
			return s + ": assigned to " + r.WorkerID
		}
		return s
	case catalog.StateActive:
		return s + ": inspecting the source"
	}
	return s
}

// progressText is one line of an active run's progress: files, bytes, rate, ETA.
func progressText(r client.Run) string {
	parts := []string{fmt.Sprintf("files %d/%d", r.FilesDone, r.FilesTotal)}
	if r.BytesTotal > 0 {
		parts = append(parts, fmt.Sprintf("%s/%s", fmtBytes(r.BytesDone), fmtBytes(r.BytesTotal)))
	} else {
		parts = append(parts, fmtBytes(r.BytesDone))
	}
	if r.RateBytesPerSecond > 0 {
		parts = append(parts, fmtRate(r.RateBytesPerSecond))
	}
	if r.ETASeconds != nil {
		parts = append(parts, "ETA "+fmtSeconds(*r.ETASeconds))
	}
	return strings.Join(parts, ", ")
}

// lineProgress writes one line per change of state, and the progress of an
// active run at most every `every`.
type lineProgress struct {
	w            io.Writer
	every        time.Duration
	now          func() time.Time
	last         string // the last status written, to skip repeats
	lastAt       time.Time
	lastProgress bool // the last line was an active run's progress
}

func (p *lineProgress) update(r client.Run) {
	progress := r.State == catalog.StateActive && r.FilesTotal > 0
	var status string
	if progress {
		status = "active: " + progressText(r)
	} else {
		status = waitingText(r)
	}
	if status == p.last {
		return
	}
	now := p.now()
	if progress && p.lastProgress && now.Sub(p.lastAt) < p.every {
		return
	}
	p.last, p.lastAt, p.lastProgress = status, now, progress
	fmt.Fprintf(p.w, "run %s: %s\n", r.ID, status)
}

func (p *lineProgress) finish(*client.Run) {}

// barProgress draws a live bar: a spinner while the run waits, then a bar
// of bytes with files done/total, rate and ETA.
type barProgress struct {
	w       io.Writer
	bar     *progressbar.ProgressBar
	spinner bool
	max     int64
}

func (p *barProgress) update(r client.Run) {
	if r.State.Terminal() {
		// finish completes or wipes the bar; a spinner saying "succeeded" would only flicker.
		if p.bar != nil && !p.spinner {
			p.bar.Describe(barText(r))
			_ = p.bar.Set64(min(r.BytesDone, p.max))
		}
		return
	}
	if r.State == catalog.StateActive && r.BytesTotal > 0 {
		if p.bar == nil || p.spinner || p.max != r.BytesTotal {
			p.clear()
			p.max, p.spinner = r.BytesTotal, false
			// Figures come from the server (files, bytes, its rate and
			// ETA), not from the bar's own timing, which would be wrong
			// when the wait starts in the middle of a run.
			p.bar = progressbar.NewOptions64(r.BytesTotal,
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetPredictTime(false),
				progressbar.OptionSetWidth(30),
				progressbar.OptionShowDescriptionAtLineEnd(),
				progressbar.OptionSetSpinnerChangeInterval(0))
		}
		p.bar.Describe(barText(r))
		_ = p.bar.Set64(min(r.BytesDone, r.BytesTotal))
		return
	}
	if p.bar == nil || !p.spinner {
		p.clear()
		p.spinner = true
		// A spinner turned by our own polls (change interval 0): the
		// library then starts no goroutine of its own.
		p.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionSetSpinnerChangeInterval(0),
			progressbar.OptionSetElapsedTime(true))
	}
	p.bar.Describe(waitingText(r))
	_ = p.bar.Add(1)
}

// barText is the text beside the bar: files, bytes, rate and ETA.
func barText(r client.Run) string {
	return progressText(r)
}

// clear wipes the current bar's line.
func (p *barProgress) clear() {
	if p.bar != nil {
		_ = p.bar.Clear()
		_ = p.bar.Exit()
		// Erase the whole line too: a ^C the terminal echoed past the bar's end stays otherwise.
		_, _ = io.WriteString(p.w, "\x1b[2K\r")
		p.bar = nil
	}
}

func (p *barProgress) finish(r *client.Run) {
	if p.bar == nil {
		return
	}
	if r != nil && !p.spinner && (r.State == catalog.StateSucceeded || r.State == catalog.StateEmpty) {
		_ = p.bar.Finish()
		_ = p.bar.Exit()
		fmt.Fprintln(p.w)
		p.bar = nil
		return
	}
	p.clear()
}
