package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// Defaults of the authentication failure alerts.
const (
	// AuthFailureLimitDefault is how many refused credentials from one
	// address, or with one token, within AuthFailureWindowDefault raise an alert.
	AuthFailureLimitDefault = 10
	// AuthFailureWindowDefault is the sliding window failures are counted in.
	AuthFailureWindowDefault = time.Minute
	// authFailureKeysMax bounds the addresses and tokens tracked at once.
	authFailureKeysMax = 10000
	// raiseTimeout bounds the catalog write of an alert raised from a request.
	raiseTimeout = 2 * time.Second
)

// Alert keys the broker raises.
const (
	// AlertKeyAuthFailures prefixes the alert of repeated authentication
	// failures: "auth-failures:<ip>", or "auth-failures:token:<fingerprint>"
	// for one token presented from anywhere.
	AlertKeyAuthFailures = "auth-failures:"
)

// failureTracker counts authentication failures per key in a sliding
// window, in memory (one broker's view), and remembers when each key's
// alert was raised. The catalog counts them too, per fixed window, for all
// brokers together (see authFailed). It says when to raise an alert: when a
// key's failures in the window reach the limit, then at most once per
// window while they stay there.
type failureTracker struct {
	limit  int
	window time.Duration

	mu     sync.Mutex
	keys   map[string]*failures
	pruned time.Time // when the catalog's old windows were last pruned
}

type failures struct {
	times  []time.Time // the latest failures, at most limit, oldest first
	raised time.Time   // when an alert was last raised for the key
}

func newFailureTracker(limit int, window time.Duration) *failureTracker {
	return &failureTracker{limit: limit, window: window, keys: map[string]*failures{}}
}

// record notes one failure for key at now and returns how many the window
// holds and whether an alert is due.
func (t *failureTracker) record(key string, now time.Time) (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.keys[key]
	if f == nil {
		if len(t.keys) >= authFailureKeysMax {
			t.evict(now)
		}
		f = &failures{}
		t.keys[key] = f
	}
	cut := now.Add(-t.window)
	i := 0
	for i < len(f.times) && !f.times[i].After(cut) {
		i++
	}
	f.times = append(f.times[i:], now)
	if len(f.times) > t.limit {
		f.times = f.times[len(f.times)-t.limit:]
	}
	n := len(f.times)
	due := n >= t.limit && (f.raised.IsZero() || now.Sub(f.raised) >= t.window)
	if due {
		f.raised = now
	}
	return n, due
}

// quiet reports whether key's alert was raised within the window: its
// failures need not be counted in the catalog again until then.
func (t *failureTracker) quiet(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.keys[key]
	return f != nil && !f.raised.IsZero() && now.Sub(f.raised) < t.window
}

// shared says whether the failures of key that every broker counted
// (total) make an alert due, and notes it raised when they do.
func (t *failureTracker) shared(key string, now time.Time, total int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.keys[key]
	if f == nil || total < t.limit || (!f.raised.IsZero() && now.Sub(f.raised) < t.window) {
		return false
	}
	f.raised = now
	return true
}

// pruneDue says whether the catalog's old windows are due for pruning
// (once per window), and notes them pruned.
func (t *failureTracker) pruneDue(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.pruned) < t.window {
		return false
	}
	t.pruned = now
	return true
}

// evict forgets the keys without a failure in the window and, when that is
// not enough, the key whose last failure is the oldest.
func (t *failureTracker) evict(now time.Time) {
	cut := now.Add(-t.window)
	oldest, oldestAt := "", now
	for k, f := range t.keys {
		last := f.times[len(f.times)-1]
		if !last.After(cut) && now.Sub(f.raised) >= t.window {
			delete(t.keys, k)
			continue
		}
		if last.Before(oldestAt) {
			oldest, oldestAt = k, last
		}
	}
	if len(t.keys) >= authFailureKeysMax && oldest != "" {
		delete(t.keys, oldest)
	}
}

