package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// Schedules over the API:
//
//	GET    /api/v1/schedules[?mapping=NAME]   the schedules whose mapping the caller may read
//	POST   /api/v1/schedules                  create; the caller becomes its owner
//	GET    /api/v1/schedules/{name}           one schedule, its next ticks and latest processed ticks
//	PUT    /api/v1/schedules/{name}           replace its definition; the caller becomes its owner
//	DELETE /api/v1/schedules/{name}           delete it (its runs stay)
//	POST   /api/v1/schedules/{name}/trigger   run it now (or for a given tick), as the caller
//
// Reading needs read on the schedule's mapping. Creating, changing,
// deleting and triggering need manage on the mapping, and submit too: a
// schedule's runs are created as its owner, the last user who defined it,
// through SubmitAs (the same checks as POST /runs), and a trigger's as the
// caller.

// ScheduleStore is what the schedule routes need from the catalog;
// *catalog.Store implements it. The Store handed to New must implement it
// too, or the routes answer 501.
type ScheduleStore interface {
	CreateSchedule(ctx context.Context, sc *catalog.Schedule) error
	UpdateSchedule(ctx context.Context, sc *catalog.Schedule) error
	GetSchedule(ctx context.Context, name string) (*catalog.Schedule, error)
	ListSchedules(ctx context.Context, f catalog.ScheduleFilter) ([]catalog.Schedule, error)
	DeleteSchedule(ctx context.Context, name string) error
	ListScheduleTicks(ctx context.Context, scheduleID int64, limit int) ([]catalog.ScheduleTick, error)
	RecordScheduleTrigger(ctx context.Context, p catalog.ScheduleTriggerParams) error
}

// Sizes of a schedule's answer.
const (
	// ScheduleUpcomingTicks is how many next ticks a schedule's answer shows.
	ScheduleUpcomingTicks = 5
	// ScheduleRecentTicks is how many processed ticks GET /schedules/{name} shows.
	ScheduleRecentTicks = 10
)

// ScheduleRequest is the body of POST and PUT /schedules. An omitted
// time_zone is UTC, overlap "skip", catch_up "latest", and enabled true on
// POST and "unchanged" on PUT. Parameter values are strings, where
// templates derive them from the tick ("${tick-1d:date}", see
// catalog.ExpandTickTemplate), or integers. The read-only fields of a
// schedule's answer are accepted, so that a GET answer can be sent back
// changed, and ignored.
type ScheduleRequest struct {
	Name        string         `json:"name"`
	Mapping     string         `json:"mapping"`
	Description string         `json:"description"`
	Cron        string         `json:"cron"`
	TimeZone    string         `json:"time_zone"`
	Params      map[string]any `json:"params"`
	Priority    int            `json:"priority"`
	Overlap     string         `json:"overlap"`
	CatchUp     string         `json:"catch_up"`
	Enabled     *bool          `json:"enabled"`

	ID          json.RawMessage `json:"id,omitempty"`
	Region      json.RawMessage `json:"region,omitempty"`
	OwnerID     json.RawMessage `json:"owner_id,omitempty"`
	Owner       json.RawMessage `json:"owner,omitempty"`
	OwnerIP     json.RawMessage `json:"owner_ip,omitempty"`
	NextTick    json.RawMessage `json:"next_tick,omitempty"`
	LastTick    json.RawMessage `json:"last_tick,omitempty"`
	LastOutcome json.RawMessage `json:"last_outcome,omitempty"`
	LastRunID   json.RawMessage `json:"last_run_id,omitempty"`
	LastError   json.RawMessage `json:"last_error,omitempty"`
	CreatedBy   json.RawMessage `json:"created_by,omitempty"`
	CreatedAt   json.RawMessage `json:"created_at,omitempty"`
	UpdatedAt   json.RawMessage `json:"updated_at,omitempty"`
	Upcoming    json.RawMessage `json:"upcoming,omitempty"`
	RecentTicks json.RawMessage `json:"recent_ticks,omitempty"`
}

// ScheduleView is a schedule as the API shows it.
type ScheduleView struct {
	catalog.Schedule
	// Upcoming are its next ticks (from its next unprocessed one), in its time zone.
	Upcoming []time.Time `json:"upcoming,omitempty"`
	// RecentTicks are its latest processed ticks, newest first (GET of one schedule only).
	RecentTicks []catalog.ScheduleTick `json:"recent_ticks,omitempty"`
}

