package mysql

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	drv "github.com/go-sql-driver/mysql"

	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/connector/sqlrow"
)

// MySQL error numbers the connector branches on.
const (
	errDupEntry    = 1062
	errNoSuchTable = 1146
)

func isMySQLError(err error, number uint16) bool {
	var me *drv.MySQLError
	return errors.As(err, &me) && me.Number == number
}

// marker returns the commit-marker SQL for the DSN's database.
func (c *Conn) marker() *sqlrow.Marker {
	t := quote(c.dbName) + "." + quote(spi.CommitTable)
	return &sqlrow.Marker{
		Create: "CREATE TABLE IF NOT EXISTS " + t + ` (
			` + "`run_id`" + ` VARCHAR(64) NOT NULL,
			` + "`mapping`" + ` VARCHAR(255) NOT NULL,
			` + "`target`" + ` VARCHAR(512) NOT NULL,
			` + "`watermark`" + ` TEXT NULL,
			` + "`rows`" + ` BIGINT NOT NULL,
			` + "`committed_at`" + ` DATETIME(6) NOT NULL,
			` + "`seq`" + ` BIGINT NOT NULL AUTO_INCREMENT,
			PRIMARY KEY (` + "`run_id`" + `),
			UNIQUE KEY ` + "`weir_commits_seq` (`seq`)" + `,
			KEY ` + "`weir_commits_mapping` (`mapping`, `seq`)" + `
		) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
		Insert:         "INSERT INTO " + t + " (`run_id`, `mapping`, `target`, `watermark`, `rows`, `committed_at`) VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(6))",
		Committed:      "SELECT 1 FROM " + t + " WHERE `run_id` = ?",
		Last:           "SELECT `watermark` FROM " + t + " WHERE `mapping` = ? AND `watermark` IS NOT NULL ORDER BY `seq` DESC LIMIT 1",
		IsDuplicate:    func(err error) bool { return isMySQLError(err, errDupEntry) },
		IsMissingTable: func(err error) bool { return isMySQLError(err, errNoSuchTable) },
	}
}

// Committed tells whether runID's load was committed (its marker exists).
func (c *Conn) Committed(ctx context.Context, runID string) (bool, error) {
	ok, err := c.marker().IsCommitted(ctx, c.db, runID)
	if err != nil {
		return false, c.fail("commit", spi.CommitTable, err)
	}
	return ok, nil
}

// LastWatermark returns the mapping's last committed watermark.
func (c *Conn) LastWatermark(ctx context.Context, mapping string) (string, bool, error) {
	wm, ok, err := c.marker().LastWatermark(ctx, c.db, mapping)
	if err != nil {
		return "", false, c.fail("watermark", spi.CommitTable, err)
	}
	return wm, ok, nil
}

// target is a checked target table.
type target struct {
	label, quoted, db, tbl string
	cols                   []sqlrow.TargetColumn // in schema order
	kinds                  []kind                // of cols
}

var generatedExtra = regexp.MustCompile(`(?i)\b(VIRTUAL|STORED|PERSISTENT) GENERATED\b`)

// Check verifies that the dataset's table exists, uses a transactional
// engine and has a column able to take every field of schema.
func (c *Conn) Check(ctx context.Context, ds spi.Dataset, schema spi.Schema) error {
	_, err := c.checkTarget(ctx, ds, schema)
	return err
}

func (c *Conn) checkTarget(ctx context.Context, ds spi.Dataset, schema spi.Schema) (*target, error) {
	if ds.Table == "" || ds.Query != "" {
		return nil, c.fail("check", ds.Table, fmt.Errorf("%w: a target is a table, without a query", spi.ErrInvalid))
	}
	db, tbl, quoted, err := c.table(ds.Table)
	if err != nil {
		return nil, c.fail("check", ds.Table, err)
	}
	t := &target{label: db + "." + tbl, quoted: quoted, db: db, tbl: tbl}
	rows, err := c.db.QueryContext(ctx, `SELECT t.TABLE_NAME, t.TABLE_TYPE, COALESCE(t.ENGINE, ''), COALESCE(e.TRANSACTIONS, '')
		FROM information_schema.TABLES t LEFT JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE
		WHERE t.TABLE_SCHEMA = ? AND t.TABLE_NAME = ?`, db, tbl)
	if err != nil {
		return nil, c.fail("check", t.label, err)
	}
	found := false
	var typ, engine, tx string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name, &typ, &engine, &tx); err != nil {
			rows.Close()
			return nil, c.fail("check", t.label, err)
		}
		if name == tbl {
			found = true
			break
		}
	}
	rows.Close()
	switch {
	case !found:
		return nil, c.fail("check", t.label, fmt.Errorf("%w: table %s does not exist", iofs.ErrNotExist, t.label))
	case typ != "BASE TABLE":
		return nil, c.fail("check", t.label, fmt.Errorf("%w: %s is a %s, not a table", spi.ErrInvalid, t.label, strings.ToLower(typ)))
	case tx != "YES":
		return nil, c.fail("check", t.label, fmt.Errorf("%w: table %s uses engine %s, which cannot commit a load atomically; use InnoDB", spi.ErrInvalid, t.label, engine))
	}
	tcs, err := c.columns(ctx, db, tbl)
	if err != nil {
		return nil, c.fail("check", t.label, err)
	}
	all := make([]sqlrow.TargetColumn, len(tcs))
	kinds := map[string]kind{}
	for i, tc := range tcs {
		col := sqlrow.TargetColumn{Name: tc.name, Native: tc.columnType, Type: "unsupported"}
		if k, err := columnKind(tc.dataType, tc.columnType); err == nil {
			col.Type = kindType[k]
			kinds[tc.name] = k
		}
		col.Generated = generatedExtra.MatchString(tc.extra)
		col.Required = !tc.nullable && !tc.hasDefault && !col.Generated && !strings.Contains(strings.ToLower(tc.extra), "auto_increment")
		all[i] = col
	}
	if t.cols, err = sqlrow.CheckColumns(t.label, all, schema); err != nil {
		return nil, c.fail("check", t.label, err)
	}
	for _, col := range t.cols {
		t.kinds = append(t.kinds, kinds[col.Name])
	}
	return t, nil
}

// checkKey verifies that key is exactly the primary key or a unique index
// of the target, as ON DUPLICATE KEY UPDATE needs.
func (c *Conn) checkKey(ctx context.Context, t *target, key []string) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: an upsert needs a key", spi.ErrInvalid)
	}
	want := make([]string, len(key))
	for i, k := range key {
		found := false
		for _, col := range t.cols {
			if strings.EqualFold(col.Name, k) {
				want[i], found = strings.ToLower(col.Name), true
			}
		}
		if !found {
			return fmt.Errorf("%w: upsert key column %q is not among the loaded fields", spi.ErrInvalid, k)
		}
	}
	slices.Sort(want)
	rows, err := c.db.QueryContext(ctx, `SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX`, t.db, t.tbl)
	if err != nil {
		return err
	}
	defer rows.Close()
	indexes := map[string][]string{}
	for rows.Next() {
		var tname, index, col string
		if err := rows.Scan(&tname, &index, &col); err != nil {
			return err
		}
		if tname == t.tbl {
			indexes[index] = append(indexes[index], strings.ToLower(col))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, cols := range indexes {
		slices.Sort(cols)
		if slices.Equal(cols, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: upsert key (%s) is not the primary key or a unique index of %s", spi.ErrInvalid, strings.Join(key, ", "), t.label)
}

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,40}$`)

// Begin checks the target and creates the attempt's staging table, first
// dropping those earlier attempts of the run left behind.
func (c *Conn) Begin(ctx context.Context, spec spi.LoadSpec) (spi.Load, error) {
	if !runIDPattern.MatchString(spec.RunID) || spec.Attempt < 0 {
		return nil, c.fail("begin", spec.Dataset.Table, fmt.Errorf("%w: run id %q and attempt %d do not name a staging table", spi.ErrInvalid, spec.RunID, spec.Attempt))
	}
	switch spec.Mode {
	case spi.ModeAppend, spi.ModeTruncateInsert, spi.ModeUpsert:
	default:
		return nil, c.fail("begin", spec.Dataset.Table, fmt.Errorf("%w: write mode %q (want append, truncate_insert or upsert)", spi.ErrInvalid, spec.Mode))
	}
	t, err := c.checkTarget(ctx, spec.Dataset, spec.Schema)
	if err != nil {
		return nil, err
	}
	if spec.Mode == spi.ModeUpsert {
		if err := c.checkKey(ctx, t, spec.Key); err != nil {
			return nil, c.fail("begin", t.label, err)
		}
	}
	if err := c.dropStages(ctx, t.db, spec.RunID); err != nil {
		return nil, c.fail("begin", t.label, err)
	}
	name := "weir_stage_" + spec.RunID + "_" + strconv.Itoa(spec.Attempt)
	l := &load{c: c, spec: spec, t: t, stageName: name, stage: quote(t.db) + "." + quote(name)}
	if _, err := c.db.ExecContext(ctx, "CREATE TABLE "+l.stage+" LIKE "+t.quoted); err != nil {
		return nil, c.fail("begin", t.label, fmt.Errorf("create staging table %s: %w", name, err))
	}
	cols := make([]string, len(t.cols))
	names := make([]string, len(t.cols))
	encs := make([]sqlrow.Encoder, len(t.cols))
	for i, col := range t.cols {
		cols[i], names[i] = quote(col.Name), col.Name
		encs[i] = encoder(t.kinds[i], spec.Schema[i].Type)
	}
	l.cols = strings.Join(cols, ", ")
	if c.infile {
		l.file = newInfile(l.stage, t.cols, t.kinds, spec.Schema)
	}
	l.in, err = sqlrow.NewInserter(sqlrow.InserterConfig{
		Table: l.stage, Columns: cols, Names: names, Encoders: encs,
		MaxParams: MaxParams, MaxBytes: min(c.maxPacket/4, sqlrow.InsertBytesDefault), Prepare: c.prepare, PrepareOn: c.db,
	})
	if err != nil {
		_ = l.Abort(context.WithoutCancel(ctx))
		return nil, c.fail("begin", t.label, err)
	}
	return l, nil
}

// dropStages drops the staging tables of runID's attempts.
func (c *Conn) dropStages(ctx context.Context, db, runID string) error {
	rows, err := c.db.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE ?",
		db, `weir\_stage\_`+runID+`\_%`)
	if err != nil {
		return fmt.Errorf("list staging tables of run %s: %w", runID, err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		if _, err := c.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+quote(db)+"."+quote(n)); err != nil {
			return fmt.Errorf("drop staging table %s: %w", n, err)
		}
	}
	return rows.Err()
}