// authFailed records a refused credential from the request's address (and
// of the token, when one was presented) and raises an alert when one of them
// has failed too often: in this broker's sliding window, or in the
// catalog's count of the current window (AuthFailureWindow, aligned to the
// clock) by every broker together, so that failures spread over several
// servers reach the limit too. Once a key's alert is raised, its failures
// are not written to the catalog again for a window: a flood of bad
// credentials costs at most one write per key and window beyond the limit.
// It never fails the request: a catalog error is logged.
func (s *Server) authFailed(c echo.Context, rawToken, why string) {
	if s.failures == nil {
		return
	}
	now := s.cfg.Now()
	ip := s.ipOf(c).String()
	type subject struct{ key, what string }
	subjects := []subject{{AlertKeyAuthFailures + ip, "from " + ip}}
	if rawToken != "" {
		fp := catalog.HashToken(rawToken)[:12]
		subjects = append(subjects, subject{AlertKeyAuthFailures + "token:" + fp, "with the token of fingerprint " + fp + " (last from " + ip + ")"})
	}
	for _, sub := range subjects {
		n, due := s.failures.record(sub.key, now)
		if !due && !s.failures.quiet(sub.key, now) {
			if total, ok := s.countSharedFailure(c, sub.key, now); ok && s.failures.shared(sub.key, now, total) {
				n, due = total, true
			}
		}
		if !due {
			continue
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), raiseTimeout)
		_, _, err := s.store.RaiseAlert(ctx, catalog.RaiseAlertParams{
			Key:      sub.key,
			Severity: catalog.AlertWarning,
			Subject:  "repeated authentication failures " + sub.what,
			Message:  fmt.Sprintf("%d refused credentials within %s; the last: %s", n, s.cfg.AuthFailureWindow, why),
			Region:   s.cfg.Region,
		})
		cancel()
		if err != nil {
			s.log.Error("cannot raise the alert of repeated authentication failures", slog.String("key", sub.key), slog.String("error", err.Error()))
			continue
		}
		s.log.Warn("repeated authentication failures", slog.String("key", sub.key), slog.Int("failures", n),
			slog.Duration("window", s.cfg.AuthFailureWindow))
	}
}

// countSharedFailure counts one failure of key in the catalog's current
// window and returns the window's total over every broker; false when the
// catalog could not count it (logged). It prunes the windows before the
// previous one once per window.
func (s *Server) countSharedFailure(c echo.Context, key string, now time.Time) (int, bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), raiseTimeout)
	defer cancel()
	window := now.UTC().Truncate(s.cfg.AuthFailureWindow)
	total, err := s.store.CountAuthFailures(ctx, key, window, 1)
	if err != nil {
		s.log.Error("cannot count the authentication failure in the catalog", slog.String("key", key), slog.String("error", err.Error()))
		return 0, false
	}
	if s.failures.pruneDue(now) {
		if _, err := s.store.PruneAuthFailures(ctx, window.Add(-s.cfg.AuthFailureWindow)); err != nil {
			s.log.Warn("cannot prune old authentication failure counts", slog.String("error", err.Error()))
		}
	}
	return total, true
}

// AlertList is the answer of GET /alerts.
type AlertList struct {
	Alerts     []catalog.Alert `json:"alerts"`
	NextCursor int64           `json:"next_cursor,omitempty"`
}

// mayReadAlerts: alerts name hosts, addresses and runs of every mapping, so
// only operators, admins and callers allowed to read everything ("*") see them.
func (s *Server) mayReadAlerts(c echo.Context) error {
	p := principalOf(c)
	if p == nil {
		return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: "unauthenticated: no token given"}
	}
	if p.User.Role == catalog.RoleAdmin || p.User.Role == catalog.RoleOperator || s.principalMay(c, catalog.ActionRead, "*") {
		return nil
	}
	return &apiError{Status: http.StatusForbidden, Code: CodeForbidden,
		Message: "you may not read alerts: they are for operators, admins and users who may read everything (read on *)"}
}

