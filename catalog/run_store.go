package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// RetryBackoff is how long a failed attempt waits before the next one:
// 1 s doubling per attempt, at most 5 minutes.
func RetryBackoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := time.Second << min(attempt-1, 16)
	return min(d, 5*time.Minute)
}

// IdempotencyKeyMaxLength is the longest idempotency key a run may carry.
const IdempotencyKeyMaxLength = 200

// InsertRun stores a new pending run. With an idempotency key already used by
// the same user it returns the existing run (created false) when the request
// hash matches, and ErrConflict when it does not. A run_id collision is also
// ErrConflict: draw a new run_id and call again.
func (s *Store) InsertRun(ctx context.Context, r *Run) (*Run, bool, error) {
	if _, _, err := ParseRunID(r.ID); err != nil {
		return nil, false, err
	}
	if k := r.IdempotencyKey; k != nil && (*k == "" || len(*k) > IdempotencyKeyMaxLength) {
		return nil, false, Invalid("idempotency_key", "must be 1-%d characters, got %d", IdempotencyKeyMaxLength, len(*k))
	}
	if r.IdempotencyKey != nil {
		if prev, err := s.runByIdempotencyKey(ctx, r.UserID, *r.IdempotencyKey); err == nil {
			return idempotentReplay(prev, r)
		} else if !errors.Is(err, ErrNotFound) {
			return nil, false, err
		}
	}
	now := s.now()
	r.State = StatePending
	r.CreatedAt, r.UpdatedAt = now, now
	if r.NotBefore.IsZero() {
		r.NotBefore = now
	}
	r.NotBefore = r.NotBefore.UTC()
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(r).Error; err != nil {
			return translate(err)
		}
		return tx.Create(&RunEvent{RunID: r.ID, At: now, Kind: "submitted",
			Message: fmt.Sprintf("submitted by %s from %s: %s of mapping %s v%d", r.SubmittedBy, r.ClientIP, r.RequestType, r.Mapping, r.MappingVersion)}).Error
	}, ChannelRunsPending)
	if errors.Is(err, ErrConflict) && r.IdempotencyKey != nil {
		// Lost a race with the same key: answer as the winner did.
		if prev, err2 := s.runByIdempotencyKey(ctx, r.UserID, *r.IdempotencyKey); err2 == nil {
			return idempotentReplay(prev, r)
		}
	}
	if err != nil {
		return nil, false, fmt.Errorf("insert run %s: %w", r.ID, err)
	}
	return r, true, nil
}

func idempotentReplay(prev, r *Run) (*Run, bool, error) {
	if prev.RequestHash != r.RequestHash {
		return nil, false, fmt.Errorf("idempotency key %q was used by run %s with a different request: %w", *r.IdempotencyKey, prev.ID, ErrConflict)
	}
	return prev, false, nil
}

func (s *Store) runByIdempotencyKey(ctx context.Context, userID int64, key string) (*Run, error) {
	var r Run
	if err := translate(s.db.WithContext(ctx).Where("user_id = ? AND idempotency_key = ?", userID, key).First(&r).Error); err != nil {
		return nil, err
	}
	return &r, nil
}

// GetRun returns a run by run_id.
func (s *Store) GetRun(ctx context.Context, id string) (*Run, error) {
	var r Run
	if err := translate(s.db.WithContext(ctx).Where("id = ?", id).First(&r).Error); err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	return &r, nil
}

// RunFilter selects runs for ListRuns. Empty fields do not filter.
type RunFilter struct {
	States      []RunState
	Mapping     string
	SubmittedBy string
	Region      string
	// Mappings, when non-nil, restricts the list to these mappings (what the caller may read).
	Mappings []string
	// Cursor is the run_id after which (older than) the page starts.
	Cursor string
	Limit  int
	// Since and Until, when not zero, keep the runs created at or after
	// Since and before Until, by the creation time their run_id carries.
	Since, Until time.Time
}

// Paging limits of ListRuns.
const (
	ListLimitDefault = 50
	ListLimitMax     = 1000
)