// TriggerRequest is the optional body of POST /schedules/{name}/trigger.
type TriggerRequest struct {
	// Tick is the instant the parameters derive from; default now.
	Tick *time.Time `json:"tick,omitempty"`
	// IdempotencyKey makes a repeated trigger return the first run.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// scheduleRoutes registers the schedule routes on api with middleware mw.
func (s *Server) scheduleRoutes(api *echo.Group, mw []echo.MiddlewareFunc) {
	api.GET("/schedules", s.listSchedules, mw...)
	api.POST("/schedules", s.createSchedule, mw...)
	api.GET("/schedules/:name", s.getSchedule, mw...)
	api.PUT("/schedules/:name", s.updateSchedule, mw...)
	api.DELETE("/schedules/:name", s.deleteSchedule, mw...)
	api.POST("/schedules/:name/trigger", s.triggerSchedule, mw...)
}

func (s *Server) schedules() (ScheduleStore, error) {
	st, ok := s.store.(ScheduleStore)
	if !ok {
		return nil, &apiError{Status: http.StatusNotImplemented, Code: CodeInternal, Message: "this server's catalog has no schedules"}
	}
	return st, nil
}

// SubmitScheduled creates the run a schedule asks for at one tick, as the
// schedule's owner from the address the owner defined it from, through
// SubmitAs: the same validation and entitlement checks as POST /runs. It
// implements the workload scheduler's Submitter. A refusal (the owner is
// gone or disabled or no longer entitled, the parameters or the mapping no
// longer valid) is an error wrapping catalog.ErrRefused; other errors are
// outages worth a retry.
func (s *Server) SubmitScheduled(ctx context.Context, r catalog.ScheduledRun) (*catalog.Run, bool, error) {
	u, err := s.store.GetUser(ctx, r.OwnerID)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, false, fmt.Errorf("%w: the schedule's owner (user %d) no longer exists", catalog.ErrRefused, r.OwnerID)
	} else if err != nil {
		return nil, false, fmt.Errorf("submit scheduled run: %w", err)
	}
	if u.Disabled {
		return nil, false, fmt.Errorf("%w: the schedule's owner %s is disabled", catalog.ErrRefused, u.Name)
	}
	ents, err := s.store.ListEntitlements(ctx, u.ID)
	if err != nil {
		return nil, false, fmt.Errorf("submit scheduled run: %w", err)
	}
	params := make(map[string]any, len(r.Params))
	for k, v := range r.Params {
		params[k] = v
	}
	p := &catalog.Principal{User: *u, Entitlements: ents}
	run, created, err := s.SubmitAs(ctx, p, RunRequest{Mapping: r.Mapping, Params: params, Priority: r.Priority, IdempotencyKey: r.IdempotencyKey}, r.ClientIP)
	if err != nil {
		if ae := classify(err); ae.Status < 500 {
			msg := ae.Message
			if ae.Field != "" && !strings.HasPrefix(msg, ae.Field) {
				msg = ae.Field + ": " + msg
			}
			return nil, false, fmt.Errorf("%w: %s", catalog.ErrRefused, msg)
		}
		return nil, false, err
	}
	return run, created, nil
}

// scheduleView adds a schedule's next ticks.
func (s *Server) scheduleView(sc *catalog.Schedule) ScheduleView {
	v := ScheduleView{Schedule: *sc}
	if sc.NextTick == nil {
		return v
	}
	c, err := catalog.ParseCronSchedule(sc.Cron, sc.TimeZone)
	if err != nil {
		return v
	}
	first := sc.NextTick.In(c.Location())
	v.Upcoming = append([]time.Time{first}, c.Upcoming(first, ScheduleUpcomingTicks-1)...)
	for i := range v.Upcoming {
		v.Upcoming[i] = v.Upcoming[i].In(c.Location())
	}
	return v
}

// scheduleParams turns the JSON parameters of a request into the strings a
// schedule stores.
func scheduleParams(in map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(in))
	for k, v := range in {
		switch x := v.(type) {
		case string:
			out[k] = x
		case float64:
			if x != math.Trunc(x) || x < -(1<<53) || x > 1<<53 {
				return nil, catalog.Invalid("params."+k, "must be a string or an integer, got the number %v", x)
			}
			out[k] = strconv.FormatInt(int64(x), 10)
		default:
			return nil, catalog.Invalid("params."+k, "must be a string (a value, or a template such as ${tick-1d:date}) or an integer")
		}
	}
	return out, nil
}

