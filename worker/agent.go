package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/weirdata/weir/catalog"
)

// The dispatcher agents. When a run's target (or source) system has a live
// dispatcher agent linked to it (`weir agent --systems`), the worker has
// that agent count the target after the commit, on the host that holds the
// data, and verify the delivered files against the delivery manifest once
// it is written; the agent audits each call as this node. With no agent
// linked the worker counts in-process with connector code, as before. An
// agent that does not answer (down, refusing, past AgentTimeout) never fails
// a delivered run: the worker counts in-process instead and records a
// warning event. A count or verification that disagrees with what was
// written fails the run, as the in-process check does.

// countInstead is what the worker does when a target's agent does not count.
const countInstead = "the worker counts in-process instead"

// AgentTimeoutDefault bounds one call of the worker to a dispatcher agent
// (its retries included).
const AgentTimeoutDefault = 2 * time.Minute

// ErrNoAgent means no live dispatcher agent is linked to the system.
var ErrNoAgent = errors.New("no live dispatcher agent is linked to the system")

// Agents reaches the dispatcher agents linked to systems; cmd/weir adapts
// the dispatcher's client to it. Implementations bound their retries; every
// method returns ErrNoAgent when no live agent is linked to the system.
type Agents interface {
	// Count counts a dataset of system at its agent.
	Count(ctx context.Context, system string, q AgentCount) (*AgentCountResult, error)
	// Verify checks the delivery of runID against the manifest written at
	// its target system, at that system's agent.
	Verify(ctx context.Context, system, runID string) (*AgentVerifyResult, error)
}

// AgentCount is what an agent counts: the rows of Table or Query of a
// database, or of the files under Path read as Format with Options.
type AgentCount struct {
	Path, Format string
	Options      map[string]string
	Table, Query string
}

// AgentCountResult is an agent's count.
type AgentCountResult struct {
	// Node is the agent's node, Method how it counted.
	Node, Method string
	Rows         int64
	// Bad counts records that could not be decoded (not in Rows).
	Bad int64
}

// AgentVerifyResult is an agent's verification of a delivery.
type AgentVerifyResult struct {
	Node string
	// OK is true when every file of the manifest is at the target with its
	// size and SHA-256.
	OK                                bool
	Expected, Matched                 int
	MissingCount, ChangedCount, Extra int
	BytesChecked                      int64
	// Problems describes the first missing or changed files.
	Problems []string
}

// agentCall runs one call to an agent under AgentTimeout. ok is false when
// the call gave no answer: no agent is linked (nothing recorded), or the
// agent did not answer (a warning event says why, and instead what the
// worker does about it).
func agentCall[T any](w *Worker, a *attempt, system, what, instead string, call func(ctx context.Context) (*T, error)) (*T, bool) {
	if w.cfg.Agents == nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(a.runCtx, w.cfg.AgentTimeout)
	defer cancel()
	res, err := call(ctx)
	switch {
	case err == nil:
		return res, true
	case errors.Is(err, ErrNoAgent) || a.runCtx.Err() != nil:
		return nil, false
	}
	a.log.Warn("dispatcher agent did not answer", slog.String("system", system),
		slog.String("call", what), slog.String("error", err.Error()), slog.String("instead", instead))
	w.event(a, "agent-unreachable", "the dispatcher agent of system %s did not %s: %v; %s", system, what, err, instead)
	return nil, false
}

// agentCountRows has the agent linked to sys count q; ok false means no
// answer (see agentCall; instead says what the worker does then). Records
// that do not decode are an error.
func (w *Worker) agentCountRows(a *attempt, sys *catalog.System, q AgentCount, what, instead string) (n int64, method string, ok bool, err error) {
	res, ok := agentCall(w, a, sys.Name, "count "+what, instead, func(ctx context.Context) (*AgentCountResult, error) {
		return w.cfg.Agents.Count(ctx, sys.Name, q)
	})
	if !ok {
		return 0, "", false, nil
	}
	method = fmt.Sprintf("%s by agent %s", res.Method, res.Node)
	if res.Bad > 0 {
		return res.Rows, method, true, fmt.Errorf("agent %s found %d records in %s that do not read back", res.Node, res.Bad, what)
	}
	return res.Rows, method, true, nil
}

