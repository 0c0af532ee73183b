package catalog

import (
	"context"
	"fmt"
	"maps"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ClaimParams asks for up to Limit runs queued on Worker.
type ClaimParams struct {
	Worker   string
	Limit    int
	LeaseTTL time.Duration
}

// ClaimRuns moves up to Limit runs queued on the worker to active: it starts
// a new attempt, bumps the fencing token and sets the lease. On PostgreSQL
// the rows are locked with FOR UPDATE SKIP LOCKED. Each returned run carries
// its new Attempt and FencingToken.
func (s *Store) ClaimRuns(ctx context.Context, p ClaimParams) ([]Run, error) {
	switch {
	case p.Worker == "":
		return nil, Invalid("worker", "a claim needs the worker's node ID")
	case p.LeaseTTL <= 0:
		return nil, Invalid("lease_ttl", "must be positive, got %s", p.LeaseTTL) // else the reaper takes the run at once
	case p.Limit <= 0:
		return nil, nil
	}
	var claimed []Run
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		q := tx.Where("state = ? AND worker_id = ?", StateQueued, p.Worker).Order("priority DESC, id ASC").Limit(p.Limit)
		if s.dialect == DialectPostgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
		}
		var runs []Run
		if err := q.Find(&runs).Error; err != nil {
			return err
		}
		now := s.now()
		for i := range runs {
			r := &runs[i]
			if r.CancelRequested {
				continue
			}
			tok := r.FencingToken
			r.Attempt++
			r.FencingToken++
			until := now.Add(p.LeaseTTL)
			r.LeaseExpiresAt, r.StartedAt, r.State = &until, &now, StateActive
			if err := s.transition(tx, r.ID, []RunState{StateQueued}, StateActive, &tok, map[string]any{
				"attempt": r.Attempt, "fencing_token": r.FencingToken, "lease_expires_at": until,
				"started_at": now, "finished_at": nil, "error": "",
			}); err != nil {
				return err
			}
			queued := now
			if r.QueuedAt != nil {
				queued = *r.QueuedAt
			}
			if err := tx.Create(&RunAttempt{RunID: r.ID, Attempt: r.Attempt, WorkerID: p.Worker, FencingToken: r.FencingToken,
				SourceSystem: r.SourceSystem, TargetSystem: r.TargetSystem, QueuedAt: queued, StartedAt: now, State: StateActive}).Error; err != nil {
				return translate(err)
			}
			if err := s.event(tx, r.ID, r.Attempt, "active", p.Worker, "attempt %d of %d claimed by worker %s", r.Attempt, r.MaxAttempts, p.Worker); err != nil {
				return err
			}
			claimed = append(claimed, *r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim runs for %s: %w", p.Worker, err)
	}
	return claimed, nil
}

// RunLease identifies one attempt a worker holds.
type RunLease struct {
	RunID        string
	FencingToken int64
}

// RenewResult tells a worker which of its runs it lost and which were asked to stop.
type RenewResult struct {
	Lost   []string
	Cancel []string
}

// RenewLeases extends the leases of a worker's runs to now+ttl in one
// transaction, reporting leases lost (reaped, or claimed again elsewhere) and
// runs whose cancellation was requested.
func (s *Store) RenewLeases(ctx context.Context, leases []RunLease, ttl time.Duration) (RenewResult, error) {
	var res RenewResult
	if ttl <= 0 {
		return res, Invalid("ttl", "must be positive, got %s", ttl)
	}
	if len(leases) == 0 {
		return res, nil
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res = RenewResult{}
		until := s.now().Add(ttl)
		ids := make([]string, 0, len(leases))
		for _, l := range leases {
			r := tx.Model(&Run{}).Where("id = ? AND fencing_token = ? AND state = ?", l.RunID, l.FencingToken, StateActive).
				Update("lease_expires_at", until)
			if r.Error != nil {
				return r.Error
			}
			if r.RowsAffected == 0 {
				res.Lost = append(res.Lost, l.RunID)
				continue
			}
			ids = append(ids, l.RunID)
		}
		if len(ids) == 0 {
			return nil
		}
		return tx.Model(&Run{}).Where("id IN ? AND cancel_requested = ?", ids, true).Pluck("id", &res.Cancel).Error
	})
	if err != nil {
		return RenewResult{}, fmt.Errorf("renew leases: %w", err)
	}
	return res, nil
}

// SaveTasksParams records a worker's partitioning of an attempt.
type SaveTasksParams struct {
	RunID        string
	FencingToken int64
	Plan         *Plan
	Tasks        []RunTask
}

// SaveTasks replaces a run's internal manifest with the tasks of the current
// attempt, completes its plan and sets its totals, fenced by the token.
func (s *Store) SaveTasks(ctx context.Context, p SaveTasksParams) error {
	var total Progress
	for _, t := range p.Tasks {
		total.TasksTotal++
		total.FilesTotal += t.FilesTotal
		total.BytesTotal += t.BytesTotal
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&Run{}).Where("id = ? AND fencing_token = ? AND state = ?", p.RunID, p.FencingToken, StateActive).
			Updates(map[string]any{
				"plan": NewJSON(p.Plan), "tasks_total": total.TasksTotal, "tasks_done": 0,
				"files_total": total.FilesTotal, "files_done": 0, "bytes_total": total.BytesTotal, "bytes_done": 0, "rows": 0,
				"updated_at": s.now(),
			})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrStaleLease
		}
		if err := tx.Where("run_id = ?", p.RunID).Delete(&RunTask{}).Error; err != nil {
			return err
		}
		if len(p.Tasks) == 0 {
			return nil
		}
		now := s.now()
		for i := range p.Tasks {
			p.Tasks[i].ID, p.Tasks[i].RunID, p.Tasks[i].UpdatedAt = 0, p.RunID, now
			if p.Tasks[i].State == "" {
				p.Tasks[i].State = TaskPending
			}
		}
		return tx.CreateInBatches(p.Tasks, 200).Error
	})
	if err != nil {
		return fmt.Errorf("save tasks of run %s: %w", p.RunID, err)
	}
	return nil
}

