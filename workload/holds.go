package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/weirdata/weir/catalog"
)

// Alert keys the workload manager raises (deduplicated by the catalog).
const (
	// AlertKeyHold prefixes the alert of a hold cause (a red host, no
	// healthy worker in a region): one for all the runs it holds, followed
	// by the cause ("hold:host db-1").
	AlertKeyHold = "hold:"
	// AlertKeyRunHeld prefixed the alert of one held run, in versions that
	// raised one per run; a new leader resolves those still open.
	AlertKeyRunHeld = "run-held:"
	// AlertKeyRunFailed prefixes the alert of a mapping whose runs ended
	// failed or aborted, followed by the mapping ("run-failed:trades"): one
	// for all its failures while it is open.
	AlertKeyRunFailed = "run-failed:"
	// AlertKeyNodeRed prefixes the alert of a node critical on CPU, memory or free disk.
	AlertKeyNodeRed = "node-red:"
	// AlertKeyNodeSilent prefixes the alert of a node not heard from for too long.
	AlertKeyNodeSilent = "node-silent:"
	// AlertKeyNodeDeviation prefixes the alert of a node far from its baseline.
	AlertKeyNodeDeviation = "node-deviation:"
)

const (
	// holdAlertRefresh is how often the alert of a hold cause whose held
	// runs did not change is raised again, so that its last_seen stays
	// recent; a change of count raises it at once.
	holdAlertRefresh = time.Minute
	// holdRunsNamed bounds the held runs an alert's message names.
	holdRunsNamed = 3
)

// holdAlert is what a leader remembers of the open alert of a hold cause.
type holdAlert struct {
	runs int       // the held runs its message counted; -1 when seeded from the catalog
	msg  string    // its message
	at   time.Time // when it was last raised
}

// causeHolds are the runs one cause holds this tick.
type causeHolds struct {
	reason string   // the hold reason of the first run
	runs   []string // run IDs, in admission order
}

// enforceHolds keeps the catalog's record of health holds in step with
// this tick's decisions and returns the decisions still to carry out:
//
//   - a run held by health for the first time gets its hold started (one
//     batched write for all of them);
//   - a run held by health for longer than its maximum hold time (its
//     mapping's max_hold, else Config.MaxHold) is aborted with its hold
//     reason and leaves the decisions;
//   - a run admitted, or now held only for capacity, has its hold cleared.
//
// Alerts go by cause, not by run (see syncHoldAlerts): a thousand runs held
// by one red host are one alert.
func (m *Manager) enforceHolds(ctx context.Context, t *term, decisions []Decision, cands map[string]candidate, now time.Time) ([]Decision, error) {
	holds, err := m.store.ListRunHolds(ctx, m.cfg.Region)
	if err != nil {
		return nil, fmt.Errorf("list run holds: %w", err)
	}
	since := make(map[string]time.Time, len(holds))
	for _, h := range holds {
		since[h.RunID] = h.Since
	}
	out := decisions[:0:0]
	var started []catalog.RunHold
	var cleared []string
	causes := map[string]*causeHolds{}
	for _, d := range decisions {
		began, held := since[d.RunID]
		c := cands[d.RunID]
		switch {
		case !d.Health:
			if held {
				cleared = append(cleared, d.RunID)
			}
		case !held:
			started = append(started, catalog.RunHold{RunID: d.RunID, Region: m.cfg.Region, Since: now})
			m.log.Warn("run held by health", slog.String("run_id", d.RunID), slog.String("reason", d.Hold))
		case now.Sub(began) >= c.maxHold:
			msg := fmt.Sprintf("held longer than the maximum hold time of %s: %s", c.maxHold, d.Hold)
			if err := m.abort(ctx, t, c.run, msg, "run aborted: held by health too long"); err != nil {
				return nil, err
			}
			cleared = append(cleared, d.RunID)
			continue
		}
		if d.Health {
			ch := causes[d.Cause]
			if ch == nil {
				ch = &causeHolds{reason: d.Hold}
				causes[d.Cause] = ch
			}
			ch.runs = append(ch.runs, d.RunID)
		}
		out = append(out, d)
	}
	if err := m.store.StartRunHolds(ctx, started); err != nil {
		return nil, fmt.Errorf("start run holds: %w", err)
	}
	if err := m.clearHolds(ctx, cleared); err != nil {
		return nil, err
	}
	if err := m.syncHoldAlerts(ctx, causes); err != nil {
		return nil, err
	}
	return out, nil
}

