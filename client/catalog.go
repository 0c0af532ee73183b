package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/weirdata/weir/catalog"
)

// Catalog types as the API returns them.
type (
	// Mapping is one version of what moves from a source to a target.
	Mapping = catalog.Mapping
	// Endpoint is one side of a mapping: a system and, for files, a path pattern.
	Endpoint = catalog.Endpoint
	// ParamSpec declares a parameter of a mapping.
	ParamSpec = catalog.ParamSpec
	// FieldMapping is one target field of a mapping and its expression.
	FieldMapping = catalog.FieldMapping
	// SchemaField is one declared field of a dataset.
	SchemaField = catalog.SchemaField
	// BadRowPolicy says what happens to a row that cannot be decoded or transformed.
	BadRowPolicy = catalog.BadRowPolicy
)

// System is a data source or target as the API shows it: never its
// secrets' values, only their names.
type System struct {
	catalog.System
	// SecretKeys names the secrets the system holds.
	SecretKeys []string `json:"secret_keys,omitempty"`
}

// SystemRequest creates or replaces a system.
type SystemRequest struct {
	Name string `json:"name"`
	// Kind is the system's kind: "fs", "null", ... (catalog.KnownKinds).
	Kind string `json:"kind"`
	// Region defaults to the server's region when empty.
	Region string `json:"region,omitempty"`
	// Settings are the connection settings, such as {"root": "/data/in"} for fs.
	Settings map[string]string `json:"settings"`
	// Secrets are written, never read back: passwords and keys. On update,
	// nil keeps the stored secrets and an empty map removes them.
	Secrets map[string]string `json:"secrets,omitempty"`
	// MaxConcurrentRuns caps the runs using this system at once; 0 for no limit.
	MaxConcurrentRuns int `json:"max_concurrent_runs,omitempty"`
}

// MappingRequest creates a mapping, or a new version of it.
type MappingRequest struct {
	Name string `json:"name"`
	// Region defaults to the source system's region when empty.
	Region      string      `json:"region,omitempty"`
	Description string      `json:"description,omitempty"`
	Source      Endpoint    `json:"source"`
	Target      Endpoint    `json:"target"`
	Params      []ParamSpec `json:"params,omitempty"`
	// MaxAttempts and TimeoutSeconds take the server's defaults when 0.
	MaxAttempts    int `json:"max_attempts,omitempty"`
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
	// MaxHold is how long a run may stay held by health before it is
	// aborted ("30m", at most 7 days); empty takes the region's --max-hold.
	MaxHold string `json:"max_hold,omitempty"`
	// Enabled, when nil, means true on create and "unchanged" on update.
	Enabled *bool `json:"enabled,omitempty"`

	// Fields are the target's fields in order, each computed by an
	// expression over the source's fields; none: the source's fields as they are.
	Fields []FieldMapping `json:"fields,omitempty"`
	// Filter is a boolean expression: rows for which it is not true are not delivered.
	Filter string `json:"filter,omitempty"`
	// WriteMode is append (default), truncate_insert or upsert.
	WriteMode string `json:"write_mode,omitempty"`
	// Key are the target fields an upsert matches rows on.
	Key []string `json:"key,omitempty"`
	// BadRows says what happens to rows that cannot be read or transformed.
	BadRows *BadRowPolicy `json:"bad_rows,omitempty"`
	// WatermarkColumn makes the mapping incremental on that source column.
	WatermarkColumn string `json:"watermark_column,omitempty"`
	// Tables are code translation tables for translate(table, value).
	Tables map[string]map[string]string `json:"tables,omitempty"`
	// Timezone is the zone of the expressions (IANA name, "UTC" or "+05:30").
	Timezone string `json:"timezone,omitempty"`
}

// CreateSystem creates a system; an existing name is a 409 (catalog.ErrConflict).
func (c *Client) CreateSystem(ctx context.Context, req SystemRequest) (*System, error) {
	if err := catalog.ValidateName("name", req.Name); err != nil {
		return nil, fmt.Errorf("create system: %w", err)
	}
	var sys System
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/systems", body: req}, &sys); err != nil {
		return nil, fmt.Errorf("create system %s: %w", req.Name, err)
	}
	return &sys, nil
}

// UpdateSystem replaces the system named req.Name.
func (c *Client) UpdateSystem(ctx context.Context, req SystemRequest) (*System, error) {
	if err := checkID("name", req.Name); err != nil {
		return nil, fmt.Errorf("update system: %w", err)
	}
	var sys System
	if _, err := c.do(ctx, request{method: http.MethodPut, path: "/api/v1/systems/" + esc(req.Name), body: req, idempotent: true}, &sys); err != nil {
		return nil, fmt.Errorf("update system %s: %w", req.Name, err)
	}
	return &sys, nil
}