// scheduleFor loads the schedule named by the path and checks that the
// caller may do action on its mapping.
func (s *Server) scheduleFor(c echo.Context, st ScheduleStore, action string) (*catalog.Schedule, error) {
	name := c.Param("name")
	if err := knownName("schedule", name); err != nil {
		return nil, err
	}
	sc, err := st.GetSchedule(c.Request().Context(), name)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, notFound("no schedule named %q", name)
	} else if err != nil {
		return nil, fmt.Errorf("get schedule %s: %w", name, err)
	}
	if err := s.allow(c, action, "mapping:"+sc.Mapping); err != nil {
		return nil, err
	}
	return sc, nil
}

// allowScheduling checks that the caller may own a schedule of mapping:
// manage it, and submit its runs.
func (s *Server) allowScheduling(c echo.Context, mapping string) error {
	if err := s.allow(c, catalog.ActionManage, "mapping:"+mapping); err != nil {
		return err
	}
	return s.allow(c, catalog.ActionSubmit, "mapping:"+mapping)
}

// listSchedules handles GET /schedules?mapping=.
func (s *Server) listSchedules(c echo.Context) error {
	st, err := s.schedules()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	f := catalog.ScheduleFilter{Mapping: c.QueryParam("mapping")}
	if f.Mapping != "" {
		if catalog.ValidateName("mapping", f.Mapping) != nil {
			return badRequestField("mapping", "query parameter mapping=%q is not a valid name", f.Mapping)
		}
		if err := s.allow(c, catalog.ActionRead, "mapping:"+f.Mapping); err != nil {
			return err
		}
	} else if !s.principalMay(c, catalog.ActionRead, "mapping:*") {
		names, err := s.readableMappings(ctx, c)
		if err != nil {
			return err
		}
		f.Mappings = names
	}
	scs, err := st.ListSchedules(ctx, f)
	if err != nil {
		return fmt.Errorf("list schedules: %w", err)
	}
	out := make([]ScheduleView, 0, len(scs))
	for i := range scs {
		out = append(out, s.scheduleView(&scs[i]))
	}
	return c.JSON(http.StatusOK, map[string]any{"schedules": out})
}

// getSchedule handles GET /schedules/:name.
func (s *Server) getSchedule(c echo.Context) error {
	st, err := s.schedules()
	if err != nil {
		return err
	}
	sc, err := s.scheduleFor(c, st, catalog.ActionRead)
	if err != nil {
		return err
	}
	v := s.scheduleView(sc)
	ticks, err := st.ListScheduleTicks(c.Request().Context(), sc.ID, ScheduleRecentTicks)
	if err != nil {
		return fmt.Errorf("get schedule %s: %w", sc.Name, err)
	}
	v.RecentTicks = ticks
	return c.JSON(http.StatusOK, v)
}

// schedule builds the catalog schedule of a request, owned by the caller.
func (s *Server) schedule(c echo.Context, req *ScheduleRequest, enabled bool) (*catalog.Schedule, error) {
	params, err := scheduleParams(req.Params)
	if err != nil {
		return nil, err
	}
	if req.Enabled != nil {
		enabled = *req.Enabled
	}
	p := principalOf(c)
	ip := ""
	if a := s.ipOf(c); a.IsValid() {
		ip = a.String()
	}
	return &catalog.Schedule{
		Name: req.Name, Mapping: req.Mapping, Description: req.Description, Cron: req.Cron, TimeZone: req.TimeZone,
		Params: catalog.NewJSON(params), Priority: req.Priority, Overlap: req.Overlap, CatchUp: req.CatchUp,
		Enabled: enabled, OwnerID: p.User.ID, Owner: p.User.Name, OwnerIP: ip, CreatedBy: p.User.Name,
	}, nil
}

// createSchedule handles POST /schedules.
func (s *Server) createSchedule(c echo.Context) error {
	st, err := s.schedules()
	if err != nil {
		return err
	}
	var req ScheduleRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Mapping == "" {
		return catalog.Invalid("mapping", "is required: the name of the mapping to run")
	}
	if err := s.allowScheduling(c, req.Mapping); err != nil {
		return err
	}
	sc, err := s.schedule(c, &req, true)
	if err != nil {
		return err
	}
	if err := st.CreateSchedule(c.Request().Context(), sc); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			return conflict("a schedule named %q exists already; change it with PUT /api/v1/schedules/%s", req.Name, req.Name)
		}
		return err
	}
	s.log.Info("schedule created", slog.String("schedule", sc.Name), slog.String("mapping", sc.Mapping),
		slog.String("cron", sc.Cron), slog.String("time_zone", sc.TimeZone), slog.String("owner", sc.Owner))
	return c.JSON(http.StatusCreated, s.scheduleView(sc))
}

