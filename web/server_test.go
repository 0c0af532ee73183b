package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSkeletonWithoutSession checks what holds without any session: pages
// redirect to sign-in, the sign-in page renders with the security headers,
// and a form without its CSRF token is refused.
func TestSkeletonWithoutSession(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":"unauthenticated","message":"sign in"}}`))
	})
	s, err := New(Config{API: api})
	require.NoError(t, err)

	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/alerts?open=1", nil))
	require.Equal(t, http.StatusSeeOther, rec.Code)
	require.Equal(t, "/signin?next="+url.QueryEscape("/alerts?open=1"), rec.Header().Get("Location"))
	require.Contains(t, rec.Header().Get("Content-Security-Policy"), "default-src 'self'")

	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/signin", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), `name="csrf_token"`)
	require.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"))
	require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
	require.Equal(t, "same-origin", rec.Header().Get("Referrer-Policy"))

	rec = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/signin", strings.NewReader("username=a&password=b"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s.ServeHTTP(rec, req)
	require.Equal(t, http.StatusForbidden, rec.Code)
	require.Contains(t, rec.Body.String(), "security token")
}
