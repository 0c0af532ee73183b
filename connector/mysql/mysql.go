// Package mysql is the connector of kind "mysql": a MySQL or MariaDB
// database as a row source and a row target, through go-sql-driver/mysql.
//
// # Settings
//
// "dsn" is the driver's DSN without a password,
// user@tcp(127.0.0.1:3306)/db[?params]; the password comes from the
// system's secret "password" and never appears in an error or a log line
// (the DSN is never formatted with it: the driver's Config goes straight to
// its Connector). The DSN's database holds the commit-marker table
// (weir_commits) and is where table names without a "db." prefix live.
// Sessions run with time_zone '+00:00', times parsed in UTC, utf8mb4, and
// STRICT_ALL_TABLES added to the server's sql_mode so that a value a column
// cannot hold is an error and never a warning.
//
// # Types
//
//	TINYINT(1), BOOLEAN, BIT(1)            bool (0 and 1; other values are bad rows)
//	other integers, YEAR                   int
//	BIGINT UNSIGNED                        decimal (it may not fit an int64)
//	FLOAT, DOUBLE                          float
//	DECIMAL, NUMERIC                       decimal, exact text
//	CHAR, VARCHAR, TEXT, JSON, ENUM, SET, TIME  string
//	DATE                                   date
//	DATETIME, TIMESTAMP                    timestamp, UTC, microseconds
//	BINARY, VARBINARY, BLOB, BIT(n), spatial  bytes
//
// TINYINT(1) is read as bool because it is what BOOLEAN declares, so a
// boolean column survives a round trip through MySQL. The width is only
// known from information_schema, so a Query's TINYINT column is an int and
// its BIT column bytes. A DATE or DATETIME of zero ('0000-00-00') is a bad
// row. Timestamps keep microseconds, MySQL's limit.
//
// # Reading
//
// A source is a table (Dataset.Table, "db.table" or "table") or a single
// SELECT/WITH query read as a derived table. Options["partition_by"] names
// an integer column whose [min, max] is split into key ranges (NULL keys go
// to the first); otherwise a dataset is one partition. A watermark reads
// rows with column > After.
//
// # Loading
//
// A load stages rows into `weir_stage_<run>_<attempt>` (CREATE TABLE ...
// LIKE the target, next to it; Begin first drops those of the run's earlier
// attempts) from every thread in parallel, each batch in one transaction:
// by LOAD DATA LOCAL INFILE streamed from memory when the server allows it
// (@@local_infile; measured 1.4x to 1.7x faster), checked for warnings and
// for the count of rows taken, since LOCAL turns errors into warnings;
// otherwise by multi-row prepared INSERTs. It then commits in one transaction: the run's marker row in
// weir_commits (a second commit of the run finds it and changes nothing),
// DELETE (truncate_insert; TRUNCATE would commit implicitly), and INSERT ...
// SELECT from the staging table (upsert: ON DUPLICATE KEY UPDATE, the key
// being the primary key or a unique index). The staging table is dropped
// after the commit, as DROP TABLE commits implicitly too. The target must
// use a transactional engine (InnoDB). Because the staging table copies the
// target's unique keys, a key given twice in one load fails when staged,
// in every mode.
//
// It imports the standard library, connector/spi, connector/sqlrow and the driver.
package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	drv "github.com/go-sql-driver/mysql"

	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/connector/sqlrow"
)

// Kind is the system kind this connector serves.
const Kind = "mysql"

// Register adds the mysql connector to r.
func Register(r *spi.Registry) { r.Register(Kind, Open) }

// Defaults of a connection.
const (
	// MaxIdleConnsDefault is how many idle connections a Conn keeps. Open
	// connections are not capped here: a run's threads each hold one while
	// they read or write, and capping them could leave a writer waiting on
	// readers that wait on it; the workload manager bounds a system's runs.
	MaxIdleConnsDefault = 8
	// NetWriteTimeoutDefault is how long the server waits for a slow reader
	// (a read whose rows wait for the target) before it gives up.
	NetWriteTimeoutDefault = 600 // seconds
	// MaxParams is the most placeholders of one prepared statement.
	MaxParams = 65535
)

// Conn is an open MySQL or MariaDB system. It is both a spi.RowSource and
// a spi.RowTarget, and safe for concurrent use.
type Conn struct {
	name      string
	db        *sql.DB
	dbName    string
	maxPacket int
	prepare   bool // prepare INSERTs on the server instead of interpolating them
	infile    bool // stage with LOAD DATA LOCAL INFILE (the server allows it)
	log       *slog.Logger

	mu   sync.Mutex
	rels map[string]*relation // Describe results by dataset
}

var (
	_ spi.RowSource = (*Conn)(nil)
	_ spi.RowTarget = (*Conn)(nil)
)

