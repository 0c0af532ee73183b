package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/weirdata/weir/catalog"
)

// GroupDetail is a group with its members and entitlements.
type GroupDetail struct {
	catalog.Group
	Entitlements []catalog.Entitlement `json:"entitlements"`
}

// CreateGroup creates a group of users.
func (c *Client) CreateGroup(ctx context.Context, name, description string) (*catalog.Group, error) {
	var g catalog.Group
	body := map[string]string{"name": name, "description": description}
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/groups", body: body}, &g); err != nil {
		return nil, fmt.Errorf("create group %s: %w", name, err)
	}
	return &g, nil
}

// ListGroups returns every group with its member IDs.
func (c *Client) ListGroups(ctx context.Context) ([]catalog.Group, error) {
	var raw json.RawMessage
	if err := c.get(ctx, "/api/v1/groups", nil, &raw); err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	var gs []catalog.Group
	if err := decodeList(raw, "groups", &gs); err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return gs, nil
}

// GetGroup returns a group with its members and entitlements.
func (c *Client) GetGroup(ctx context.Context, id int64) (*GroupDetail, error) {
	var g GroupDetail
	if err := c.get(ctx, fmt.Sprintf("/api/v1/groups/%d", id), nil, &g); err != nil {
		return nil, fmt.Errorf("get group %d: %w", id, err)
	}
	return &g, nil
}

// GroupByName returns the group named name; none is a 404 *APIError
// (errors.Is ErrNotFound), as if the server had been asked for it.
func (c *Client) GroupByName(ctx context.Context, name string) (*catalog.Group, error) {
	gs, err := c.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	for i := range gs {
		if gs[i].Name == name {
			return &gs[i], nil
		}
	}
	return nil, &APIError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("no group named %q", name),
		Method: http.MethodGet, Path: "/api/v1/groups"}
}

// DeleteGroup deletes a group, its memberships and its entitlements.
func (c *Client) DeleteGroup(ctx context.Context, id int64) error {
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: fmt.Sprintf("/api/v1/groups/%d", id), idempotent: true}, nil); err != nil {
		return fmt.Errorf("delete group %d: %w", id, err)
	}
	return nil
}

// AddGroupMember puts a user in a group (adding twice is harmless).
func (c *Client) AddGroupMember(ctx context.Context, groupID, userID int64) error {
	p := fmt.Sprintf("/api/v1/groups/%d/members/%d", groupID, userID)
	if _, err := c.do(ctx, request{method: http.MethodPut, path: p, idempotent: true}, nil); err != nil {
		return fmt.Errorf("add user %d to group %d: %w", userID, groupID, err)
	}
	return nil
}

// RemoveGroupMember takes a user out of a group.
func (c *Client) RemoveGroupMember(ctx context.Context, groupID, userID int64) error {
	p := fmt.Sprintf("/api/v1/groups/%d/members/%d", groupID, userID)
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: p, idempotent: true}, nil); err != nil {
		return fmt.Errorf("remove user %d from group %d: %w", userID, groupID, err)
	}
	return nil
}
