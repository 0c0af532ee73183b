package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/weirdata/weir/catalog"
)

// NodeCommand is an external command a node's monitor supervises.
type NodeCommand = catalog.NodeCommand

// CommandRequest registers a node command (admins only). Argv is the
// executable's absolute path, then its arguments: never a shell string.
// Env names variables of the node's environment passed on (never values).
// Node is a node's ID or "*" for every node; Enabled nil means true.
type CommandRequest struct {
	Name    string   `json:"name"`
	Node    string   `json:"node"`
	Argv    []string `json:"argv"`
	Env     []string `json:"env,omitempty"`
	Enabled *bool    `json:"enabled,omitempty"`
}

// ListCommands lists the node commands, all of them when node is "", else
// those that run on node (its own and those for every node).
func (c *Client) ListCommands(ctx context.Context, node string) ([]NodeCommand, error) {
	q := url.Values{}
	if node != "" {
		q.Set("node", node)
	}
	var out struct {
		Commands []NodeCommand `json:"commands"`
	}
	if err := c.get(ctx, "/api/v1/commands", q, &out); err != nil {
		return nil, fmt.Errorf("list commands: %w", err)
	}
	return out.Commands, nil
}

// CreateCommand registers a node command; the nodes' monitors start it at
// their next look at the catalog.
func (c *Client) CreateCommand(ctx context.Context, req CommandRequest) (*NodeCommand, error) {
	if len(req.Argv) == 0 {
		return nil, fmt.Errorf("create command: give argv, the executable's absolute path then its arguments")
	}
	var out NodeCommand
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/commands", body: req}, &out); err != nil {
		return nil, fmt.Errorf("create command %s: %w", req.Name, err)
	}
	return &out, nil
}

// GetCommand returns node command id.
func (c *Client) GetCommand(ctx context.Context, id int64) (*NodeCommand, error) {
	if id <= 0 {
		return nil, fmt.Errorf("get command: the command ID must be a positive number, got %d", id)
	}
	var out NodeCommand
	if err := c.get(ctx, "/api/v1/commands/"+strconv.FormatInt(id, 10), nil, &out); err != nil {
		return nil, fmt.Errorf("get command %d: %w", id, err)
	}
	return &out, nil
}

// DeleteCommand deletes node command id; the monitors stop it.
func (c *Client) DeleteCommand(ctx context.Context, id int64) error {
	if id <= 0 {
		return fmt.Errorf("delete command: the command ID must be a positive number, got %d", id)
	}
	path := "/api/v1/commands/" + strconv.FormatInt(id, 10)
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: path, idempotent: true}, nil); err != nil {
		return fmt.Errorf("delete command %d: %w", id, err)
	}
	return nil
}