// GetSystem returns a system by name.
func (c *Client) GetSystem(ctx context.Context, name string) (*System, error) {
	if err := checkID("name", name); err != nil {
		return nil, fmt.Errorf("get system: %w", err)
	}
	var sys System
	if err := c.get(ctx, "/api/v1/systems/"+esc(name), nil, &sys); err != nil {
		return nil, fmt.Errorf("get system %s: %w", name, err)
	}
	return &sys, nil
}

// ListSystems returns every system the caller may read.
func (c *Client) ListSystems(ctx context.Context) ([]System, error) {
	var raw json.RawMessage
	if err := c.get(ctx, "/api/v1/systems", nil, &raw); err != nil {
		return nil, fmt.Errorf("list systems: %w", err)
	}
	var out []System
	if err := decodeList(raw, "systems", &out); err != nil {
		return nil, fmt.Errorf("list systems: %w", err)
	}
	return out, nil
}

// DeleteSystem deletes a system; one that mappings still use is a 409.
func (c *Client) DeleteSystem(ctx context.Context, name string) error {
	if err := checkID("name", name); err != nil {
		return fmt.Errorf("delete system: %w", err)
	}
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/systems/" + esc(name), idempotent: true}, nil); err != nil {
		return fmt.Errorf("delete system %s: %w", name, err)
	}
	return nil
}

// CreateMapping creates a mapping (version 1); an existing name is a 409.
func (c *Client) CreateMapping(ctx context.Context, req MappingRequest) (*Mapping, error) {
	if err := catalog.ValidateName("name", req.Name); err != nil {
		return nil, fmt.Errorf("create mapping: %w", err)
	}
	var m Mapping
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/mappings", body: req}, &m); err != nil {
		return nil, fmt.Errorf("create mapping %s: %w", req.Name, err)
	}
	return &m, nil
}

// UpdateMapping stores a new version of the mapping named req.Name.
func (c *Client) UpdateMapping(ctx context.Context, req MappingRequest) (*Mapping, error) {
	if err := checkID("name", req.Name); err != nil {
		return nil, fmt.Errorf("update mapping: %w", err)
	}
	var m Mapping
	if _, err := c.do(ctx, request{method: http.MethodPut, path: "/api/v1/mappings/" + esc(req.Name), body: req, idempotent: true}, &m); err != nil {
		return nil, fmt.Errorf("update mapping %s: %w", req.Name, err)
	}
	return &m, nil
}

// GetMapping returns the latest version of a mapping.
func (c *Client) GetMapping(ctx context.Context, name string) (*Mapping, error) {
	if err := checkID("name", name); err != nil {
		return nil, fmt.Errorf("get mapping: %w", err)
	}
	var m Mapping
	if err := c.get(ctx, "/api/v1/mappings/"+esc(name), nil, &m); err != nil {
		return nil, fmt.Errorf("get mapping %s: %w", name, err)
	}
	return &m, nil
}

// ListMappings returns the latest version of every mapping the caller may read.
func (c *Client) ListMappings(ctx context.Context) ([]Mapping, error) {
	var raw json.RawMessage
	if err := c.get(ctx, "/api/v1/mappings", nil, &raw); err != nil {
		return nil, fmt.Errorf("list mappings: %w", err)
	}
	var out []Mapping
	if err := decodeList(raw, "mappings", &out); err != nil {
		return nil, fmt.Errorf("list mappings: %w", err)
	}
	return out, nil
}

// DeleteMapping disables a mapping: a new, disabled version is stored, its
// history stays, and new runs are refused. It returns that version.
func (c *Client) DeleteMapping(ctx context.Context, name string) (*Mapping, error) {
	if err := checkID("name", name); err != nil {
		return nil, fmt.Errorf("delete mapping: %w", err)
	}
	var m Mapping
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/mappings/" + esc(name), idempotent: true}, &m); err != nil {
		return nil, fmt.Errorf("delete mapping %s: %w", name, err)
	}
	return &m, nil
}

// Identity is who the server takes the caller for.
type Identity struct {
	ID           int64                 `json:"id"`
	Name         string                `json:"name"`
	Role         string                `json:"role"`
	TokenID      int64                 `json:"token_id"`
	ClientIP     string                `json:"client_ip"`
	Entitlements []catalog.Entitlement `json:"entitlements"`
}

// WhoAmI returns the caller's user, token and entitlements.
func (c *Client) WhoAmI(ctx context.Context) (*Identity, error) {
	var id Identity
	if err := c.get(ctx, "/api/v1/whoami", nil, &id); err != nil {
		return nil, fmt.Errorf("whoami: %w", err)
	}
	return &id, nil
}

// decodeList accepts a list answer as {"<key>": [...]} or as a bare array.
func decodeList[T any](raw json.RawMessage, key string, out *[]T) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		return json.Unmarshal(raw, out)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	items, ok := obj[key]
	if !ok {
		return fmt.Errorf("decode answer: no %q list in it", key)
	}
	return json.Unmarshal(items, out)
}
