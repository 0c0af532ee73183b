package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/weirdata/weir/catalog"
)

// clientMaxResponse bounds the body of an answer the client reads.
const clientMaxResponse = 64 << 20

// Client calls a node's dispatcher agent. Its methods are safe for
// concurrent use; each call is bounded by its context.
type Client struct {
	base  string
	token string
	// HTTP is the client requests go through; http.DefaultClient when nil.
	HTTP *http.Client
}

// NewClient returns a client of the agent at baseURL ("http://host:7071")
// that authenticates with an API token.
func NewClient(baseURL, token string) *Client {
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token}
}

// APIError is an error answer of the agent. It matches catalog.ErrNotFound
// (404), catalog.ErrUnauthenticated (401) and catalog.ErrConflict (409)
// with errors.Is.
type APIError struct {
	Status int
	ErrorDetail
}

func (e *APIError) Error() string {
	return fmt.Sprintf("dispatcher agent: %d %s: %s", e.Status, e.Code, e.Message)
}

// Is lets callers branch on the catalog's sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case catalog.ErrNotFound:
		return e.Status == http.StatusNotFound
	case catalog.ErrUnauthenticated:
		return e.Status == http.StatusUnauthorized
	case catalog.ErrConflict:
		return e.Status == http.StatusConflict
	}
	return false
}

// Count counts files and bytes under args.Path of a file system, or the rows
// of args.Table or args.Query of a database.
func (c *Client) Count(ctx context.Context, system string, args CountArgs) (*CountResult, error) {
	return callAs[CountResult](ctx, c, CommandCount, system, args)
}

// Verify checks a run's delivery against its manifest.
func (c *Client) Verify(ctx context.Context, args VerifyArgs) (*VerifyResult, error) {
	return callAs[VerifyResult](ctx, c, CommandVerify, "", args)
}

// Probe reports a system's attributes.
func (c *Client) Probe(ctx context.Context, system string, args ProbeArgs) (*ProbeResult, error) {
	return callAs[ProbeResult](ctx, c, CommandProbe, system, args)
}

// Ls lists one page of the files under args.Path.
func (c *Client) Ls(ctx context.Context, system string, args LsArgs) (*LsResult, error) {
	return callAs[LsResult](ctx, c, CommandLs, system, args)
}

func callAs[T any](ctx context.Context, c *Client, name, system string, args any) (*T, error) {
	var out T
	if err := c.Call(ctx, name, system, args, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Commands lists the commands the agent runs.
func (c *Client) Commands(ctx context.Context) ([]CommandInfo, error) {
	var out struct {
		Commands []CommandInfo `json:"commands"`
	}
	if err := c.do(ctx, http.MethodGet, CommandsPath, nil, &out); err != nil {
		return nil, err
	}
	return out.Commands, nil
}

// Call runs the command name on system with args and decodes its result
// into result. Errors answered by the agent are *APIError.
func (c *Client) Call(ctx context.Context, name, system string, args, result any) error {
	body, err := json.Marshal(Request{System: system, Args: args})
	if err != nil {
		return fmt.Errorf("encode %s request: %w", name, err)
	}
	var resp Response[json.RawMessage]
	if err := c.do(ctx, http.MethodPost, CommandsPath+"/"+url.PathEscape(name), body, &resp); err != nil {
		return err
	}
	if err := json.Unmarshal(resp.Result, result); err != nil {
		return fmt.Errorf("decode %s result: %w", name, err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("call dispatcher agent: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("call dispatcher agent at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, clientMaxResponse+1))
	if err != nil {
		return fmt.Errorf("read dispatcher agent answer: %w", err)
	}
	if len(data) > clientMaxResponse {
		return errors.New("read dispatcher agent answer: larger than 64 MiB")
	}
	if resp.StatusCode != http.StatusOK {
		ae := &APIError{Status: resp.StatusCode}
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			ae.ErrorDetail = eb.Error
		} else {
			ae.Code, ae.Message = "http_"+fmt.Sprint(resp.StatusCode), strings.TrimSpace(clipText(string(data), 200))
		}
		return ae
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode dispatcher agent answer: %w", err)
	}
	return nil
}
