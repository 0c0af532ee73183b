package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// The admin pages (admin role only): users, groups, API tokens,
// entitlements and the audit log. Each is in its own admin_*.go file; every
// change goes through the API, which checks again that the viewer is an
// admin and records the change in the audit log.

// adminTab is one entry of the admin pages' sub-navigation.
type adminTab struct {
	Key, Label, Path string
}

// adminTabs are the admin pages, in order.
var adminTabs = []adminTab{
	{"users", "Users", "/admin/users"},
	{"groups", "Groups", "/admin/groups"},
	{"tokens", "API tokens", "/admin/tokens"},
	{"entitlements", "Entitlements", "/admin/entitlements"},
	{"audit", "Audit log", "/admin/audit"},
}

// adminBase is what every admin page's data starts with: the current tab.
type adminBase struct {
	Tab  string
	Tabs []adminTab
}

func newAdminBase(tab string) adminBase { return adminBase{Tab: tab, Tabs: adminTabs} }

// adminRoutes registers the admin pages: signed in, admin role. The API
// refuses non-admins as well, whatever a forged request tries.
func (s *Server) adminRoutes() {
	e := s.e
	admin := []echo.MiddlewareFunc{s.signedIn, s.role(roleAdmin)}
	e.GET("/admin", func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, "/admin/users") }, admin...)

	e.GET("/admin/users", s.adminUsers, admin...)
	e.POST("/admin/users", s.adminCreateUser, admin...)
	e.POST("/admin/users/:id/role", s.adminSetRole, admin...)
	e.POST("/admin/users/:id/disabled", s.adminSetDisabled, admin...)
	e.POST("/admin/users/:id/password", s.adminSetPassword, admin...)

	e.GET("/admin/groups", s.adminGroups, admin...)
	e.POST("/admin/groups", s.adminCreateGroup, admin...)
	e.POST("/admin/groups/:id/delete", s.adminDeleteGroup, admin...)
	e.POST("/admin/groups/:id/members", s.adminAddMember, admin...)
	e.POST("/admin/groups/:id/members/:user_id/remove", s.adminRemoveMember, admin...)

	e.GET("/admin/tokens", s.adminTokens, admin...)
	e.POST("/admin/tokens", s.adminCreateToken, admin...)
	e.POST("/admin/tokens/:id/revoke", s.adminRevokeToken, admin...)

	e.GET("/admin/entitlements", s.adminEntitlements, admin...)
	e.POST("/admin/entitlements", s.adminGrant, admin...)
	e.POST("/admin/entitlements/:id/revoke", s.adminRevoke, admin...)

	e.GET("/admin/audit", s.adminAudit, admin...)
}

// pathID reads a positive numeric path parameter; anything else is a 404.
func pathID(c echo.Context, name, what string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, echo.NewHTTPError(http.StatusNotFound, "there is no such "+what)
	}
	return id, nil
}

// userNames maps user IDs to names, for pages that show who holds what.
func userNames(us []catalog.User) map[int64]string {
	m := make(map[int64]string, len(us))
	for _, u := range us {
		m[u.ID] = u.Name
	}
	return m
}
