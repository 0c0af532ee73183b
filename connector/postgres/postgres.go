// Package postgres is the PostgreSQL connector: a system of kind "postgres" is
// a database reached through its "dsn" setting (postgres://user@host:port/db
// ?sslmode=..., without a password; the password comes from the system's
// secret "password"), with an optional "max_conns" (connections per run,
// MaxConnsDefault) and "commit_schema" (where the commit-marker table
// weir_commits lives, CommitSchemaDefault).
//
// As a row source it reads a table (schema-qualified names allowed) or a
// single SELECT/WITH query, split into partitions by key ranges, by the
// table's declared partitions or by physical block (ctid) ranges, all read in
// one exported snapshot so that the partitions of a run see the same data.
// Rows travel in the binary protocol and are decoded without reflection.
//
// As a row target it loads an attempt in one transaction, opened by Begin
// with the run's commit marker: rows go in with binary COPY FROM, straight
// into the table (or, for an upsert and for column types without a binary
// form here, into a temporary staging table applied at Commit), and become
// visible together with the marker and the watermark when Commit commits. A
// run is loaded exactly once; a crash leaves nothing behind.
//
// Identifiers are always quoted (pgx.Identifier) and values always bound; the
// password never appears in an error. It imports the standard library,
// connector/spi and pgx only.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/weirdata/weir/connector/spi"
)

// Kind is the system kind this connector serves.
const Kind = "postgres"

// Defaults of the settings.
const (
	// MaxConnsDefault is the connections a run opens at most when the system
	// has no "max_conns" setting: one per reading or writing thread, plus one
	// holding the read snapshot.
	MaxConnsDefault = 10
	// CommitSchemaDefault is the schema of the commit-marker table when the
	// system has no "commit_schema" setting.
	CommitSchemaDefault = "public"
	// ContextDeadlineDelay is how long a connection waits, after its context
	// ended and the server was asked to cancel the statement, before it is
	// closed.
	ContextDeadlineDelay = 5 * time.Second
	// ClientCheckInterval is how often a backend working for this connector
	// checks that its client is still there (PostgreSQL 14 and later).
	ClientCheckInterval = 5 * time.Second
)

// Register adds the postgres connector to r.
func Register(r *spi.Registry) { r.Register(Kind, Open) }

// Conn is an open PostgreSQL system: a pool of connections used by one run.
type Conn struct {
	name         string
	pool         *pgxpool.Pool
	secret       string // the password, only to scrub it from errors
	commitSchema string

	mu     sync.Mutex
	shapes map[string]*shape // by dataset key, see Conn.shape
	snap   *snapshot
	loads  map[*load]struct{} // open loads, rolled back by Close
	// commitTable is set once weir_commits is known to exist.
	commitTable bool
}

var (
	_ spi.RowSource = (*Conn)(nil)
	_ spi.RowTarget = (*Conn)(nil)
)

// Open connects to the system named by sys: its "dsn" setting, with the
// password from sys.Secrets["password"]. A dsn holding a password itself is
// refused, and so is a bad "max_conns"; both are spi.ErrInvalid. The
// connection is tried before Open returns.
func Open(ctx context.Context, sys spi.System) (spi.Conn, error) {
	c, err := open(ctx, sys)
	if err != nil {
		return nil, scrub(&spi.Error{Op: "connect", System: sys.Name, Err: err}, sys.Secrets["password"])
	}
	return c, nil
}

