package client

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/weirdata/weir/catalog"
)

// AuditOptions filters the audit log; zero fields do not filter.
type AuditOptions struct {
	Actor string
	// Action matches exactly, or as a prefix when it ends in "*" ("token.*").
	Action  string
	Target  string
	Outcome string
	Since   time.Time
	Until   time.Time
	// Limit is the page size (the server's default when 0); Cursor the
	// NextCursor of the previous page.
	Limit  int
	Cursor int64
}

// AuditPage is one page of the audit log, newest first.
type AuditPage struct {
	Entries    []catalog.AuditEntry `json:"entries"`
	NextCursor int64                `json:"next_cursor,omitempty"`
}

// ListAudit returns a page of the audit log (admin).
func (c *Client) ListAudit(ctx context.Context, o AuditOptions) (*AuditPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"actor": o.Actor, "action": o.Action, "target": o.Target, "outcome": o.Outcome} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.UTC().Format(time.RFC3339))
	}
	if !o.Until.IsZero() {
		q.Set("until", o.Until.UTC().Format(time.RFC3339))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor > 0 {
		q.Set("cursor", strconv.FormatInt(o.Cursor, 10))
	}
	var p AuditPage
	if err := c.get(ctx, "/api/v1/audit", q, &p); err != nil {
		return nil, fmt.Errorf("list audit log: %w", err)
	}
	return &p, nil
}
