package workload

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/weirdata/weir/catalog"
)

// Alert keys the workload manager raises (deduplicated by the catalog).
const (
	// AlertKeyRunHeld prefixes the alert of a run held by health: one per hold.
	AlertKeyRunHeld = "run-held:"
	// AlertKeyRunFailed prefixes the alert of a run that ended failed or aborted.
	AlertKeyRunFailed = "run-failed:"
	// AlertKeyNodeRed prefixes the alert of a node critical on CPU, memory or free disk.
	AlertKeyNodeRed = "node-red:"
	// AlertKeyNodeSilent prefixes the alert of a node not heard from for too long.
	AlertKeyNodeSilent = "node-silent:"
	// AlertKeyNodeDeviation prefixes the alert of a node far from its baseline.
	AlertKeyNodeDeviation = "node-deviation:"
)

// enforceHolds keeps the catalog's record of health holds in step with
// this tick's decisions and returns the decisions still to carry out:
//
//   - a run held by health for the first time gets its hold started and its
//     alert raised (once: later ticks see the hold and raise nothing);
//   - a run held by health for longer than Config.MaxHold is aborted with its
//     hold reason and leaves the decisions;
//   - a run admitted, or now held only for capacity, has its hold cleared and
//     its alert resolved.
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
	for _, d := range decisions {
		began, held := since[d.RunID]
		switch {
		case !d.Health:
			if held {
				cleared = append(cleared, d.RunID)
			}
		case !held:
			if err := m.raiseHeld(ctx, cands[d.RunID].run, d.Hold); err != nil {
				return nil, err
			}
			started = append(started, catalog.RunHold{RunID: d.RunID, Region: m.cfg.Region, Since: now})
		case now.Sub(began) >= m.cfg.MaxHold:
			msg := fmt.Sprintf("held longer than the maximum hold time of %s: %s", m.cfg.MaxHold, d.Hold)
			if err := m.abort(ctx, t, cands[d.RunID].run, msg, "run aborted: held by health too long"); err != nil {
				return nil, err
			}
			cleared = append(cleared, d.RunID)
			continue
		}
		out = append(out, d)
	}
	if err := m.store.StartRunHolds(ctx, started); err != nil {
		return nil, fmt.Errorf("start run holds: %w", err)
	}
	if err := m.clearHolds(ctx, cleared); err != nil {
		return nil, err
	}
	return out, nil
}

// raiseHeld raises the alert of a run held by health.
func (m *Manager) raiseHeld(ctx context.Context, r *catalog.Run, reason string) error {
	_, _, err := m.store.RaiseAlert(ctx, catalog.RaiseAlertParams{
		Key:      AlertKeyRunHeld + r.ID,
		Severity: catalog.AlertWarning,
		Subject:  fmt.Sprintf("run %s of mapping %s held", r.ID, r.Mapping),
		Message:  reason,
		Region:   m.cfg.Region,
	})
	if err != nil {
		return fmt.Errorf("raise alert of held run %s: %w", r.ID, err)
	}
	m.log.Warn("run held by health", slog.String("run_id", r.ID), slog.String("reason", reason))
	return nil
}

// clearHolds resolves the alerts of runs no longer held by health and
// removes their holds.
func (m *Manager) clearHolds(ctx context.Context, ids []string) error {
	for _, id := range ids {
		if _, err := m.store.ResolveAlert(ctx, AlertKeyRunHeld+id); err != nil {
			return fmt.Errorf("resolve alert of run %s: %w", id, err)
		}
	}
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