// ListRuns returns runs newest first and the cursor of the next page ("" at the end).
func (s *Store) ListRuns(ctx context.Context, f RunFilter) ([]Run, string, error) {
	if f.Limit <= 0 {
		f.Limit = ListLimitDefault
	}
	f.Limit = min(f.Limit, ListLimitMax)
	q := s.db.WithContext(ctx).Order("id DESC").Limit(f.Limit + 1)
	if len(f.States) > 0 {
		q = q.Where("state IN ?", f.States)
	}
	if f.Mapping != "" {
		q = q.Where("mapping = ?", f.Mapping)
	}
	if f.SubmittedBy != "" {
		q = q.Where("submitted_by = ?", f.SubmittedBy)
	}
	if f.Region != "" {
		q = q.Where("region = ?", f.Region)
	}
	if f.Mappings != nil {
		if len(f.Mappings) == 0 {
			return nil, "", nil
		}
		q = q.Where("mapping IN ?", f.Mappings)
	}
	if f.Cursor != "" {
		q = q.Where("id < ?", f.Cursor)
	}
	if !f.Since.IsZero() {
		q = q.Where("id >= ?", RunIDFloor(f.Since))
	}
	if !f.Until.IsZero() {
		q = q.Where("id < ?", RunIDFloor(f.Until))
	}
	var runs []Run
	if err := q.Find(&runs).Error; err != nil {
		return nil, "", fmt.Errorf("list runs: %w", err)
	}
	next := ""
	if len(runs) > f.Limit {
		runs = runs[:f.Limit]
		next = runs[len(runs)-1].ID
	}
	return runs, next, nil
}

// CountRuns counts runs by state in a region ("" for all regions).
func (s *Store) CountRuns(ctx context.Context, region string) (map[RunState]int64, error) {
	type row struct {
		State RunState
		N     int64
	}
	var rows []row
	q := s.db.WithContext(ctx).Model(&Run{}).Select("state, COUNT(*) AS n").Group("state")
	if region != "" {
		q = q.Where("region = ?", region)
	}
	if err := q.Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := map[RunState]int64{}
	for _, r := range rows {
		out[r.State] = r.N
	}
	return out, nil
}

// transition moves run id from one of from to to, if it is still there (and,
// with token, still fenced by it), applying set. Nothing changes otherwise,
// and the error says why.
func (s *Store) transition(tx *gorm.DB, id string, from []RunState, to RunState, token *int64, set map[string]any) error {
	return s.transitionIf(tx, id, from, to, token, "", nil, set)
}

