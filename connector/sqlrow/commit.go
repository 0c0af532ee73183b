package sqlrow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/weirdata/weir/connector/spi"
)

// Querier runs queries: *sql.DB, *sql.Conn and *sql.Tx are Queriers.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Marker is a dialect's SQL over the commit-marker table (spi.CommitTable),
// which holds one row per committed run: run_id (primary key), mapping,
// target, watermark (NULL when the run committed none), rows, committed_at.
type Marker struct {
	// Create makes the marker table when it is missing (IF NOT EXISTS).
	Create string
	// Insert adds a marker; its parameters are run_id, mapping, target,
	// watermark (nil for none) and rows, and it sets committed_at itself.
	Insert string
	// Committed selects 1 for the run_id given as its parameter.
	Committed string
	// Last selects the latest non-NULL watermark of the mapping given as its
	// parameter, in commit order.
	Last string
	// IsDuplicate tells a primary-key violation (the run's marker exists).
	IsDuplicate func(error) bool
	// IsMissingTable tells that a statement named a table that does not exist.
	IsMissingTable func(error) bool
}

// IsCommitted tells whether runID has a marker; a missing marker table means no.
func (m *Marker) IsCommitted(ctx context.Context, q Querier, runID string) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, m.Committed, runID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows) || (err != nil && m.IsMissingTable(err)):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look up commit marker of run %s: %w", runID, err)
	}
	return true, nil
}

// LastWatermark returns the mapping's latest committed watermark ("" and
// false when there is none or no marker table).
func (m *Marker) LastWatermark(ctx context.Context, q Querier, mapping string) (string, bool, error) {
	var wm string
	err := q.QueryRowContext(ctx, m.Last, mapping).Scan(&wm)
	switch {
	case errors.Is(err, sql.ErrNoRows) || (err != nil && m.IsMissingTable(err)):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("read last watermark of mapping %s: %w", mapping, err)
	}
	return wm, true, nil
}

// Statement is one statement that applies staged rows to the target inside
// the commit transaction.
type Statement struct {
	SQL string
	// CheckRows makes the commit fail unless the statement affected exactly
	// the load's rows (a plain INSERT ... SELECT from the staging table).
	CheckRows bool
}

// CommitParams describe one commit.
type CommitParams struct {
	RunID     string
	Mapping   string
	Target    string
	Watermark string // "" for none
	Rows      int64
	Apply     []Statement
}

// Commit inserts the run's marker, then runs the apply statements, then
// commits tx; on any error it rolls tx back. When the marker exists already
// the error wraps spi.ErrAlreadyCommitted and nothing changed. The marker
// table must exist (m.Create runs outside the transaction because DDL
// commits implicitly on some servers).
func (m *Marker) Commit(ctx context.Context, tx *sql.Tx, p CommitParams) (err error) {
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var wm any
	if p.Watermark != "" {
		wm = p.Watermark
	}
	if _, err := tx.ExecContext(ctx, m.Insert, p.RunID, p.Mapping, p.Target, wm, p.Rows); err != nil {
		if m.IsDuplicate(err) {
			return fmt.Errorf("commit run %s into %s: %w", p.RunID, p.Target, spi.ErrAlreadyCommitted)
		}
		return fmt.Errorf("insert commit marker of run %s: %w", p.RunID, err)
	}
	for _, st := range p.Apply {
		res, err := tx.ExecContext(ctx, st.SQL)
		if err != nil {
			return fmt.Errorf("apply staged rows to %s: %w", p.Target, err)
		}
		if st.CheckRows {
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("count rows applied to %s: %w", p.Target, err)
			}
			if n != p.Rows {
				return fmt.Errorf("apply staged rows to %s: %d rows moved from staging, %d were written", p.Target, n, p.Rows)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit run %s into %s: %w", p.RunID, p.Target, err)
	}
	return nil
}
