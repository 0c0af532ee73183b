package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// Groups of users (admin only): entitlements granted to a group apply to
// each of its members.

// GroupRequest is the body of POST /groups.
type GroupRequest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// GroupDetail is the answer of GET /groups/:id: the group, its members and
// its entitlements.
type GroupDetail struct {
	catalog.Group
	Entitlements []catalog.Entitlement `json:"entitlements"`
}

func (s *Server) listGroups(c echo.Context) error {
	gs, err := s.store.ListGroups(c.Request().Context())
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	if gs == nil {
		gs = []catalog.Group{}
	}
	return c.JSON(http.StatusOK, map[string]any{"groups": gs})
}

func (s *Server) createGroup(c echo.Context) error {
	var req GroupRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	noteAudit(c, auditNote{Target: "group:" + req.Name})
	g := &catalog.Group{Name: req.Name, Description: req.Description}
	if err := s.store.CreateGroup(c.Request().Context(), g); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			return conflict("a group named %q exists already", req.Name)
		}
		return err
	}
	s.log.Info("group created", slog.String("group", g.Name), slog.String("user", principalOf(c).User.Name))
	return c.JSON(http.StatusCreated, g)
}

func (s *Server) getGroup(c echo.Context) error {
	id, err := pathInt64(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	g, err := s.store.GetGroup(ctx, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return notFound("no group with id %d", id)
	} else if err != nil {
		return fmt.Errorf("get group %d: %w", id, err)
	}
	es, err := s.store.ListGroupEntitlements(ctx, id)
	if err != nil {
		return err
	}
	if es == nil {
		es = []catalog.Entitlement{}
	}
	return c.JSON(http.StatusOK, GroupDetail{Group: *g, Entitlements: es})
}

func (s *Server) deleteGroup(c echo.Context) error {
	id, err := pathInt64(c, "id")
	if err != nil {
		return err
	}
	if err := s.store.DeleteGroup(c.Request().Context(), id); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return notFound("no group with id %d", id)
		}
		return err
	}
	s.log.Info("group deleted", slog.Int64("group_id", id), slog.String("user", principalOf(c).User.Name))
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) groupMemberIDs(c echo.Context) (int64, int64, error) {
	gid, err := pathInt64(c, "id")
	if err != nil {
		return 0, 0, err
	}
	uid, err := pathInt64(c, "user_id")
	if err != nil {
		return 0, 0, err
	}
	noteAudit(c, auditNote{Args: map[string]any{"user_id": uid}})
	return gid, uid, nil
}

// addGroupMember handles PUT /groups/:id/members/:user_id (idempotent).
func (s *Server) addGroupMember(c echo.Context) error {
	gid, uid, err := s.groupMemberIDs(c)
	if err != nil {
		return err
	}
	if err := s.store.AddGroupMember(c.Request().Context(), gid, uid); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return notFound("no group with id %d or no user with id %d", gid, uid)
		}
		return err
	}
	s.log.Info("group member added", slog.Int64("group_id", gid), slog.Int64("member_id", uid), slog.String("user", principalOf(c).User.Name))
	return c.NoContent(http.StatusNoContent)
}

// removeGroupMember handles DELETE /groups/:id/members/:user_id.
func (s *Server) removeGroupMember(c echo.Context) error {
	gid, uid, err := s.groupMemberIDs(c)
	if err != nil {
		return err
	}
	if err := s.store.RemoveGroupMember(c.Request().Context(), gid, uid); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return notFound("user %d is not a member of group %d", uid, gid)
		}
		return err
	}
	s.log.Info("group member removed", slog.Int64("group_id", gid), slog.Int64("member_id", uid), slog.String("user", principalOf(c).User.Name))
	return c.NoContent(http.StatusNoContent)
}