// updateSchedule handles PUT /schedules/:name.
func (s *Server) updateSchedule(c echo.Context) error {
	st, err := s.schedules()
	if err != nil {
		return err
	}
	cur, err := s.scheduleFor(c, st, catalog.ActionManage)
	if err != nil {
		return err
	}
	var req ScheduleRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Name == "" {
		req.Name = cur.Name
	} else if req.Name != cur.Name {
		return catalog.Invalid("name", "%q differs from the schedule %q in the path; schedules cannot be renamed", req.Name, cur.Name)
	}
	if req.Mapping == "" {
		return catalog.Invalid("mapping", "is required: the name of the mapping to run")
	}
	if err := s.allowScheduling(c, req.Mapping); err != nil {
		return err
	}
	sc, err := s.schedule(c, &req, cur.Enabled)
	if err != nil {
		return err
	}
	sc.CreatedBy = cur.CreatedBy
	if err := st.UpdateSchedule(c.Request().Context(), sc); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return notFound("no schedule named %q", cur.Name)
		}
		return err
	}
	s.log.Info("schedule updated", slog.String("schedule", sc.Name), slog.String("mapping", sc.Mapping),
		slog.String("cron", sc.Cron), slog.Bool("enabled", sc.Enabled), slog.String("owner", sc.Owner))
	return c.JSON(http.StatusOK, s.scheduleView(sc))
}

// deleteSchedule handles DELETE /schedules/:name and answers with the schedule as it was.
func (s *Server) deleteSchedule(c echo.Context) error {
	st, err := s.schedules()
	if err != nil {
		return err
	}
	sc, err := s.scheduleFor(c, st, catalog.ActionManage)
	if err != nil {
		return err
	}
	if err := st.DeleteSchedule(c.Request().Context(), sc.Name); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return notFound("no schedule named %q", sc.Name)
		}
		return err
	}
	s.log.Info("schedule deleted", slog.String("schedule", sc.Name), slog.String("user", principalOf(c).User.Name))
	sc.NextTick = nil
	return c.JSON(http.StatusOK, ScheduleView{Schedule: *sc})
}

// triggerSchedule handles POST /schedules/:name/trigger: a run of the
// schedule now, or for the given tick, as the caller; outside the cron
// sequence (its ticks do not move), but its run becomes the schedule's
// latest for the overlap policy.
func (s *Server) triggerSchedule(c echo.Context) error {
	st, err := s.schedules()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	sc, err := s.scheduleFor(c, st, catalog.ActionManage)
	if err != nil {
		return err
	}
	var req TriggerRequest
	if err := bindOptional(c, &req); err != nil {
		return err
	}
	cs, err := catalog.ParseCronSchedule(sc.Cron, sc.TimeZone)
	if err != nil {
		return err
	}
	tick := s.cfg.Now().Truncate(time.Second)
	if req.Tick != nil {
		tick = *req.Tick
	}
	params, err := sc.ExpandParams(cs, tick)
	if err != nil {
		return err
	}
	in := make(map[string]any, len(params))
	for k, v := range params {
		in[k] = v
	}
	p := principalOf(c)
	run, created, err := s.SubmitAs(ctx, p, RunRequest{Mapping: sc.Mapping, Params: in, Priority: sc.Priority, IdempotencyKey: req.IdempotencyKey}, s.ipOf(c).String())
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		if err := st.RecordScheduleTrigger(ctx, catalog.ScheduleTriggerParams{ScheduleID: sc.ID, RunID: run.ID, Tick: tick, By: p.User.Name}); err != nil {
			return fmt.Errorf("trigger schedule %s: %w", sc.Name, err)
		}
		s.log.Info("schedule triggered", slog.String("schedule", sc.Name), slog.String("run_id", run.ID),
			slog.String("tick", tick.In(cs.Location()).Format(time.RFC3339)), slog.String("user", p.User.Name))
	}
	return c.JSON(status, s.view(run))
}

// bindOptional decodes the request body into v when there is one.
func bindOptional(c echo.Context, v any) error {
	req := c.Request()
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return decodeError(err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return decodeJSON(bytes.NewReader(b), v)
}
