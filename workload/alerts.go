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

const (
	// endedLookback is how far back a new leader looks for runs that ended
	// failed or aborted: runs end while no leader governs (workers finish
	// them), and a run already alerted is not alerted again.
	endedLookback = time.Hour
	// endedOverlap is how far each look for ended runs reaches back before
	// the previous one: a run whose end was written just before the previous
	// look committed after it.
	endedOverlap = 5 * time.Second
	// endedBatch bounds the ended runs one tick alerts.
	endedBatch = 500
)

// alertState is what a leader remembers, for its term, of the alerts it
// raised: node alerts are raised when a condition begins (or escalates) and
// resolved when it ends, not on every tick.
type alertState struct {
	seeded bool
	// open maps the key of each open node alert to its severity.
	open map[string]string
	// holds maps the key of each open hold cause alert to what it said.
	holds map[string]holdAlert
	// endedSince is where the next look for ended runs starts.
	endedSince time.Time
	// alerted are the ended runs alerted in the overlap, by end time.
	alerted map[string]time.Time
}

func newAlertState(endedSince time.Time) *alertState {
	return &alertState{open: map[string]string{}, holds: map[string]holdAlert{}, endedSince: endedSince, alerted: map[string]time.Time{}}
}

// watch raises and resolves the alerts of a full tick: nodes going red,
// silent or far from their baseline (and back), runs that ended failed or
// aborted since the last look, and holds of runs no longer pending.
func (m *Manager) watch(ctx context.Context, hv *healthView) error {
	var errs []error
	if err := m.watchNodes(ctx, hv); err != nil {
		errs = append(errs, err)
	}
	if err := m.watchEnded(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := m.sweepHolds(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// nodeCondition is what one node alert key should be after a look: raised
// with a severity, resolved, or left as it is (unknown: stale statistics).
type nodeCondition struct {
	key      string
	severity string // "" resolves the alert
	keep     bool   // neither raise nor resolve
	subject  string
	message  string
}

// nodeConditions judges a node for alerts, as the workload manager does:
// silent (critical) when its last heartbeat is older than the critical
// heartbeat age or it was marked dead; red (critical) when its fresh
// statistics are critical on CPU, memory or free disk; deviating (warning,
// or critical past the critical level) when a metric is far from its
// baseline. A condition that cannot be judged (statistics older than the
// critical heartbeat age) is left as it is.
func nodeConditions(n *catalog.Node, hv *healthView) []nodeCondition {
	th := hv.Thresholds(catalog.NodeScope(n.ID))
	age := max(hv.Now.Sub(n.LastSeen), 0)
	beat := catalog.Evaluate(catalog.Sample{At: hv.Now}, age, th, hv.Now).Only(catalog.ThresholdHeartbeat)
	silent := nodeCondition{key: AlertKeyNodeSilent + n.ID, subject: "node " + n.ID + " is silent"}
	switch {
	case n.State == catalog.NodeDead:
		silent.severity = catalog.AlertCritical
		silent.message = fmt.Sprintf("node %s is dead: not heard from for %s", n.ID, age.Round(time.Second))
	case beat.Color == catalog.Red:
		silent.severity = catalog.AlertCritical
		silent.message = beat.Reasons[0].Text
	case beat.Color == catalog.Yellow:
		silent.keep = true
	}
	red := nodeCondition{key: AlertKeyNodeRed + n.ID, subject: "node " + n.ID + " is red"}
	dev := nodeCondition{key: AlertKeyNodeDeviation + n.ID, subject: "node " + n.ID + " deviates from its baseline"}
	s, fresh := hv.freshSample(n.ID, th)
	if !fresh || silent.severity != "" {
		red.keep, dev.keep = true, true
		return []nodeCondition{silent, red, dev}
	}
	hl := catalog.Evaluate(s, 0, th, hv.Now)
	if text := redText(hl); text != "" {
		red.severity, red.message = catalog.AlertCritical, text
	} else if hl.Worst(admissionMetrics...) != catalog.Green {
		red.keep = true // yellow: resolved only once green again
	}
	if d := hl.Only(catalog.ThresholdDeviation); d.Color != catalog.Green {
		dev.severity = catalog.AlertWarning
		if d.Color == catalog.Red {
			dev.severity = catalog.AlertCritical
		}
		texts := make([]string, len(d.Reasons))
		for i, r := range d.Reasons {
			texts[i] = r.Text
		}
		dev.message = strings.Join(texts, "; ")
	}
	return []nodeCondition{silent, red, dev}
}

// watchNodes raises an alert when a node of the region goes red, silent or
// far from its baseline, escalates it when it gets worse, and resolves it
// when the node is green again (or left the region).
func (m *Manager) watchNodes(ctx context.Context, hv *healthView) error {
	st := m.alerts
	if !st.seeded {
		if err := m.seedNodeAlerts(ctx); err != nil {
			return err
		}
		st.seeded = true
	}
	var want []nodeCondition
	seen := map[string]bool{}
	for i := range hv.Nodes {
		n := &hv.Nodes[i]
		if n.Region != m.cfg.Region || n.State == catalog.NodeLeft {
			continue
		}
		for _, c := range nodeConditions(n, hv) {
			seen[c.key] = true
			want = append(want, c)
		}
	}
	for key := range st.open {
		if !seen[key] { // the node left or is gone
			want = append(want, nodeCondition{key: key})
		}
	}
	var errs []error
	for _, c := range want {
		cur, open := st.open[c.key]
		switch {
		case c.keep:
		case c.severity == "" && open:
			if _, err := m.store.ResolveAlert(ctx, c.key); err != nil {
				errs = append(errs, fmt.Errorf("resolve alert %s: %w", c.key, err))
				continue
			}
			delete(st.open, c.key)
			m.log.Info("alert resolved", slog.String("key", c.key))
		case c.severity != "" && (!open || catalog.AlertSeverityRank(c.severity) > catalog.AlertSeverityRank(cur)):
			_, _, err := m.store.RaiseAlert(ctx, catalog.RaiseAlertParams{Key: c.key, Severity: c.severity,
				Subject: c.subject, Message: c.message, Region: m.cfg.Region})
			if err != nil {
				errs = append(errs, fmt.Errorf("raise alert %s: %w", c.key, err))
				continue
			}
			st.open[c.key] = c.severity
			m.log.Warn("alert raised", slog.String("key", c.key), slog.String("severity", c.severity), slog.String("message", c.message))
		}
	}
	return errors.Join(errs...)
}

// seedNodeAlerts reads the region's open node and hold cause alerts, so that
// a new leader resolves what an earlier one raised and does not raise it
// again. Alerts of single held runs, which earlier versions raised, are
// resolved: hold causes replace them.
func (m *Manager) seedNodeAlerts(ctx context.Context) error {
	f := catalog.AlertFilter{Open: true, Region: m.cfg.Region, Limit: catalog.ListLimitMax}
	for {
		page, next, err := m.store.ListAlerts(ctx, f)
		if err != nil {
			return fmt.Errorf("list open alerts: %w", err)
		}
		for _, a := range page {
			switch {
			case strings.HasPrefix(a.Key, AlertKeyHold):
				m.alerts.holds[a.Key] = holdAlert{runs: -1, msg: a.Message, at: a.LastSeen}
			case strings.HasPrefix(a.Key, AlertKeyRunHeld):
				if _, err := m.store.ResolveAlert(ctx, a.Key); err != nil {
					return fmt.Errorf("resolve alert %s: %w", a.Key, err)
				}
			}
			for _, p := range []string{AlertKeyNodeRed, AlertKeyNodeSilent, AlertKeyNodeDeviation} {
				if strings.HasPrefix(a.Key, p) {
					m.alerts.open[a.Key] = a.Severity
				}
			}
		}
		if next == 0 {
			return nil
		}
		f.Cursor = next
	}
}

// watchEnded raises one alert per run of the region that ended failed or
// aborted since the last look.
func (m *Manager) watchEnded(ctx context.Context) error {
	st := m.alerts
	lookAt := m.store.Now()
	runs, err := m.store.ListRunsEnded(ctx, m.cfg.Region, st.endedSince, endedBatch)
	if err != nil {
		return fmt.Errorf("list ended runs: %w", err)
	}
	for i := range runs {
		r := &runs[i]
		if _, done := st.alerted[r.ID]; done {
			continue
		}
		verb := "failed"
		if r.State == catalog.StateAborted {
			verb = "was aborted"
		}
		msg := r.Error
		if msg == "" {
			msg = string(r.State)
		}
		if _, _, err := m.store.RaiseAlertOnce(ctx, catalog.RaiseAlertParams{Key: AlertKeyRunFailed + r.ID, Severity: catalog.AlertCritical,
			Subject: fmt.Sprintf("run %s of mapping %s %s", r.ID, r.Mapping, verb), Message: msg, Region: m.cfg.Region}); err != nil {
			return fmt.Errorf("raise alert of run %s: %w", r.ID, err)
		}
		st.alerted[r.ID] = *r.FinishedAt
	}
	next := lookAt.Add(-endedOverlap)
	if len(runs) == endedBatch {
		next = *runs[len(runs)-1].FinishedAt // more to read: carry on from there
	}
	st.endedSince = next
	for id, at := range st.alerted {
		if !at.After(next) {
			delete(st.alerted, id)
		}
	}
	return nil
}
