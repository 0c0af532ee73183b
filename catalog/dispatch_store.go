package catalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ListDispatchable returns a region's pending runs that may be dispatched now,
// by priority (highest first) then age.
func (s *Store) ListDispatchable(ctx context.Context, region string, limit int) ([]Run, error) {
	var runs []Run
	err := s.db.WithContext(ctx).
		Omit("plan", "manifest").
		Where("region = ? AND state = ? AND not_before <= ? AND cancel_requested = ?", region, StatePending, s.now(), false).
		Order("priority DESC, id ASC").Limit(limit).Find(&runs).Error
	return runs, err
}

// ActiveCounts are the runs a region has queued or active, by what they occupy.
type ActiveCounts struct {
	Region  int
	Systems map[string]int // a run that reads and writes one system counts once
	Workers map[string]int
}

// CountActive counts a region's queued and active runs.
func (s *Store) CountActive(ctx context.Context, region string) (ActiveCounts, error) {
	type row struct{ SourceSystem, TargetSystem, WorkerID string }
	var rows []row
	err := s.db.WithContext(ctx).Model(&Run{}).Select("source_system, target_system, worker_id").
		Where("region = ? AND state IN ?", region, []RunState{StateQueued, StateActive}).Scan(&rows).Error
	c := ActiveCounts{Systems: map[string]int{}, Workers: map[string]int{}}
	for _, r := range rows {
		c.Region++
		c.Systems[r.SourceSystem]++
		if r.TargetSystem != r.SourceSystem {
			c.Systems[r.TargetSystem]++
		}
		c.Workers[r.WorkerID]++
	}
	return c, err
}

// DispatchParams assigns a pending run to a worker.
type DispatchParams struct {
	RunID  string
	Worker string
	Plan   *Plan
	// Leader fencing: the dispatch happens only while this lease is held with this token.
	LeaseName   string
	LeaseHolder string
	LeaseToken  int64
}

// DispatchRun moves a pending run to queued on a worker with its plan, only
// while the caller still holds the leader lease.
func (s *Store) DispatchRun(ctx context.Context, p DispatchParams) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := s.checkLease(tx, p.LeaseName, p.LeaseHolder, p.LeaseToken); err != nil {
			return err
		}
		now := s.now()
		if err := s.transition(tx, p.RunID, []RunState{StatePending}, StateQueued, nil, map[string]any{
			"worker_id": p.Worker, "plan": NewJSON(p.Plan), "queued_at": now, "hold_reason": "",
		}); err != nil {
			return err
		}
		return s.event(tx, p.RunID, 0, "queued", p.LeaseHolder, "assigned to worker %s", p.Worker)
	}, ChannelRunsQueued)
	if err != nil {
		return fmt.Errorf("dispatch run %s: %w", p.RunID, err)
	}
	return nil
}

// checkLease fails with ErrNotLeader unless holder has the named lease with
// token. On PostgreSQL the lease row stays locked until the transaction ends,
// so a successor's AcquireLease waits for this dispatch to commit and then
// counts it: two leaders never decide on stale counts at the same time.
func (s *Store) checkLease(tx *gorm.DB, name, holder string, token int64) error {
	q := tx.Model(&Lease{}).Where("name = ? AND holder = ? AND token = ? AND expires_at > ?", name, holder, token, s.now())
	if s.dialect == DialectPostgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var held []Lease
	if err := q.Find(&held).Error; err != nil {
		return err
	}
	if len(held) == 0 {
		return ErrNotLeader
	}
	return nil
}

// SetHoldReason records why a pending run waits ("" when it no longer does);
// it writes only when the reason changes.
func (s *Store) SetHoldReason(ctx context.Context, runID, reason string) error {
	reason = clip(reason, holdReasonMax)
	return s.db.WithContext(ctx).Model(&Run{}).
		Where("id = ? AND state = ? AND hold_reason <> ?", runID, StatePending, reason).
		Updates(map[string]any{"hold_reason": reason, "updated_at": s.now()}).Error
}

// ReapExpiredLeases takes back a region's active runs whose lease expired: each
// goes back to pending with a backoff when it has attempts left, and fails
// otherwise. It returns the run_ids it took back.
func (s *Store) ReapExpiredLeases(ctx context.Context, region string) ([]string, error) {
	var runs []Run
	now := s.now()
	if err := s.db.WithContext(ctx).Select("id, attempt, max_attempts, fencing_token, worker_id").
		Where("region = ? AND state = ? AND lease_expires_at <= ?", region, StateActive, now).Find(&runs).Error; err != nil {
		return nil, fmt.Errorf("reap expired leases in %s: %w", region, err)
	}
	var reaped []string
	for _, r := range runs {
		msg := fmt.Sprintf("lease of worker %s expired during attempt %d", r.WorkerID, r.Attempt)
		// The update re-checks the expiry: a worker may have renewed since the read.
		err := s.failAttemptIf(ctx, &r, attemptFailure{msg: msg, retryable: true, cond: "lease_expires_at <= ?", args: []any{now}})
		if err != nil {
			if errors.Is(err, ErrStaleLease) || errors.Is(err, ErrIllegalTransition) {
				continue // the worker finished or renewed in between
			}
			return reaped, err
		}
		reaped = append(reaped, r.ID)
	}
	return reaped, nil
}

// failAttempt ends the current attempt of an active run as failed: back to
// pending after a backoff when retryable with attempts left, failed otherwise.
func (s *Store) failAttempt(ctx context.Context, r *Run, msg string, retryable bool) error {
	return s.failAttemptIf(ctx, r, attemptFailure{msg: msg, retryable: retryable})
}

