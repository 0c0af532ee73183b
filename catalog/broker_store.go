package catalog

import (
	"context"
	"errors"
	"fmt"
)

// CreateMapping validates m and stores it as version 1 of a new name. A name
// that has any version already is ErrConflict and stores nothing, also when
// two creators race (the (name, version) unique index decides). Its systems
// must exist; an empty region is the source system's.
func (s *Store) CreateMapping(ctx context.Context, m *Mapping) error {
	if m.MaxAttempts == 0 {
		m.MaxAttempts = MaxAttemptsDefault
	}
	if m.TimeoutSeconds == 0 {
		m.TimeoutSeconds = TimeoutSecondsDefault
	}
	if err := m.Validate(); err != nil {
		return err
	}
	src, err := s.GetSystem(ctx, m.Source.V.System)
	if errors.Is(err, ErrNotFound) {
		return Invalid("source.system", "no system named %q", m.Source.V.System)
	} else if err != nil {
		return err
	}
	if _, err := s.GetSystem(ctx, m.Target.V.System); errors.Is(err, ErrNotFound) {
		return Invalid("target.system", "no system named %q", m.Target.V.System)
	} else if err != nil {
		return err
	}
	if m.Region == "" {
		m.Region = src.Region
	}
	m.SourceSystem, m.TargetSystem = m.Source.V.System, m.Target.V.System
	m.ID, m.Version = 0, 1
	if err := translate(s.db.WithContext(ctx).Create(m).Error); err != nil {
		return fmt.Errorf("create mapping %s: %w", m.Name, err)
	}
	return nil
}
