package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// Limits of a run request.
const (
	PriorityMin          = -1000
	PriorityMax          = 1000
	IdempotencyKeyMaxLen = 200
	// runIDAttempts is how often a run_id collision is retried with a fresh id.
	runIDAttempts = 5
)

// RunRequest is the body of POST /api/v1/runs.
type RunRequest struct {
	Mapping        string         `json:"mapping"`
	Params         map[string]any `json:"params,omitempty"`
	Priority       int            `json:"priority,omitempty"`
	IdempotencyKey string         `json:"idempotency_key,omitempty"`
}

// RunView is a run as the API shows it: the catalog's run plus figures
// computed from its progress (omitted when unknown).
type RunView struct {
	catalog.Run
	ElapsedSeconds     *float64 `json:"elapsed_seconds,omitempty"`
	RateBytesPerSecond *float64 `json:"rate_bytes_per_second,omitempty"`
	ETASeconds         *float64 `json:"eta_seconds,omitempty"`
	// Health is the run's health as of now (see RunHealth).
	Health catalog.Health `json:"health"`
}

// NewRunView computes a run's elapsed time (of the current attempt), byte
// rate, health and, while it runs, the estimated time left, as of now.
func NewRunView(r catalog.Run, now time.Time) RunView {
	v := RunView{Run: r, Health: RunHealth(&r, now)}
	if r.StartedAt == nil {
		return v
	}
	end := now
	if r.FinishedAt != nil && r.State.Terminal() {
		end = *r.FinishedAt
	}
	elapsed := end.Sub(*r.StartedAt).Seconds()
	if elapsed < 0 {
		elapsed = 0
	}
	v.ElapsedSeconds = roundp(elapsed)
	if elapsed <= 0 || r.BytesDone <= 0 {
		return v
	}
	rate := float64(r.BytesDone) / elapsed
	v.RateBytesPerSecond = roundp(rate)
	if !r.State.Terminal() && r.BytesTotal >= r.BytesDone && r.BytesTotal > 0 {
		v.ETASeconds = roundp(float64(r.BytesTotal-r.BytesDone) / rate)
	}
	return v
}

func roundp(f float64) *float64 {
	r := math.Round(f*1000) / 1000
	return &r
}

func (s *Server) view(r *catalog.Run) RunView { return NewRunView(*r, s.cfg.Now()) }

// requestHash identifies what a run request asks for, so that a replayed
// idempotency key can be told from a reused one.
func requestHash(mapping string, params map[string]string, priority int) string {
	b, _ := json.Marshal(struct { // maps marshal with sorted keys: canonical
		Mapping  string            `json:"mapping"`
		Params   map[string]string `json:"params"`
		Priority int               `json:"priority"`
	}{mapping, params, priority})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func validIdempotencyKey(k string) error {
	if len(k) > IdempotencyKeyMaxLen {
		return catalog.Invalid("idempotency_key", "must be at most %d bytes, got %d", IdempotencyKeyMaxLen, len(k))
	}
	for _, r := range k {
		if !unicode.IsPrint(r) {
			return catalog.Invalid("idempotency_key", "must contain printable characters only")
		}
	}
	return nil
}

// submitRun handles POST /runs.
func (s *Server) submitRun(c echo.Context) error {
	var req RunRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	got, created, err := s.SubmitAs(c.Request().Context(), principalOf(c), req, s.ipOf(c).String())
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, s.view(got))
}

