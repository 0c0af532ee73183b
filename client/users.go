package client

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
)

// Beyond the admin routes of client/admin.go: looking a user up by name
// and setting passwords.

// UserByName returns the user named name; none is a 404 *APIError
// (errors.Is ErrNotFound), as if the server had been asked for it.
func (c *Client) UserByName(ctx context.Context, name string) (*User, error) {
	us, err := c.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	for i := range us {
		if us[i].Name == name {
			return &us[i], nil
		}
	}
	return nil, &APIError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("no user named %q", name),
		Method: http.MethodGet, Path: "/api/v1/users"}
}

// SetPassword sets a user's password, which ends the user's sessions.
// Admins need no current password; users setting their own give it.
func (c *Client) SetPassword(ctx context.Context, userID int64, password, current string) error {
	if err := checkPositive("user id", userID); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	body := map[string]string{"password": password}
	if current != "" {
		body["current_password"] = current
	}
	if _, err := c.do(ctx, request{method: http.MethodPut, path: "/api/v1/users/" + strconv.FormatInt(userID, 10) + "/password", body: body, idempotent: true}, nil); err != nil {
		return fmt.Errorf("set password of user %d: %w", userID, err)
	}
	return nil
}