// agentCountFiles has the target's agent count the rows of the delivered
// files, one call per file; ok false means it gave no answer.
func (w *Worker) agentCountFiles(a *attempt, job *rowJob, paths []string) (n int64, method string, ok bool, err error) {
	if w.cfg.Agents == nil {
		return 0, "", false, nil
	}
	opts := readOptions(job.dstDS.Options)
	for _, p := range paths {
		rows, m, ok, err := w.agentCountRows(a, job.dstSys, AgentCount{Path: p, Format: job.dstDS.Format, Options: opts}, p, countInstead)
		if !ok || err != nil {
			return 0, "", ok, err
		}
		n, method = n+rows, m
	}
	return n, method, true, nil
}

// countSource has the agent linked to the source count the rows of the
// run's source dataset and records it beside SourceRows: a cross-check that
// does not fail the run, since the source may change after it was read. An
// incremental source is not counted: its selection is a range.
func (w *Worker) countSource(a *attempt, job *rowJob, c *catalog.ManifestCounts) {
	if w.cfg.Agents == nil || job.srcDS.Watermark != nil {
		return
	}
	q := AgentCount{Table: job.srcDS.Table, Query: job.srcDS.Query}
	if q.Table == "" && q.Query == "" {
		if job.srcSys.Kind != catalog.KindFS || job.srcDS.Format == "" {
			return
		}
		q = AgentCount{Path: job.srcDS.Path, Format: job.srcDS.Format, Options: readOptions(job.srcDS.Options)}
	}
	n, method, ok, err := w.agentCountRows(a, job.srcSys, q, "the source "+describe(job.srcSys, job.srcDS), "the source is not cross-checked")
	if !ok {
		return
	}
	if err != nil {
		w.event(a, "source-counted", "the source was not cross-checked: %v", err)
		return
	}
	c.SourceCounted, c.SourceMethod = &n, method
	read := c.SourceRows + c.SourceBad
	if n == read {
		w.event(a, "source-counted", "%s holds the %d rows read (%s)", describe(job.srcSys, job.srcDS), n, method)
		return
	}
	w.event(a, "source-counted", "%s holds %d rows now, %d were read: it changed since, or the run read a selection of it (%s)",
		describe(job.srcSys, job.srcDS), n, read, method)
}

// verifyDelivery has the target's agent verify a delivery to a file system
// against the manifest written there, and records the outcome as a run
// event. A delivery the agent finds incomplete or changed fails the run for
// good; an agent that does not answer leaves the run as it is.
func (w *Worker) verifyDelivery(a *attempt, out *outcome) error {
	if w.cfg.Agents == nil || out == nil || out.manifest == nil {
		return nil
	}
	sys := out.manifest.Target.System
	if out.manifest.Target.Kind != catalog.KindFS {
		return nil // only files are verified; the count checked the rest
	}
	res, ok := agentCall(w, a, sys, "verify the delivery", "the delivery is left unverified", func(ctx context.Context) (*AgentVerifyResult, error) {
		return w.cfg.Agents.Verify(ctx, sys, a.run.ID)
	})
	if !ok {
		return nil
	}
	if res.OK {
		w.event(a, "verified", "agent %s verified the delivery at %s: %d of %d files intact (%d bytes hashed)%s",
			res.Node, sys, res.Matched, res.Expected, res.BytesChecked, extraNote(res.Extra))
		return nil
	}
	msg := fmt.Sprintf("verify failed: agent %s found the delivery at %s incomplete: %d of %d files intact, %d missing, %d changed",
		res.Node, sys, res.Matched, res.Expected, res.MissingCount, res.ChangedCount)
	if len(res.Problems) > 0 {
		msg += " (" + strings.Join(res.Problems, "; ") + ")"
	}
	w.event(a, "verified", "%s", msg)
	return permanent(errors.New(msg))
}

func extraNote(extra int) string {
	if extra == 0 {
		return ""
	}
	return fmt.Sprintf("; %s there the manifest does not list", plural(extra, "other file"))
}
