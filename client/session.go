package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/weirdata/weir/catalog"
)

// Session is a signed-in browser session, as POST /api/v1/session gives it.
type Session struct {
	User      catalog.User `json:"user"`
	CSRFToken string       `json:"csrf_token"`
	ExpiresAt time.Time    `json:"expires_at"`
	// Secret is the value of the session cookie (catalog.SessionCookie):
	// whoever holds it is signed in until ExpiresAt or sign-out.
	Secret string `json:"-"`
}

// SignIn signs in with a user name and password, as the web pages do, and
// returns the session. It is never retried: a refused sign-in counts
// towards the server's slow-down. Wrong credentials are an *APIError of
// status 401; too many refusals one of status 429.
func (c *Client) SignIn(ctx context.Context, username, password string) (*Session, error) {
	body, err := json.Marshal(map[string]string{"username": username, "password": password})
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	const path = "/api/v1/session"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.String()+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &ConnError{Method: http.MethodPost, Path: path, Server: c.base.Host, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, fmt.Errorf("sign in: %w", decodeAPIError(http.MethodPost, path, resp.StatusCode, []byte(redact(string(b), password)), password))
	}
	var s Session
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("sign in: decode answer: %w", err)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == catalog.SessionCookie {
			s.Secret = ck.Value
		}
	}
	if s.Secret == "" {
		return nil, fmt.Errorf("sign in: the server set no %s cookie", catalog.SessionCookie)
	}
	return &s, nil
}
