package catalog

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// MaxHoldLimit is the longest maximum hold time a mapping may set.
const MaxHoldLimit = 7 * 24 * time.Hour

// Migration 0009_gov_max_hold adds mappings.max_hold_ns: a mapping's own
// maximum hold time, 0 (the region's) for the mappings already stored.
func init() {
	registerMigration(&gormigrate.Migration{
		ID: "0009_gov_max_hold",
		Migrate: func(tx *gorm.DB) error {
			m := tx.Migrator()
			if m.HasColumn(&Mapping{}, "MaxHold") {
				return nil
			}
			if err := m.AddColumn(&Mapping{}, "MaxHold"); err != nil {
				return fmt.Errorf("add mappings column max_hold_ns: %w", err)
			}
			return nil
		},
	})
}

// Duration is a time.Duration stored as nanoseconds and written in JSON as
// a duration string ("30m0s"); it reads one back ("30m", "1h30m").
type Duration time.Duration

// String is the duration in Go's notation ("30m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string ("30m"); "" is zero.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"30m\": %w", err)
	}
	v, err := ParseMaxHold(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseMaxHold reads a mapping's maximum hold time ("30m", "2h"): "" is
// zero (the region's); anything else must be a positive duration of at most
// MaxHoldLimit. A bad value is a *ValidationError on max_hold.
func ParseMaxHold(s string) (Duration, error) {
	if s == "" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, Invalid("max_hold", "%q is not a duration; write it like 30m, 2h or 90s", s)
	}
	d := Duration(v)
	if err := validateMaxHold(d, true); err != nil {
		return 0, err
	}
	return d, nil
}

// validateMaxHold checks a maximum hold time; zero is allowed (unset) unless given.
func validateMaxHold(d Duration, given bool) error {
	switch {
	case d == 0 && !given:
		return nil
	case d <= 0:
		return Invalid("max_hold", "must be positive, got %s", d)
	case time.Duration(d) > MaxHoldLimit:
		return Invalid("max_hold", "must be at most %s (7 days), got %s", MaxHoldLimit, d)
	}
	return nil
}

// HoldLimit is how long a run of m may stay held by health before it is
// aborted: the mapping's own maximum hold time, else region (the region's).
func (m *Mapping) HoldLimit(region time.Duration) time.Duration {
	if m.MaxHold > 0 {
		return time.Duration(m.MaxHold)
	}
	return region
}
