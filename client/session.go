package client

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/weirdata/weir/catalog"
)

// Session is a dashboard session as the API shows it: the signed-in user,
// the CSRF token that unsafe requests made with the session cookie must
// carry in the X-CSRF-Token header, and when the session ends. The session
// cookie itself travels in the Set-Cookie header of the answer, not here.
type Session struct {
	User      catalog.User `json:"user"`
	CSRFToken string       `json:"csrf_token"`
	ExpiresAt time.Time    `json:"expires_at"`
}

// SignIn opens a session for username with password (POST /api/v1/session).
// Wrong credentials are a 401 APIError (errors.Is catalog.ErrUnauthenticated).
func (c *Client) SignIn(ctx context.Context, username, password string) (*Session, error) {
	if username == "" || password == "" {
		return nil, fmt.Errorf("sign in: give a username and a password")
	}
	var out Session
	body := map[string]string{"username": username, "password": password}
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/session", body: body}, &out); err != nil {
		return nil, fmt.Errorf("sign in as %s: %w", username, err)
	}
	return &out, nil
}

// CurrentSession returns the session of the cookie the client's transport
// sends (GET /api/v1/session); no or an expired session is a 401 APIError.
func (c *Client) CurrentSession(ctx context.Context) (*Session, error) {
	var out Session
	if err := c.get(ctx, "/api/v1/session", nil, &out); err != nil {
		return nil, fmt.Errorf("get session: %w", err)
	}
	return &out, nil
}

// SignOut ends the session of the cookie the client's transport sends
// (DELETE /api/v1/session).
func (c *Client) SignOut(ctx context.Context) error {
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/session", idempotent: true}, nil); err != nil {
		return fmt.Errorf("sign out: %w", err)
	}
	return nil
}
