package catalog

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// System kinds known to the catalog. Connectors register the same names.
const (
	KindFS       = "fs"
	KindNull     = "null"
	KindPostgres = "postgres"
	KindMySQL    = "mysql"
	KindSQLite   = "sqlite"
)

// KnownKinds lists the system kinds a System may have. Connector packages
// implement them; the list grows as connectors are added.
var KnownKinds = []string{KindFS, KindNull, KindPostgres, KindMySQL, KindSQLite}

// SettingMaxThreads is the system setting that caps the threads of a run
// reading or writing the system.
const SettingMaxThreads = "max_threads"

var (
	// pgKeywordPassword finds a password in a key=value PostgreSQL DSN.
	pgKeywordPassword = regexp.MustCompile(`(?i)(^|\s)password\s*=`)
	// mysqlDSN is user[:password]@proto(addr)/dbname[?params].
	mysqlDSN = regexp.MustCompile(`^([^@]*)@([a-z0-9]+)(\([^)]*\))?/([^?/]+)(\?.*)?$`)
)

// Validate checks a system's own fields.
func (sys *System) Validate() error {
	if err := ValidateName("name", sys.Name); err != nil {
		return err
	}
	if !oneOf(sys.Kind, KnownKinds) {
		return Invalid("kind", "must be one of %s; got %q", strings.Join(KnownKinds, ", "), sys.Kind)
	}
	if sys.Region == "" {
		return Invalid("region", "is required")
	}
	if err := ValidateName("region", sys.Region); err != nil {
		return err
	}
	if sys.MaxConcurrentRuns < 0 {
		return Invalid("max_concurrent_runs", "must be 0 (no limit) or more, got %d", sys.MaxConcurrentRuns)
	}
	set := sys.Settings.V
	for k, v := range set {
		if strings.EqualFold(k, "password") || strings.EqualFold(k, "passwd") {
			return Invalid("settings."+k, "a password is a secret: give it in secrets.password, which is never shown")
		}
		if strings.ContainsRune(v, 0) {
			return Invalid("settings."+k, "contains a NUL byte")
		}
	}
	if v, ok := set[SettingMaxThreads]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err != nil || n < 1 {
			return Invalid("settings."+SettingMaxThreads, "must be a positive integer, got %q", v)
		}
	}
	switch sys.Kind {
	case KindFS:
		root := set["root"]
		if root == "" || !strings.HasPrefix(root, "/") {
			return Invalid("settings.root", "an fs system needs an absolute root directory, got %q", root)
		}
		if slices.Contains(strings.Split(root, "/"), "..") || strings.ContainsRune(root, 0) {
			return Invalid("settings.root", "%q must name its directory without '..'", root)
		}
	case KindPostgres:
		return validatePostgresSettings(set)
	case KindMySQL:
		return validateMySQLSettings(set)
	case KindSQLite:
		return validateSQLiteSettings(set)
	}
	return nil
}

// validatePostgresSettings checks a postgres system: a dsn without a
// password (postgres://user@host:5432/db or key=value pairs), and
// max_conns from 2 to 1000 when given.
func validatePostgresSettings(set map[string]string) error {
	dsn := set["dsn"]
	if dsn == "" {
		return Invalid("settings.dsn", "a postgres system needs a dsn (postgres://user@host:5432/db)")
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// Never echo the dsn: it may hold a password.
			return Invalid("settings.dsn", "is not a URL of the form postgres://user@host:5432/db")
		}
		if _, has := u.User.Password(); has || u.Query().Has("password") {
			return Invalid("settings.dsn", "must not hold a password; give it in secrets.password")
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return Invalid("settings.dsn", "names no host (postgres://user@host:5432/db)")
		}
	} else {
		if !strings.Contains(dsn, "=") {
			return Invalid("settings.dsn", "is neither a postgres:// URL nor key=value pairs (host=... dbname=...)")
		}
		if pgKeywordPassword.MatchString(dsn) {
			return Invalid("settings.dsn", "must not hold a password; give it in secrets.password")
		}
	}
	if v, ok := set["max_conns"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 2 || n > 1000 {
			return Invalid("settings.max_conns", "must be an integer from 2 to 1000, got %q", v)
		}
	}
	return nil
}

// validateMySQLSettings checks a mysql system: a dsn of the form
// user@tcp(host:3306)/db, without a password.
func validateMySQLSettings(set map[string]string) error {
	dsn := set["dsn"]
	if dsn == "" {
		return Invalid("settings.dsn", "a mysql system needs a dsn (user@tcp(host:3306)/db)")
	}
	m := mysqlDSN.FindStringSubmatch(dsn)
	if m == nil {
		if !strings.Contains(dsn, "@") {
			return Invalid("settings.dsn", "names no user: the form is user@tcp(host:3306)/db")
		}
		return Invalid("settings.dsn", "is not of the form user@tcp(host:3306)/db (a database is required)")
	}
	if strings.Contains(m[1], ":") {
		return Invalid("settings.dsn", "must not hold a password; give it in secrets.password")
	}
	if strings.Contains(strings.ToLower(m[5]), "password=") {
		return Invalid("settings.dsn", "must not hold a password; give it in secrets.password")
	}
	return nil
}