func open(ctx context.Context, sys spi.System) (*Conn, error) {
	dsn := sys.Settings["dsn"]
	if dsn == "" {
		return nil, fmt.Errorf("%w: setting dsn is required (postgres://user@host:5432/db)", spi.ErrInvalid)
	}
	if dsnHasPassword(dsn) {
		// Never echo the dsn: it holds the password.
		return nil, fmt.Errorf("%w: setting dsn must not hold a password; put it in the secret \"password\"", spi.ErrInvalid)
	}
	maxConns := MaxConnsDefault
	if v, ok := sys.Settings["max_conns"]; ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 || n > 1000 {
			return nil, fmt.Errorf("%w: setting max_conns must be an integer from 2 to 1000, got %q", spi.ErrInvalid, v)
		}
		maxConns = n
	}
	commitSchema := CommitSchemaDefault
	if v := sys.Settings["commit_schema"]; v != "" {
		commitSchema = v
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: parse setting dsn: %w", spi.ErrInvalid, err)
	}
	if pw := sys.Secrets["password"]; pw != "" {
		cfg.ConnConfig.Password = pw
	}
	cfg.MaxConns = int32(maxConns)
	cfg.MinConns = 0
	// A fixed session so that values travel the same way whatever the
	// server's defaults: instants in UTC, ISO dates, exact floats.
	rp := cfg.ConnConfig.RuntimeParams
	rp["TimeZone"] = "UTC"
	rp["DateStyle"] = "ISO, YMD"
	rp["IntervalStyle"] = "postgres"
	rp["extra_float_digits"] = "1"
	rp["client_encoding"] = "UTF8"
	rp["standard_conforming_strings"] = "on"
	if rp["application_name"] == "" {
		rp["application_name"] = "weir"
	}
	// A context that ends cancels the statement on the server at once, and
	// gives up on the connection after ContextDeadlineDelay: the server stops
	// work nobody waits for.
	cfg.ConnConfig.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: ContextDeadlineDelay}
	}
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		// A backend whose client died (kill -9 of a worker) notices within
		// seconds even in the middle of a long statement, and rolls back.
		if v, _ := strconv.Atoi(conn.PgConn().ParameterStatus("server_version_num")); v >= 140000 {
			_, err := conn.Exec(ctx, "SET client_connection_check_interval = "+strconv.Itoa(int(ClientCheckInterval.Milliseconds())))
			return err
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping: %w", err)
	}
	return &Conn{
		name:         sys.Name,
		pool:         pool,
		secret:       sys.Secrets["password"],
		commitSchema: commitSchema,
		shapes:       map[string]*shape{},
		loads:        map[*load]struct{}{},
	}, nil
}

// Close rolls back the loads still open, releases the read snapshot, if
// any, and closes every connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	snap := c.snap
	c.snap = nil
	loads := make([]*load, 0, len(c.loads))
	for l := range c.loads {
		loads = append(loads, l)
	}
	c.mu.Unlock()
	for _, l := range loads {
		_ = l.Abort(context.Background())
	}
	if snap != nil {
		snap.release()
	}
	c.pool.Close()
	return nil
}

// fail wraps err as a connector error of op on path, scrubbed of the password.
func (c *Conn) fail(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return scrub(&spi.Error{Op: op, System: c.name, Path: path, Err: err}, c.secret)
}

// dsnHasPassword reports whether a dsn (URL or key=value form) carries a
// password; an unparsable URL counts as one, so that it is never echoed.
func dsnHasPassword(dsn string) bool {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return true
		}
		if _, ok := u.User.Password(); ok {
			return true
		}
		for k := range u.Query() {
			if strings.EqualFold(k, "password") {
				return true
			}
		}
		return false
	}
	return kvPassword.MatchString(dsn)
}

var kvPassword = regexp.MustCompile(`(?i)(^|\s)password\s*=`)

// scrub returns err with every occurrence of secret replaced, keeping the
// chain for errors.Is and errors.As.
func scrub(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &scrubbed{err: err, secret: secret}
}

type scrubbed struct {
	err    error
	secret string
}

func (e *scrubbed) Error() string { return strings.ReplaceAll(e.err.Error(), e.secret, "xxxxx") }
func (e *scrubbed) Unwrap() error { return e.err }

// ctxErr puts ctx's error in err's chain when ctx ended: the server then
// reports its own "canceling statement due to user request".
func ctxErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return err
}

// pgCode returns the SQLSTATE of err, "" when it is not a server error.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// quoteIdent quotes one identifier.
func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }
