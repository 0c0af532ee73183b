package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// The audit log of the API: every change an admin (or a catalog writer)
// makes to users, passwords, tokens, entitlements, groups, thresholds,
// systems, mappings, functions and schedules, every sign-in and sign-out,
// and every request refused with 401 or 403. One middleware writes the
// entries (auditRequest, from logRequests); handlers add what only they
// know with noteAudit. Entries never hold a secret: handlers note only
// what is safe to keep.

// ctxAudit keeps the auditNote of a request.
const ctxAudit = "weir.audit"

// auditWriteTimeout bounds the catalog write of an audit entry.
const auditWriteTimeout = 2 * time.Second

// Audit log retention and the throttle of unauthenticated denials.
const (
	// AuditRetentionDefault is how long audit entries are kept by default.
	AuditRetentionDefault = 90 * 24 * time.Hour
	// AuditPruneEveryDefault is how often PruneAudit removes old entries.
	AuditPruneEveryDefault = time.Hour
	// auditDenialEvery: requests refused with 401 (no credentials known)
	// from one address are written at most once per this period; the
	// next entry counts the ones left out.
	auditDenialEvery = time.Minute
	// auditDenialKeysMax bounds the addresses the throttle tracks.
	auditDenialKeysMax = 10000
)

// denialThrottle limits the audit entries of unauthenticated requests per address.
type denialThrottle struct {
	every time.Duration
	mu    sync.Mutex
	keys  map[string]*denialCount
}

type denialCount struct {
	last    time.Time // when an entry was last written
	skipped int       // requests left out since
}

// admit reports whether the denial of key at now gets an entry, and how
// many denials of key were left out since the last entry.
func (d *denialThrottle) admit(key string, now time.Time) (bool, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := d.keys[key]; n != nil {
		if now.Sub(n.last) < d.every {
			n.skipped++
			return false, 0
		}
		skipped := n.skipped
		n.last, n.skipped = now, 0
		return true, skipped
	}
	if len(d.keys) >= auditDenialKeysMax {
		for k, n := range d.keys {
			if now.Sub(n.last) >= d.every {
				delete(d.keys, k) // its left-out count is lost: at most one minute's
			}
		}
		if len(d.keys) >= auditDenialKeysMax {
			return true, 0 // too many addresses at once: write, never forget an entry
		}
	}
	d.keys[key] = &denialCount{last: now}
	return true, 0
}

