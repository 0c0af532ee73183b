package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/weirdata/weir/catalog"
)

// ScheduleTick is one processed tick of a schedule: fired, skipped or failed.
type ScheduleTick = catalog.ScheduleTick

// Schedule is a schedule as the API shows it.
type Schedule struct {
	catalog.Schedule
	// Upcoming are its next ticks, in its time zone (none while disabled).
	Upcoming []time.Time `json:"upcoming,omitempty"`
	// RecentTicks are its latest processed ticks, newest first (GetSchedule only).
	RecentTicks []ScheduleTick `json:"recent_ticks,omitempty"`
}

// ScheduleRequest creates a schedule or replaces its definition. The caller
// becomes its owner: its runs are created as the caller.
type ScheduleRequest struct {
	Name    string `json:"name"`
	Mapping string `json:"mapping"`
	// Cron is a cron expression: 5 fields (minute hour day-of-month month
	// day-of-week), 6 with seconds first, or @hourly, @daily, @every 90m...
	Cron string `json:"cron"`
	// TimeZone is the IANA zone Cron is read in; empty is UTC.
	TimeZone string `json:"time_zone,omitempty"`
	// Params are the runs' parameters; values may derive from the tick:
	// "${tick-1d:date}" is the day before the tick's date.
	Params      map[string]string `json:"params,omitempty"`
	Priority    int               `json:"priority,omitempty"`
	Description string            `json:"description,omitempty"`
	// Overlap is "skip" (the default: no run while the previous one is
	// pending, queued or active) or "queue".
	Overlap string `json:"overlap,omitempty"`
	// CatchUp is what happens to ticks missed while no server ran them:
	// "latest" (the default: the latest fires once) or "skip".
	CatchUp string `json:"catch_up,omitempty"`
	// Enabled, when nil, means true on create and "unchanged" on update.
	Enabled *bool `json:"enabled,omitempty"`
}

// TriggerScheduleRequest asks for a run of a schedule now.
type TriggerScheduleRequest struct {
	// Tick is the instant the parameters derive from; nil is now.
	Tick *time.Time `json:"tick,omitempty"`
	// IdempotencyKey makes a repeated trigger return the first run.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// CreateSchedule creates a schedule; an existing name is a 409 (catalog.ErrConflict).
func (c *Client) CreateSchedule(ctx context.Context, req ScheduleRequest) (*Schedule, error) {
	if err := catalog.ValidateName("name", req.Name); err != nil {
		return nil, fmt.Errorf("create schedule: %w", err)
	}
	var sc Schedule
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/schedules", body: req}, &sc); err != nil {
		return nil, fmt.Errorf("create schedule %s: %w", req.Name, err)
	}
	return &sc, nil
}

// UpdateSchedule replaces the definition of the schedule named req.Name.
func (c *Client) UpdateSchedule(ctx context.Context, req ScheduleRequest) (*Schedule, error) {
	if err := checkID("name", req.Name); err != nil {
		return nil, fmt.Errorf("update schedule: %w", err)
	}
	var sc Schedule
	if _, err := c.do(ctx, request{method: http.MethodPut, path: "/api/v1/schedules/" + esc(req.Name), body: req, idempotent: true}, &sc); err != nil {
		return nil, fmt.Errorf("update schedule %s: %w", req.Name, err)
	}
	return &sc, nil
}

// GetSchedule returns a schedule with its next ticks and latest processed ones.
func (c *Client) GetSchedule(ctx context.Context, name string) (*Schedule, error) {
	if err := checkID("name", name); err != nil {
		return nil, fmt.Errorf("get schedule: %w", err)
	}
	var sc Schedule
	if err := c.get(ctx, "/api/v1/schedules/"+esc(name), nil, &sc); err != nil {
		return nil, fmt.Errorf("get schedule %s: %w", name, err)
	}
	return &sc, nil
}

// ListSchedules returns the schedules the caller may read, of one mapping
// when mapping is not empty.
func (c *Client) ListSchedules(ctx context.Context, mapping string) ([]Schedule, error) {
	q := url.Values{}
	if mapping != "" {
		q.Set("mapping", mapping)
	}
	var raw json.RawMessage
	if err := c.get(ctx, "/api/v1/schedules", q, &raw); err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	var out []Schedule
	if err := decodeList(raw, "schedules", &out); err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	return out, nil
}

// DeleteSchedule deletes a schedule (its runs stay) and returns it as it was.
func (c *Client) DeleteSchedule(ctx context.Context, name string) (*Schedule, error) {
	if err := checkID("name", name); err != nil {
		return nil, fmt.Errorf("delete schedule: %w", err)
	}
	var sc Schedule
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/schedules/" + esc(name), idempotent: true}, &sc); err != nil {
		return nil, fmt.Errorf("delete schedule %s: %w", name, err)
	}
	return &sc, nil
}

// TriggerSchedule runs a schedule now (or for req.Tick) as the caller and
// returns the run, pending. Without an idempotency key, one is made so the
// request can be retried safely; Replayed tells that the server answered
// with the run of an earlier trigger with the same key.
func (c *Client) TriggerSchedule(ctx context.Context, name string, req TriggerScheduleRequest) (*Run, error) {
	if err := checkID("name", name); err != nil {
		return nil, fmt.Errorf("trigger schedule: %w", err)
	}
	if req.IdempotencyKey == "" {
		req.IdempotencyKey = NewIdempotencyKey()
	}
	var run Run
	status, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/schedules/" + esc(name) + "/trigger", body: req, idempotent: true}, &run)
	if err != nil {
		return nil, fmt.Errorf("trigger schedule %s: %w", name, err)
	}
	run.Replayed = status == http.StatusOK
	return &run, nil
}
