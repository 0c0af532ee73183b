package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// WhoAmI is the answer of GET /whoami.
type WhoAmI struct {
	ID           int64                 `json:"id"`
	Name         string                `json:"name"`
	Role         string                `json:"role"`
	TokenID      int64                 `json:"token_id"`
	ClientIP     string                `json:"client_ip"`
	Entitlements []catalog.Entitlement `json:"entitlements"`
}

// whoami handles GET /whoami: any authenticated caller sees itself.
func (s *Server) whoami(c echo.Context) error {
	p := principalOf(c)
	ents := p.Entitlements
	if ents == nil {
		ents = []catalog.Entitlement{}
	}
	return c.JSON(http.StatusOK, WhoAmI{ID: p.User.ID, Name: p.User.Name, Role: p.User.Role,
		TokenID: p.TokenID, ClientIP: s.ipOf(c).String(), Entitlements: ents})
}

// UserRequest is the body of POST /users.
type UserRequest struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Disabled bool   `json:"disabled"`
	// Password, when given, lets the user sign in (at least
	// catalog.PasswordMinLength characters); it is stored only as a slow hash.
	Password string `json:"password,omitempty"`
}

// UserPatch is the body of PATCH /users/:id; omitted fields stay.
type UserPatch struct {
	Role     *string `json:"role"`
	Disabled *bool   `json:"disabled"`
}