// mayHandleAlerts: acknowledging and resolving alerts is for operators and admins.
func (s *Server) mayHandleAlerts(c echo.Context) error {
	p := principalOf(c)
	if p == nil {
		return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: "unauthenticated: no token given"}
	}
	if p.User.Role == catalog.RoleAdmin || p.User.Role == catalog.RoleOperator {
		return nil
	}
	return &apiError{Status: http.StatusForbidden, Code: CodeForbidden,
		Message: fmt.Sprintf("you may not acknowledge or resolve alerts: that needs the role %s or %s, yours is %s", catalog.RoleOperator, catalog.RoleAdmin, p.User.Role)}
}

// listAlerts handles GET /alerts?open=&severity=&region=&key=&cursor=&limit=,
// newest first: severity keeps that severity and worse; open=true keeps
// the alerts not resolved.
func (s *Server) listAlerts(c echo.Context) error {
	if err := s.mayReadAlerts(c); err != nil {
		return err
	}
	f := catalog.AlertFilter{MinSeverity: c.QueryParam("severity"), Key: c.QueryParam("key")}
	if v := c.QueryParam("open"); v != "" {
		open, err := strconv.ParseBool(v)
		if err != nil {
			return badRequestField("open", "query parameter open=%q must be true or false", v)
		}
		f.Open = open
	}
	if v := c.QueryParam("unacked"); v != "" {
		un, err := strconv.ParseBool(v)
		if err != nil {
			return badRequestField("unacked", "query parameter unacked=%q must be true or false", v)
		}
		f.Unacked = un
	}
	region, err := queryRegion(c)
	if err != nil {
		return err
	}
	f.Region = region
	if f.MinSeverity != "" && catalog.AlertSeverityRank(f.MinSeverity) == 0 {
		return badRequestField("severity", "query parameter severity=%q must be one of info, warning, critical", f.MinSeverity)
	}
	limit, err := queryInt64(c, "limit", catalog.ListLimitDefault)
	if err != nil {
		return err
	}
	if limit < 1 || limit > catalog.ListLimitMax {
		return badRequestField("limit", "limit must be between 1 and %d, got %d", catalog.ListLimitMax, limit)
	}
	f.Limit = int(limit)
	if f.Cursor, err = queryInt64(c, "cursor", 0); err != nil {
		return err
	}
	alerts, next, err := s.store.ListAlerts(c.Request().Context(), f)
	if err != nil {
		return fmt.Errorf("list alerts: %w", err)
	}
	if alerts == nil {
		alerts = []catalog.Alert{}
	}
	return c.JSON(http.StatusOK, AlertList{Alerts: alerts, NextCursor: next})
}

// ackAlert handles POST /alerts/:id/ack (operator or admin).
func (s *Server) ackAlert(c echo.Context) error {
	if err := s.mayHandleAlerts(c); err != nil {
		return err
	}
	id, err := pathInt64(c, "id")
	if err != nil {
		return err
	}
	by := principalOf(c).User.Name
	a, err := s.store.AckAlert(c.Request().Context(), id, by)
	if err != nil {
		return err
	}
	s.log.Info("alert acknowledged", slog.Int64("alert_id", id), slog.String("key", a.Key), slog.String("user", by))
	return c.JSON(http.StatusOK, a)
}

// resolveAlert handles POST /alerts/:id/resolve (operator or admin).
func (s *Server) resolveAlert(c echo.Context) error {
	if err := s.mayHandleAlerts(c); err != nil {
		return err
	}
	id, err := pathInt64(c, "id")
	if err != nil {
		return err
	}
	a, err := s.store.ResolveAlertByID(c.Request().Context(), id)
	if err != nil {
		return err
	}
	s.log.Info("alert resolved", slog.Int64("alert_id", id), slog.String("key", a.Key), slog.String("user", principalOf(c).User.Name))
	return c.JSON(http.StatusOK, a)
}
