package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// Migration 0009_gov_auth_failures creates auth_failures: refused
// credentials counted per subject (an address or a token fingerprint) and
// window, shared by every broker of the catalog.
func init() {
	registerMigration(&gormigrate.Migration{
		ID: "0009_gov_auth_failures",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&AuthFailure{})
		},
	})
}

// AuthFailure counts the refused credentials of one subject in one window
// (the window's start, in UTC).
type AuthFailure struct {
	Subject  string    `gorm:"primaryKey;size:200"`
	Window   time.Time `gorm:"primaryKey;column:window_start"`
	Failures int       `gorm:"not null"`
}

// countAuthFailureSQL adds failures to a subject's window, returning the total.
const countAuthFailureSQL = `INSERT INTO auth_failures (subject, window_start, failures) VALUES (?, ?, ?)
	ON CONFLICT (subject, window_start) DO UPDATE SET failures = auth_failures.failures + excluded.failures
	RETURNING failures`

// CountAuthFailures adds n refused credentials of subject to the window
// starting at window and returns how many that window holds now, counted
// by every broker on this catalog. One atomic statement.
func (s *Store) CountAuthFailures(ctx context.Context, subject string, window time.Time, n int) (int, error) {
	if subject == "" || len(subject) > 200 || n < 1 {
		return 0, Invalid("subject", "an authentication failure needs a subject of 1-200 bytes and a positive count")
	}
	var total int
	if err := s.db.WithContext(ctx).Raw(countAuthFailureSQL, subject, window.UTC(), n).Scan(&total).Error; err != nil {
		return 0, fmt.Errorf("count authentication failures of %s: %w", subject, err)
	}
	return total, nil
}

// PruneAuthFailures deletes the windows that started before before.
func (s *Store) PruneAuthFailures(ctx context.Context, before time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("window_start < ?", before.UTC()).Delete(&AuthFailure{})
	if res.Error != nil {
		return 0, fmt.Errorf("prune authentication failures: %w", res.Error)
	}
	return res.RowsAffected, nil
}
