package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/weirdata/weir/catalog"
)

// PreviewRequest asks for a mapping's preview on a sample of its source's rows.
type PreviewRequest struct {
	// Params are the run's parameters, checked as a run's are.
	Params map[string]string `json:"params,omitempty"`
	// Limit is the most source rows read; 0 lets the server choose (10; at most 100).
	Limit int `json:"limit,omitempty"`
}

// Preview is a mapping applied to sample rows of its source: the source's
// rows and what the mapping makes of them, side by side, and the records
// that could not be read. Nothing is written anywhere.
type Preview struct {
	Mapping      string                 `json:"mapping"`
	Version      int                    `json:"version"`
	Params       map[string]string      `json:"params"`
	SourceFields []catalog.SchemaField  `json:"source_fields"`
	TargetFields []catalog.FieldMapping `json:"target_fields"`
	Rows         []PreviewRow           `json:"rows"`
	Bad          []PreviewBad           `json:"bad"`
}

// PreviewRow is one source row: its values and, when the filter kept it and
// every expression worked, its output values; else Dropped or Error says why.
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

// PreviewMapping applies the mapping named name to sample rows of its
// source (POST /api/v1/mappings/{name}/preview). It needs read on the
// mapping and on its source system; a mapping that copies files byte for
// byte has no rows to preview (a 422).
func (c *Client) PreviewMapping(ctx context.Context, name string, req PreviewRequest) (*Preview, error) {
	if err := checkID("name", name); err != nil {
		return nil, fmt.Errorf("preview mapping: %w", err)
	}
	var out Preview
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/mappings/" + esc(name) + "/preview", body: req, idempotent: true}, &out); err != nil {
		return nil, fmt.Errorf("preview mapping %s: %w", name, err)
	}
	return &out, nil
}
