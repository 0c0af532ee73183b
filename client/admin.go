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

// Identity and access types as the API returns them (admin routes).
type (
	// User is a person or service account that calls Weir.
	User = catalog.User
	// Token is an API token, without its secret.
	Token = catalog.Token
	// Entitlement grants a user one action on a resource.
	Entitlement = catalog.Entitlement
)

// UserRequest creates a user (admins only).
type UserRequest struct {
	Name string `json:"name"`
	// Role is one of viewer, submitter, operator, admin.
	Role     string `json:"role"`
	Disabled bool   `json:"disabled,omitempty"`
}

// UserPatch changes a user: nil fields stay as they are.
type UserPatch struct {
	Role     *string `json:"role,omitempty"`
	Disabled *bool   `json:"disabled,omitempty"`
}

// TokenRequest creates an API token for a user.
type TokenRequest struct {
	Name string `json:"name"`
	// ExpiresAt, when set, is when the token stops working.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// NewToken is a created token: Secret is shown this once and never again.
type NewToken struct {
	Secret string `json:"token"`
	Token
}

// EntitlementRequest grants Action on Resource to a user, optionally only
// from the networks in CIDRs.
type EntitlementRequest struct {
	UserID int64 `json:"user_id"`
	// Resource is "mapping:NAME", "system:NAME", "function:NAME", a kind with
	// "*" ("mapping:*"), or "*".
	Resource string `json:"resource"`
	// Action is one of read, submit, cancel, manage, admin.
	Action string   `json:"action"`
	CIDRs  []string `json:"cidrs,omitempty"`
}

func checkPositive(what string, id int64) error {
	if id <= 0 {
		return fmt.Errorf("%s must be a positive number, got %d", what, id)
	}
	return nil
}

// ListUsers returns every user (admins only).
func (c *Client) ListUsers(ctx context.Context) ([]User, error) {
	var raw json.RawMessage
	if err := c.get(ctx, "/api/v1/users", nil, &raw); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	var out []User
	if err := decodeList(raw, "users", &out); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// GetUser returns one user (admins only).
func (c *Client) GetUser(ctx context.Context, id int64) (*User, error) {
	if err := checkPositive("user id", id); err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	var u User
	if err := c.get(ctx, "/api/v1/users/"+strconv.FormatInt(id, 10), nil, &u); err != nil {
		return nil, fmt.Errorf("get user %d: %w", id, err)
	}
	return &u, nil
}

// CreateUser creates a user (admins only); a taken name is ErrConflict.
func (c *Client) CreateUser(ctx context.Context, req UserRequest) (*User, error) {
	var u User
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/users", body: req}, &u); err != nil {
		return nil, fmt.Errorf("create user %q: %w", req.Name, err)
	}
	return &u, nil
}

// UpdateUser changes a user's role or disables it (admins only).
func (c *Client) UpdateUser(ctx context.Context, id int64, patch UserPatch) (*User, error) {
	if err := checkPositive("user id", id); err != nil {
		return nil, fmt.Errorf("update user: %w", err)
	}
	var u User
	if _, err := c.do(ctx, request{method: http.MethodPatch, path: "/api/v1/users/" + strconv.FormatInt(id, 10), body: patch, idempotent: true}, &u); err != nil {
		return nil, fmt.Errorf("update user %d: %w", id, err)
	}
	return &u, nil
}

// CreateToken creates an API token for a user (admins only). The answer's
// Secret is shown this once: keep it, the server stores only its hash. It
// is never retried, so that no second token is made unseen.
func (c *Client) CreateToken(ctx context.Context, userID int64, req TokenRequest) (*NewToken, error) {
	if err := checkPositive("user id", userID); err != nil {
		return nil, fmt.Errorf("create token: %w", err)
	}
	var t NewToken
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/users/" + strconv.FormatInt(userID, 10) + "/tokens", body: req}, &t); err != nil {
		return nil, fmt.Errorf("create token %q for user %d: %w", req.Name, userID, err)
	}
	return &t, nil
}

// ListTokens returns the tokens of a user, or every token when userID is 0 (admins only).
func (c *Client) ListTokens(ctx context.Context, userID int64) ([]Token, error) {
	var raw json.RawMessage
	if err := c.get(ctx, "/api/v1/tokens", userQuery(userID), &raw); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	var out []Token
	if err := decodeList(raw, "tokens", &out); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken revokes a token at once (admins only).
func (c *Client) RevokeToken(ctx context.Context, id int64) error {
	if err := checkPositive("token id", id); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/tokens/" + strconv.FormatInt(id, 10), idempotent: true}, nil); err != nil {
		return fmt.Errorf("revoke token %d: %w", id, err)
	}
	return nil
}

// ListEntitlements returns the entitlements of a user, or all when userID is 0 (admins only).
func (c *Client) ListEntitlements(ctx context.Context, userID int64) ([]Entitlement, error) {
	var raw json.RawMessage
	if err := c.get(ctx, "/api/v1/entitlements", userQuery(userID), &raw); err != nil {
		return nil, fmt.Errorf("list entitlements: %w", err)
	}
	var out []Entitlement
	if err := decodeList(raw, "entitlements", &out); err != nil {
		return nil, fmt.Errorf("list entitlements: %w", err)
	}
	return out, nil
}

// CreateEntitlement grants an action on a resource to a user (admins only).
func (c *Client) CreateEntitlement(ctx context.Context, req EntitlementRequest) (*Entitlement, error) {
	var e Entitlement
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/entitlements", body: req}, &e); err != nil {
		return nil, fmt.Errorf("grant %s on %s to user %d: %w", req.Action, req.Resource, req.UserID, err)
	}
	return &e, nil
}

// DeleteEntitlement withdraws an entitlement (admins only).
func (c *Client) DeleteEntitlement(ctx context.Context, id int64) error {
	if err := checkPositive("entitlement id", id); err != nil {
		return fmt.Errorf("delete entitlement: %w", err)
	}
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/entitlements/" + strconv.FormatInt(id, 10), idempotent: true}, nil); err != nil {
		return fmt.Errorf("delete entitlement %d: %w", id, err)
	}
	return nil
}

func userQuery(userID int64) url.Values {
	if userID <= 0 {
		return nil
	}
	return url.Values{"user_id": {strconv.FormatInt(userID, 10)}}
}
