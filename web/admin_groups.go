package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// adminGroupsView is the data of the groups page.
type adminGroupsView struct {
	adminBase
	Groups []adminGroup
	Users  []catalog.User
}

// adminGroup is a group with its members' names and the users it lacks.
type adminGroup struct {
	catalog.Group
	Members    []catalog.User
	NonMembers []catalog.User
}

func (s *Server) loadAdminGroups(c echo.Context, status int, p Page) error {
	api := s.apiFor(c)
	ctx := c.Request().Context()
	gs, err := api.ListGroups(ctx)
	if err != nil {
		return err
	}
	us, err := api.ListUsers(ctx)
	if err != nil {
		return err
	}
	v := &adminGroupsView{adminBase: newAdminBase("groups"), Users: us}
	for _, g := range gs {
		in := map[int64]bool{}
		for _, id := range g.MemberIDs {
			in[id] = true
		}
		ag := adminGroup{Group: g}
		for _, u := range us {
			if in[u.ID] {
				ag.Members = append(ag.Members, u)
			} else {
				ag.NonMembers = append(ag.NonMembers, u)
			}
		}
		v.Groups = append(v.Groups, ag)
	}
	p.Title, p.Nav, p.Data = "Groups", "admin", v
	return s.render(c, status, "admin_groups", p)
}

// adminGroups lists groups with their members, and the forms to create and
// delete groups and to add and remove members.
func (s *Server) adminGroups(c echo.Context) error {
	return s.loadAdminGroups(c, http.StatusOK, Page{Flash: flashOf(c)})
}

// adminGroupError shows an API refusal above the groups page, or returns
// the error when it is not one.
func (s *Server) adminGroupError(c echo.Context, err error, form url.Values) error {
	fe, status, ok := formErrors(err)
	if !ok {
		return err
	}
	return s.loadAdminGroups(c, status, Page{Errors: fe, Form: form})
}

// adminCreateGroup creates a group.
func (s *Server) adminCreateGroup(c echo.Context) error {
	name, desc := c.FormValue("name"), c.FormValue("description")
	g, err := s.apiFor(c).CreateGroup(c.Request().Context(), name, desc)
	if err != nil {
		return s.adminGroupError(c, err, url.Values{"name": {name}, "description": {desc}})
	}
	return c.Redirect(http.StatusSeeOther, withFlash("/admin/groups", fmt.Sprintf("Group %s created.", g.Name)))
}

// adminDeleteGroup deletes a group with its memberships and entitlements.
func (s *Server) adminDeleteGroup(c echo.Context) error {
	id, err := pathID(c, "id", "group")
	if err != nil {
		return err
	}
	if err := s.apiFor(c).DeleteGroup(c.Request().Context(), id); err != nil {
		return s.adminGroupError(c, err, nil)
	}
	return c.Redirect(http.StatusSeeOther, withFlash("/admin/groups", fmt.Sprintf("Group %d deleted, with its entitlements.", id)))
}

// adminAddMember puts the user of the form's user_id in the group.
func (s *Server) adminAddMember(c echo.Context) error {
	gid, err := pathID(c, "id", "group")
	if err != nil {
		return err
	}
	uid, err := strconv.ParseInt(c.FormValue("user_id"), 10, 64)
	if err != nil || uid <= 0 {
		return s.loadAdminGroups(c, http.StatusUnprocessableEntity, Page{Errors: FieldErrors{"": "pick a user to add"}})
	}
	if err := s.apiFor(c).AddGroupMember(c.Request().Context(), gid, uid); err != nil {
		return s.adminGroupError(c, err, nil)
	}
	return c.Redirect(http.StatusSeeOther, withFlash("/admin/groups", "Member added: the group's entitlements now apply to the user."))
}

// adminRemoveMember takes a user out of the group.
func (s *Server) adminRemoveMember(c echo.Context) error {
	gid, err := pathID(c, "id", "group")
	if err != nil {
		return err
	}
	uid, err := pathID(c, "user_id", "user")
	if err != nil {
		return err
	}
	if err := s.apiFor(c).RemoveGroupMember(c.Request().Context(), gid, uid); err != nil {
		return s.adminGroupError(c, err, nil)
	}
	return c.Redirect(http.StatusSeeOther, withFlash("/admin/groups", "Member removed."))
}
