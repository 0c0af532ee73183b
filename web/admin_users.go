package web

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// adminUsersView is the data of the users page.
type adminUsersView struct {
	adminBase
	Users []catalog.User
	Roles []string
}

// loadAdminUsers renders the users page with p's form and errors.
func (s *Server) loadAdminUsers(c echo.Context, status int, p Page) error {
	us, err := s.apiFor(c).ListUsers(c.Request().Context())
	if err != nil {
		return err
	}
	p.Title, p.Nav = "Users", "admin"
	p.Data = &adminUsersView{adminBase: newAdminBase("users"), Users: us, Roles: catalog.ValidRoles}
	return s.render(c, status, "admin_users", p)
}

// adminUsers lists users with their role and status, and the forms to
// create one, change a role, disable or enable, and reset a password.
func (s *Server) adminUsers(c echo.Context) error {
	return s.loadAdminUsers(c, http.StatusOK, Page{Flash: flashOf(c)})
}

// adminCreateUser creates a user, with an initial password when one is given.
func (s *Server) adminCreateUser(c echo.Context) error {
	req := client.UserRequest{Name: c.FormValue("name"), Role: c.FormValue("role"), Password: c.FormValue("password")}
	u, err := s.apiFor(c).CreateUser(c.Request().Context(), req)
	if err != nil {
		if fe, status, ok := formErrors(err); ok {
			// The password is never sent back to the browser.
			return s.loadAdminUsers(c, status, Page{Errors: fe, Form: url.Values{"name": {req.Name}, "role": {req.Role}}})
		}
		return err
	}
	msg := fmt.Sprintf("User %s created with the role %s.", u.Name, u.Role)
	if req.Password == "" {
		msg += " Set a password so that the user can sign in."
	}
	return c.Redirect(http.StatusSeeOther, withFlash("/admin/users", msg))
}

// adminUserChange applies one change to the user of the path and goes back
// to the list; the API's refusal is shown above the list.
func (s *Server) adminUserChange(c echo.Context, change func(id int64) (string, error)) error {
	id, err := pathID(c, "id", "user")
	if err != nil {
		return err
	}
	msg, err := change(id)
	if err != nil {
		if fe, status, ok := formErrors(err); ok {
			for field, m := range fe {
				if field != "" {
					fe = FieldErrors{"": field + ": " + m}
				}
			}
			return s.loadAdminUsers(c, status, Page{Errors: fe})
		}
		return err
	}
	return c.Redirect(http.StatusSeeOther, withFlash("/admin/users", msg))
}

// adminSetRole changes a user's role.
func (s *Server) adminSetRole(c echo.Context) error {
	return s.adminUserChange(c, func(id int64) (string, error) {
		role := c.FormValue("role")
		u, err := s.apiFor(c).UpdateUser(c.Request().Context(), id, client.UserPatch{Role: &role})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s now has the role %s.", u.Name, u.Role), nil
	})
}

// adminSetDisabled disables (ending the user's sessions) or enables a user.
func (s *Server) adminSetDisabled(c echo.Context) error {
	return s.adminUserChange(c, func(id int64) (string, error) {
		off := c.FormValue("disabled") == "true"
		u, err := s.apiFor(c).UpdateUser(c.Request().Context(), id, client.UserPatch{Disabled: &off})
		if err != nil {
			return "", err
		}
		if off {
			return fmt.Sprintf("%s is disabled: its tokens and sessions no longer work.", u.Name), nil
		}
		return fmt.Sprintf("%s is enabled again.", u.Name), nil
	})
}

// adminSetPassword sets a user's password, which ends its sessions.
func (s *Server) adminSetPassword(c echo.Context) error {
	return s.adminUserChange(c, func(id int64) (string, error) {
		if err := s.apiFor(c).SetPassword(c.Request().Context(), id, c.FormValue("password"), ""); err != nil {
			return "", err
		}
		return fmt.Sprintf("Password of user %d set; its sessions ended.", id), nil
	})
}
