package catalog

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"gorm.io/gorm"
)

// AbortPendingParams aborts a pending run that can never be dispatched, for
// example because its mapping version or one of its systems no longer exists.
type AbortPendingParams struct {
	RunID string
	// Error says why, for the user; it is recorded on the run and in its log.
	Error string
	// Leader fencing: the run is aborted only while this lease is held with this token.
	LeaseName   string
	LeaseHolder string
	LeaseToken  int64
}

// errorColumnMax is the size of the runs.error column.
const errorColumnMax = 4000

// AbortPending moves a pending run to aborted (the system ends a run that
// never started) with its error and an "aborted" event, only while the caller
// still holds the leader lease (ErrNotLeader otherwise). A run that is no
// longer pending changes nothing and yields a *TransitionError.
func (s *Store) AbortPending(ctx context.Context, p AbortPendingParams) error {
	msg := strings.TrimSpace(p.Error)
	if msg == "" {
		return Invalid("error", "a run cannot be aborted without saying why")
	}
	if len(msg) > errorColumnMax {
		cut := errorColumnMax
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := s.checkLease(tx, p.LeaseName, p.LeaseHolder, p.LeaseToken); err != nil {
			return err
		}
		if err := s.transition(tx, p.RunID, []RunState{StatePending}, StateAborted, nil, map[string]any{
			"finished_at": s.now(), "error": msg, "hold_reason": "",
		}); err != nil {
			return err
		}
		return s.event(tx, p.RunID, 0, "aborted", p.LeaseHolder, "cannot be dispatched: %s", msg)
	}, ChannelRunsFinished)
	if err != nil {
		return fmt.Errorf("abort pending run %s: %w", p.RunID, err)
	}
	return nil
}

// SetHoldReasons records why pending runs wait, run_id -> reason ("" when a
// run no longer waits), in one transaction with one statement per distinct
// reason. Runs no longer pending, or already showing their reason, are left
// as they are.
func (s *Store) SetHoldReasons(ctx context.Context, reasons map[string]string) error {
	if len(reasons) == 0 {
		return nil
	}
	byReason := map[string][]string{}
	for id, reason := range reasons {
		byReason[reason] = append(byReason[reason], id)
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		now := s.now()
		for reason, ids := range byReason {
			sort.Strings(ids) // a stable lock order
			for len(ids) > 0 {
				chunk := ids[:min(len(ids), 500)]
				ids = ids[len(chunk):]
				if err := tx.Model(&Run{}).Where("id IN ? AND state = ? AND hold_reason <> ?", chunk, StatePending, reason).
					Updates(map[string]any{"hold_reason": reason, "updated_at": now}).Error; err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set hold reasons of %d runs: %w", len(reasons), err)
	}
	return nil
}
