package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/weirdata/weir/catalog"
)

// Function is a user function usable in mapping expressions.
type Function = catalog.Function

// FunctionRequest creates a user function, or a new version of it.
type FunctionRequest struct {
	Name string `json:"name"`
	// Params name the function's arguments, used in Expr.
	Params      []string `json:"params,omitempty"`
	Expr        string   `json:"expr"`
	Description string   `json:"description,omitempty"`
}

// PreviewRequest asks for a preview of a mapping on a sample of its source.
type PreviewRequest struct {
	// Params are the run's parameters, checked as a run's are.
	Params map[string]string `json:"params"`
	// Limit is the most source rows read; 0 takes the server's default.
	Limit int `json:"limit,omitempty"`
}

// Preview is a sample of the source's rows and what the mapping makes of
// them, side by side, with the records that could not be read.
type Preview struct {
	Mapping      string            `json:"mapping"`
	Version      int               `json:"version"`
	Params       map[string]string `json:"params"`
	SourceFields []SchemaField     `json:"source_fields"`
	TargetFields []FieldMapping    `json:"target_fields"`
	Rows         []PreviewRow      `json:"rows"`
	Bad          []PreviewBad      `json:"bad"`
}

// PreviewRow is one source row: its values, and its output values when the
// filter kept it and every expression worked; else Dropped or Error says why.
type PreviewRow struct {
	Loc     string `json:"loc,omitempty"`
	Input   []any  `json:"input"`
	Output  []any  `json:"output,omitempty"`
	Dropped bool   `json:"dropped,omitempty"`
	Error   string `json:"error,omitempty"`
}

// PreviewBad is a source record that could not be read.
type PreviewBad struct {
	Loc    string `json:"loc"`
	Raw    string `json:"raw,omitempty"`
	Reason string `json:"reason"`
}

// GetMappingVersion returns one version of a mapping.
func (c *Client) GetMappingVersion(ctx context.Context, name string, version int) (*Mapping, error) {
	if err := checkID("name", name); err != nil {
		return nil, fmt.Errorf("get mapping version: %w", err)
	}
	if version <= 0 {
		return nil, fmt.Errorf("get mapping %s: version must be a positive number, got %d", name, version)
	}
	var m Mapping
	if err := c.get(ctx, "/api/v1/mappings/"+esc(name)+"/versions/"+strconv.Itoa(version), nil, &m); err != nil {
		return nil, fmt.Errorf("get mapping %s version %d: %w", name, version, err)
	}
	return &m, nil
}

// PreviewMapping reads a few source rows of a mapping and shows them
// transformed, writing nothing.
func (c *Client) PreviewMapping(ctx context.Context, name string, req PreviewRequest) (*Preview, error) {
	if err := checkID("name", name); err != nil {
		return nil, fmt.Errorf("preview mapping: %w", err)
	}
	if req.Params == nil {
		req.Params = map[string]string{}
	}
	var p Preview
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/mappings/" + esc(name) + "/preview", body: req, idempotent: true}, &p); err != nil {
		return nil, fmt.Errorf("preview mapping %s: %w", name, err)
	}
	return &p, nil
}

// ListFunctions returns the latest version of every user function.
func (c *Client) ListFunctions(ctx context.Context) ([]Function, error) {
	var raw json.RawMessage
	if err := c.get(ctx, "/api/v1/functions", nil, &raw); err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	var out []Function
	if err := decodeList(raw, "functions", &out); err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	return out, nil
}

// GetFunction returns the latest version of a user function.
func (c *Client) GetFunction(ctx context.Context, name string) (*Function, error) {
	if err := checkID("name", name); err != nil {
		return nil, fmt.Errorf("get function: %w", err)
	}
	var f Function
	if err := c.get(ctx, "/api/v1/functions/"+esc(name), nil, &f); err != nil {
		return nil, fmt.Errorf("get function %s: %w", name, err)
	}
	return &f, nil
}

// GetFunctionVersion returns one version of a user function.
func (c *Client) GetFunctionVersion(ctx context.Context, name string, version int) (*Function, error) {
	if err := checkID("name", name); err != nil {
		return nil, fmt.Errorf("get function version: %w", err)
	}
	if version <= 0 {
		return nil, fmt.Errorf("get function %s: version must be a positive number, got %d", name, version)
	}
	var f Function
	if err := c.get(ctx, "/api/v1/functions/"+esc(name)+"/versions/"+strconv.Itoa(version), nil, &f); err != nil {
		return nil, fmt.Errorf("get function %s version %d: %w", name, version, err)
	}
	return &f, nil
}

// CreateFunction creates a user function (version 1); its expression is
// compiled now, and a taken name is ErrConflict.
func (c *Client) CreateFunction(ctx context.Context, req FunctionRequest) (*Function, error) {
	var f Function
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/functions", body: req}, &f); err != nil {
		return nil, fmt.Errorf("create function %s: %w", req.Name, err)
	}
	return &f, nil
}

// UpdateFunction stores a new version of the function named req.Name.
func (c *Client) UpdateFunction(ctx context.Context, req FunctionRequest) (*Function, error) {
	if err := checkID("name", req.Name); err != nil {
		return nil, fmt.Errorf("update function: %w", err)
	}
	var f Function
	if _, err := c.do(ctx, request{method: http.MethodPut, path: "/api/v1/functions/" + esc(req.Name), body: req, idempotent: true}, &f); err != nil {
		return nil, fmt.Errorf("update function %s: %w", req.Name, err)
	}
	return &f, nil
}

// DeleteFunction deletes a user function that no mapping uses.
func (c *Client) DeleteFunction(ctx context.Context, name string) error {
	if err := checkID("name", name); err != nil {
		return fmt.Errorf("delete function: %w", err)
	}
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/functions/" + esc(name), idempotent: true}, nil); err != nil {
		return fmt.Errorf("delete function %s: %w", name, err)
	}
	return nil
}

// OpenAPI returns the server's OpenAPI 3 document of the REST API, as JSON.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var doc json.RawMessage
	if err := c.get(ctx, "/api/v1/openapi.json", nil, &doc); err != nil {
		return nil, fmt.Errorf("get the OpenAPI document: %w", err)
	}
	return doc, nil
}
