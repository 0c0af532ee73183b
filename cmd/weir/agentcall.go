package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/weirdata/weir/catalog"
	gossip "github.com/weirdata/weir/cluster"
	"github.com/weirdata/weir/dispatcher"
	"github.com/weirdata/weir/worker"
	"github.com/weirdata/weir/workload"
)

// How the nodes call each other's dispatcher agents: a worker has the
// agent linked to a run's target (and source) count and verify the
// delivery; the region's leader has the agent of a stale system probe it.
// The caller authenticates with its node token (catalog.IssueNodeToken),
// which the called agent accepts (nodeAuth) and audits as "node:<caller>".

// ServiceNodeToken is the service that rotates the node's token; the
// stack revokes the token once every service stopped (stack.serve).
const ServiceNodeToken = "node-token"

// Bounds of the calls to other nodes' agents.
const (
	// agentCallAttempts is how many times a call is tried when the agent
	// cannot be reached or is busy.
	agentCallAttempts = 3
	// agentRetryBackoff is the pause before the second try, doubled after.
	agentRetryBackoff = 200 * time.Millisecond
	// agentDialTimeout bounds connecting to an agent.
	agentDialTimeout = 5 * time.Second
	// tokenRevokeTimeout bounds the issue of the node's token at start and
	// its revocation at stop.
	tokenRevokeTimeout = 5 * time.Second
	// tokenRetryBackoff is how soon a failed replacement of the node's
	// token is tried again (sooner when the token expires before).
	tokenRetryBackoff = time.Minute
)

// nodeTokenStore is what the node's token needs of the catalog.
type nodeTokenStore interface {
	IssueNodeToken(ctx context.Context, p catalog.IssueNodeTokenParams) (string, *catalog.NodeToken, error)
	RevokeNodeTokens(ctx context.Context, node string) (int64, error)
}

// nodeToken is the node's credential toward the other nodes' agents: a
// catalog node token, issued at start, replaced at half its life and
// revoked once the node's services stopped. Its secret stays in memory.
type nodeToken struct {
	store nodeTokenStore
	node  string
	ttl   time.Duration
	// retry is the pause before trying again a replacement that failed.
	retry   time.Duration
	log     *slog.Logger
	secret  atomic.Pointer[string]
	id      atomic.Int64
	expires atomic.Int64 // the current token's expiry, Unix nanoseconds
}

// newNodeToken issues the node's token, replacing those of an earlier life
// of the node.
func newNodeToken(ctx context.Context, store nodeTokenStore, node string, ttl time.Duration, log *slog.Logger) (*nodeToken, error) {
	t := &nodeToken{store: store, node: node, ttl: ttl, retry: tokenRetryBackoff, log: log}
	if t.ttl <= 0 {
		t.ttl = catalog.NodeTokenTTLDefault
	}
	if err := t.rotate(ctx); err != nil {
		return nil, fmt.Errorf("issue the node's token: %w", err)
	}
	return t, nil
}

// Secret is the token to call other agents with now.
func (t *nodeToken) Secret() string {
	if p := t.secret.Load(); p != nil {
		return *p
	}
	return ""
}

// rotate issues a new token; the one it replaces stays valid until it
// expires, for calls in flight.
func (t *nodeToken) rotate(ctx context.Context) error {
	secret, tok, err := t.store.IssueNodeToken(ctx, catalog.IssueNodeTokenParams{Node: t.node, TTL: t.ttl, Keep: t.id.Load()})
	if err != nil {
		return err
	}
	t.secret.Store(&secret)
	t.id.Store(tok.ID)
	t.expires.Store(tok.ExpiresAt.UnixNano())
	t.log.Info("node token issued", slog.Int64("node_token_id", tok.ID), slog.Time("expires_at", tok.ExpiresAt))
	return nil
}

// retryAfter is the pause before trying again a replacement that failed:
// the retry backoff, but at most half the time the current token has left,
// so that a few tries fit before it expires.
func (t *nodeToken) retryAfter(now time.Time) time.Duration {
	d := t.retry
	if half := time.Unix(0, t.expires.Load()).Sub(now) / 2; half > 0 && half < d {
		d = max(half, min(time.Second, t.retry))
	}
	return d
}

// Run replaces the token at half its life until ctx ends; a replacement
// that failed is tried again after a short pause (retryAfter). It does not
// revoke the token: the worker may still call agents while it drains its
// runs, so the stack revokes it once every service stopped (revoke).
func (t *nodeToken) Run(ctx context.Context) error {
	timer := time.NewTimer(t.ttl / 2)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		next := t.ttl / 2
		if err := t.rotate(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			next = t.retryAfter(time.Now())
			t.log.Warn("could not replace the node's token; keeping the current one and trying again",
				slog.String("error", err.Error()), slog.Duration("retry_in", next))
		}
		timer.Reset(next)
	}
}