// SubmitAs submits req as principal p calling from clientIP: the path of
// POST /api/v1/runs, also taken by schedules (SubmitScheduled) so that they
// pass exactly the same checks. The mapping must exist, be enabled and be
// owned by this server's region; p must be entitled to submit it from
// clientIP; the parameters must resolve against the mapping's declarations
// (types, date windows) and keep its paths inside the systems' roots. The
// run is inserted pending with a fresh run_id, or, when the idempotency key
// names an earlier identical request of p, that run is returned with created
// false. Errors are those the API answers with: *catalog.ValidationError,
// and not-found, forbidden and conflict answers.
func (s *Server) SubmitAs(ctx context.Context, p *catalog.Principal, req RunRequest, clientIP string) (*catalog.Run, bool, error) {
	if p == nil {
		return nil, false, &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: "unauthenticated: no principal"}
	}
	ip, err := netip.ParseAddr(clientIP)
	if err == nil {
		ip = ip.Unmap().WithZone("")
	} // an unparsable address is invalid: it matches no network-bound entitlement
	if req.Mapping == "" {
		return nil, false, catalog.Invalid("mapping", "is required: the name of the mapping to run")
	}
	if req.Priority < PriorityMin || req.Priority > PriorityMax {
		return nil, false, catalog.Invalid("priority", "must be between %d and %d, got %d", PriorityMin, PriorityMax, req.Priority)
	}
	if err := validIdempotencyKey(req.IdempotencyKey); err != nil {
		return nil, false, err
	}
	if !p.Allowed(catalog.ActionSubmit, "mapping:"+req.Mapping, ip) {
		return nil, false, forbidden(catalog.ActionSubmit, "mapping:"+req.Mapping)
	}
	if err := knownName("mapping", req.Mapping); err != nil {
		return nil, false, err
	}
	m, err := s.store.GetMapping(ctx, req.Mapping)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, false, notFound("no mapping named %q", req.Mapping)
	} else if err != nil {
		return nil, false, fmt.Errorf("submit run: %w", err)
	}
	if !m.Enabled {
		return nil, false, conflict("mapping %s is disabled (version %d); runs cannot be submitted", m.Name, m.Version)
	}
	if m.Region != s.cfg.Region {
		return nil, false, conflict("mapping %s is owned by region %s; submit to a server of region %s", m.Name, m.Region, m.Region)
	}
	params, err := m.ResolveParams(req.Params, s.cfg.Now())
	if err != nil {
		return nil, false, err
	}
	if err := checkPaths(m, params); err != nil {
		return nil, false, err
	}
	src, err := s.endpointSystem(ctx, m, m.SourceSystem)
	if err != nil {
		return nil, false, err
	}
	dst, err := s.endpointSystem(ctx, m, m.TargetSystem)
	if err != nil {
		return nil, false, err
	}
	var tokenID *int64
	if p.TokenID != 0 {
		id := p.TokenID
		tokenID = &id
	}
	addr := ""
	if ip.IsValid() {
		addr = ip.String()
	}
	run := &catalog.Run{
		Region:         s.cfg.Region,
		Mapping:        m.Name,
		MappingVersion: m.Version,
		Params:         catalog.NewJSON(params),
		SourceSystem:   m.SourceSystem,
		TargetSystem:   m.TargetSystem,
		RequestType:    catalog.RequestType(src.Kind, dst.Kind),
		Priority:       req.Priority,
		MaxAttempts:    m.MaxAttempts,
		TimeoutSeconds: m.TimeoutSeconds,
		RequestHash:    requestHash(m.Name, params, req.Priority),
		UserID:         p.User.ID,
		SubmittedBy:    p.User.Name,
		TokenID:        tokenID,
		ClientIP:       addr,
	}
	if req.IdempotencyKey != "" {
		key := req.IdempotencyKey
		run.IdempotencyKey = &key
	}
	got, created, err := s.insertRun(ctx, run)
	if err != nil {
		return nil, false, err
	}
	if created {
		s.log.Info("run submitted", slog.String("run_id", got.ID), slog.String("mapping", got.Mapping),
			slog.Int("mapping_version", got.MappingVersion), slog.String("user", p.User.Name),
			slog.String("request_type", got.RequestType), slog.String("client_ip", got.ClientIP))
	}
	return got, created, nil
}

// insertRun inserts run with a fresh run_id, drawing again on the rare
// collision; an idempotency conflict is returned as is.
func (s *Server) insertRun(ctx context.Context, run *catalog.Run) (*catalog.Run, bool, error) {
	var lastErr error
	for range runIDAttempts {
		run.ID = s.ids.Next()
		got, created, err := s.store.InsertRun(ctx, run)
		if err == nil {
			return got, created, nil
		}
		if !errors.Is(err, catalog.ErrConflict) {
			return nil, false, fmt.Errorf("submit run: %w", err)
		}
		// A conflict is either the idempotency key used for another request,
		// or a run_id drawn by another server in the same millisecond.
		if _, gerr := s.store.GetRun(ctx, run.ID); !errors.Is(gerr, catalog.ErrNotFound) {
			if gerr != nil {
				return nil, false, fmt.Errorf("submit run: %w", gerr)
			}
			lastErr = err
			continue // run_id taken: draw again
		}
		return nil, false, err
	}
	return nil, false, fmt.Errorf("submit run: no free run_id after %d attempts: %w", runIDAttempts, lastErr)
}