// validateSQLiteSettings checks a sqlite system: the database file in path
// (or dsn), absolute unless a root directory confines it; root absolute.
func validateSQLiteSettings(set map[string]string) error {
	p, field := set["path"], "settings.path"
	if p == "" {
		p, field = set["dsn"], "settings.dsn"
	}
	if p == "" {
		return Invalid("settings.path", "a sqlite system needs the path of its database file")
	}
	root := set["root"]
	if root == "" {
		if !strings.HasPrefix(p, "/") {
			return Invalid(field, "%q must be absolute when the system has no root directory", p)
		}
		return nil
	}
	if !strings.HasPrefix(root, "/") || slices.Contains(strings.Split(root, "/"), "..") {
		return Invalid("settings.root", "must be an absolute directory without '..', got %q", root)
	}
	if !strings.HasPrefix(p, "/") {
		if _, err := CleanRelPath(field, p); err != nil {
			return err
		}
	} else if rel := strings.TrimPrefix(p, strings.TrimSuffix(root, "/")+"/"); rel == p {
		return Invalid(field, "%q is outside the root %s", p, root)
	}
	return nil
}

// CreateSystem inserts a system; an existing name is ErrConflict.
func (s *Store) CreateSystem(ctx context.Context, sys *System) error {
	if err := sys.Validate(); err != nil {
		return err
	}
	if err := translate(s.db.WithContext(ctx).Create(sys).Error); err != nil {
		return fmt.Errorf("create system %s: %w", sys.Name, err)
	}
	return nil
}

// GetSystem returns a system by name.
func (s *Store) GetSystem(ctx context.Context, name string) (*System, error) {
	var sys System
	if err := translate(s.db.WithContext(ctx).Where("name = ?", name).First(&sys).Error); err != nil {
		return nil, fmt.Errorf("get system %s: %w", name, err)
	}
	return &sys, nil
}

// ListSystems returns every system by name.
func (s *Store) ListSystems(ctx context.Context) ([]System, error) {
	var out []System
	return out, s.db.WithContext(ctx).Order("name").Find(&out).Error
}

// UpdateSystem replaces a system's kind, region, settings, secrets (when
// non-nil) and limit, found by name.
func (s *Store) UpdateSystem(ctx context.Context, sys *System) error {
	if err := sys.Validate(); err != nil {
		return err
	}
	cur, err := s.GetSystem(ctx, sys.Name)
	if err != nil {
		return err
	}
	up := map[string]any{
		"kind": sys.Kind, "region": sys.Region, "settings": sys.Settings,
		"max_concurrent_runs": sys.MaxConcurrentRuns, "updated_at": s.now(),
	}
	if sys.Secrets.V != nil {
		up["secrets"] = sys.Secrets
	}
	if err := s.db.WithContext(ctx).Model(&System{}).Where("id = ?", cur.ID).Updates(up).Error; err != nil {
		return fmt.Errorf("update system %s: %w", sys.Name, err)
	}
	got, err := s.GetSystem(ctx, sys.Name)
	if err != nil {
		return err
	}
	*sys = *got
	return nil
}

// DeleteSystem removes a system that no enabled mapping uses: the current
// version of a mapping counts, not its history.
func (s *Store) DeleteSystem(ctx context.Context, name string) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var users []string
		if err := tx.Model(&Mapping{}).
			Where("(source_system = ? OR target_system = ?) AND enabled = ?", name, name, true).
			Where("version = (SELECT MAX(m2.version) FROM mappings m2 WHERE m2.name = mappings.name)").
			Order("name").Distinct().Pluck("name", &users).Error; err != nil {
			return err
		}
		if len(users) > 0 {
			return fmt.Errorf("%w: used by mappings %s", ErrConflict, strings.Join(users, ", "))
		}
		res := tx.Where("name = ?", name).Delete(&System{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete system %s: %w", name, err)
	}
	return nil
}

// PutMapping validates m and stores it as the next version of its name
// (version 1 for a new name). Its systems must exist.
func (s *Store) PutMapping(ctx context.Context, m *Mapping) error {
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
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		var cur int
		if err := tx.Model(&Mapping{}).Where("name = ?", m.Name).Select("COALESCE(MAX(version), 0)").Scan(&cur).Error; err != nil {
			return err
		}
		m.ID = 0
		m.Version = cur + 1
		m.CreatedAt = s.now() // each version is made now, also when m was read from an older one
		return translate(tx.Create(m).Error)
	})
	if err != nil {
		return fmt.Errorf("put mapping %s: %w", m.Name, err)
	}
	return nil
}

// GetMapping returns the latest version of a mapping.
func (s *Store) GetMapping(ctx context.Context, name string) (*Mapping, error) {
	var m Mapping
	if err := translate(s.db.WithContext(ctx).Where("name = ?", name).Order("version DESC").First(&m).Error); err != nil {
		return nil, fmt.Errorf("get mapping %s: %w", name, err)
	}
	return &m, nil
}

// GetMappingVersion returns one version of a mapping.
func (s *Store) GetMappingVersion(ctx context.Context, name string, version int) (*Mapping, error) {
	var m Mapping
	if err := translate(s.db.WithContext(ctx).Where("name = ? AND version = ?", name, version).First(&m).Error); err != nil {
		return nil, fmt.Errorf("get mapping %s v%d: %w", name, version, err)
	}
	return &m, nil
}

// ListMappings returns the latest version of every mapping, by name.
func (s *Store) ListMappings(ctx context.Context) ([]Mapping, error) {
	var out []Mapping
	err := s.db.WithContext(ctx).
		Where("version = (SELECT MAX(m2.version) FROM mappings m2 WHERE m2.name = mappings.name)").
		Order("name").Find(&out).Error
	return out, err
}

// DisableMapping stores a new, disabled version of a mapping: runs can no
// longer be submitted, and its history stays.
func (s *Store) DisableMapping(ctx context.Context, name, by string) error {
	m, err := s.GetMapping(ctx, name)
	if err != nil {
		return err
	}
	if !m.Enabled {
		return nil
	}
	m.Enabled = false
	m.CreatedBy = by
	return s.PutMapping(ctx, m)
}
