package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// MappingRequest is the body of POST and PUT /mappings: a mapping's JSON.
// Omitted max_attempts and timeout_seconds take the catalog's defaults, an
// omitted region the source system's region, and an omitted enabled means
// true on POST and "unchanged" on PUT. The read-only fields of a mapping's
// JSON (id, version, created_by, created_at) are accepted, so that a GET
// answer can be sent back changed, and ignored.
type MappingRequest struct {
	Name           string              `json:"name"`
	Region         string              `json:"region"`
	Description    string              `json:"description"`
	Source         catalog.Endpoint    `json:"source"`
	Target         catalog.Endpoint    `json:"target"`
	Params         []catalog.ParamSpec `json:"params"`
	MaxAttempts    int                 `json:"max_attempts"`
	TimeoutSeconds int                 `json:"timeout_seconds"`
	Enabled        *bool               `json:"enabled"`

	ID        json.RawMessage `json:"id,omitempty"`
	Version   json.RawMessage `json:"version,omitempty"`
	CreatedBy json.RawMessage `json:"created_by,omitempty"`
	CreatedAt json.RawMessage `json:"created_at,omitempty"`
}

func (r *MappingRequest) mapping(enabled bool, by string) *catalog.Mapping {
	if r.Enabled != nil {
		enabled = *r.Enabled
	}
	params := r.Params
	if params == nil {
		params = []catalog.ParamSpec{}
	}
	return &catalog.Mapping{
		Name:           r.Name,
		Region:         r.Region,
		Description:    r.Description,
		Source:         catalog.NewJSON(r.Source),
		Target:         catalog.NewJSON(r.Target),
		Params:         catalog.NewJSON(params),
		MaxAttempts:    r.MaxAttempts,
		TimeoutSeconds: r.TimeoutSeconds,
		Enabled:        enabled,
		CreatedBy:      by,
	}
}

// listMappings handles GET /mappings: the latest version of every mapping the caller may read.
func (s *Server) listMappings(c echo.Context) error {
	all, err := s.store.ListMappings(c.Request().Context())
	if err != nil {
		return fmt.Errorf("list mappings: %w", err)
	}
	out := make([]catalog.Mapping, 0, len(all))
	for _, m := range all {
		if s.principalMay(c, catalog.ActionRead, "mapping:"+m.Name) {
			out = append(out, m)
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"mappings": out})
}

// getMapping handles GET /mappings/:name (the latest version).
func (s *Server) getMapping(c echo.Context) error {
	name := c.Param("name")
	if err := s.allow(c, catalog.ActionRead, "mapping:"+name); err != nil {
		return err
	}
	if err := knownName("mapping", name); err != nil {
		return err
	}
	m, err := s.store.GetMapping(c.Request().Context(), name)
	if errors.Is(err, catalog.ErrNotFound) {
		return notFound("no mapping named %q", name)
	} else if err != nil {
		return fmt.Errorf("get mapping %s: %w", name, err)
	}
	return c.JSON(http.StatusOK, m)
}

// getMappingVersion handles GET /mappings/:name/versions/:version.
func (s *Server) getMappingVersion(c echo.Context) error {
	name := c.Param("name")
	v, err := strconv.Atoi(c.Param("version"))
	if err != nil || v < 1 {
		return badRequestField("version", "version %q must be a positive integer", c.Param("version"))
	}
	if err := s.allow(c, catalog.ActionRead, "mapping:"+name); err != nil {
		return err
	}
	if err := knownName("mapping", name); err != nil {
		return err
	}
	m, err := s.store.GetMappingVersion(c.Request().Context(), name, v)
	if errors.Is(err, catalog.ErrNotFound) {
		return notFound("mapping %q has no version %d", name, v)
	} else if err != nil {
		return fmt.Errorf("get mapping %s v%d: %w", name, v, err)
	}
	return c.JSON(http.StatusOK, m)
}

// allowMappingSystems checks that whoever writes a mapping may read both of
// its systems: a mapping moves data out of one and into the other.
func (s *Server) allowMappingSystems(c echo.Context, r *MappingRequest) error {
	for _, sys := range []string{r.Source.System, r.Target.System} {
		if sys == "" {
			continue // the catalog's validation names the missing field
		}
		if err := s.allow(c, catalog.ActionRead, "system:"+sys); err != nil {
			return err
		}
	}
	return nil
}

// createMapping handles POST /mappings: version 1 of a new name.
func (s *Server) createMapping(c echo.Context) error {
	ctx := c.Request().Context()
	var req MappingRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := s.allow(c, catalog.ActionManage, "mapping:"+req.Name); err != nil {
		return err
	}
	if err := s.allowMappingSystems(c, &req); err != nil {
		return err
	}
	m := req.mapping(true, principalOf(c).User.Name)
	if err := s.store.CreateMapping(ctx, m); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			return conflict("a mapping named %q exists already; change it with PUT /api/v1/mappings/%s", req.Name, req.Name)
		}
		return err
	}
	s.log.Info("mapping created", slog.String("mapping", m.Name), slog.String("user", m.CreatedBy))
	return c.JSON(http.StatusCreated, m)
}

// updateMapping handles PUT /mappings/:name: a new version of an existing mapping.
func (s *Server) updateMapping(c echo.Context) error {
	ctx := c.Request().Context()
	name := c.Param("name")
	if err := s.allow(c, catalog.ActionManage, "mapping:"+name); err != nil {
		return err
	}
	if err := knownName("mapping", name); err != nil {
		return err
	}
	var req MappingRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Name == "" {
		req.Name = name
	} else if req.Name != name {
		return catalog.Invalid("name", "%q differs from the mapping %q in the path; mappings cannot be renamed", req.Name, name)
	}
	if err := s.allowMappingSystems(c, &req); err != nil {
		return err
	}
	cur, err := s.store.GetMapping(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		return notFound("no mapping named %q; create it with POST /api/v1/mappings", name)
	} else if err != nil {
		return fmt.Errorf("update mapping %s: %w", name, err)
	}
	m := req.mapping(cur.Enabled, principalOf(c).User.Name)
	if err := s.store.PutMapping(ctx, m); err != nil {
		return err
	}
	s.log.Info("mapping updated", slog.String("mapping", m.Name), slog.Int("version", m.Version), slog.String("user", m.CreatedBy))
	return c.JSON(http.StatusOK, m)
}

// disableMapping handles DELETE /mappings/:name: a new, disabled version; history stays.
func (s *Server) disableMapping(c echo.Context) error {
	ctx := c.Request().Context()
	name := c.Param("name")
	if err := s.allow(c, catalog.ActionManage, "mapping:"+name); err != nil {
		return err
	}
	if err := knownName("mapping", name); err != nil {
		return err
	}
	by := principalOf(c).User.Name
	if err := s.store.DisableMapping(ctx, name, by); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return notFound("no mapping named %q", name)
		}
		return err
	}
	m, err := s.store.GetMapping(ctx, name)
	if err != nil {
		return fmt.Errorf("disable mapping %s: %w", name, err)
	}
	s.log.Info("mapping disabled", slog.String("mapping", name), slog.Int("version", m.Version), slog.String("user", by))
	return c.JSON(http.StatusOK, m)
}
