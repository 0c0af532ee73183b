package web

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// signinView is the data of the sign-in page.
type signinView struct {
	Next string
}

// signinForm shows the sign-in form; a signed-in user goes on to the page asked for.
func (s *Server) signinForm(c echo.Context) error {
	next := safeNext(c.QueryParam("next"))
	if viewerOf(c) != nil {
		return c.Redirect(http.StatusSeeOther, next)
	}
	return s.render(c, http.StatusOK, "signin", Page{Title: "Sign in", Data: signinView{Next: next}})
}

// signin opens a session through the API, whose Set-Cookie reaches the
// browser through the in-process transport, and goes on to the page asked
// for. Wrong credentials show the form again with the API's message.
func (s *Server) signin(c echo.Context) error {
	next := safeNext(c.FormValue("next"))
	user, pass := c.FormValue("username"), c.FormValue("password")
	form := url.Values{"username": {user}}
	p := Page{Title: "Sign in", Form: form, Data: signinView{Next: next}}
	switch {
	case user == "":
		p.Errors = FieldErrors{"username": "give your user name"}
	case pass == "":
		p.Errors = FieldErrors{"password": "give your password"}
	}
	if p.Errors != nil {
		return s.render(c, http.StatusUnprocessableEntity, "signin", p)
	}
	if _, err := s.apiFor(c).SignIn(c.Request().Context(), user, pass); err != nil {
		if errors.Is(err, catalog.ErrUnauthenticated) {
			p.Errors = FieldErrors{"": "The user name or the password is wrong, or the user is disabled."}
			return s.render(c, http.StatusUnauthorized, "signin", p)
		}
		if fe, status, ok := formErrors(err); ok {
			p.Errors = fe
			return s.render(c, status, "signin", p)
		}
		var ae *client.APIError
		if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable { // too many password checks at once
			p.Errors = FieldErrors{"": "Too many sign-ins at once: try again in a moment."}
			c.Response().Header().Set(echo.HeaderRetryAfter, "1")
			return s.render(c, http.StatusServiceUnavailable, "signin", p)
		}
		return err
	}
	c.SetCookie(&http.Cookie{Name: signinCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return c.Redirect(http.StatusSeeOther, next)
}

// signout ends the session through the API (which clears its cookie) and
// shows the sign-in page.
func (s *Server) signout(c echo.Context) error {
	if viewerOf(c) != nil {
		if err := s.apiFor(c).SignOut(c.Request().Context()); err != nil && !errors.Is(err, catalog.ErrUnauthenticated) {
			return err
		}
	}
	c.SetCookie(&http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return c.Redirect(http.StatusSeeOther, "/signin")
}
