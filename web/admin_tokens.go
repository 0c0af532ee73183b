package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// adminTokensView is the data of the API tokens page.
type adminTokensView struct {
	adminBase
	Tokens []adminToken
	Users  []catalog.User
	// Created is the token just created, whose secret is shown this once.
	Created *client.NewToken
	// CreatedFor is the name of its user.
	CreatedFor string
}

// adminToken is a token with its user's name.
type adminToken struct {
	catalog.Token
	UserName string
}

func (s *Server) loadAdminTokens(c echo.Context, status int, p Page, created *client.NewToken) error {
	api := s.apiFor(c)
	ctx := c.Request().Context()
	ts, err := api.ListTokens(ctx, 0)
	if err != nil {
		return err
	}
	us, err := api.ListUsers(ctx)
	if err != nil {
		return err
	}
	names := userNames(us)
	v := &adminTokensView{adminBase: newAdminBase("tokens"), Users: us, Created: created}
	for _, t := range ts {
		v.Tokens = append(v.Tokens, adminToken{Token: t, UserName: names[t.UserID]})
	}
	if created != nil {
		v.CreatedFor = names[created.UserID]
	}
	p.Title, p.Nav, p.Data = "API tokens", "admin", v
	// The page may hold a secret: never kept by the browser's cache.
	return s.render(c, status, "admin_tokens", p)
}

// adminTokens lists every token by user, name and last use, with the
// forms to create and revoke tokens.
func (s *Server) adminTokens(c echo.Context) error {
	return s.loadAdminTokens(c, http.StatusOK, Page{Flash: flashOf(c)}, nil)
}

// adminCreateToken creates a token and shows its secret once, on this
// answer only (never in a redirect, a link or a log).
func (s *Server) adminCreateToken(c echo.Context) error {
	form := url.Values{"user_id": {c.FormValue("user_id")}, "name": {c.FormValue("name")}, "expires_at": {c.FormValue("expires_at")}}
	uid, err := strconv.ParseInt(form.Get("user_id"), 10, 64)
	if err != nil || uid <= 0 {
		return s.loadAdminTokens(c, http.StatusUnprocessableEntity, Page{Form: form, Errors: FieldErrors{"user_id": "pick the user the token acts as"}}, nil)
	}
	var expires *time.Time
	if v := form.Get("expires_at"); v != "" {
		d, err := time.Parse("2006-01-02", v)
		if err != nil {
			return s.loadAdminTokens(c, http.StatusUnprocessableEntity, Page{Form: form, Errors: FieldErrors{"expires_at": "give a date such as 2027-01-31, or none"}}, nil)
		}
		end := d.Add(24 * time.Hour) // the token works through the day given
		expires = &end
	}
	tok, err := s.apiFor(c).CreateToken(c.Request().Context(), uid, client.TokenRequest{Name: form.Get("name"), ExpiresAt: expires})
	if err != nil {
		if fe, status, ok := formErrors(err); ok {
			return s.loadAdminTokens(c, status, Page{Form: form, Errors: fe}, nil)
		}
		return err
	}
	return s.loadAdminTokens(c, http.StatusCreated, Page{Flash: fmt.Sprintf("Token %s created. Copy its secret now: it is shown only once.", tok.Name)}, tok)
}

// adminRevokeToken revokes a token at once.
func (s *Server) adminRevokeToken(c echo.Context) error {
	id, err := pathID(c, "id", "token")
	if err != nil {
		return err
	}
	if err := s.apiFor(c).RevokeToken(c.Request().Context(), id); err != nil {
		if fe, status, ok := formErrors(err); ok {
			return s.loadAdminTokens(c, status, Page{Errors: fe}, nil)
		}
		return err
	}
	return c.Redirect(http.StatusSeeOther, withFlash("/admin/tokens", fmt.Sprintf("Token %d revoked.", id)))
}