// Open connects to the system's "dsn" with its secret "password" and checks
// that the server answers.
func Open(ctx context.Context, sys spi.System) (spi.Conn, error) {
	cfg, err := config(sys)
	if err != nil {
		return nil, &spi.Error{Op: "connect", System: sys.Name, Err: err}
	}
	return open(ctx, sys, cfg)
}

func open(ctx context.Context, sys spi.System, cfg *drv.Config) (spi.Conn, error) {
	connector, err := drv.NewConnector(cfg)
	if err != nil {
		return nil, &spi.Error{Op: "connect", System: sys.Name, Err: fmt.Errorf("%w: %w", spi.ErrInvalid, err)}
	}
	db := sql.OpenDB(connector)
	db.SetMaxIdleConns(MaxIdleConnsDefault)
	db.SetConnMaxIdleTime(time.Minute)
	c := &Conn{name: sys.Name, db: db, dbName: cfg.DBName, rels: map[string]*relation{}, prepare: !cfg.InterpolateParams,
		log: slog.Default().With(slog.String("connector", Kind), slog.String("system", sys.Name))}
	if err := db.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&c.maxPacket); err != nil {
		db.Close()
		return nil, &spi.Error{Op: "connect", System: sys.Name, Err: err}
	}
	c.infile = infileEnabled(ctx, db)
	return c, nil
}

// config builds the driver's configuration from the system, refusing a DSN
// that carries a password or no database.
func config(sys spi.System) (*drv.Config, error) {
	dsn := sys.Settings["dsn"]
	if dsn == "" {
		return nil, fmt.Errorf("%w: setting dsn is required (user@tcp(host:3306)/db)", spi.ErrInvalid)
	}
	cfg, err := drv.ParseDSN(dsn)
	if err != nil {
		// The driver's message names the part it did not understand; the DSN
		// itself is not repeated, in case it holds a password after all.
		return nil, fmt.Errorf("%w: setting dsn is not a DSN of the form user@tcp(host:3306)/db: %s", spi.ErrInvalid, dsnError(err, dsn))
	}
	for k := range cfg.Params {
		// The driver runs unknown parameters as SET statements: SET
		// password = ... would change the account's password.
		if strings.Contains(strings.ToLower(k), "password") {
			return nil, fmt.Errorf("%w: setting dsn must not hold a password; give it as the system's secret \"password\"", spi.ErrInvalid)
		}
	}
	if cfg.Passwd != "" {
		return nil, fmt.Errorf("%w: setting dsn must not hold a password; give it as the system's secret \"password\"", spi.ErrInvalid)
	}
	if cfg.DBName == "" {
		return nil, fmt.Errorf("%w: setting dsn must name a database (user@tcp(host:3306)/db)", spi.ErrInvalid)
	}
	cfg.Passwd = sys.Secrets["password"]
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	// Server-side prepared statements, measured (BenchmarkRead, BenchmarkLoad):
	// rows come in the binary protocol, read 1.8x faster than the text
	// protocol that interpolated arguments use, and staging INSERTs run as
	// fast either way.
	cfg.InterpolateParams = false
	cfg.MaxAllowedPacket = 0 // ask the server
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	cfg.Params["sql_mode"] = "CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')"
	cfg.Params["net_write_timeout"] = strconv.Itoa(NetWriteTimeoutDefault)
	cfg.Logger = driverLogger{slog.Default().With(slog.String("connector", Kind), slog.String("system", sys.Name))}
	return cfg, nil
}

// dsnError returns the driver's parse error with every occurrence of the
// DSN's user-info part removed.
func dsnError(err error, dsn string) string {
	msg := err.Error()
	if at := strings.LastIndexByte(dsn, '@'); at > 0 {
		msg = strings.ReplaceAll(msg, dsn[:at], "…")
	}
	return msg
}

// driverLogger sends the driver's rare messages (a broken connection) to slog.
type driverLogger struct{ l *slog.Logger }

func (d driverLogger) Print(v ...any) { d.l.Warn("mysql driver", slog.String("msg", fmt.Sprint(v...))) }

// Close closes the connection pool.
func (c *Conn) Close() error { return c.db.Close() }

// fail wraps err as a connector error on the dataset or table label.
func (c *Conn) fail(op, label string, err error) error {
	return &spi.Error{Op: op, System: c.name, Path: label, Err: err}
}

// table returns the schema and name of a dataset's table and its quoted,
// qualified form.
func (c *Conn) table(name string) (schema, table, quoted string, err error) {
	schema, table = sqlrow.SplitTable(name)
	if schema == "" {
		schema = c.dbName
	}
	qs, err := sqlrow.Quote(schema, '`')
	if err != nil {
		return "", "", "", err
	}
	qt, err := sqlrow.Quote(table, '`')
	if err != nil {
		return "", "", "", err
	}
	return schema, table, qs + "." + qt, nil
}

// quote quotes a column name for MySQL. Names come from the server, or
// were found among the dataset's columns first.
func quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }
