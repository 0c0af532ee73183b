package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	iofs "io/fs"
	"regexp"
	"strconv"
	"strings"

	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/connector/sqlrow"
)

// relation is a dataset as the source reads it.
type relation struct {
	label   string // for errors and row locations: the table or "query"
	from    string // "schema"."table", or (query) AS weir_q
	schema  spi.Schema
	cols    []column
	quoted  []string // quoted column names
	isTable bool
	rowid   string // the name reaching the table's rowid ("" when it has none)
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

// tableColumn is a row of pragma_table_xinfo.
type tableColumn struct {
	name, decl       string
	notNull, hasDflt bool
	pk               int
	hidden           int // 1 hidden (virtual tables), 2 and 3 generated
}

// columns reads a table's columns; none means no such table.
func (c *Conn) columns(ctx context.Context, schema, tbl string) ([]tableColumn, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT name, type, "notnull", dflt_value IS NOT NULL, pk, hidden FROM pragma_table_xinfo(?, ?)`, tbl, schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tableColumn
	for rows.Next() {
		var tc tableColumn
		if err := rows.Scan(&tc.name, &tc.decl, &tc.notNull, &tc.hasDflt, &tc.pk, &tc.hidden); err != nil {
			return nil, err
		}
		out = append(out, tc)
	}
	return out, rows.Err()
}

var withoutRowid = regexp.MustCompile(`(?i)\bWITHOUT\s+ROWID\b`)

func (c *Conn) describeTable(ctx context.Context, name string) (*relation, error) {
	schema, tbl, quoted, err := table(name)
	if err != nil {
		return nil, c.fail("describe", name, err)
	}
	label := tbl
	if schema != "main" {
		label = schema + "." + tbl
	}
	tcs, err := c.columns(ctx, schema, tbl)
	if err != nil {
		return nil, c.fail("describe", label, err)
	}
	if len(tcs) == 0 {
		return nil, c.fail("describe", label, fmt.Errorf("%w: table %s does not exist", iofs.ErrNotExist, label))
	}
	r := &relation{label: label, from: quoted, isTable: true}
	names := map[string]bool{}
	for _, tc := range tcs {
		names[strings.ToLower(tc.name)] = true
		if tc.hidden == 1 {
			continue
		}
		col := declared(tc.decl)
		if col.untyped {
			var v any
			err := c.db.QueryRowContext(ctx, "SELECT "+quote(tc.name)+" FROM "+quoted+" WHERE "+quote(tc.name)+" IS NOT NULL LIMIT 1").Scan(&v)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, c.fail("describe", label, err)
			}
			col.typ = valueType(v)
		}
		r.schema = append(r.schema, spi.Field{Name: tc.name, Type: col.typ, Nullable: !tc.notNull, Precision: col.precision, Scale: col.scale})
		r.cols = append(r.cols, col)
		r.quoted = append(r.quoted, quote(tc.name))
	}
	var typ, ddl sql.NullString
	err = c.db.QueryRowContext(ctx, "SELECT type, sql FROM "+quote(schema)+".sqlite_schema WHERE name = ? COLLATE NOCASE AND type IN ('table', 'view')", tbl).Scan(&typ, &ddl)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, c.fail("describe", label, err)
	}
	if typ.String == "table" && !withoutRowid.MatchString(ddl.String) {
		for _, alias := range []string{"rowid", "_rowid_", "oid"} {
			if !names[alias] {
				r.rowid = alias
				break
			}
		}
	}
	return r, nil
}

func (c *Conn) describeQuery(ctx context.Context, query string) (*relation, error) {
	q, err := sqlrow.CheckQuery(query, false)
	if err != nil {
		return nil, c.fail("describe", "query", err)
	}
	r := &relation{label: "query", from: "(" + q + "\n) AS weir_q"}
	rows, err := c.db.QueryContext(ctx, "SELECT * FROM "+r.from+" LIMIT 1")
	if err != nil {
		return nil, c.fail("describe", "query", err)
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, c.fail("describe", "query", err)
	}
	first := make([]any, len(types))
	if rows.Next() {
		ptrs := make([]any, len(first))
		for i := range first {
			ptrs[i] = &first[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, c.fail("describe", "query", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, c.fail("describe", "query", err)
	}
	for i, ct := range types {
		col := declared(ct.DatabaseTypeName())
		if col.untyped {
			col.typ = valueType(first[i])
		}
		r.schema = append(r.schema, spi.Field{Name: ct.Name(), Type: col.typ, Nullable: true, Precision: col.precision, Scale: col.scale})
		r.cols = append(r.cols, col)
		r.quoted = append(r.quoted, quote(ct.Name()))
	}
	return r, nil
}

// keyColumn returns the SQL naming a partition key: the rowid, or an
// integer column of the relation.
func (r *relation) keyColumn(name string) (string, error) {
	if name == r.rowid && r.rowid != "" {
		return r.rowid, nil
	}
	i, ok := r.column(name)
	if !ok || r.cols[i].typ != spi.TypeInt {
		return "", fmt.Errorf("%w: partition key %q is not an integer column of %s", spi.ErrInvalid, name, r.label)
	}
	return r.quoted[i], nil
}

// where returns the conditions of a read: the watermark, then the
// partition's key range.
func (r *relation) where(ds spi.Dataset, kr *sqlrow.KeyRange) (string, []any, error) {
	var conds []string
	var args []any
	if w := ds.Watermark; w != nil && w.After != "" {
		i, ok := r.column(w.Column)
		if !ok {
			return "", nil, fmt.Errorf("%w: watermark column %q is not a column of %s", spi.ErrInvalid, w.Column, r.label)
		}
		a, err := watermarkArg(r.cols[i], w.After)
		if err != nil {
			return "", nil, fmt.Errorf("%w: watermark %q of column %s: %w", spi.ErrInvalid, w.After, w.Column, err)
		}
		conds = append(conds, r.quoted[i]+" > ?")
		args = append(args, a)
	}
	if kr != nil {
		col, err := r.keyColumn(kr.Column)
		if err != nil {
			return "", nil, err
		}
		w, a := kr.Where(col)
		conds = append(conds, w)
		args = append(args, a...)
	}
	if len(conds) == 0 {
		return "", nil, nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args, nil
}

// Partitions splits a table into rowid ranges, or any dataset into key
// ranges of Options["partition_by"] (an integer column); a query, a view
// or a WITHOUT ROWID table without partition_by is one partition.
func (c *Conn) Partitions(ctx context.Context, ds spi.Dataset, max int) ([]spi.Partition, error) {
	r, err := c.relation(ctx, ds)
	if err != nil {
		return nil, err
	}
	where, args, err := r.where(ds, nil)
	if err != nil {
		return nil, c.fail("partition", r.label, err)
	}
	if err := checkOptions(ds.Options); err != nil {
		return nil, c.fail("partition", r.label, err)
	}
	name := ds.Options["partition_by"]
	if name == "" {
		name = r.rowid
	}
	if name == "" || max <= 1 {
		return []spi.Partition{sqlrow.AllPartition(0)}, nil
	}
	col, err := r.keyColumn(name)
	if err != nil {
		return nil, c.fail("partition", r.label, err)
	}
	if i, ok := r.column(name); ok && name != r.rowid {
		name = r.schema[i].Name
	}
	var lo, hi sql.NullInt64
	var nulls bool
	q := "SELECT MIN(" + col + "), MAX(" + col + "), COUNT(*) > COUNT(" + col + ") FROM " + r.from + where
	if err := c.db.QueryRowContext(ctx, q, args...).Scan(&lo, &hi, &nulls); err != nil {
		return nil, c.fail("partition", r.label, err)
	}
	if !lo.Valid {
		return []spi.Partition{sqlrow.AllPartition(0)}, nil
	}
	var est int64
	if name == r.rowid {
		est = hi.Int64 - lo.Int64 + 1
	}
	return sqlrow.KeyPartitions(sqlrow.SplitKeyRange(name, lo.Int64, hi.Int64, max, nulls), est), nil
}

// checkOptions refuses dataset options an SQLite source does not know.
// Partitioning "blocks" is the rowid ranges, SQLite's physical order.
func checkOptions(opts map[string]string) error {
	for k, v := range opts {
		switch k {
		case "partition_by":
		case "partitioning":
			switch {
			case v == "key" && opts["partition_by"] == "":
				return fmt.Errorf("%w: partitioning by key needs partition_by", spi.ErrInvalid)
			case v == "blocks" && opts["partition_by"] != "":
				return fmt.Errorf("%w: partitioning by blocks (rowid ranges) takes no partition_by", spi.ErrInvalid)
			case v != "" && v != "key" && v != "blocks":
				return fmt.Errorf("%w: partitioning %q: an SQLite source splits by key (partition_by) or blocks (rowid ranges)", spi.ErrInvalid, v)
			}
		default:
			return fmt.Errorf("%w: unknown option %q (an SQLite source takes partition_by and partitioning)", spi.ErrInvalid, k)
		}
	}
	return nil
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
	where, args, err := r.where(ds, krp)
	if err != nil {
		return c.fail("read", r.label, err)
	}
	cols := make([]sqlrow.Column, 0, len(r.cols)+1)
	sel := make([]string, 0, len(r.cols)+1)
	prefix := c.name + ":" + r.label + " "
	loc := func(n int64) string {
		return prefix + "partition " + strconv.Itoa(p.Seq) + " row " + strconv.FormatInt(n+1, 10)
	}
	if r.rowid != "" {
		// Bad rows are located by their rowid.
		id := new(sql.NullInt64)
		cols = append(cols, sqlrow.Column{Name: r.rowid, Dest: id, Skip: true})
		sel = append(sel, r.rowid)
		loc = func(int64) string { return prefix + "rowid " + strconv.FormatInt(id.Int64, 10) }
	}
	for i, col := range r.cols {
		d := new(any)
		ft := col.typ
		cols = append(cols, sqlrow.Column{Name: r.schema[i].Name, Dest: d, Value: func() (any, error) { return decode(ft, *d) }})
		sel = append(sel, r.quoted[i])
	}
	rows, err := c.db.QueryContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+r.from+where, args...)
	if err != nil {
		return c.fail("read", r.label, err)
	}
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
// rows (after its own watermark, if any) as text: numbers in decimal, text
// (dates and timestamps included) as stored; "" when there is no row.
func (c *Conn) MaxWatermark(ctx context.Context, ds spi.Dataset, column string) (string, error) {
	r, err := c.relation(ctx, ds)
	if err != nil {
		return "", err
	}
	i, ok := r.column(column)
	if !ok {
		return "", c.fail("watermark", r.label, fmt.Errorf("%w: watermark column %q is not a column of %s", spi.ErrInvalid, column, r.label))
	}
	if _, err := watermarkArg(r.cols[i], "0"); err != nil {
		return "", c.fail("watermark", r.label, fmt.Errorf("%w: column %s: %w", spi.ErrInvalid, column, err))
	}
	where, args, err := r.where(ds, nil)
	if err != nil {
		return "", c.fail("watermark", r.label, err)
	}
	var v any
	if err := c.db.QueryRowContext(ctx, "SELECT MAX("+r.quoted[i]+") FROM "+r.from+where, args...).Scan(&v); err != nil {
		return "", c.fail("watermark", r.label, err)
	}
	switch x := v.(type) {
	case nil:
		return "", nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	}
	return fmt.Sprint(v), nil
}
