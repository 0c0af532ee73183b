package catalog

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// The data plane's catalog (issue 3): the columns of a mapping's
// data-plane declarations, and the user-defined functions mappings call.

func init() {
	registerMigration(&gormigrate.Migration{
		ID: "0005_dataplane",
		Migrate: func(tx *gorm.DB) error {
			// 0001 creates these columns on a fresh catalog (it migrates the
			// Mapping model as it is now); a catalog made before them gets
			// them here, each empty for the mappings it holds.
			m := tx.Migrator()
			for _, col := range []string{"Fields", "Filter", "WriteMode", "WriteKey", "BadRows", "WatermarkColumn", "Tables", "Timezone"} {
				if m.HasColumn(&Mapping{}, col) {
					continue
				}
				if err := m.AddColumn(&Mapping{}, col); err != nil {
					return fmt.Errorf("add mappings column %s: %w", col, err)
				}
			}
			return tx.AutoMigrate(&Function{})
		},
	})
}

// Function is one version of a user-defined function: a named expression
// over its parameters that any mapping may call (full_name(first, last)
// defined as concat(first, " ", last)). Every change stores a new version;
// deleting stores a version marked Deleted, so that the history stays.
type Function struct {
	ID          int64          `gorm:"primaryKey" json:"id"`
	Name        string         `gorm:"size:64;not null;uniqueIndex:idx_function_name_version" json:"name"`
	Version     int            `gorm:"not null;uniqueIndex:idx_function_name_version" json:"version"`
	Params      JSON[[]string] `json:"params"`
	Expr        string         `gorm:"type:text;not null" json:"expr"`
	Description string         `gorm:"size:1000" json:"description,omitempty"`
	Deleted     bool           `gorm:"not null;default:false" json:"deleted,omitempty"`
	CreatedBy   string         `gorm:"size:128" json:"created_by"`
	CreatedAt   time.Time      `json:"created_at"`
}

// TableName keeps user functions apart from anything a database calls functions.
func (Function) TableName() string { return "user_functions" }

// Limits of a function.
const (
	MaxFunctionParams = 32
)

var functionNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,63}$`)

// Validate checks a function's own fields; the broker compiles its body.
func (f *Function) Validate() error {
	if !functionNameRE.MatchString(f.Name) {
		return Invalid("name", "%q is not a function name: use 1-64 lower-case letters, digits and '_', not starting with a digit", f.Name)
	}
	if f.Name == "params" {
		return Invalid("name", `"params" names the run's parameters`)
	}
	if len(f.Params.V) > MaxFunctionParams {
		return Invalid("params", "has %d parameters; at most %d", len(f.Params.V), MaxFunctionParams)
	}
	seen := map[string]bool{}
	for i, p := range f.Params.V {
		at := fmt.Sprintf("params[%d]", i)
		if !identRE.MatchString(p) {
			return Invalid(at, "%q is not a parameter name: use letters, digits and '_', not starting with a digit", p)
		}
		if p == "params" {
			return Invalid(at, `"params" names the run's parameters`)
		}
		if seen[p] {
			return Invalid(at, "parameter %q is named twice", p)
		}
		seen[p] = true
	}
	switch {
	case strings.TrimSpace(f.Expr) == "":
		return Invalid("expr", "is required: the expression the function computes")
	case len(f.Expr) > MaxExprLength:
		return Invalid("expr", "is %d bytes long; at most %d", len(f.Expr), MaxExprLength)
	case strings.ContainsRune(f.Expr, 0):
		return Invalid("expr", "contains a NUL byte")
	}
	if n := utf8.RuneCountInString(f.Description); n > DescriptionMaxLength {
		return Invalid("description", "must be at most %d characters, got %d", DescriptionMaxLength, n)
	}
	return nil
}

// latestFunction returns the latest version of a function, deleted or not.
func latestFunction(tx *gorm.DB, name string) (*Function, error) {
	var f Function
	if err := translate(tx.Where("name = ?", name).Order("version DESC").First(&f).Error); err != nil {
		return nil, err
	}
	return &f, nil
}

// putFunction stores f as the next version of its name, in one transaction
// with the check cur makes of the latest version (nil when there is none).
func (s *Store) putFunction(ctx context.Context, f *Function, check func(cur *Function) error) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if f.Params.V == nil {
		f.Params.V = []string{}
	}
	return s.inTx(ctx, func(tx *gorm.DB) error {
		cur, err := latestFunction(tx, f.Name)
		if errors.Is(err, ErrNotFound) {
			cur = nil
		} else if err != nil {
			return err
		}
		if err := check(cur); err != nil {
			return err
		}
		f.ID, f.Version = 0, 1
		if cur != nil {
			f.Version = cur.Version + 1
		}
		f.CreatedAt = s.now()
		return translate(tx.Create(f).Error)
	})
}

