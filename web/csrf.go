package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"

	"github.com/labstack/echo/v4"
)

// FieldCSRF is the hidden form field that carries the CSRF token. Every
// form that posts writes it with {{csrf .}} in its template.
const FieldCSRF = "csrf_token"

// signinCookie holds the CSRF token of the sign-in form, before a session
// (and its token) exists: the form's field must match the cookie.
const signinCookie = "weir_signin"

// checkCSRF refuses (403) every request with an unsafe method whose form
// lacks the CSRF token: the session's token when signed in, else the
// sign-in cookie's. It runs for every route.
func (s *Server) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !unsafeMethod(c.Request().Method) {
			return next(c)
		}
		if viewerOf(c) == nil && c.Request().URL.Path == "/signout" {
			// No session to end: signing out changes nothing, so a stale
			// page's button just leads to the sign-in page.
			return next(c)
		}
		want := ""
		if v := viewerOf(c); v != nil {
			want = v.CSRF
		} else if ck, err := c.Cookie(signinCookie); err == nil {
			want = ck.Value
		}
		got := c.FormValue(FieldCSRF)
		if want == "" || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			s.log.Warn("refused a form without its CSRF token", "path", c.Request().URL.Path, "client_ip", c.RealIP())
			return echo.NewHTTPError(http.StatusForbidden, "this form is missing its security token or it expired: reload the page and try again")
		}
		return next(c)
	}
}

// csrfToken returns the token forms of c must carry: the session's, or,
// before sign-in, the sign-in cookie's, which it sets when missing.
func (s *Server) csrfToken(c echo.Context) string {
	if v := viewerOf(c); v != nil {
		return v.CSRF
	}
	if ck, err := c.Cookie(signinCookie); err == nil && ck.Value != "" {
		return ck.Value
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	c.SetCookie(&http.Cookie{Name: signinCookie, Value: tok, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.overTLS(c.Request())})
	return tok
}