// transitionIf is transition with one more condition (cond with args, SQL)
// that the run's row must meet, such as "its lease has expired". When only
// that condition fails the caller's view of the run was stale: ErrStaleLease.
//
// A fenced transition (token set) on a run that is no longer in one of from
// but not finished either (pending or queued again: the attempt was taken
// back from its worker) is ErrStaleLease too: the worker lost its lease. On a
// finished run it is ErrIllegalTransition.
func (s *Store) transitionIf(tx *gorm.DB, id string, from []RunState, to RunState, token *int64, cond string, args []any, set map[string]any) error {
	for _, f := range from {
		if !CanTransition(f, to) {
			return &TransitionError{RunID: id, From: from, To: to, Err: ErrIllegalTransition}
		}
	}
	if set == nil {
		set = map[string]any{}
	}
	set["state"] = to
	set["updated_at"] = s.now()
	clipColumn(set, "error", errorTextMax)
	clipColumn(set, "hold_reason", holdReasonMax)
	q := tx.Model(&Run{}).Where("id = ? AND state IN ?", id, from)
	if token != nil {
		q = q.Where("fencing_token = ?", *token)
	}
	if cond != "" {
		q = q.Where(cond, args...)
	}
	res := q.Updates(set)
	if res.Error != nil {
		return fmt.Errorf("run %s -> %s: %w", id, to, res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	var cur Run
	if err := tx.Select("id, state, fencing_token").Where("id = ?", id).First(&cur).Error; err != nil {
		return &TransitionError{RunID: id, From: from, To: to, Err: ErrNotFound}
	}
	at := []RunState{cur.State}
	switch {
	case token != nil && cur.FencingToken != *token:
		return &TransitionError{RunID: id, From: at, To: to, Err: ErrStaleLease}
	case slices.Contains(from, cur.State) && cond != "":
		return &TransitionError{RunID: id, From: at, To: to, Err: ErrStaleLease}
	case slices.Contains(from, cur.State):
		return &TransitionError{RunID: id, From: at, To: to, Err: ErrConflict}
	case token != nil && !cur.State.Terminal():
		return &TransitionError{RunID: id, From: at, To: to, Err: ErrStaleLease}
	}
	return &TransitionError{RunID: id, From: at, To: to, Err: ErrIllegalTransition}
}

func (s *Store) event(tx *gorm.DB, runID string, attempt int, kind, node, format string, args ...any) error {
	return tx.Create(&RunEvent{RunID: runID, Attempt: attempt, At: s.now(), Kind: kind, Node: clip(node, 128), Message: clip(fmt.Sprintf(format, args...), errorTextMax)}).Error
}

// AddEvent appends a line to a run's log. A message longer than the column
// is cut (on every dialect alike).
func (s *Store) AddEvent(ctx context.Context, ev *RunEvent) error {
	if ev.Kind == "" || len(ev.Kind) > 32 {
		return Invalid("kind", "an event needs a kind of 1-32 characters")
	}
	if ev.At.IsZero() {
		ev.At = s.now()
	}
	ev.At = ev.At.UTC()
	ev.Message, ev.Node = clip(ev.Message, errorTextMax), clip(ev.Node, 128)
	if err := s.db.WithContext(ctx).Create(ev).Error; err != nil {
		return fmt.Errorf("add event to run %s: %w", ev.RunID, err)
	}
	return nil
}

// Lengths of the free-text columns (characters): longer texts are cut by
// clip, so that PostgreSQL (which refuses them) and SQLite (which would keep
// them) store the same.
const (
	errorTextMax  = 4000 // runs.error, run_attempts.error, run_events.message
	holdReasonMax = 500  // runs.hold_reason
)

// clip cuts s to at most n characters, ending with an ellipsis when cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// clipColumn clips set[col] when it is a string.
func clipColumn(set map[string]any, col string, n int) {
	if v, ok := set[col].(string); ok {
		set[col] = clip(v, n)
	}
}

// ListRunEvents returns a run's log in order, after event afterID.
func (s *Store) ListRunEvents(ctx context.Context, runID string, afterID int64) ([]RunEvent, error) {
	var evs []RunEvent
	err := s.db.WithContext(ctx).Where("run_id = ? AND id > ?", runID, afterID).Order("id").Find(&evs).Error
	return evs, err
}

// ListRunTasks returns a run's internal manifest.
func (s *Store) ListRunTasks(ctx context.Context, runID string) ([]RunTask, error) {
	var ts []RunTask
	err := s.db.WithContext(ctx).Where("run_id = ?", runID).Order("seq").Find(&ts).Error
	return ts, err
}

// ListRunAttempts returns the attempts of a run, or of every run when runID is "".
func (s *Store) ListRunAttempts(ctx context.Context, runID string) ([]RunAttempt, error) {
	q := s.db.WithContext(ctx).Order("run_id, attempt")
	if runID != "" {
		q = q.Where("run_id = ?", runID)
	}
	var as []RunAttempt
	return as, q.Find(&as).Error
}

// RequestCancel cancels a pending or queued run at once, and asks the worker
// of an active run to stop (it observes the flag within a heartbeat). A run
// already finished is ErrIllegalTransition.
func (s *Store) RequestCancel(ctx context.Context, id, by string) (*Run, error) {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var r Run
		q := tx.Select("id, state, attempt").Where("id = ?", id)
		if s.dialect == DialectPostgres {
			// Decide on the state the update will meet: a finish in
			// between is waited for and then seen.
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := translate(q.First(&r).Error); err != nil {
			return err
		}
		switch r.State {
		case StatePending, StateQueued:
			now := s.now()
			if err := s.transition(tx, id, []RunState{r.State}, StateCanceled, nil, map[string]any{
				"cancel_requested": true, "finished_at": now, "error": "canceled by " + by, "hold_reason": "",
			}); err != nil {
				return err
			}
		case StateActive:
			res := tx.Model(&Run{}).Where("id = ? AND state = ?", id, StateActive).Updates(map[string]any{"cancel_requested": true, "updated_at": s.now()})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 { // finished since it was read
				return &TransitionError{RunID: id, From: []RunState{StateActive}, To: StateCanceled, Err: ErrIllegalTransition}
			}
		default:
			return &TransitionError{RunID: id, From: []RunState{r.State}, To: StateCanceled, Err: ErrIllegalTransition}
		}
		return s.event(tx, id, r.Attempt, "cancel_requested", "", "cancel requested by %s while %s", by, r.State)
	}, ChannelRunsFinished)
	if err != nil {
		return nil, fmt.Errorf("cancel run %s: %w", id, err)
	}
	return s.GetRun(ctx, id)
}