// CreateFunction stores version 1 of a new function, or the next version of
// one that was deleted. A function of that name that exists is ErrConflict.
func (s *Store) CreateFunction(ctx context.Context, f *Function) error {
	f.Deleted = false
	err := s.putFunction(ctx, f, func(cur *Function) error {
		if cur != nil && !cur.Deleted {
			return fmt.Errorf("%w: function %s exists (version %d)", ErrConflict, f.Name, cur.Version)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create function %s: %w", f.Name, err)
	}
	return nil
}

// UpdateFunction stores a new version of an existing function; a missing or
// deleted one is ErrNotFound.
func (s *Store) UpdateFunction(ctx context.Context, f *Function) error {
	f.Deleted = false
	err := s.putFunction(ctx, f, func(cur *Function) error {
		if cur == nil || cur.Deleted {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update function %s: %w", f.Name, err)
	}
	return nil
}

// GetFunction returns the latest version of a function; a missing or
// deleted one is ErrNotFound.
func (s *Store) GetFunction(ctx context.Context, name string) (*Function, error) {
	f, err := latestFunction(s.db.WithContext(ctx), name)
	if err == nil && f.Deleted {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get function %s: %w", name, err)
	}
	return f, nil
}

// GetFunctionVersion returns one version of a function, deleted ones included.
func (s *Store) GetFunctionVersion(ctx context.Context, name string, version int) (*Function, error) {
	var f Function
	if err := translate(s.db.WithContext(ctx).Where("name = ? AND version = ?", name, version).First(&f).Error); err != nil {
		return nil, fmt.Errorf("get function %s v%d: %w", name, version, err)
	}
	return &f, nil
}

// ListFunctions returns the latest version of every function not deleted, by name.
func (s *Store) ListFunctions(ctx context.Context) ([]Function, error) {
	var all []Function
	err := s.db.WithContext(ctx).
		Where("version = (SELECT MAX(f2.version) FROM user_functions f2 WHERE f2.name = user_functions.name)").
		Order("name").Find(&all).Error
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	out := all[:0]
	for _, f := range all {
		if !f.Deleted {
			out = append(out, f)
		}
	}
	return out, nil
}

// FunctionUsers returns, by name, the enabled mappings (latest versions)
// and the functions whose expressions call the function name.
func (s *Store) FunctionUsers(ctx context.Context, name string) (mappings, functions []string, err error) {
	call := regexp.MustCompile(`(^|[^A-Za-z0-9_$.])` + regexp.QuoteMeta(name) + `\s*\(`)
	ms, err := s.ListMappings(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("find users of function %s: %w", name, err)
	}
	for _, m := range ms {
		if !m.Enabled {
			continue
		}
		exprs := []string{m.Filter}
		for _, f := range m.Fields.V {
			exprs = append(exprs, f.Expr)
		}
		for _, e := range exprs {
			if call.MatchString(e) {
				mappings = append(mappings, m.Name)
				break
			}
		}
	}
	fs, err := s.ListFunctions(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range fs {
		if f.Name != name && call.MatchString(f.Expr) {
			functions = append(functions, f.Name)
		}
	}
	sort.Strings(mappings)
	sort.Strings(functions)
	return mappings, functions, nil
}

// DeleteFunction stores a deleted version of a function that no enabled
// mapping and no other function calls (ErrConflict naming them otherwise);
// a missing or deleted one is ErrNotFound.
func (s *Store) DeleteFunction(ctx context.Context, name, by string) error {
	ms, fs, err := s.FunctionUsers(ctx, name)
	if err != nil {
		return err
	}
	if len(ms) > 0 || len(fs) > 0 {
		var users []string
		if len(ms) > 0 {
			users = append(users, "mappings "+strings.Join(ms, ", "))
		}
		if len(fs) > 0 {
			users = append(users, "functions "+strings.Join(fs, ", "))
		}
		return fmt.Errorf("delete function %s: %w: called by %s", name, ErrConflict, strings.Join(users, " and "))
	}
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		cur, err := latestFunction(tx, name)
		if err != nil {
			return err
		}
		if cur.Deleted {
			return ErrNotFound
		}
		tomb := *cur
		tomb.ID, tomb.Version, tomb.Deleted, tomb.CreatedBy, tomb.CreatedAt = 0, cur.Version+1, true, by, s.now()
		return translate(tx.Create(&tomb).Error)
	})
	if err != nil {
		return fmt.Errorf("delete function %s: %w", name, err)
	}
	return nil
}