// load is one attempt's load through a staging table.
type load struct {
	c         *Conn
	spec      spi.LoadSpec
	t         *target
	stageName string
	stage     string // quoted, qualified
	cols      string // quoted loaded columns
	in        *sqlrow.Inserter
	file      *infile // when not nil, stages instead of in
	rows      atomic.Int64

	mu        sync.Mutex
	committed bool
	dropped   bool
}

// Write stages a batch's rows in one transaction, so that a batch that
// fails leaves nothing staged; threads write in parallel.
func (l *load) Write(ctx context.Context, thread int, b spi.Batch) error {
	if len(b.Rows) == 0 {
		return nil
	}
	if err := l.write(ctx, b.Rows); err != nil {
		return l.c.fail("write", l.t.label, fmt.Errorf("thread %d: %w", thread, err))
	}
	l.rows.Add(int64(len(b.Rows)))
	return nil
}

func (l *load) write(ctx context.Context, rows []spi.Row) error {
	conn, err := l.c.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if l.file != nil {
		err = l.file.write(ctx, tx, rows)
	} else {
		_, err = l.in.Insert(ctx, tx, rows)
	}
	if err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Commit moves the staged rows into the target together with the run's
// commit marker, in one transaction, then drops the staging table.
func (l *load) Commit(ctx context.Context) (spi.Commit, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.committed || l.dropped {
		return spi.Commit{}, l.c.fail("commit", l.t.label, fmt.Errorf("%w: the load was committed or aborted already", spi.ErrInvalid))
	}
	m := l.c.marker()
	if _, err := l.c.db.ExecContext(ctx, m.Create); err != nil {
		return spi.Commit{}, l.c.fail("commit", l.t.label, fmt.Errorf("create %s: %w", spi.CommitTable, err))
	}
	var apply []sqlrow.Statement
	if l.spec.Mode == spi.ModeTruncateInsert {
		apply = append(apply, sqlrow.Statement{SQL: "DELETE FROM " + l.t.quoted})
	}
	ins := "INSERT INTO " + l.t.quoted + " (" + l.cols + ") SELECT " + l.cols + " FROM " + l.stage
	if l.spec.Mode == spi.ModeUpsert {
		ins += " ON DUPLICATE KEY UPDATE " + l.updates()
	}
	apply = append(apply, sqlrow.Statement{SQL: ins, CheckRows: l.spec.Mode != spi.ModeUpsert})
	rows := l.rows.Load()
	tx, err := l.c.db.BeginTx(ctx, nil)
	if err != nil {
		return spi.Commit{}, l.c.fail("commit", l.t.label, err)
	}
	err = m.Commit(ctx, tx, sqlrow.CommitParams{
		RunID: l.spec.RunID, Mapping: l.spec.Mapping, Target: l.t.label, Watermark: l.spec.Watermark, Rows: rows, Apply: apply,
	})
	if err != nil {
		if errors.Is(err, spi.ErrAlreadyCommitted) {
			l.drop(ctx)
		}
		return spi.Commit{}, l.c.fail("commit", l.t.label, err)
	}
	l.committed = true
	l.drop(ctx)
	return spi.Commit{Rows: rows}, nil
}

// updates returns the SET list of an upsert: every loaded column not in
// the key takes the staged value.
func (l *load) updates() string {
	var set []string
	for _, col := range l.t.cols {
		inKey := slices.ContainsFunc(l.spec.Key, func(k string) bool { return strings.EqualFold(k, col.Name) })
		if !inKey {
			q := quote(col.Name)
			set = append(set, q+" = VALUES("+q+")")
		}
	}
	if len(set) == 0 { // only key columns: keep the row
		q := quote(l.t.cols[0].Name)
		return q + " = " + q
	}
	return strings.Join(set, ", ")
}

// drop drops the staging table once; after a commit a failure only costs
// space, so it is logged, not returned.
func (l *load) drop(ctx context.Context) error {
	if l.dropped {
		return nil
	}
	if l.in != nil {
		l.in.Close()
	}
	if _, err := l.c.db.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+l.stage); err != nil {
		l.c.log.Warn("drop staging table", slog.String("table", l.t.db+"."+l.stageName), slog.String("run_id", l.spec.RunID), slog.Any("err", err))
		return err
	}
	l.dropped = true
	return nil
}

// Abort drops the staging table. It is safe after Commit, failed or not.
func (l *load) Abort(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.drop(ctx); err != nil {
		return l.c.fail("abort", l.t.label, err)
	}
	return nil
}
