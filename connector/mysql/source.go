package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	iofs "io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/connector/sqlrow"
)

// relation is a dataset as the source reads it.
type relation struct {
	label   string // for errors and row locations: db.table or "query"
	from    string // `db`.`table`, or (query) AS weir_q
	schema  spi.Schema
	kinds   []kind
	cols    []string // quoted column names
	isTable bool
	db, tbl string // the table's schema and name
}

func (r *relation) column(name string) (int, bool) {
	for i, f := range r.schema {
		if f.Name == name {
			return i, true
		}
	}
	for i, f := range r.schema {
		if strings.EqualFold(f.Name, name) {
			return i, true
		}
	}
	return 0, false
}

// Describe returns the columns of the dataset's table or query as fields.
func (c *Conn) Describe(ctx context.Context, ds spi.Dataset) (spi.Schema, error) {
	r, err := c.relation(ctx, ds)
	if err != nil {
		return nil, err
	}
	return append(spi.Schema(nil), r.schema...), nil
}

// relation describes ds once per connection.
func (c *Conn) relation(ctx context.Context, ds spi.Dataset) (*relation, error) {
	var key string
	switch {
	case ds.Table != "" && ds.Query != "":
		return nil, c.fail("describe", ds.Table, fmt.Errorf("%w: a dataset names a table or a query, not both", spi.ErrInvalid))
	case ds.Table != "":
		key = "t\x00" + ds.Table
	case ds.Query != "":
		key = "q\x00" + ds.Query
	default:
		return nil, c.fail("describe", "", fmt.Errorf("%w: a dataset needs a table or a query", spi.ErrInvalid))
	}
	c.mu.Lock()
	r := c.rels[key]
	c.mu.Unlock()
	if r != nil {
		return r, nil
	}
	var err error
	if ds.Table != "" {
		r, err = c.describeTable(ctx, ds.Table)
	} else {
		r, err = c.describeQuery(ctx, ds.Query)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.rels[key] = r
	c.mu.Unlock()
	return r, nil
}

// tableColumn is a row of information_schema.COLUMNS.
type tableColumn struct {
	name, dataType, columnType, extra string
	nullable, hasDefault              bool
	precision, scale                  sql.NullInt64
}

// columns reads a table's columns; none means no such table.
func (c *Conn) columns(ctx context.Context, schema, table string) ([]tableColumn, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT IS NOT NULL, EXTRA,
		NUMERIC_PRECISION, NUMERIC_SCALE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, schema, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tableColumn
	for rows.Next() {
		var tc tableColumn
		var tname, nullable string
		if err := rows.Scan(&tname, &tc.name, &tc.dataType, &tc.columnType, &nullable, &tc.hasDefault, &tc.extra, &tc.precision, &tc.scale); err != nil {
			return nil, err
		}
		// information_schema compares names without case; tables do not.
		if tname == table {
			tc.nullable = nullable == "YES"
			out = append(out, tc)
		}
	}
	return out, rows.Err()
}

func (c *Conn) describeTable(ctx context.Context, name string) (*relation, error) {
	schema, table, quoted, err := c.table(name)
	if err != nil {
		return nil, c.fail("describe", name, err)
	}
	label := schema + "." + table
	cols, err := c.columns(ctx, schema, table)
	if err != nil {
		return nil, c.fail("describe", label, err)
	}
	if len(cols) == 0 {
		return nil, c.fail("describe", label, fmt.Errorf("%w: table %s does not exist", iofs.ErrNotExist, label))
	}
	r := &relation{label: label, from: quoted, isTable: true, db: schema, tbl: table}
	for _, tc := range cols {
		k, err := columnKind(tc.dataType, tc.columnType)
		if err != nil {
			return nil, c.fail("describe", label, fmt.Errorf("%w: column %s: %w", spi.ErrInvalid, tc.name, err))
		}
		f := spi.Field{Name: tc.name, Type: kindType[k], Nullable: tc.nullable}
		switch k {
		case kDecimal:
			f.Precision, f.Scale = int(tc.precision.Int64), int(tc.scale.Int64)
		case kUint64:
			f.Precision = 20
		}
		r.schema = append(r.schema, f)
		r.kinds = append(r.kinds, k)
		r.cols = append(r.cols, quote(tc.name))
	}
	return r, nil
}

func (c *Conn) describeQuery(ctx context.Context, query string) (*relation, error) {
	q, err := sqlrow.CheckQuery(query, true)
	if err != nil {
		return nil, c.fail("describe", "query", err)
	}
	r := &relation{label: "query", from: "(" + q + "\n) AS weir_q"}
	rows, err := c.db.QueryContext(ctx, "SELECT * FROM "+r.from+" LIMIT 0")
	if err != nil {
		return nil, c.fail("describe", "query", err)
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, c.fail("describe", "query", err)
	}
	for _, ct := range types {
		k, err := resultKind(ct.DatabaseTypeName())
		if err != nil {
			return nil, c.fail("describe", "query", fmt.Errorf("%w: column %s: %w", spi.ErrInvalid, ct.Name(), err))
		}
		nullable, _ := ct.Nullable()
		f := spi.Field{Name: ct.Name(), Type: kindType[k], Nullable: nullable}
		switch k {
		case kDecimal:
			if p, s, ok := ct.DecimalSize(); ok {
				f.Precision, f.Scale = int(p), int(s)
			}
		case kUint64:
			f.Precision = 20
		}
		r.schema = append(r.schema, f)
		r.kinds = append(r.kinds, k)
		r.cols = append(r.cols, quote(ct.Name()))
	}
	return r, rows.Err()
}

// where returns the conditions of a read: the watermark, then the
// partition's key range.
func (c *Conn) where(r *relation, ds spi.Dataset, kr *sqlrow.KeyRange) (string, []any, error) {
	var conds []string
	var args []any
	if w := ds.Watermark; w != nil && w.After != "" {
		i, ok := r.column(w.Column)
		if !ok {
			return "", nil, fmt.Errorf("%w: watermark column %q is not a column of %s", spi.ErrInvalid, w.Column, r.label)
		}
		a, err := watermarkArg(r.kinds[i], w.After)
		if err != nil {
			return "", nil, fmt.Errorf("%w: watermark %q of column %s: %w", spi.ErrInvalid, w.After, w.Column, err)
		}
		// A DECIMAL or BIGINT UNSIGNED compared with a string compares as
		// DOUBLE: cast the bound text so that the comparison stays exact.
		switch r.kinds[i] {
		case kDecimal:
			conds = append(conds, r.cols[i]+" > CAST(? AS DECIMAL(65,30))")
		case kUint64:
			conds = append(conds, r.cols[i]+" > CAST(? AS UNSIGNED)")
		default:
			conds = append(conds, r.cols[i]+" > ?")
		}
		args = append(args, a)
	}
	if kr != nil {
		i, ok := r.column(kr.Column)
		if !ok || r.kinds[i] != kInt {
			return "", nil, fmt.Errorf("%w: partition key %q is not an integer column of %s", spi.ErrInvalid, kr.Column, r.label)
		}
		w, a := kr.Where(r.cols[i])
		conds = append(conds, w)
		args = append(args, a...)
	}
	if len(conds) == 0 {
		return "", nil, nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args, nil
}

// Partitions splits the dataset into key ranges of Options["partition_by"]
// (an integer column), or returns one partition when none is named.
func (c *Conn) Partitions(ctx context.Context, ds spi.Dataset, max int) ([]spi.Partition, error) {
	r, err := c.relation(ctx, ds)
	if err != nil {
		return nil, err
	}
	if err := checkOptions(ds.Options); err != nil {
		return nil, c.fail("partition", r.label, err)
	}
	est := c.estimate(ctx, r)
	key := ds.Options["partition_by"]
	if key == "" || max <= 1 {
		if _, _, err := c.where(r, ds, nil); err != nil {
			return nil, c.fail("partition", r.label, err)
		}
		return []spi.Partition{sqlrow.AllPartition(est)}, nil
	}
	i, ok := r.column(key)
	if !ok || r.kinds[i] != kInt {
		return nil, c.fail("partition", r.label, fmt.Errorf("%w: partition_by %q is not an integer column of %s", spi.ErrInvalid, key, r.label))
	}
	where, args, err := c.where(r, ds, nil)
	if err != nil {
		return nil, c.fail("partition", r.label, err)
	}
	col := r.cols[i]
	var lo, hi sql.NullInt64
	var nulls bool
	q := "SELECT MIN(" + col + "), MAX(" + col + "), COUNT(*) > COUNT(" + col + ") FROM " + r.from + where
	if err := c.db.QueryRowContext(ctx, q, args...).Scan(&lo, &hi, &nulls); err != nil {
		return nil, c.fail("partition", r.label, err)
	}
	if !lo.Valid {
		return []spi.Partition{sqlrow.AllPartition(est)}, nil
	}
	name := r.schema[i].Name
	return sqlrow.KeyPartitions(sqlrow.SplitKeyRange(name, lo.Int64, hi.Int64, max, nulls), est), nil
}

// checkOptions refuses dataset options a MySQL source does not know.
func checkOptions(opts map[string]string) error {
	for k, v := range opts {
		switch k {
		case "partition_by":
		case "partitioning":
			if v != "" && v != "key" {
				return fmt.Errorf("%w: partitioning %q: a MySQL source splits by key ranges of partition_by only", spi.ErrInvalid, v)
			}
			if opts["partition_by"] == "" {
				return fmt.Errorf("%w: partitioning by key needs partition_by", spi.ErrInvalid)
			}
		default:
			return fmt.Errorf("%w: unknown option %q (a MySQL source takes partition_by and partitioning)", spi.ErrInvalid, k)
		}
	}
	return nil
}

// estimate returns the server's estimate of a table's rows (0 for a query
// or when it has none).
func (c *Conn) estimate(ctx context.Context, r *relation) int64 {
	if !r.isTable {
		return 0
	}
	var n sql.NullInt64
	err := c.db.QueryRowContext(ctx, "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", r.db, r.tbl).Scan(&n)
	if err != nil {
		return 0
	}
	return n.Int64
}

// Read reads one partition in batches of at most batchSize rows.
func (c *Conn) Read(ctx context.Context, ds spi.Dataset, p spi.Partition, batchSize int, emit func(spi.Batch) error) error {
	r, err := c.relation(ctx, ds)
	if err != nil {
		return err
	}
	kr, ok, err := sqlrow.ParsePartition(p)
	if err != nil {
		return c.fail("read", r.label, err)
	}
	var krp *sqlrow.KeyRange
	if ok {
		krp = &kr
	}
	where, args, err := c.where(r, ds, krp)
	if err != nil {
		return c.fail("read", r.label, err)
	}
	q := "SELECT " + strings.Join(r.cols, ", ") + " FROM " + r.from + where
	var rows *sql.Rows
	if c.prepare {
		// A prepared statement has its rows sent in the binary protocol,
		// even without arguments.
		stmt, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			return c.fail("read", r.label, err)
		}
		defer stmt.Close()
		rows, err = stmt.QueryContext(ctx, args...)
		if err != nil {
			return c.fail("read", r.label, err)
		}
	} else if rows, err = c.db.QueryContext(ctx, q, args...); err != nil {
		return c.fail("read", r.label, err)
	}
	cols := make([]sqlrow.Column, len(r.kinds))
	for i, k := range r.kinds {
		dest, value := decoder(k)
		cols[i] = sqlrow.Column{Name: r.schema[i].Name, Dest: dest, Value: value}
	}
	prefix := c.name + ":" + r.label + " partition " + strconv.Itoa(p.Seq) + " row "
	loc := func(n int64) string { return prefix + strconv.FormatInt(n+1, 10) }
	if _, err := sqlrow.ReadBatches(ctx, rows, cols, batchSize, loc, emit); err != nil {
		var se *spi.Error
		if errors.As(err, &se) || errors.Is(err, ctx.Err()) {
			return err
		}
		return c.fail("read", r.label, err)
	}
	return nil
}

// MaxWatermark returns the greatest value of column among the dataset's
// rows (after its own watermark, if any) as text: an integer in decimal, a
// timestamp as "2006-01-02 15:04:05.999999" in UTC, a date as "2006-01-02",
// decimals and strings as they are; "" when there is no row.
func (c *Conn) MaxWatermark(ctx context.Context, ds spi.Dataset, column string) (string, error) {
	r, err := c.relation(ctx, ds)
	if err != nil {
		return "", err
	}
	i, ok := r.column(column)
	if !ok {
		return "", c.fail("watermark", r.label, fmt.Errorf("%w: watermark column %q is not a column of %s", spi.ErrInvalid, column, r.label))
	}
	k := r.kinds[i]
	switch k {
	case kBytes, kBoolInt, kBoolBit:
		return "", c.fail("watermark", r.label, fmt.Errorf("%w: column %s is %s and cannot be a watermark", spi.ErrInvalid, column, r.schema[i].Type))
	}
	where, args, err := c.where(r, ds, nil)
	if err != nil {
		return "", c.fail("watermark", r.label, err)
	}
	var v any
	if err := c.db.QueryRowContext(ctx, "SELECT MAX("+r.cols[i]+") FROM "+r.from+where, args...).Scan(&v); err != nil {
		return "", c.fail("watermark", r.label, err)
	}
	switch x := v.(type) {
	case nil:
		return "", nil
	case []byte:
		v = string(x)
	case time.Time:
		if x.IsZero() {
			return "", c.fail("watermark", r.label, fmt.Errorf("column %s: greatest value is a zero date", column))
		}
	}
	return watermarkText(k, v), nil
}
