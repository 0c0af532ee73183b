package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// CommandRequest registers an external command for a node's monitor to
// supervise: argv is a list (the executable's absolute path, then its
// arguments), never a shell string; env names variables of the node's own
// environment passed on (values are never stored). Node is a node's ID or
// "*" for every node; an omitted enabled means true.
type CommandRequest struct {
	Name    string   `json:"name"`
	Node    string   `json:"node"`
	Argv    []string `json:"argv"`
	Env     []string `json:"env"`
	Enabled *bool    `json:"enabled"`
}

// commandRoutes registers the node command routes, admin only: a command
// runs on nodes with the monitor's rights.
func (s *Server) commandRoutes(api *echo.Group, admin []echo.MiddlewareFunc) {
	api.GET("/commands", s.listCommands, admin...)
	api.POST("/commands", s.createCommand, admin...)
	api.GET("/commands/:id", s.getCommand, admin...)
	api.DELETE("/commands/:id", s.deleteCommand, admin...)
}

// listCommands handles GET /commands?node=: every command, or those that
// run on node (its own and those for every node).
func (s *Server) listCommands(c echo.Context) error {
	node := c.QueryParam("node")
	cs, err := s.store.ListNodeCommands(c.Request().Context(), node)
	if err != nil {
		return fmt.Errorf("list commands: %w", err)
	}
	if cs == nil {
		cs = []catalog.NodeCommand{}
	}
	return c.JSON(http.StatusOK, map[string]any{"commands": cs})
}

// createCommand handles POST /commands.
func (s *Server) createCommand(c echo.Context) error {
	var req CommandRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Node == "" {
		return catalog.Invalid("node", "is required: a node's ID (weir nodes list) or \"*\" for every node")
	}
	enabled := req.Enabled == nil || *req.Enabled
	env := req.Env
	if env == nil {
		env = []string{}
	}
	cmd := &catalog.NodeCommand{Name: req.Name, Node: req.Node, Argv: catalog.NewJSON(req.Argv), Env: catalog.NewJSON(env),
		Enabled: enabled, CreatedBy: principalOf(c).User.Name}
	if err := s.store.CreateNodeCommand(c.Request().Context(), cmd); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			return conflict("a command named %q already runs on node %s (or on every node); delete it first", req.Name, req.Node)
		}
		return err
	}
	s.log.Info("command registered", slog.Int64("command_id", cmd.ID), slog.String("command", cmd.Name),
		slog.String("for_node", cmd.Node), slog.String("path", cmd.Argv.V[0]), slog.String("user", cmd.CreatedBy))
	return c.JSON(http.StatusCreated, cmd)
}

// getCommand handles GET /commands/:id.
func (s *Server) getCommand(c echo.Context) error {
	id, err := pathInt64(c, "id")
	if err != nil {
		return err
	}
	cmd, err := s.store.GetNodeCommand(c.Request().Context(), id)
	if errors.Is(err, catalog.ErrNotFound) {
		return notFound("no command with id %d", id)
	} else if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, cmd)
}

// deleteCommand handles DELETE /commands/:id: the nodes' monitors stop it
// at their next look at the catalog.
func (s *Server) deleteCommand(c echo.Context) error {
	id, err := pathInt64(c, "id")
	if err != nil {
		return err
	}
	if err := s.store.DeleteNodeCommand(c.Request().Context(), id); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return notFound("no command with id %d", id)
		}
		return err
	}
	s.log.Info("command deleted", slog.Int64("command_id", id), slog.String("user", principalOf(c).User.Name))
	return c.NoContent(http.StatusNoContent)
}