// checkPaths expands the mapping's paths with the parameters and refuses any
// that leaves the system's root, naming the parameter responsible.
func checkPaths(m *catalog.Mapping, params map[string]string) error {
	for _, side := range []struct{ field, pattern string }{
		{"source.path", m.Source.V.Path}, {"target.path", m.Target.V.Path},
	} {
		if _, err := catalog.ExpandPath(side.field, side.pattern, params); err != nil {
			for _, ps := range m.Params.V {
				v, ok := params[ps.Name]
				if !ok || !strings.Contains(side.pattern, "{"+ps.Name+"}") {
					continue
				}
				if _, perr := catalog.CleanRelPath("params."+ps.Name, v); perr != nil {
					return catalog.Invalid("params."+ps.Name, "%q would make the mapping's %s leave the system's root", v, side.field)
				}
			}
			return err
		}
	}
	return nil
}

func (s *Server) endpointSystem(ctx context.Context, m *catalog.Mapping, name string) (*catalog.System, error) {
	sys, err := s.store.GetSystem(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, conflict("mapping %s refers to system %s, which no longer exists", m.Name, name)
	}
	if err != nil {
		return nil, fmt.Errorf("submit run: %w", err)
	}
	return sys, nil
}

// runForAction loads the run named by the path and checks that the caller
// may do action on its mapping.
func (s *Server) runForAction(c echo.Context, action string) (*catalog.Run, error) {
	id, err := pathRunID(c)
	if err != nil {
		return nil, err
	}
	r, err := s.store.GetRun(c.Request().Context(), id)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, notFound("no run %s", id)
	} else if err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	if err := s.allow(c, action, "mapping:"+r.Mapping); err != nil {
		return nil, err
	}
	return r, nil
}

// getRun handles GET /runs/:run_id.
func (s *Server) getRun(c echo.Context) error {
	r, err := s.runForAction(c, catalog.ActionRead)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.view(r))
}

