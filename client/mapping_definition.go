package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/weirdata/weir/catalog"
)

// MappingDefinition is a whole mapping as written: MappingRequest's fields
// and the data plane's (target fields, filter, write mode, bad rows...).
// Unlike MappingRequest, it replaces every part of a mapping on update.
type MappingDefinition struct {
	MappingRequest
	Fields          []catalog.FieldMapping       `json:"fields,omitempty"`
	Filter          string                       `json:"filter,omitempty"`
	WriteMode       string                       `json:"write_mode,omitempty"`
	Key             []string                     `json:"key,omitempty"`
	BadRows         catalog.BadRowPolicy         `json:"bad_rows"`
	WatermarkColumn string                       `json:"watermark_column,omitempty"`
	Tables          map[string]map[string]string `json:"tables,omitempty"`
	Timezone        string                       `json:"timezone,omitempty"`
}

// DefinitionOf returns the definition of m, to edit and store again.
func DefinitionOf(m *Mapping) MappingDefinition {
	enabled := m.Enabled
	return MappingDefinition{
		MappingRequest: MappingRequest{Name: m.Name, Region: m.Region, Description: m.Description,
			Source: m.Source.V, Target: m.Target.V, Params: m.Params.V,
			MaxAttempts: m.MaxAttempts, TimeoutSeconds: m.TimeoutSeconds, Enabled: &enabled},
		Fields: m.Fields.V, Filter: m.Filter, WriteMode: m.WriteMode, Key: m.WriteKey.V, BadRows: m.BadRows.V,
		WatermarkColumn: m.WatermarkColumn, Tables: m.Tables.V, Timezone: m.Timezone,
	}
}

// CreateMappingDefinition creates a mapping (version 1) from its whole
// definition; an existing name is a 409 (catalog.ErrConflict).
func (c *Client) CreateMappingDefinition(ctx context.Context, def MappingDefinition) (*Mapping, error) {
	if err := catalog.ValidateName("name", def.Name); err != nil {
		return nil, fmt.Errorf("create mapping: %w", err)
	}
	var m Mapping
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/mappings", body: def}, &m); err != nil {
		return nil, fmt.Errorf("create mapping %s: %w", def.Name, err)
	}
	return &m, nil
}

// UpdateMappingDefinition stores def as the next version of its mapping.
func (c *Client) UpdateMappingDefinition(ctx context.Context, def MappingDefinition) (*Mapping, error) {
	if err := checkID("name", def.Name); err != nil {
		return nil, fmt.Errorf("update mapping: %w", err)
	}
	var m Mapping
	if _, err := c.do(ctx, request{method: http.MethodPut, path: "/api/v1/mappings/" + esc(def.Name), body: def, idempotent: true}, &m); err != nil {
		return nil, fmt.Errorf("update mapping %s: %w", def.Name, err)
	}
	return &m, nil
}