// TokenRequest is the body of POST /users/:id/tokens.
type TokenRequest struct {
	Name      string     `json:"name"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// NewToken is the answer of POST /users/:id/tokens: the only time the secret is shown.
type NewToken struct {
	Secret string `json:"token"`
	catalog.Token
}

// EntitlementRequest is the body of POST /entitlements: it names a user
// (user_id) or a group (group_id), not both.
type EntitlementRequest struct {
	UserID   int64    `json:"user_id"`
	GroupID  int64    `json:"group_id"`
	Resource string   `json:"resource"`
	Action   string   `json:"action"`
	CIDRs    []string `json:"cidrs"`
}

func (s *Server) listUsers(c echo.Context) error {
	us, err := s.store.ListUsers(c.Request().Context())
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	if us == nil {
		us = []catalog.User{}
	}
	return c.JSON(http.StatusOK, map[string]any{"users": us})
}

func (s *Server) createUser(c echo.Context) error {
	var req UserRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	noteAudit(c, auditNote{Target: "user:" + req.Name, Args: map[string]any{"role": req.Role, "disabled": req.Disabled, "password_set": req.Password != ""}})
	u := &catalog.User{Name: req.Name, Role: req.Role, Disabled: req.Disabled}
	if req.Password != "" {
		hash, err := catalog.HashPassword(req.Password)
		if err != nil {
			return err
		}
		u.PasswordHash = hash
	}
	if err := s.store.CreateUser(c.Request().Context(), u); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			return conflict("a user named %q exists already", req.Name)
		}
		return err
	}
	s.log.Info("user created", slog.String("new_user", u.Name), slog.String("role", u.Role), slog.String("user", principalOf(c).User.Name))
	return c.JSON(http.StatusCreated, u)
}

func (s *Server) getUser(c echo.Context) error {
	id, err := pathInt64(c, "id")
	if err != nil {
		return err
	}
	u, err := s.store.GetUser(c.Request().Context(), id)
	if errors.Is(err, catalog.ErrNotFound) {
		return notFound("no user with id %d", id)
	} else if err != nil {
		return fmt.Errorf("get user %d: %w", id, err)
	}
	return c.JSON(http.StatusOK, u)
}

func (s *Server) updateUser(c echo.Context) error {
	id, err := pathInt64(c, "id")
	if err != nil {
		return err
	}
	var req UserPatch
	if err := bind(c, &req); err != nil {
		return err
	}
	args := map[string]any{}
	if req.Role != nil {
		args["role"] = *req.Role
	}
	if req.Disabled != nil {
		args["disabled"] = *req.Disabled
	}
	noteAudit(c, auditNote{Args: args})
	me := principalOf(c).User
	if id == me.ID && ((req.Disabled != nil && *req.Disabled) || (req.Role != nil && *req.Role != catalog.RoleAdmin)) {
		return conflict("you cannot disable or demote yourself: ask another admin, so that one admin always remains")
	}
	u, err := s.store.UpdateUser(c.Request().Context(), catalog.UpdateUserParams{ID: id, Role: req.Role, Disabled: req.Disabled})
	if errors.Is(err, catalog.ErrNotFound) {
		return notFound("no user with id %d", id)
	} else if err != nil {
		return err
	}
	s.log.Info("user updated", slog.String("changed_user", u.Name), slog.String("role", u.Role), slog.Bool("disabled", u.Disabled), slog.String("user", me.Name))
	return c.JSON(http.StatusOK, u)
}

func (s *Server) createToken(c echo.Context) error {
	id, err := pathInt64(c, "id")
	if err != nil {
		return err
	}
	var req TokenRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	noteAudit(c, auditNote{Args: map[string]any{"name": req.Name, "expires_at": req.ExpiresAt}})
	secret, tok, err := s.store.CreateToken(c.Request().Context(), catalog.CreateTokenParams{UserID: id, Name: req.Name, ExpiresAt: req.ExpiresAt})
	if errors.Is(err, catalog.ErrNotFound) {
		return notFound("no user with id %d", id)
	} else if err != nil {
		return err
	}
	noteAudit(c, auditNote{Args: map[string]any{"token_id": tok.ID}})
	s.log.Info("token created", slog.Int64("token_id", tok.ID), slog.Int64("for_user_id", id), slog.String("user", principalOf(c).User.Name))
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusCreated, NewToken{Secret: secret, Token: *tok})
}

func (s *Server) listTokens(c echo.Context) error {
	uid, err := queryInt64(c, "user_id", 0)
	if err != nil {
		return err
	}
	ts, err := s.store.ListTokens(c.Request().Context(), uid)
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	if ts == nil {
		ts = []catalog.Token{}
	}
	return c.JSON(http.StatusOK, map[string]any{"tokens": ts})
}

func (s *Server) revokeToken(c echo.Context) error {
	id, err := pathInt64(c, "id")
	if err != nil {
		return err
	}
	if err := s.store.RevokeToken(c.Request().Context(), id); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return notFound("no token with id %d", id)
		}
		return err
	}
	s.log.Info("token revoked", slog.Int64("token_id", id), slog.String("user", principalOf(c).User.Name))
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) listEntitlements(c echo.Context) error {
	uid, err := queryInt64(c, "user_id", 0)
	if err != nil {
		return err
	}
	es, err := s.store.ListEntitlements(c.Request().Context(), uid)
	if err != nil {
		return fmt.Errorf("list entitlements: %w", err)
	}
	if es == nil {
		es = []catalog.Entitlement{}
	}
	return c.JSON(http.StatusOK, map[string]any{"entitlements": es})
}

func (s *Server) createEntitlement(c echo.Context) error {
	var req EntitlementRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	noteAudit(c, auditNote{Args: map[string]any{"user_id": req.UserID, "group_id": req.GroupID,
		"resource": req.Resource, "action": req.Action, "cidrs": req.CIDRs}})
	switch {
	case req.UserID != 0 && req.GroupID != 0:
		return catalog.Invalid("group_id", "grant to a user (user_id) or to a group (group_id), not both")
	case req.UserID < 0:
		return catalog.Invalid("user_id", "must be a positive user id")
	case req.GroupID < 0:
		return catalog.Invalid("group_id", "must be a positive group id")
	case req.UserID == 0 && req.GroupID == 0:
		return catalog.Invalid("user_id", "is required: the id of the user (or group_id: the group) granted the entitlement")
	}
	cidrs := req.CIDRs
	if cidrs == nil {
		cidrs = []string{}
	}
	e := &catalog.Entitlement{UserID: req.UserID, Resource: req.Resource, Action: req.Action,
		CIDRs: catalog.NewJSON(cidrs), CreatedBy: principalOf(c).User.Name}
	if req.GroupID != 0 {
		gid := req.GroupID
		e.GroupID = &gid
	}
	if err := s.store.CreateEntitlement(c.Request().Context(), e); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			if req.GroupID != 0 {
				return notFound("no group with id %d", req.GroupID)
			}
			return notFound("no user with id %d", req.UserID)
		}
		return err
	}
	noteAudit(c, auditNote{Args: map[string]any{"entitlement_id": e.ID}})
	s.log.Info("entitlement granted", slog.Int64("entitlement_id", e.ID), slog.Int64("for_user_id", e.UserID),
		slog.String("resource", e.Resource), slog.String("action", e.Action), slog.String("user", e.CreatedBy))
	return c.JSON(http.StatusCreated, e)
}

func (s *Server) deleteEntitlement(c echo.Context) error {
	id, err := pathInt64(c, "id")
	if err != nil {
		return err
	}
	if err := s.store.DeleteEntitlement(c.Request().Context(), id); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return notFound("no entitlement with id %d", id)
		}
		return err
	}
	s.log.Info("entitlement revoked", slog.Int64("entitlement_id", id), slog.String("user", principalOf(c).User.Name))
	return c.NoContent(http.StatusNoContent)
}