// TaskUpdate is the new state of one task.
type TaskUpdate struct {
	Seq   int
	State string
	Progress
}

// FlushProgressParams is one batched progress write of a run.
type FlushProgressParams struct {
	RunID        string
	FencingToken int64
	Run          Progress // the run's counters (totals are not changed)
	Tasks        []TaskUpdate
}

// FlushProgress writes a run's progress and the changed tasks in one
// transaction, fenced by the token (ErrStaleLease when lost).
func (s *Store) FlushProgress(ctx context.Context, p FlushProgressParams) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		now := s.now()
		res := tx.Model(&Run{}).Where("id = ? AND fencing_token = ? AND state = ?", p.RunID, p.FencingToken, StateActive).
			Updates(map[string]any{"tasks_done": p.Run.TasksDone, "files_done": p.Run.FilesDone,
				"bytes_done": p.Run.BytesDone, "rows": p.Run.Rows, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrStaleLease
		}
		for _, t := range p.Tasks {
			if err := tx.Model(&RunTask{}).Where("run_id = ? AND seq = ?", p.RunID, t.Seq).
				Updates(map[string]any{"state": t.State, "files_done": t.FilesDone, "bytes_done": t.BytesDone,
					"rows": t.Rows, "tasks_done": t.TasksDone, "updated_at": now}).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("flush progress of run %s: %w", p.RunID, err)
	}
	return nil
}

// FinishParams ends the current attempt of an active run.
type FinishParams struct {
	RunID        string
	FencingToken int64
	Worker       string
	// State is succeeded, empty, canceled or failed.
	State    RunState
	Error    string
	Manifest *Manifest
	// Retryable lets a failed attempt go back to pending when attempts are left.
	Retryable bool
	// Progress, when set, is written with the final state.
	Progress *Progress
}

// FinishRun ends the current attempt, fenced by the token: a worker that lost
// its lease gets ErrStaleLease and changes nothing. It returns the run's new state.
func (s *Store) FinishRun(ctx context.Context, p FinishParams) (RunState, error) {
	if p.State == StateFailed {
		r, err := s.GetRun(ctx, p.RunID)
		if err != nil {
			return "", fmt.Errorf("finish run %s: %w", p.RunID, err)
		}
		if r.FencingToken != p.FencingToken {
			return "", fmt.Errorf("finish run %s: %w", p.RunID, &TransitionError{RunID: p.RunID, From: []RunState{r.State}, To: StateFailed, Err: ErrStaleLease})
		}
		// The update is fenced by the token, so what was read above cannot
		// have changed under it (attempt and token change together).
		if err := s.failAttemptIf(ctx, r, attemptFailure{msg: p.Error, retryable: p.Retryable, node: p.Worker, set: progressColumns(p.Progress)}); err != nil {
			return "", fmt.Errorf("finish run %s: %w", p.RunID, err)
		}
		r, err = s.GetRun(ctx, p.RunID)
		if err != nil {
			return "", fmt.Errorf("finish run %s: %w", p.RunID, err)
		}
		return r.State, nil
	}
	switch p.State {
	case StateSucceeded, StateEmpty, StateCanceled:
	default:
		return "", fmt.Errorf("finish run %s: %w: a worker cannot finish a run as %s", p.RunID, ErrIllegalTransition, p.State)
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		now := s.now()
		set := map[string]any{"finished_at": now, "lease_expires_at": nil, "error": p.Error}
		if p.Manifest != nil {
			set["manifest"] = NewJSON(p.Manifest)
		}
		maps.Copy(set, progressColumns(p.Progress))
		tok := p.FencingToken
		if err := s.transition(tx, p.RunID, []RunState{StateActive}, p.State, &tok, set); err != nil {
			return err
		}
		var r Run
		if err := tx.Select("attempt").Where("id = ?", p.RunID).First(&r).Error; err != nil {
			return err
		}
		if err := s.endAttempt(tx, p.RunID, r.Attempt, p.State, p.Error); err != nil {
			return err
		}
		msg := string(p.State)
		if p.Error != "" {
			msg += ": " + p.Error
		}
		return s.event(tx, p.RunID, r.Attempt, string(p.State), p.Worker, "%s", msg)
	}, ChannelRunsFinished)
	if err != nil {
		return "", fmt.Errorf("finish run %s: %w", p.RunID, err)
	}
	return p.State, nil
}

// progressColumns are the columns that record a run's progress counters (the
// totals stay as SaveTasks set them); nil for no progress.
func progressColumns(p *Progress) map[string]any {
	if p == nil {
		return nil
	}
	return map[string]any{"tasks_done": p.TasksDone, "files_done": p.FilesDone, "bytes_done": p.BytesDone, "rows": p.Rows}
}
