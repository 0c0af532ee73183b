package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// SystemRequest is the body of POST and PUT /systems: a system's JSON plus
// its write-only secrets. An empty region means this server's region. The
// read-only fields of a system's JSON (id, created_at, updated_at,
// secret_keys, health) are accepted, so that a GET answer can be sent back changed,
// and ignored. On PUT, omitted secrets stay as they are and {} removes them.
type SystemRequest struct {
	Name              string            `json:"name"`
	Kind              string            `json:"kind"`
	Region            string            `json:"region"`
	Settings          map[string]string `json:"settings"`
	Secrets           map[string]string `json:"secrets"`
	MaxConcurrentRuns int               `json:"max_concurrent_runs"`

	ID         json.RawMessage `json:"id,omitempty"`
	CreatedAt  json.RawMessage `json:"created_at,omitempty"`
	UpdatedAt  json.RawMessage `json:"updated_at,omitempty"`
	SecretKeys json.RawMessage `json:"secret_keys,omitempty"`
	Health     json.RawMessage `json:"health,omitempty"`
}

// SystemView is a system as the API shows it: never its secrets, only the
// names of the secrets it holds.
type SystemView struct {
	catalog.System
	SecretKeys []string `json:"secret_keys"`
	// Health is the health of the system's host, in GET answers.
	Health *SystemHealth `json:"health,omitempty"`
}

// NewSystemView hides a system's secret values.
func NewSystemView(sys catalog.System) SystemView {
	keys := make([]string, 0, len(sys.Secrets.V))
	for k := range sys.Secrets.V {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sys.Secrets = catalog.JSON[map[string]string]{}
	if sys.Settings.V == nil {
		sys.Settings.V = map[string]string{}
	}
	return SystemView{System: sys, SecretKeys: keys}
}

func (r *SystemRequest) system(defaultRegion string) *catalog.System {
	sys := &catalog.System{
		Name:              r.Name,
		Kind:              r.Kind,
		Region:            r.Region,
		Settings:          catalog.NewJSON(r.Settings),
		MaxConcurrentRuns: r.MaxConcurrentRuns,
	}
	if sys.Region == "" {
		sys.Region = defaultRegion
	}
	if sys.Settings.V == nil {
		sys.Settings.V = map[string]string{}
	}
	if r.Secrets != nil {
		sys.Secrets = catalog.NewJSON(r.Secrets)
	}
	return sys
}

// listSystems handles GET /systems: the systems the caller may read.
func (s *Server) listSystems(c echo.Context) error {
	all, err := s.store.ListSystems(c.Request().Context())
	if err != nil {
		return fmt.Errorf("list systems: %w", err)
	}
	h, err := s.snapshot(c.Request().Context())
	if err != nil {
		return fmt.Errorf("judge system health: %w", err)
	}
	out := make([]SystemView, 0, len(all))
	for _, sys := range all {
		if s.principalMay(c, catalog.ActionRead, "system:"+sys.Name) {
			v := NewSystemView(sys)
			sh := h.system(&sys)
			v.Health = &sh
			out = append(out, v)
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"systems": out})
}

// getSystem handles GET /systems/:name.
func (s *Server) getSystem(c echo.Context) error {
	name := c.Param("name")
	if err := s.allow(c, catalog.ActionRead, "system:"+name); err != nil {
		return err
	}
	if err := knownName("system", name); err != nil {
		return err
	}
	sys, err := s.store.GetSystem(c.Request().Context(), name)
	if errors.Is(err, catalog.ErrNotFound) {
		return notFound("no system named %q", name)
	} else if err != nil {
		return fmt.Errorf("get system %s: %w", name, err)
	}
	h, err := s.snapshot(c.Request().Context())
	if err != nil {
		return fmt.Errorf("judge system health: %w", err)
	}
	v := NewSystemView(*sys)
	sh := h.system(sys)
	v.Health = &sh
	return c.JSON(http.StatusOK, v)
}

// createSystem handles POST /systems.
func (s *Server) createSystem(c echo.Context) error {
	var req SystemRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := s.allow(c, catalog.ActionManage, "system:"+req.Name); err != nil {
		return err
	}
	sys := req.system(s.cfg.Region)
	if err := s.store.CreateSystem(c.Request().Context(), sys); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			return conflict("a system named %q exists already; change it with PUT /api/v1/systems/%s", req.Name, req.Name)
		}
		return err
	}
	s.log.Info("system created", slog.String("system", sys.Name), slog.String("kind", sys.Kind), slog.String("user", principalOf(c).User.Name))
	return c.JSON(http.StatusCreated, NewSystemView(*sys))
}

// updateSystem handles PUT /systems/:name.
func (s *Server) updateSystem(c echo.Context) error {
	name := c.Param("name")
	if err := s.allow(c, catalog.ActionManage, "system:"+name); err != nil {
		return err
	}
	if err := knownName("system", name); err != nil {
		return err
	}
	var req SystemRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Name == "" {
		req.Name = name
	} else if req.Name != name {
		return catalog.Invalid("name", "%q differs from the system %q in the path; systems cannot be renamed", req.Name, name)
	}
	sys := req.system(s.cfg.Region)
	if err := s.store.UpdateSystem(c.Request().Context(), sys); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return notFound("no system named %q", name)
		}
		return err
	}
	s.log.Info("system updated", slog.String("system", name), slog.Bool("secrets_changed", req.Secrets != nil), slog.String("user", principalOf(c).User.Name))
	return c.JSON(http.StatusOK, NewSystemView(*sys))
}

// deleteSystem handles DELETE /systems/:name; a system used by an enabled mapping stays (409).
func (s *Server) deleteSystem(c echo.Context) error {
	name := c.Param("name")
	if err := s.allow(c, catalog.ActionManage, "system:"+name); err != nil {
		return err
	}
	if err := knownName("system", name); err != nil {
		return err
	}
	if err := s.store.DeleteSystem(c.Request().Context(), name); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return notFound("no system named %q", name)
		}
		return err
	}
	s.log.Info("system deleted", slog.String("system", name), slog.String("user", principalOf(c).User.Name))
	return c.NoContent(http.StatusNoContent)
}