// RunList is the answer of GET /runs.
type RunList struct {
	Runs       []RunView `json:"runs"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// listRuns handles GET /runs?state=&mapping=&submitted_by=&region=&since=&until=&limit=&cursor=;
// since and until are RFC 3339 times bounding the runs' creation.
func (s *Server) listRuns(c echo.Context) error {
	ctx := c.Request().Context()
	f := catalog.RunFilter{Mapping: c.QueryParam("mapping"), SubmittedBy: c.QueryParam("submitted_by"), Region: c.QueryParam("region")}
	for field, v := range map[string]string{"mapping": f.Mapping, "submitted_by": f.SubmittedBy, "region": f.Region} {
		if v != "" && catalog.ValidateName(field, v) != nil {
			return badRequestField(field, "query parameter %s=%q is not a valid name", field, v)
		}
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
	if v := c.QueryParam("state"); v != "" {
		for _, st := range strings.Split(v, ",") {
			rs := catalog.RunState(strings.TrimSpace(st))
			if !rs.Valid() {
				return badRequestField("state", "unknown run state %q; use one of %s", st, joinStates())
			}
			f.States = append(f.States, rs)
		}
	}
	limit, err := queryInt64(c, "limit", catalog.ListLimitDefault)
	if err != nil {
		return err
	}
	if limit < 1 || limit > catalog.ListLimitMax {
		return badRequestField("limit", "limit must be between 1 and %d, got %d", catalog.ListLimitMax, limit)
	}
	f.Limit = int(limit)
	if cur := c.QueryParam("cursor"); cur != "" {
		if _, _, err := catalog.ParseRunID(cur); err != nil {
			return badRequestField("cursor", "cursor %q is not a run_id from next_cursor", cur)
		}
		f.Cursor = cur
	}
	if f.Mapping != "" {
		if err := s.allow(c, catalog.ActionRead, "mapping:"+f.Mapping); err != nil {
			return err
		}
	} else if !s.principalMay(c, catalog.ActionRead, "mapping:*") {
		names, err := s.readableMappings(ctx, c)
		if err != nil {
			return err
		}
		f.Mappings = names // non-nil, possibly empty: nothing readable, nothing listed
	}
	runs, next, err := s.store.ListRuns(ctx, f)
	if err != nil {
		return fmt.Errorf("list runs: %w", err)
	}
	out := RunList{Runs: make([]RunView, 0, len(runs)), NextCursor: next}
	now := s.cfg.Now()
	for _, r := range runs {
		out.Runs = append(out.Runs, NewRunView(r, now))
	}
	return c.JSON(http.StatusOK, out)
}

func joinStates() string {
	ss := make([]string, len(catalog.AllRunStates))
	for i, st := range catalog.AllRunStates {
		ss[i] = string(st)
	}
	return strings.Join(ss, ", ")
}

func (s *Server) principalMay(c echo.Context, action, resource string) bool {
	p := principalOf(c)
	return p != nil && p.Allowed(action, resource, s.ipOf(c))
}

// readableMappings lists the names of the mappings the caller may read.
func (s *Server) readableMappings(ctx context.Context, c echo.Context) ([]string, error) {
	ms, err := s.store.ListMappings(ctx)
	if err != nil {
		return nil, fmt.Errorf("list readable mappings: %w", err)
	}
	names := []string{}
	for _, m := range ms {
		if s.principalMay(c, catalog.ActionRead, "mapping:"+m.Name) {
			names = append(names, m.Name)
		}
	}
	return names, nil
}

// cancelRun handles POST /runs/:run_id/cancel.
func (s *Server) cancelRun(c echo.Context) error {
	r, err := s.runForAction(c, catalog.ActionCancel)
	if err != nil {
		return err
	}
	p := principalOf(c)
	got, err := s.store.RequestCancel(c.Request().Context(), r.ID, p.User.Name)
	if err != nil {
		return err
	}
	s.log.Info("run cancel requested", slog.String("run_id", r.ID), slog.String("user", p.User.Name), slog.String("state", string(got.State)))
	return c.JSON(http.StatusOK, s.view(got))
}

// runEvents handles GET /runs/:run_id/events?after=ID.
func (s *Server) runEvents(c echo.Context) error {
	after, err := queryInt64(c, "after", 0)
	if err != nil {
		return err
	}
	r, err := s.runForAction(c, catalog.ActionRead)
	if err != nil {
		return err
	}
	evs, err := s.store.ListRunEvents(c.Request().Context(), r.ID, after)
	if err != nil {
		return fmt.Errorf("list events of run %s: %w", r.ID, err)
	}
	if evs == nil {
		evs = []catalog.RunEvent{}
	}
	return c.JSON(http.StatusOK, map[string]any{"events": evs})
}

// runManifest handles GET /runs/:run_id/manifest.
func (s *Server) runManifest(c echo.Context) error {
	r, err := s.runForAction(c, catalog.ActionRead)
	if err != nil {
		return err
	}
	if r.Manifest.V == nil {
		return notFound("run %s has no manifest yet (it is %s)", r.ID, r.State)
	}
	return c.JSON(http.StatusOK, r.Manifest.V)
}

// runPlan handles GET /runs/:run_id/plan.
func (s *Server) runPlan(c echo.Context) error {
	r, err := s.runForAction(c, catalog.ActionRead)
	if err != nil {
		return err
	}
	if r.Plan.V == nil {
		return notFound("run %s has no plan yet (it is %s)", r.ID, r.State)
	}
	return c.JSON(http.StatusOK, r.Plan.V)
}

// runTasks handles GET /runs/:run_id/tasks.
func (s *Server) runTasks(c echo.Context) error {
	r, err := s.runForAction(c, catalog.ActionRead)
	if err != nil {
		return err
	}
	ts, err := s.store.ListRunTasks(c.Request().Context(), r.ID)
	if err != nil {
		return fmt.Errorf("list tasks of run %s: %w", r.ID, err)
	}
	if ts == nil {
		ts = []catalog.RunTask{}
	}
	return c.JSON(http.StatusOK, map[string]any{"tasks": ts})
}
