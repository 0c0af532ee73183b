package catalog

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"gorm.io/gorm"
)

// FailPendingParams fails a pending run that can never be dispatched, for
// example because its mapping version or one of its systems no longer exists.
type FailPendingParams struct {
	RunID string
	// Error says why, for the user; it is recorded on the run and in its log.
	Error string
	// Leader fencing: the run is failed only while this lease is held with this token.
	LeaseName   string
	LeaseHolder string
	LeaseToken  int64
}

// errorColumnMax is the size of the runs.error column.
const errorColumnMax = 4000

// FailPending moves a pending run to failed with its error and a "failed"
// event, only while the caller still holds the leader lease (ErrNotLeader
// otherwise). A run that is no longer pending changes nothing and yields a
// *TransitionError.
func (s *Store) FailPending(ctx context.Context, p FailPendingParams) error {
	msg := strings.TrimSpace(p.Error)
	if msg == "" {
		return Invalid("error", "a run cannot be failed without saying why")
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
		if err := s.transition(tx, p.RunID, []RunState{StatePending}, StateFailed, nil, map[string]any{
			"finished_at": s.now(), "error": msg, "hold_reason": "",
		}); err != nil {
			return err
		}
		return s.event(tx, p.RunID, 0, "failed", p.LeaseHolder, "cannot be dispatched: %s", msg)
	}, ChannelRunsFinished)
	if err != nil {
		return fmt.Errorf("fail pending run %s: %w", p.RunID, err)
	}
	return nil
}
