package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	// endedSeeded are the mappings whose failed-runs alert this term has
	// compared with the catalog's (see watchEnded).
	endedSeeded map[string]bool
}

func newAlertState(endedSince time.Time) *alertState {
	return &alertState{open: map[string]string{}, holds: map[string]holdAlert{}, endedSince: endedSince, alerted: map[string]time.Time{},
		endedSeeded: map[string]bool{}}
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

// watchEnded raises one alert per mapping whose runs ended failed or
// aborted since the last look (key AlertKeyRunFailed+mapping): a thousand
// runs of one mapping aborted after their maximum hold time are one alert,
// raised once per tick at most (its count and last_seen go up), not a
// thousand rows. Its subject says how many runs of the mapping failed in
// the look, its message the newest one's error and the IDs of a few others.
//
// A new leader looks back endedLookback: a run that ended before the last
// raise of its mapping's alert was alerted by an earlier leader and is
// skipped, so a failover neither counts a failure twice nor reopens an
// alert an operator resolved.
func (m *Manager) watchEnded(ctx context.Context) error {
	st := m.alerts
	lookAt := m.store.Now()
	runs, err := m.store.ListRunsEnded(ctx, m.cfg.Region, st.endedSince, endedBatch)
	if err != nil {
		return fmt.Errorf("list ended runs: %w", err)
	}
	type failures struct {
		mapping string
		runs    []*catalog.Run // in end order
	}
	var order []*failures
	byMapping := map[string]*failures{}
	for i := range runs {
		r := &runs[i]
		if _, done := st.alerted[r.ID]; done {
			continue
		}
		f := byMapping[r.Mapping]
		if f == nil {
			f = &failures{mapping: r.Mapping}
			byMapping[r.Mapping] = f
			order = append(order, f)
		}
		f.runs = append(f.runs, r)
	}
	for _, f := range order {
		key := AlertKeyRunFailed + f.mapping
		if !st.endedSeeded[f.mapping] {
			// The first look of this term at the mapping: skip what an
			// earlier leader alerted.
			prev, err := m.store.LatestAlert(ctx, key)
			if err != nil {
				return fmt.Errorf("raise alert of mapping %s's failed runs: %w", f.mapping, err)
			}
			if prev != nil {
				f.runs = slices.DeleteFunc(f.runs, func(r *catalog.Run) bool { return !r.FinishedAt.After(prev.LastSeen) })
			}
			st.endedSeeded[f.mapping] = true
		}
		if len(f.runs) > 0 {
			if _, _, err := m.store.RaiseAlert(ctx, failedRunsAlert(key, f.mapping, f.runs, m.cfg.Region)); err != nil {
				return fmt.Errorf("raise alert of mapping %s's failed runs: %w", f.mapping, err)
			}
		}
	}
	for i := range runs {
		st.alerted[runs[i].ID] = *runs[i].FinishedAt
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

// failedRunsAlert is the alert of the runs of mapping that ended failed or
// aborted in one look (at least one, in end order).
func failedRunsAlert(key, mapping string, runs []*catalog.Run, region string) catalog.RaiseAlertParams {
	last := runs[len(runs)-1]
	verb := "failed"
	if last.State == catalog.StateAborted {
		verb = "was aborted"
	}
	subject := fmt.Sprintf("run %s of mapping %s %s", last.ID, mapping, verb)
	if len(runs) > 1 {
		subject = fmt.Sprintf("%d runs of mapping %s failed or were aborted", len(runs), mapping)
	}
	why := last.Error
	if why == "" {
		why = string(last.State)
	}
	msg := why
	if len(runs) > 1 {
		msg = fmt.Sprintf("newest, run %s: %s", last.ID, why)
		var others []string
		for i := len(runs) - 2; i >= 0 && len(others) < holdRunsNamed; i-- {
			others = append(others, runs[i].ID)
		}
		if more := len(runs) - 1 - len(others); more > 0 {
			msg += fmt.Sprintf("; also %s and %d more", strings.Join(others, ", "), more)
		} else {
			msg += "; also " + strings.Join(others, ", ")
		}
	}
	return catalog.RaiseAlertParams{Key: key, Severity: catalog.AlertCritical, Subject: subject, Message: msg, Region: region}
}
