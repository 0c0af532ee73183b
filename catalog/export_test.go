package catalog

import (
	"fmt"
	"time"
)

// Test-only access to internals, for the external conformance suite.

// RawRows returns every row of table with each column as the database gives
// it, so that tests can check what is really stored.
func (s *Store) RawRows(table string) ([]map[string]any, error) {
	var rows []map[string]any
	if err := s.db.Table(table).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	return rows, nil
}

// SetClock replaces the generator's clock.
func (g *RunIDGenerator) SetClock(now func() time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.now = now
}

// SetState sets the generator's last millisecond and sequence.
func (g *RunIDGenerator) SetState(lastMS int64, seq uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lastMS, g.seq = lastMS, seq
}