// revoke revokes every token of the node: the node stopped calling agents.
func (t *nodeToken) revoke(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenRevokeTimeout)
	defer cancel()
	n, err := t.store.RevokeNodeTokens(rctx, t.node)
	if err != nil {
		t.log.Warn("could not revoke the node's token; it expires by itself", slog.String("error", err.Error()))
		return
	}
	t.log.Info("node token revoked", slog.Int64("tokens", n))
}

// addNodeToken issues the node's token (once per process) and supervises
// its rotation.
func (s *stack) addNodeToken() (*nodeToken, error) {
	if s.token != nil {
		return s.token, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), tokenRevokeTimeout)
	defer cancel()
	t, err := newNodeToken(ctx, s.store, s.node, 0, s.log.With("component", ServiceNodeToken))
	if err != nil {
		return nil, err
	}
	if err := s.add(ServiceNodeToken, func() (func(context.Context) error, error) { return t.Run, nil }); err != nil {
		return nil, err
	}
	s.token = t
	return t, nil
}

// agentStore is what the agent directory reads from the catalog.
type agentStore interface {
	Now() time.Time
	GetSystemAttributes(ctx context.Context, name string) (map[string]string, error)
	ListNodes(ctx context.Context, region string) ([]catalog.Node, error)
}

// agentDirectory finds the dispatcher agent linked to a system and calls
// it with the node's token, retrying a bounded number of times when the
// agent cannot be reached or is busy. It implements worker.Agents and
// workload.SystemProber.
type agentDirectory struct {
	store agentStore
	token func() string
	// silentAfter is how long an agent node may go without a heartbeat
	// and still be called.
	silentAfter time.Duration
	http        *http.Client
	backoff     time.Duration
}

func newAgentDirectory(store agentStore, token func() string) *agentDirectory {
	return &agentDirectory{store: store, token: token, silentAfter: workload.NodeDeadAfterDefault, backoff: agentRetryBackoff,
		http: &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: agentDialTimeout}).DialContext,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       time.Minute,
			ResponseHeaderTimeout: 0, // commands run long: the caller's context bounds them
		}}}
}

// errNoAgent is returned when no agent is linked to a system: it matches
// both worker.ErrNoAgent and workload.ErrNoAgent.
type errNoAgent struct{ system string }

func (e *errNoAgent) Error() string { return "no dispatcher agent is linked to system " + e.system }

func (e *errNoAgent) Is(target error) bool {
	return target == worker.ErrNoAgent || target == workload.ErrNoAgent
}

// lookup returns the node ID and URL of the live agent linked to system.
// A system linked to an agent node that is not alive is an error (the
// caller warns), not errNoAgent.
func (d *agentDirectory) lookup(ctx context.Context, system string) (string, string, error) {
	attrs, err := d.store.GetSystemAttributes(ctx, system)
	if err != nil {
		return "", "", fmt.Errorf("find the agent of system %s: %w", system, err)
	}
	id := attrs[catalog.SystemNodeAttribute]
	if id == "" {
		return "", "", &errNoAgent{system: system}
	}
	nodes, err := d.store.ListNodes(ctx, "")
	if err != nil {
		return "", "", fmt.Errorf("find the agent of system %s: %w", system, err)
	}
	for _, n := range nodes {
		if n.ID != id {
			continue
		}
		switch silent := d.store.Now().Sub(n.LastSeen); {
		case !n.HasRole(gossip.RoleAgent) || n.Address == "":
			return "", "", &errNoAgent{system: system}
		case n.State != catalog.NodeAlive:
			return id, "", fmt.Errorf("the agent node %s of system %s is %s", id, system, n.State)
		case silent > d.silentAfter:
			return id, "", fmt.Errorf("the agent node %s of system %s has been silent for %s", id, system, silent.Round(time.Second))
		}
		return id, n.Address, nil
	}
	return "", "", &errNoAgent{system: system}
}

// call runs fn against the agent of system, trying again after a pause
// when the agent cannot be reached, is busy, or refused a token that was
// replaced meanwhile.
func (d *agentDirectory) call(ctx context.Context, system string, fn func(c *dispatcher.Client) error) error {
	_, url, err := d.lookup(ctx, system)
	if err != nil {
		return err
	}
	pause := d.backoff
	for try := 1; ; try++ {
		tok := d.token()
		c := dispatcher.NewClient(url, tok)
		c.HTTP = d.http
		err = fn(c)
		if err == nil || try == agentCallAttempts || ctx.Err() != nil || !retryable(err, tok != d.token()) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause *= 2
	}
}

