package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/weirdata/weir/catalog"
)

// Users, API tokens, passwords and entitlements (admin routes, except that
// users may set their own password).

// CreateUserRequest is a new user; Password, when given, lets the user sign
// in to the web pages.
type CreateUserRequest struct {
	Name     string `json:"name"`
	Role     string `json:"role,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
	Password string `json:"password,omitempty"`
}

// UpdateUserRequest changes a user; nil fields stay.
type UpdateUserRequest struct {
	Role     *string `json:"role,omitempty"`
	Disabled *bool   `json:"disabled,omitempty"`
}

// NewToken is a created API token: Secret is shown this once.
type NewToken struct {
	Secret string `json:"token"`
	catalog.Token
}

// GrantRequest grants an action on a resource to a user (UserID) or to a
// group (GroupID), optionally only from the given networks.
type GrantRequest struct {
	UserID   int64    `json:"user_id,omitempty"`
	GroupID  int64    `json:"group_id,omitempty"`
	Resource string   `json:"resource"`
	Action   string   `json:"action"`
	CIDRs    []string `json:"cidrs,omitempty"`
}

// CreateUser creates a user.
func (c *Client) CreateUser(ctx context.Context, req CreateUserRequest) (*catalog.User, error) {
	var u catalog.User
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/users", body: req}, &u); err != nil {
		return nil, fmt.Errorf("create user %s: %w", req.Name, err)
	}
	return &u, nil
}

// ListUsers returns every user.
func (c *Client) ListUsers(ctx context.Context) ([]catalog.User, error) {
	var raw json.RawMessage
	if err := c.get(ctx, "/api/v1/users", nil, &raw); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	var us []catalog.User
	if err := decodeList(raw, "users", &us); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

// GetUser returns a user by ID.
func (c *Client) GetUser(ctx context.Context, id int64) (*catalog.User, error) {
	var u catalog.User
	if err := c.get(ctx, fmt.Sprintf("/api/v1/users/%d", id), nil, &u); err != nil {
		return nil, fmt.Errorf("get user %d: %w", id, err)
	}
	return &u, nil
}

// UserByName returns the user named name (catalog.ErrNotFound when none).
func (c *Client) UserByName(ctx context.Context, name string) (*catalog.User, error) {
	us, err := c.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	for i := range us {
		if us[i].Name == name {
			return &us[i], nil
		}
	}
	return nil, fmt.Errorf("user %s: %w", name, catalog.ErrNotFound)
}

// UpdateUser changes a user's role or disabled flag; disabling ends its sessions.
func (c *Client) UpdateUser(ctx context.Context, id int64, req UpdateUserRequest) (*catalog.User, error) {
	var u catalog.User
	if _, err := c.do(ctx, request{method: http.MethodPatch, path: fmt.Sprintf("/api/v1/users/%d", id), body: req}, &u); err != nil {
		return nil, fmt.Errorf("update user %d: %w", id, err)
	}
	return &u, nil
}

// SetPassword sets a user's password, which ends the user's sessions.
// Admins need no current password; users setting their own do.
func (c *Client) SetPassword(ctx context.Context, userID int64, password, current string) error {
	body := map[string]string{"password": password}
	if current != "" {
		body["current_password"] = current
	}
	if _, err := c.do(ctx, request{method: http.MethodPut, path: fmt.Sprintf("/api/v1/users/%d/password", userID), body: body, idempotent: true}, nil); err != nil {
		return fmt.Errorf("set password of user %d: %w", userID, err)
	}
	return nil
}

// CreateToken creates an API token for a user; expires may be nil.
func (c *Client) CreateToken(ctx context.Context, userID int64, name string, expires *time.Time) (*NewToken, error) {
	body := map[string]any{"name": name}
	if expires != nil {
		body["expires_at"] = expires.UTC()
	}
	var t NewToken
	if _, err := c.do(ctx, request{method: http.MethodPost, path: fmt.Sprintf("/api/v1/users/%d/tokens", userID), body: body}, &t); err != nil {
		return nil, fmt.Errorf("create token %s: %w", name, err)
	}
	return &t, nil
}

// ListTokens returns a user's tokens (every user's when userID is 0), without secrets.
func (c *Client) ListTokens(ctx context.Context, userID int64) ([]catalog.Token, error) {
	q := url.Values{}
	if userID != 0 {
		q.Set("user_id", strconv.FormatInt(userID, 10))
	}
	var raw json.RawMessage
	if err := c.get(ctx, "/api/v1/tokens", q, &raw); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	var ts []catalog.Token
	if err := decodeList(raw, "tokens", &ts); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return ts, nil
}

// RevokeToken revokes a token at once.
func (c *Client) RevokeToken(ctx context.Context, id int64) error {
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: fmt.Sprintf("/api/v1/tokens/%d", id), idempotent: true}, nil); err != nil {
		return fmt.Errorf("revoke token %d: %w", id, err)
	}
	return nil
}

// Grant creates an entitlement.
func (c *Client) Grant(ctx context.Context, req GrantRequest) (*catalog.Entitlement, error) {
	var e catalog.Entitlement
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/entitlements", body: req}, &e); err != nil {
		return nil, fmt.Errorf("grant %s on %s: %w", req.Action, req.Resource, err)
	}
	return &e, nil
}

// ListEntitlements returns the entitlements that apply to a user (its own
// and its groups'), or every entitlement when userID is 0.
func (c *Client) ListEntitlements(ctx context.Context, userID int64) ([]catalog.Entitlement, error) {
	q := url.Values{}
	if userID != 0 {
		q.Set("user_id", strconv.FormatInt(userID, 10))
	}
	var raw json.RawMessage
	if err := c.get(ctx, "/api/v1/entitlements", q, &raw); err != nil {
		return nil, fmt.Errorf("list entitlements: %w", err)
	}
	var es []catalog.Entitlement
	if err := decodeList(raw, "entitlements", &es); err != nil {
		return nil, fmt.Errorf("list entitlements: %w", err)
	}
	return es, nil
}

// Revoke deletes an entitlement; it takes effect on the next request.
func (c *Client) Revoke(ctx context.Context, id int64) error {
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: fmt.Sprintf("/api/v1/entitlements/%d", id), idempotent: true}, nil); err != nil {
		return fmt.Errorf("revoke entitlement %d: %w", id, err)
	}
	return nil
}