// PruneAudit removes audit entries older than retention (default
// AuditRetentionDefault) now and then every period (default
// AuditPruneEveryDefault) until ctx ends. Several servers may run it: the
// deletes are idempotent.
func (s *Server) PruneAudit(ctx context.Context, retention, every time.Duration) error {
	if retention <= 0 {
		retention = AuditRetentionDefault
	}
	if every <= 0 {
		every = AuditPruneEveryDefault
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := s.store.DeleteAuditBefore(ctx, s.cfg.Now().Add(-retention))
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.log.Warn("cannot prune the audit log", slog.String("error", err.Error()))
		case n > 0:
			s.log.Info("pruned the audit log", slog.Int64("entries", n), slog.Duration("retention", retention))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// auditNote is what a handler adds to its request's audit entry.
type auditNote struct {
	// Target overrides the target derived from the route ("user:alice").
	Target string
	// Args are safe details of the change (never a password or token).
	Args map[string]any
}

// noteAudit sets details of the request's audit entry; later notes add to
// earlier ones.
func noteAudit(c echo.Context, n auditNote) {
	prev, _ := c.Get(ctxAudit).(*auditNote)
	if prev == nil {
		c.Set(ctxAudit, &n)
		return
	}
	if n.Target != "" {
		prev.Target = n.Target
	}
	for k, v := range n.Args {
		if prev.Args == nil {
			prev.Args = map[string]any{}
		}
		prev.Args[k] = v
	}
}

// auditedKinds are the first path segments under /api/v1 whose writes are audited.
var auditedKinds = map[string]string{
	"users": "user", "tokens": "token", "entitlements": "entitlement", "groups": "group",
	"thresholds": "thresholds", "systems": "system", "mappings": "mapping", "functions": "function",
	"schedules": "schedule", "session": "session",
}

// auditActions names the writes whose action is not "<kind>.<verb>".
var auditActions = map[string]string{
	"PUT /api/v1/users/:id/password":             "user.password",
	"POST /api/v1/users/:id/tokens":              "token.create",
	"DELETE /api/v1/tokens/:id":                  "token.revoke",
	"POST /api/v1/entitlements":                  "entitlement.grant",
	"DELETE /api/v1/entitlements/:id":            "entitlement.revoke",
	"PUT /api/v1/groups/:id/members/:user_id":    "group.member_add",
	"DELETE /api/v1/groups/:id/members/:user_id": "group.member_remove",
	"DELETE /api/v1/mappings/:name":              "mapping.disable",
	"POST /api/v1/session":                       "session.sign_in",
	"DELETE /api/v1/session":                     "session.sign_out",
	"POST /api/v1/mappings/:name/preview":        "", // reads only
	"POST /api/v1/schedules/:name/trigger":       "", // a run submission, recorded by the run
}

var auditVerbs = map[string]string{
	http.MethodPost: "create", http.MethodPut: "update", http.MethodPatch: "update", http.MethodDelete: "delete",
}

// auditAction returns the action of a request to route, "" when it is not audited.
func auditAction(method, route string) string {
	if a, ok := auditActions[method+" "+route]; ok {
		return a
	}
	rest, ok := strings.CutPrefix(route, "/api/v1/")
	if !ok {
		return ""
	}
	seg, _, _ := strings.Cut(rest, "/")
	kind, ok := auditedKinds[seg]
	verb := auditVerbs[method]
	if !ok || verb == "" {
		return ""
	}
	return kind + "." + verb
}

// auditTarget derives a target from the route: "<kind>:<first path parameter>".
func auditTarget(c echo.Context, route string) string {
	rest, _ := strings.CutPrefix(route, "/api/v1/")
	seg, _, _ := strings.Cut(rest, "/")
	kind := auditedKinds[seg]
	if kind == "" {
		kind = seg
	}
	names := c.ParamNames()
	if len(names) == 0 {
		return kind
	}
	return kind + ":" + c.Param(names[0])
}

// auditOutcome maps an answered status to an audit outcome.
func auditOutcome(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return catalog.AuditUnauthenticated
	case status == http.StatusForbidden:
		return catalog.AuditForbidden
	case status >= 500:
		return catalog.AuditFailed
	case status >= 400:
		return catalog.AuditRejected
	}
	return catalog.AuditOK
}

// auditRequest writes the audit entry of an answered request when it is an
// audited write or was refused with 401 or 403. A catalog error is logged,
// never answered.
func (s *Server) auditRequest(c echo.Context, start time.Time, status int) {
	req := c.Request()
	route := c.Path()
	if !strings.HasPrefix(req.URL.Path, "/api/v1/") {
		return
	}
	action := ""
	if unsafeMethod(req.Method) {
		action = auditAction(req.Method, route)
	}
	// GET /session without a live session only means "not signed in": the
	// dashboard asks it on every page.
	denied := (status == http.StatusUnauthorized || status == http.StatusForbidden) &&
		!(req.Method == http.MethodGet && route == "/api/v1/session")
	if action == "" && !denied {
		return
	}
	skipped := 0
	if action == "" {
		action = "api.denied"
		if status == http.StatusUnauthorized && principalOf(c) == nil {
			ok, n := s.accounts().denials.admit(signInAddrKey(s.ipOf(c)), s.cfg.Now())
			if !ok {
				return
			}
			skipped = n
		}
	}
	e := &catalog.AuditEntry{
		At:         s.cfg.Now(),
		Node:       s.cfg.NodeID,
		Action:     action,
		Target:     auditTarget(c, route),
		Outcome:    auditOutcome(status),
		Status:     status,
		DurationMS: time.Since(start).Milliseconds(),
		ClientIP:   s.ipOf(c).String(),
		Detail:     req.Method + " " + req.URL.Path,
	}
	if skipped > 0 {
		e.Detail += fmt.Sprintf(" (and %d more unauthenticated requests from this address left out of the audit log)", skipped)
	}
	if route == "" || strings.HasSuffix(route, "/*") {
		e.Target = ""
	}
	if p := principalOf(c); p != nil {
		e.Actor = p.User.Name
		if p.TokenID != 0 {
			id := p.TokenID
			e.TokenID = &id
		}
	}
	if n, _ := c.Get(ctxAudit).(*auditNote); n != nil {
		if n.Target != "" {
			e.Target = n.Target
		}
		if len(n.Args) > 0 {
			if b, err := json.Marshal(n.Args); err == nil {
				e.Args = string(b)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), auditWriteTimeout)
	defer cancel()
	if err := s.store.InsertAudit(ctx, e); err != nil {
		s.log.Error("cannot write the audit log", slog.String("request_id", requestIDOf(c)),
			slog.String("action", e.Action), slog.String("error", err.Error()))
	}
}

// AuditList is the answer of GET /audit.
type AuditList struct {
	Entries    []catalog.AuditEntry `json:"entries"`
	NextCursor int64                `json:"next_cursor,omitempty"`
}

// listAudit handles GET /audit (admin): filters actor, action (a trailing
// "*" matches a prefix), target, outcome, since and until (RFC 3339), and
// paging by limit and cursor (the next_cursor of the previous page).
func (s *Server) listAudit(c echo.Context) error {
	f := catalog.AuditFilter{Actor: c.QueryParam("actor"), Action: c.QueryParam("action"),
		Target: c.QueryParam("target"), Outcome: c.QueryParam("outcome")}
	if f.Outcome != "" && !oneOfStrings(f.Outcome, catalog.AuditOutcomes) {
		return badRequestField("outcome", "query parameter outcome=%q must be one of %s", f.Outcome, strings.Join(catalog.AuditOutcomes, ", "))
	}
	for _, q := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := c.QueryParam(q.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return badRequestField(q.name, "query parameter %s=%q must be an RFC 3339 time such as 2026-11-29T15:00:00Z", q.name, v)
			}
			*q.dst = t
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return badRequestField("until", "until must be after since")
	}
	limit, err := queryInt64(c, "limit", catalog.AuditLimitDefault)
	if err != nil {
		return err
	}
	if limit < 1 || limit > catalog.AuditLimitMax {
		return badRequestField("limit", "limit must be between 1 and %d, got %d", catalog.AuditLimitMax, limit)
	}
	f.Limit = int(limit)
	if f.BeforeID, err = queryInt64(c, "cursor", 0); err != nil {
		return err
	}
	if f.BeforeID < 0 {
		return badRequestField("cursor", "cursor must not be negative")
	}
	es, next, err := s.store.ListAudit(c.Request().Context(), f)
	if err != nil {
		return fmt.Errorf("list audit log: %w", err)
	}
	if es == nil {
		es = []catalog.AuditEntry{}
	}
	return c.JSON(http.StatusOK, AuditList{Entries: es, NextCursor: next})
}

func oneOfStrings(v string, set []string) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}