// retryable tells whether an agent call is worth another try: the agent
// did not answer, was busy or unavailable, or refused a token replaced
// since. A system that failed (502) or a command that ran out of time
// (504) would do so again.
func retryable(err error, tokenChanged bool) bool {
	var ae *dispatcher.APIError
	if !errors.As(err, &ae) {
		return true // no answer: connection refused, reset, bad gateway
	}
	switch ae.Status {
	case http.StatusServiceUnavailable: // busy, or its catalog did not answer
		return true
	case http.StatusUnauthorized:
		return tokenChanged
	}
	return false
}

// Count implements worker.Agents.
func (d *agentDirectory) Count(ctx context.Context, system string, q worker.AgentCount) (*worker.AgentCountResult, error) {
	var res *dispatcher.CountResult
	err := d.call(ctx, system, func(c *dispatcher.Client) (err error) {
		res, err = c.Count(ctx, system, dispatcher.CountArgs{Path: q.Path, Format: q.Format, Options: q.Options, Table: q.Table, Query: q.Query})
		return err
	})
	if err != nil {
		return nil, err
	}
	if res.Rows == nil {
		return nil, fmt.Errorf("agent %s counted no rows of system %s (method %s)", res.Node, system, res.Method)
	}
	return &worker.AgentCountResult{Node: res.Node, Method: res.Method, Rows: *res.Rows, Bad: res.Bad}, nil
}

// verifyProblems is how many missing or changed files a verification names.
const verifyProblems = 5

// Verify implements worker.Agents: it verifies against the manifest written
// at the target, since the run has not recorded its own yet.
func (d *agentDirectory) Verify(ctx context.Context, system, runID string) (*worker.AgentVerifyResult, error) {
	var res *dispatcher.VerifyResult
	err := d.call(ctx, system, func(c *dispatcher.Client) (err error) {
		res, err = c.Verify(ctx, dispatcher.VerifyArgs{RunID: runID, Manifest: dispatcher.ManifestFromTarget})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := &worker.AgentVerifyResult{Node: res.Node, OK: res.OK, Expected: res.Expected, Matched: res.Matched,
		MissingCount: res.MissingCount, ChangedCount: res.ChangedCount, Extra: res.ExtraCount, BytesChecked: res.BytesChecked}
	for _, m := range res.Missing {
		if len(out.Problems) < verifyProblems {
			out.Problems = append(out.Problems, m+": missing")
		}
	}
	for _, c := range res.Changed {
		if len(out.Problems) < verifyProblems {
			out.Problems = append(out.Problems, fmt.Sprintf("%s: %s differs (%d bytes, %d expected)", c.Path, c.Problem, c.ActualSize, c.ExpectedSize))
		}
	}
	return out, nil
}

// Probe implements workload.SystemProber.
func (d *agentDirectory) Probe(ctx context.Context, system string) (*workload.AgentProbe, error) {
	var res *dispatcher.ProbeResult
	err := d.call(ctx, system, func(c *dispatcher.Client) (err error) {
		res, err = c.Probe(ctx, system, dispatcher.ProbeArgs{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &workload.AgentProbe{Node: res.Node, ProbedAt: res.ProbedAt, Attributes: res.Attributes}, nil
}

// agentsFor is the worker's way to the agents linked to systems: through
// the node's token.
func (s *stack) agentsFor() (worker.Agents, error) {
	t, err := s.addNodeToken()
	if err != nil {
		return nil, err
	}
	return newAgentDirectory(s.store, t.Secret), nil
}

// ServiceAgentProber is the service that probes stale agent-linked systems
// on the region's leader.
const ServiceAgentProber = "agent-prober"

// addAgentProber supervises the server's agent prober: while the node
// leads the region, systems linked to an agent whose attributes are older
// than twice the agents' --probe-interval are probed through their agent.
func (s *stack) addAgentProber(f *serviceFlags) error {
	t, err := s.addNodeToken()
	if err != nil {
		return err
	}
	cfg := workload.AgentProberConfig{Region: f.region, NodeID: s.node, StaleAfter: 2 * f.probeInterval,
		Logger: s.base.With("component", "agent-prober")}
	dir := newAgentDirectory(s.store, t.Secret)
	return s.add(ServiceAgentProber, func() (func(context.Context) error, error) {
		return workload.NewAgentProber(cfg, s.store, dir).Run, nil
	})
}
