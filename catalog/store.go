package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialects the Store speaks.
const (
	DialectPostgres = "postgres"
	DialectSQLite   = "sqlite"
)

// Wake-up channels: a notification means "look again"; polling stays the truth.
const (
	ChannelRunsPending  = "weir_runs_pending"  // a run became pending: the manager should plan
	ChannelRunsQueued   = "weir_runs_queued"   // a run was assigned: workers should claim
	ChannelRunsFinished = "weir_runs_finished" // capacity was freed: the manager should plan
)

// StoreConfig configures Open. Its zero value, with a DSN, works.
type StoreConfig struct {
	// DSN is a postgres:// URL, or sqlite:PATH, or a path ending in .db, or ":memory:".
	DSN string
	// Logger receives slow-query and error logs; nil discards them.
	Logger *slog.Logger
	// MaxOpenConns bounds the PostgreSQL pool; SQLite always uses one connection.
	MaxOpenConns int
	// SlowQuery is the threshold above which a query is logged as slow.
	SlowQuery time.Duration
}

// Defaults for StoreConfig.
const (
	MaxOpenConnsDefault = 10
	SlowQueryDefault    = 500 * time.Millisecond
)

// WithDefaults fills zero fields with their defaults.
func (c StoreConfig) WithDefaults() StoreConfig {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = MaxOpenConnsDefault
	}
	if c.SlowQuery == 0 {
		c.SlowQuery = SlowQueryDefault
	}
	return c
}

// Store is the catalog: every read and write of Weir's state goes through it.
type Store struct {
	db      *gorm.DB
	dialect string
	dsn     string
	log     *slog.Logger
	bus     *localBus
	clock   atomic.Pointer[func() time.Time]
}

// Open connects to the catalog named by cfg.DSN. It does not migrate; call Migrate.
func Open(ctx context.Context, cfg StoreConfig) (*Store, error) {
	cfg = cfg.WithDefaults()
	dialect, dsn, err := parseDSN(cfg.DSN)
	if err != nil {
		return nil, err
	}
	st := &Store{dialect: dialect, dsn: dsn, log: cfg.Logger, bus: newLocalBus()}
	st.SetClock(time.Now)
	gcfg := &gorm.Config{
		Logger: logger.NewSlogLogger(cfg.Logger, logger.Config{
			SlowThreshold:             cfg.SlowQuery,
			LogLevel:                  logger.Warn,
			IgnoreRecordNotFoundError: true,
			ParameterizedQueries:      true, // never log values: they may hold secrets
		}),
		NowFunc:        st.now, // created_at and updated_at follow SetClock too
		TranslateError: true,
	}
	var dial gorm.Dialector
	switch dialect {
	case DialectPostgres:
		dial = postgres.Open(dsn)
	case DialectSQLite:
		dial = sqlite.Open(dsn)
	}
	db, err := gorm.Open(dial, gcfg)
	if err != nil {
		return nil, fmt.Errorf("open %s catalog: %w", dialect, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s catalog: %w", dialect, err)
	}
	if dialect == DialectSQLite {
		// One connection serialises writers, so SQLite never answers "busy".
		sqlDB.SetMaxOpenConns(1)
	} else {
		sqlDB.SetMaxOpenConns(cfg.MaxOpenConns)
		sqlDB.SetMaxIdleConns(cfg.MaxOpenConns)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("connect to %s catalog: %w", dialect, err)
	}
	st.db = db
	return st, nil
}

func parseDSN(dsn string) (dialect, out string, err error) {
	switch {
	case dsn == "":
		return "", "", Invalid("catalog", "no catalog given: pass --catalog postgres://... or a SQLite path ending in .db")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return DialectPostgres, dsn, nil
	case dsn == ":memory:":
		return DialectSQLite, "file::memory:?_pragma=foreign_keys(1)", nil
	case strings.HasPrefix(dsn, "sqlite:"), strings.HasSuffix(dsn, ".db"):
		p := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "//")
		if p == "" {
			return "", "", Invalid("catalog", "sqlite: needs a file path")
		}
		if dir := filepath.Dir(p); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return "", "", fmt.Errorf("create catalog directory %s: %w", dir, err)
			}
		}
		return DialectSQLite, "file:" + p + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate", nil
	default:
		return "", "", Invalid("catalog", "%q is neither a postgres:// URL nor a SQLite path ending in .db", RedactDSN(dsn))
	}
}

// RedactDSN returns dsn with its passwords replaced by "xxxxx", for errors,
// logs and printed configuration: the password of a URL's user info (also
// in a URL that does not parse, such as one with an unescaped '#' in its
// password), and password= and sslpassword= in a query or key=value form.
func RedactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		head, rest := dsn[:i+3], dsn[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 {
				rest = rest[:colon] + ":xxxxx" + rest[at:]
			}
		}
		dsn = head + rest
	}
	return dsnPassword.ReplaceAllString(dsn, "${1}xxxxx")
}

// dsnPassword matches a password setting of a DSN's query or key=value form.
var dsnPassword = regexp.MustCompile(`(?i)\b((?:ssl)?password=)('[^']*'|[^\s&]+)`)

// Dialect returns DialectPostgres or DialectSQLite.
func (s *Store) Dialect() string { return s.dialect }

// Close closes the connection pool.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Ping checks that the catalog answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// SetClock replaces the Store's clock (for tests); it is safe to call while
// the Store is in use.
func (s *Store) SetClock(now func() time.Time) { s.clock.Store(&now) }

// Now returns the Store's current time (UTC).
func (s *Store) Now() time.Time { return s.now() }

// now reads the clock, always in UTC: SQLite stores times as text, which
// compares correctly only when every time has the same zone.
func (s *Store) now() time.Time { return (*s.clock.Load())().UTC() }

// inTx runs fn in a transaction and, once it committed, wakes the listeners of channels.
func (s *Store) inTx(ctx context.Context, fn func(tx *gorm.DB) error, channels ...string) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := fn(tx); err != nil {
			return err
		}
		if s.dialect == DialectPostgres {
			for _, ch := range channels {
				if err := tx.Exec("SELECT pg_notify(?, '')", ch).Error; err != nil {
					return fmt.Errorf("notify %s: %w", ch, err)
				}
			}
		}
		return nil
	})
	if err == nil {
		for _, ch := range channels {
			s.bus.publish(ch)
		}
	}
	return err
}

// translate maps gorm's errors to the catalog's sentinels.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return ErrNotFound
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return err
}
