package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"github.com/weirdata/weir/catalog"
)

// Alert is an alert row of the catalog: severity, subject, message, first
// and last seen, count, and who acknowledged it when.
type Alert = catalog.Alert

// ListAlertsOptions filters and pages an alert listing. Zero fields do not filter.
type ListAlertsOptions struct {
	// Open keeps the alerts not resolved.
	Open bool
	// Unacked keeps the alerts nobody acknowledged.
	Unacked bool
	// Severity keeps that severity and worse: info, warning or critical.
	Severity string
	Region   string
	// Key keeps the alerts of one dedupe key ("node-red:w1").
	Key string
	// Limit is the page size; 0 lets the server choose.
	Limit int
	// Cursor is the NextCursor of the previous page; 0 for the first.
	Cursor int64
}

func (o ListAlertsOptions) query() url.Values {
	q := url.Values{}
	if o.Open {
		q.Set("open", "true")
	}
	if o.Unacked {
		q.Set("unacked", "true")
	}
	if o.Severity != "" {
		q.Set("severity", o.Severity)
	}
	if o.Region != "" {
		q.Set("region", o.Region)
	}
	if o.Key != "" {
		q.Set("key", o.Key)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor > 0 {
		q.Set("cursor", strconv.FormatInt(o.Cursor, 10))
	}
	return q
}

// AlertPage is one page of alerts, newest first.
type AlertPage struct {
	Alerts []Alert `json:"alerts"`
	// NextCursor fetches the next page; 0 on the last page.
	NextCursor int64 `json:"next_cursor,omitempty"`
}

// ListAlerts returns one page of alerts, newest first (operators, admins,
// and users who may read everything).
func (c *Client) ListAlerts(ctx context.Context, o ListAlertsOptions) (*AlertPage, error) {
	if o.Severity != "" && catalog.AlertSeverityRank(o.Severity) == 0 {
		return nil, fmt.Errorf("list alerts: severity %q is not one of info, warning, critical", o.Severity)
	}
	var page AlertPage
	if err := c.get(ctx, "/api/v1/alerts", o.query(), &page); err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return &page, nil
}

// AllAlerts walks every alert that o selects, newest first, fetching pages
// of o.Limit as it goes. It yields a non-nil error at most once, last.
func (c *Client) AllAlerts(ctx context.Context, o ListAlertsOptions) iter.Seq2[Alert, error] {
	return func(yield func(Alert, error) bool) {
		for {
			page, err := c.ListAlerts(ctx, o)
			if err != nil {
				yield(Alert{}, err)
				return
			}
			for _, a := range page.Alerts {
				if !yield(a, nil) {
					return
				}
			}
			if page.NextCursor == 0 {
				return
			}
			if o.Cursor != 0 && page.NextCursor >= o.Cursor {
				yield(Alert{}, fmt.Errorf("list alerts: the server's cursor %d does not move on from %d", page.NextCursor, o.Cursor))
				return
			}
			o.Cursor = page.NextCursor
		}
	}
}

// AckAlert acknowledges an alert as the caller (operators and admins).
func (c *Client) AckAlert(ctx context.Context, id int64) (*Alert, error) {
	return c.alertAction(ctx, id, "ack", "acknowledge")
}

// ResolveAlert resolves an alert (operators and admins). A condition that
// persists raises a new alert.
func (c *Client) ResolveAlert(ctx context.Context, id int64) (*Alert, error) {
	return c.alertAction(ctx, id, "resolve", "resolve")
}

func (c *Client) alertAction(ctx context.Context, id int64, action, verb string) (*Alert, error) {
	if id <= 0 {
		return nil, fmt.Errorf("%s alert: the alert ID must be a positive number, got %d", verb, id)
	}
	var a Alert
	path := "/api/v1/alerts/" + strconv.FormatInt(id, 10) + "/" + action
	if _, err := c.do(ctx, request{method: http.MethodPost, path: path, idempotent: true}, &a); err != nil {
		return nil, fmt.Errorf("%s alert %d: %w", verb, id, err)
	}
	return &a, nil
}