// attemptFailure says how an attempt failed.
type attemptFailure struct {
	msg       string
	retryable bool
	node      string         // the worker that reported it, for the run's log
	cond      string         // an extra condition on the run's row (see transitionIf)
	args      []any          // cond's arguments
	set       map[string]any // more columns to write, such as the attempt's progress
}

// failAttemptIf is failAttempt with the details of attemptFailure. r needs
// ID, Attempt, MaxAttempts and FencingToken.
func (s *Store) failAttemptIf(ctx context.Context, r *Run, f attemptFailure) error {
	return s.inTx(ctx, func(tx *gorm.DB) error {
		now := s.now()
		tok := r.FencingToken
		set := maps.Clone(f.set)
		if set == nil {
			set = map[string]any{}
		}
		set["lease_expires_at"], set["error"] = nil, f.msg
		if f.retryable && r.Attempt < r.MaxAttempts {
			wait := RetryBackoff(r.Attempt)
			set["worker_id"], set["not_before"] = "", now.Add(wait)
			if err := s.transitionIf(tx, r.ID, []RunState{StateActive}, StatePending, &tok, f.cond, f.args, set); err != nil {
				return err
			}
			if err := s.endAttempt(tx, r.ID, r.Attempt, StateFailed, f.msg); err != nil {
				return err
			}
			return s.event(tx, r.ID, r.Attempt, "retry", f.node, "%s; attempt %d of %d in %s", f.msg, r.Attempt+1, r.MaxAttempts, wait)
		}
		set["finished_at"] = now
		if err := s.transitionIf(tx, r.ID, []RunState{StateActive}, StateFailed, &tok, f.cond, f.args, set); err != nil {
			return err
		}
		if err := s.endAttempt(tx, r.ID, r.Attempt, StateFailed, f.msg); err != nil {
			return err
		}
		return s.event(tx, r.ID, r.Attempt, "failed", f.node, "%s; no attempts left (%d of %d)", f.msg, r.Attempt, r.MaxAttempts)
	}, ChannelRunsPending, ChannelRunsFinished)
}

func (s *Store) endAttempt(tx *gorm.DB, runID string, attempt int, state RunState, msg string) error {
	return tx.Model(&RunAttempt{}).Where("run_id = ? AND attempt = ?", runID, attempt).
		Updates(map[string]any{"finished_at": s.now(), "state": state, "error": clip(msg, errorTextMax)}).Error
}

// RequeueOrphans sends a region's queued runs whose worker is no longer alive
// back to pending, and returns their run_ids.
func (s *Store) RequeueOrphans(ctx context.Context, region string) ([]string, error) {
	var ids []string
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		ids = nil
		var orphans []Run
		alive := tx.Model(&Node{}).Select("id").Where("state = ?", NodeAlive)
		if err := tx.Select("id, worker_id").Where("region = ? AND state = ? AND worker_id NOT IN (?)", region, StateQueued, alive).
			Order("id").Find(&orphans).Error; err != nil {
			return err
		}
		for _, r := range orphans {
			// Conditional on the run still being queued on that worker.
			err := s.transitionIf(tx, r.ID, []RunState{StateQueued}, StatePending, nil, "worker_id = ?", []any{r.WorkerID},
				map[string]any{"worker_id": "", "queued_at": nil})
			if errors.Is(err, ErrIllegalTransition) || errors.Is(err, ErrStaleLease) || errors.Is(err, ErrNotFound) {
				continue // claimed or canceled since it was read: not an orphan any more
			}
			if err != nil {
				return err
			}
			if err := s.event(tx, r.ID, 0, "requeued", "", "assigned worker %s is gone; back to pending", r.WorkerID); err != nil {
				return err
			}
			ids = append(ids, r.ID)
		}
		return nil
	}, ChannelRunsPending)
	if err != nil {
		return nil, fmt.Errorf("requeue orphans in %s: %w", region, err)
	}
	return ids, nil
}

// AbortTimedOut aborts a region's active runs that have run longer than their
// timeout, and returns their run_ids.
func (s *Store) AbortTimedOut(ctx context.Context, region string) ([]string, error) {
	var runs []Run
	if err := s.db.WithContext(ctx).Select("id, attempt, started_at, timeout_seconds, fencing_token").
		Where("region = ? AND state = ?", region, StateActive).Find(&runs).Error; err != nil {
		return nil, err
	}
	now := s.now()
	var aborted []string
	for _, r := range runs {
		if r.StartedAt == nil || now.Sub(*r.StartedAt) < time.Duration(r.TimeoutSeconds)*time.Second {
			continue
		}
		msg := fmt.Sprintf("timed out after %ds", r.TimeoutSeconds)
		tok := r.FencingToken
		err := s.inTx(ctx, func(tx *gorm.DB) error {
			if err := s.transition(tx, r.ID, []RunState{StateActive}, StateAborted, &tok, map[string]any{
				"finished_at": now, "error": msg, "lease_expires_at": nil,
			}); err != nil {
				return err
			}
			if err := s.endAttempt(tx, r.ID, r.Attempt, StateAborted, msg); err != nil {
				return err
			}
			return s.event(tx, r.ID, r.Attempt, "aborted", "", "%s", msg)
		}, ChannelRunsFinished)
		if err != nil {
			if errors.Is(err, ErrStaleLease) || errors.Is(err, ErrIllegalTransition) {
				continue
			}
			return aborted, err
		}
		aborted = append(aborted, r.ID)
	}
	return aborted, nil
}