// syncHoldAlerts raises one alert per hold cause (subject: the cause;
// message: how many runs it holds, a few of them, and why), raises it again
// when that count changes or holdAlertRefresh passed (its count and
// last_seen go up: no new row), and resolves the alerts of causes that hold
// nothing any more. Its catalog writes are bounded by the number of causes,
// whatever the number of held runs.
func (m *Manager) syncHoldAlerts(ctx context.Context, causes map[string]*causeHolds) error {
	st := m.alerts
	if st == nil {
		return nil
	}
	now := m.store.Now()
	var errs []error
	for cause, ch := range causes {
		key := AlertKeyHold + cause
		msg := holdMessage(ch)
		cur, open := st.holds[key]
		if open && (cur.runs == len(ch.runs) || cur.msg == msg) && now.Sub(cur.at) < holdAlertRefresh {
			continue // nothing new: the values in a reason (cpu 97%, 98%) may move every tick
		}
		if _, _, err := m.store.RaiseAlert(ctx, catalog.RaiseAlertParams{Key: key, Severity: catalog.AlertWarning,
			Subject: cause + " holds runs", Message: msg, Region: m.cfg.Region}); err != nil {
			errs = append(errs, fmt.Errorf("raise alert of hold cause %s: %w", cause, err))
			continue
		}
		if !open {
			m.log.Warn("alert raised: runs held", slog.String("cause", cause), slog.Int("runs", len(ch.runs)), slog.String("reason", ch.reason))
		}
		st.holds[key] = holdAlert{runs: len(ch.runs), msg: msg, at: now}
	}
	for key := range st.holds {
		if _, held := causes[strings.TrimPrefix(key, AlertKeyHold)]; held {
			continue
		}
		if _, err := m.store.ResolveAlert(ctx, key); err != nil {
			errs = append(errs, fmt.Errorf("resolve alert %s: %w", key, err))
			continue
		}
		delete(st.holds, key)
		m.log.Info("alert resolved: no run held any more", slog.String("key", key))
	}
	return errors.Join(errs...)
}

// holdMessage says how many runs a cause holds, names a few and why:
// "3 runs held (…0001, …0002, …0003): source host db-1: cpu 99% > 95% critical".
func holdMessage(ch *causeHolds) string {
	named := ch.runs[:min(len(ch.runs), holdRunsNamed)]
	list := strings.Join(named, ", ")
	if more := len(ch.runs) - len(named); more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	noun := "runs"
	if len(ch.runs) == 1 {
		noun = "run"
	}
	return fmt.Sprintf("%d %s held (%s): %s", len(ch.runs), noun, list, ch.reason)
}

// clearHolds removes the holds of runs no longer held by health.
func (m *Manager) clearHolds(ctx context.Context, ids []string) error {
	if err := m.store.ClearRunHolds(ctx, ids); err != nil {
		return fmt.Errorf("clear run holds: %w", err)
	}
	for _, id := range ids {
		m.log.Info("run no longer held by health", slog.String("run_id", id))
	}
	return nil
}

// sweepHolds clears the holds of runs no longer pending (canceled, say,
// or gone), which no decision mentions any more.
func (m *Manager) sweepHolds(ctx context.Context) error {
	holds, err := m.store.ListRunHolds(ctx, m.cfg.Region)
	if err != nil {
		return fmt.Errorf("list run holds: %w", err)
	}
	var done []string
	for _, h := range holds {
		if h.State != catalog.StatePending {
			done = append(done, h.RunID)
		}
	}
	return m.clearHolds(ctx, done)
}
