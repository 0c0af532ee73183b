package catalog

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm/clause"
)

// Service kinds: a service runs inside the Weir process or as an external command.
const (
	ServiceInProcess = "inprocess"
	ServiceCommand   = "command"
)

// Service statuses.
const (
	// ServiceRunning: the service is up.
	ServiceRunning = "running"
	// ServiceRestarting: it died and waits (its backoff) to be started again.
	ServiceRestarting = "restarting"
	// ServiceFailed: it keeps dying (it flaps); an alert is open and it is
	// restarted with the longest backoff.
	ServiceFailed = "failed"
	// ServiceStopped: it was stopped with its node.
	ServiceStopped = "stopped"
)

// ServiceStatuses lists the statuses a Service may have.
var ServiceStatuses = []string{ServiceRunning, ServiceRestarting, ServiceFailed, ServiceStopped}

// Service is one service that must run on a node, as its node's monitor last
// saw it: one row per node and service name.
type Service struct {
	Node string `gorm:"primaryKey;size:128" json:"node"`
	Name string `gorm:"primaryKey;size:64" json:"name"`
	Kind string `gorm:"size:16;not null" json:"kind"`
	// Status is ServiceRunning, ServiceRestarting, ServiceFailed or ServiceStopped.
	Status string `gorm:"size:16;not null" json:"status"`
	// Restarts counts the restarts since the node's monitor started.
	Restarts int `gorm:"not null;default:0" json:"restarts"`
	// LastError is why the service last died.
	LastError string     `gorm:"size:4000;not null;default:''" json:"last_error,omitempty"`
	LastStart *time.Time `json:"last_start,omitempty"`
	LastExit  *time.Time `json:"last_exit,omitempty"`
	// PID is the process ID of a running command (0 otherwise).
	PID       int       `gorm:"column:pid;not null;default:0" json:"pid,omitempty"`
	UpdatedAt time.Time `gorm:"not null" json:"updated_at"`
}

// Validate checks a service row.
func (sv *Service) Validate() error {
	switch {
	case sv.Node == "" || len(sv.Node) > 128 || strings.ContainsRune(sv.Node, 0):
		return Invalid("node", "a service needs its node's ID (1-128 characters), got %q", sv.Node)
	case sv.Name == "" || len(sv.Name) > 64 || strings.ContainsRune(sv.Name, 0):
		return Invalid("name", "a service needs a name of 1-64 characters, got %q", sv.Name)
	case sv.Kind != ServiceInProcess && sv.Kind != ServiceCommand:
		return Invalid("kind", "must be %s or %s; got %q", ServiceInProcess, ServiceCommand, sv.Kind)
	case !slices.Contains(ServiceStatuses, sv.Status):
		return Invalid("status", "must be one of %s; got %q", strings.Join(ServiceStatuses, ", "), sv.Status)
	case sv.Restarts < 0:
		return Invalid("restarts", "must be 0 or more, got %d", sv.Restarts)
	}
	return nil
}

// UpsertService writes a service's row (every column; UpdatedAt is now).
func (s *Store) UpsertService(ctx context.Context, sv *Service) error {
	if err := sv.Validate(); err != nil {
		return err
	}
	sv.LastError = alertText(sv.LastError, errorTextMax)
	sv.UpdatedAt = s.now()
	for _, t := range []**time.Time{&sv.LastStart, &sv.LastExit} {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "node"}, {Name: "name"}},
		DoUpdates: clause.AssignmentColumns([]string{"kind", "status", "restarts", "last_error", "last_start", "last_exit", "pid", "updated_at"}),
	}).Create(sv).Error
	if err != nil {
		return fmt.Errorf("record service %s/%s: %w", sv.Node, sv.Name, err)
	}
	return nil
}

// ListServices returns the services of node ("" for every node), by node and name.
func (s *Store) ListServices(ctx context.Context, node string) ([]Service, error) {
	q := s.db.WithContext(ctx).Order("node, name")
	if node != "" {
		q = q.Where("node = ?", node)
	}
	var out []Service
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	return out, nil
}

// PruneServices deletes the rows of node's services not named in keep (the
// services its monitor no longer runs) and returns how many it deleted.
func (s *Store) PruneServices(ctx context.Context, node string, keep []string) (int64, error) {
	if node == "" {
		return 0, Invalid("node", "pruning services needs the node's ID")
	}
	q := s.db.WithContext(ctx).Where("node = ?", node)
	if len(keep) > 0 {
		q = q.Where("name NOT IN ?", keep)
	}
	res := q.Delete(&Service{})
	if res.Error != nil {
		return 0, fmt.Errorf("prune services of %s: %w", node, res.Error)
	}
	return res.RowsAffected, nil
}
