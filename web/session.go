package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// SessionCookie is the name of the session cookie the API sets at sign-in.
const SessionCookie = "weir_session"

// HeaderCSRF carries the session's CSRF token on unsafe API requests.
const HeaderCSRF = "X-CSRF-Token"

// Roles, lowest first: each may do what the ones before it may.
const (
	roleViewer    = catalog.RoleViewer
	roleSubmitter = catalog.RoleSubmitter
	roleOperator  = catalog.RoleOperator
	roleAdmin     = catalog.RoleAdmin
)

// roleRank orders the roles; an unknown role ranks 0, below viewer.
func roleRank(role string) int {
	switch role {
	case roleViewer:
		return 1
	case roleSubmitter:
		return 2
	case roleOperator:
		return 3
	case roleAdmin:
		return 4
	}
	return 0
}

// Viewer is the signed-in user of a request, as the API's session says.
type Viewer struct {
	ID   int64
	Name string
	Role string
	// CSRF is the session's CSRF token: forms carry it in the csrf_token
	// field, and API calls in the X-CSRF-Token header.
	CSRF string
}

// Can reports whether the viewer's role is role or above; pages use it to
// hide what the role may not do ({{if .Viewer.Can "operator"}}). The API
// still refuses what the entitlements do not allow.
func (v *Viewer) Can(role string) bool { return v != nil && roleRank(v.Role) >= roleRank(role) }

const ctxViewer = "web.viewer"

// viewerOf returns the signed-in user of c, or nil.
func viewerOf(c echo.Context) *Viewer {
	v, _ := c.Get(ctxViewer).(*Viewer)
	return v
}

// loadViewer finds the signed-in user of every request but static assets:
// the API is asked for the session of the request's cookie. A request
// without a live session goes on with no viewer (signedIn refuses it where
// a page needs one).
func (s *Server) loadViewer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if strings.HasPrefix(c.Request().URL.Path, "/static/") {
			return next(c)
		}
		if _, err := c.Cookie(SessionCookie); err == nil {
			sess, err := s.apiFor(c).CurrentSession(c.Request().Context())
			switch {
			case err == nil:
				c.Set(ctxViewer, &Viewer{ID: sess.User.ID, Name: sess.User.Name, Role: sess.User.Role, CSRF: sess.CSRFToken})
			case errors.Is(err, catalog.ErrUnauthenticated):
				// Expired or ended: drop the cookie, so that it is not sent
				// (and refused, and counted as a failure) on every request.
				c.SetCookie(&http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
					SameSite: http.SameSiteStrictMode, Secure: s.overTLS(c.Request())})
			default:
				return err
			}
		}
		return next(c)
	}
}

// signedIn lets a request through only with a live session. Without one, a
// page request is redirected to /signin (coming back afterwards), and a
// live-update request is answered 401 so that the script reloads the page.
func (s *Server) signedIn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if viewerOf(c) != nil {
			return next(c)
		}
		if c.Request().Header.Get(headerLive) != "" {
			return echo.NewHTTPError(http.StatusUnauthorized, "your session ended: sign in again")
		}
		target := "/signin"
		if p := c.Request().URL.RequestURI(); p != "/" && c.Request().Method == http.MethodGet {
			target += "?next=" + url.QueryEscape(p)
		}
		return c.Redirect(http.StatusSeeOther, target)
	}
}

// role lets through only viewers whose role is r or above; others get 403.
// Use it after signedIn.
func (s *Server) role(r string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !viewerOf(c).Can(r) {
				return echo.NewHTTPError(http.StatusForbidden, "this needs the "+r+" role or above")
			}
			return next(c)
		}
	}
}

// safeNext returns p when it is a path on this site, else "/": a sign-in
// link cannot send the user elsewhere.
func safeNext(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	if u, err := url.Parse(p); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return p
}
