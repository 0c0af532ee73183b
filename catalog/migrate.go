package catalog

import (
	"context"
	"fmt"
	"sort"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrations are forward-only and applied in the order of their IDs. Never
// edit one that has shipped: add a new one. The first creates the tables of
// issue 2 from the models as they are when it runs; later ones change the
// schema with idempotent calls (AutoMigrate of their own tables, HasColumn
// before AddColumn), each in the file of the concept it serves, registered
// with registerMigration from an init function. IDs are reserved here so that
// parallel work never collides:
//
//	0001_initial      users, tokens, entitlements, systems, mappings, runs, attempts, tasks, events, nodes, leases
//	0002_profiler     host samples, rollups, baselines, health thresholds (profiler_store.go)
//	0003_governance   alerts, services, audit log (alert_store.go, service_store.go)
//	0004_schedules    schedules and their fired ticks (schedule_store.go)
//	0005_dataplane    mapping fields, transforms, user functions, watermarks (dataplane_store.go)
//	0006_federation   regions, replication state (federation_store.go)
//	0007_audit        audit log, discovered system attributes (audit_store.go)
//	0008_governance   run holds (governance_store.go)
//	0008_sessions_groups  sessions, groups, group members, entitlements.group_id (session_store.go)
//	0009_gov_max_hold mappings.max_hold_ns, a mapping's maximum hold time (max_hold.go)
//	0009_gov_node_commands  external commands the monitors supervise (node_command_store.go)
//	0009_gov_auth_failures  refused credentials counted per subject and window, for all brokers (auth_failure_store.go)
//	0009_node_tokens  per-node credentials for calls between nodes (node_token.go)
//
// Migrations run sorted by ID; two IDs sharing a number were written in
// parallel and touch different tables.
var migrations = []*gormigrate.Migration{
	{
		ID: "0001_initial",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&User{}, &Token{}, &Entitlement{}, &System{}, &Mapping{},
				&Run{}, &RunAttempt{}, &RunTask{}, &RunEvent{}, &Node{}, &Lease{})
		},
	},
}

// registerMigration adds m to the migrations; called from init functions.
// An ID registered twice is a programming error and panics.
func registerMigration(m *gormigrate.Migration) {
	for _, o := range migrations {
		if o.ID == m.ID {
			panic("catalog: migration " + m.ID + " registered twice")
		}
	}
	migrations = append(migrations, m)
	sort.Slice(migrations, func(i, j int) bool { return migrations[i].ID < migrations[j].ID })
}

// migrationLockID is the PostgreSQL advisory lock that serialises concurrent migrators.
const migrationLockID = 0x5745_4952 // "WEIR"

// Migrate applies every pending migration. Concurrent callers on PostgreSQL
// wait for each other; the schema changes of one run commit together.
func (s *Store) Migrate(ctx context.Context) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.dialect == DialectPostgres {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrationLockID).Error; err != nil {
				return err
			}
		}
		m := gormigrate.New(tx, &gormigrate.Options{TableName: "schema_migrations", IDColumnName: "id", IDColumnSize: 64}, migrations)
		return m.Migrate()
	})
	if err != nil {
		return fmt.Errorf("migrate catalog: %w", err)
	}
	return nil
}

// AppliedMigrations lists the IDs of the migrations the catalog has.
func (s *Store) AppliedMigrations(ctx context.Context) ([]string, error) {
	var ids []string
	err := s.db.WithContext(ctx).Table("schema_migrations").Order("id").Pluck("id", &ids).Error
	return ids, err
}

// LatestMigration is the ID of the newest migration this binary knows.
func LatestMigration() string { return migrations[len(migrations)-1].ID }
