package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults of the client.
const (
	// TimeoutDefault bounds one HTTP exchange (not a WaitRun, which polls).
	TimeoutDefault = 30 * time.Second
	// UserAgentDefault is sent as User-Agent unless WithUserAgent changes it.
	UserAgentDefault = "weir-client/1"
)

// RetryPolicy says how often and how patiently a retryable request is tried.
// The zero value takes the defaults below.
type RetryPolicy struct {
	// MaxAttempts is the number of tries in all, the first included; 1 turns retries off.
	MaxAttempts int
	// BaseDelay is the wait before the first retry; it doubles with each retry.
	BaseDelay time.Duration
	// MaxDelay caps one wait, including a server's Retry-After.
	MaxDelay time.Duration
}

// Retry defaults.
const (
	RetryMaxAttemptsDefault = 6
	RetryBaseDelayDefault   = 200 * time.Millisecond
	RetryMaxDelayDefault    = 5 * time.Second
)

// WithDefaults returns the policy with zero fields set to their defaults.
func (p RetryPolicy) WithDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = RetryMaxAttemptsDefault
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = RetryBaseDelayDefault
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = RetryMaxDelayDefault
	}
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = p.BaseDelay
	}
	return p
}

// backoff is the wait before retry number n (1 for the first retry):
// BaseDelay doubled n-1 times, capped at MaxDelay, of which a random part up
// to half is taken off so that many clients do not retry in step.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.BaseDelay
	for i := 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, p.MaxDelay)
	half := d / 2
	if half <= 0 {
		return d
	}
	return d - half + rand.N(half+1)
}

// Client calls one Weir server. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	retry     RetryPolicy
	userAgent string
	log       *slog.Logger
	sleep     func(ctx context.Context, d time.Duration) error
}

// Option changes a Client built by New.
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc (for a
// custom transport, TLS settings or timeout). The default is an
// http.Client with a TimeoutDefault timeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithRetry sets the retry policy; zero fields take their defaults.
func WithRetry(p RetryPolicy) Option { return func(c *Client) { c.retry = p.WithDefaults() } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithLogger makes the client log its retries to l (at debug level for each
// retry). The default logs nothing. Tokens are never logged.
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// New returns a client of the server at baseURL (such as
// "http://127.0.0.1:8080"; a path prefix is kept) authenticating with token,
// an API token sent as "Authorization: Bearer". An empty token sends no
// Authorization header, which only /healthz-like routes accept.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q is not an http:// or https:// URL with a host, such as http://127.0.0.1:8080", baseURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("server URL must not carry credentials; pass the API token instead")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{
		base:      u,
		token:     token,
		http:      &http.Client{Timeout: TimeoutDefault},
		retry:     RetryPolicy{}.WithDefaults(),
		userAgent: UserAgentDefault,
		log:       slog.New(slog.DiscardHandler),
		sleep:     sleepCtx,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// BaseURL returns the server's URL the client was built with.
func (c *Client) BaseURL() string { return c.base.String() }

// request is one API call.
type request struct {
	method string
	path   string // under the base URL, starting with /api/v1
	query  url.Values
	body   any
	// idempotent marks a request the server may receive twice without harm,
	// so it is retried on 503 and on any connection failure.
	idempotent bool
}

// do sends r, retrying as the policy allows, and decodes a 2xx answer into
// out (when not nil). It returns the answer's status.
func (c *Client) do(ctx context.Context, r request, out any) (int, error) {
	var body []byte
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return 0, fmt.Errorf("encode %s %s: %w", r.method, r.path, err)
		}
		body = b
	}
	// r.path is already escaped (names pass through esc).
	u := *c.base
	u.RawPath = c.base.EscapedPath() + r.path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return 0, fmt.Errorf("build %s %s: %w", r.method, r.path, err)
	}
	u.Path = p
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	for attempt := 1; ; attempt++ {
		status, retryAfter, err := c.once(ctx, r, u.String(), body, out)
		if err == nil {
			return status, nil
		}
		if ctx.Err() != nil || attempt >= c.retry.MaxAttempts || !c.retryable(r, status, err) {
			return status, err
		}
		wait := c.retry.backoff(attempt)
		if retryAfter > 0 {
			wait = min(max(wait, retryAfter), c.retry.MaxDelay)
		}
		c.log.DebugContext(ctx, "retrying weir API request",
			slog.String("method", r.method), slog.String("path", r.path),
			slog.Int("attempt", attempt), slog.Int("status", status),
			slog.Duration("wait", wait), slog.String("error", err.Error()))
		if err := c.sleep(ctx, wait); err != nil {
			return status, fmt.Errorf("%s %s: gave up waiting to retry: %w", r.method, r.path, err)
		}
	}
}

// once sends one attempt. retryAfter is a 503's Retry-After, when given.
func (c *Client) once(ctx context.Context, r request, target string, body []byte, out any) (status int, retryAfter time.Duration, err error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, rd)
	if err != nil {
		return 0, 0, fmt.Errorf("build %s %s: %w", r.method, r.path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, 0, &ConnError{Method: r.method, Path: r.path, Server: c.base.Host, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if resp.StatusCode == http.StatusServiceUnavailable {
			retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
		}
		ae := decodeAPIError(r.method, r.path, resp.StatusCode, b, c.token)
		if ae.RequestID == "" {
			ae.RequestID = resp.Header.Get("X-Request-Id")
		}
		return resp.StatusCode, retryAfter, ae
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, 0, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.StatusCode, 0, fmt.Errorf("decode answer to %s %s: %w", r.method, r.path, err)
	}
	return resp.StatusCode, 0, nil
}

// retryable reports whether a failed attempt of r may be sent again.
func (c *Client) retryable(r request, status int, err error) bool {
	var ce *ConnError
	if errors.As(err, &ce) {
		if ce.NotSent() {
			return !ce.noSuchHost()
		}
		return r.idempotent
	}
	return status == http.StatusServiceUnavailable && r.idempotent
}

// ConnError is a failure to exchange a request with the server: it could not
// be reached, or the connection broke. It never holds the token.
type ConnError struct {
	Method string
	Path   string
	Server string // host:port of the server
	Err    error
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("%s %s on %s: %v", e.Method, e.Path, e.Server, rootCause(e.Err))
}

func (e *ConnError) Unwrap() error { return e.Err }

// Refused reports whether the server's address answered that nothing
// listens there: typically the server is not running.
func (e *ConnError) Refused() bool { return errors.Is(e.Err, syscall.ECONNREFUSED) }

// NotSent reports whether the request certainly did not reach the server
// (the connection could not be opened), so that any request may be retried.
func (e *ConnError) NotSent() bool {
	var op *net.OpError
	return e.Refused() || (errors.As(e.Err, &op) && op.Op == "dial")
}

func (e *ConnError) noSuchHost() bool {
	var dns *net.DNSError
	return errors.As(e.Err, &dns) && dns.IsNotFound
}

// rootCause drops the *url.Error layer, whose text repeats the whole URL.
func rootCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// get is a GET of path into out.
func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	_, err := c.do(ctx, request{method: http.MethodGet, path: path, query: query, idempotent: true}, out)
	return err
}

// esc escapes one path segment.
func esc(s string) string { return url.PathEscape(s) }
