package catalog

import (
	"context"
	"fmt"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrations are forward-only and applied in order. Never edit one that has
// shipped: add a new one. Migrations after the first change the schema with
// explicit, idempotent Migrator calls (HasColumn before AddColumn), because the
// first one creates the tables from the models as they are when it runs.
var migrations = []*gormigrate.Migration{
	{
		ID: "0001_initial",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&User{}, &Token{}, &Entitlement{}, &System{}, &Mapping{},
				&Run{}, &RunAttempt{}, &RunTask{}, &RunEvent{}, &Node{}, &Lease{})
		},
	},
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
