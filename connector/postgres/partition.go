package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/weirdata/weir/connector/spi"
)

// PartitionMinRowsDefault is the fewest estimated rows worth a partition of
// its own when a dataset has no "partition_min_rows" option: a smaller table
// is read by fewer threads.
const PartitionMinRowsDefault = 100_000

// Partitioning methods, the values of the "partitioning" option and of a
// partition's Spec["method"].
const (
	PartitionKey      = "key"      // ranges of the "partition_by" column
	PartitionDeclared = "declared" // the table's partitions (and inheritance children)
	PartitionBlocks   = "blocks"   // ranges of physical blocks (ctid)
	PartitionNone     = "none"     // one partition
)

// Partitions splits ds into at most max partitions by the "partitioning"
// option: "key" splits the "partition_by" column (an integer, date or
// timestamp) into ranges balanced by the column's histogram in pg_stats, or
// of equal width between its min and max when there is none; "declared"
// reads each of the table's partitions (leaf partitions and inheritance
// children), grouped when there are more than max; "blocks" splits the
// table's physical blocks into ctid ranges (TID range scans); "none" reads
// everything at once. Without the option: key when partition_by names such a
// column, declared for a partitioned table, blocks for another table, none
// for a view or a query. The first and last ranges are open, so rows added
// after the estimates, and NULL keys (in the first), are read too: every row
// exactly once. Estimates come from pg_class (reltuples, the relations'
// sizes), or from the planner for a query, a view or a table never analyzed.
func (c *Conn) Partitions(ctx context.Context, ds spi.Dataset, max int) ([]spi.Partition, error) {
	s, err := c.shape(ctx, ds)
	if err != nil {
		return nil, c.fail("partition", ds.Table, err)
	}
	parts, err := c.partitions(ctx, s, ds, max)
	if err != nil {
		return nil, c.fail("partition", s.label, err)
	}
	return parts, nil
}

func (c *Conn) partitions(ctx context.Context, s *shape, ds spi.Dataset, max int) ([]spi.Partition, error) {
	if max < 1 {
		max = 1
	}
	minRows := int64(PartitionMinRowsDefault)
	if v := ds.Options[OptionPartitionMinRows]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%w: option %s must be a positive integer, got %q", spi.ErrInvalid, OptionPartitionMinRows, v)
		}
		minRows = n
	}
	var key *column
	if by := ds.Options["partition_by"]; by != "" {
		col, err := s.column(by, "partition_by")
		if err != nil {
			return nil, err
		}
		key = col
	}
	storage := s.query == "" && (s.relkind == "r" || s.relkind == "m")
	method := ds.Options["partitioning"]
	if method == "" {
		switch {
		case key != nil && keyType(key.oid):
			method = PartitionKey
		case s.query == "" && s.relkind == "p":
			method = PartitionDeclared
		case storage:
			method = PartitionBlocks
		default:
			method = PartitionNone
		}
	}
	st, err := c.stats(ctx, s)
	if err != nil {
		return nil, err
	}
	n := st.worth(max, minRows)
	switch method {
	case PartitionNone:
		return []spi.Partition{st.whole(s)}, nil
	case PartitionKey:
		if key == nil {
			return nil, fmt.Errorf("%w: key partitions need the option partition_by", spi.ErrInvalid)
		}
		if !keyType(key.oid) {
			return nil, fmt.Errorf("%w: partition_by column %s is %s; key partitions need an integer, date or timestamp column", spi.ErrInvalid, key.name, key.typ)
		}
		return c.keyPartitions(ctx, s, ds, key, n, st)
	case PartitionDeclared:
		if s.query != "" {
			return nil, fmt.Errorf("%w: declared partitions need a table, not a query", spi.ErrInvalid)
		}
		return c.declaredPartitions(s, st, max, minRows)
	case PartitionBlocks:
		if !storage {
			return nil, fmt.Errorf("%w: block partitions need a plain table; %s is %s", spi.ErrInvalid, s.label, relkindName(s.relkind, s.query))
		}
		return blockPartitions(s, st, n), nil
	}
	return nil, fmt.Errorf("%w: option partitioning must be key, declared, blocks or none, got %q", spi.ErrInvalid, method)
}

func relkindName(k, query string) string {
	if query != "" {
		return "a query"
	}
	switch k {
	case "v":
		return "a view"
	case "p":
		return "a partitioned table"
	case "f":
		return "a foreign table"
	}
	return "a relation of kind " + k
}

// keyType reports whether key partitions can split a column of type oid.
func keyType(oid uint32) bool {
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
		return true
	}
	return false
}

// stats are a table's estimates: its own storage and every relation of its
// inheritance or partition tree.
type stats struct {
	tuples    float64 // estimated rows of the whole tree
	bytes     int64   // size of the whole tree
	ownPages  int64   // blocks of the table itself
	blockSize int64
	relations []leaf // relations with storage in the tree, the table first when it has storage
}

// leaf is one relation with storage in a table's tree.
type leaf struct {
	schema, name string
	tuples       float64
	bytes        int64
}

func (c *Conn) stats(ctx context.Context, s *shape) (stats, error) {
	st := stats{}
	if err := c.pool.QueryRow(ctx, "SELECT current_setting('block_size')::int8").Scan(&st.blockSize); err != nil {
		return st, fmt.Errorf("read block size: %w", err)
	}
	if s.query == "" {
		rows, err := c.pool.Query(ctx, `WITH RECURSIVE tree(oid) AS (
				SELECT $1::oid
				UNION ALL
				SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid)
			SELECT c.oid = $1::oid, n.nspname, c.relname, c.relkind::text, c.reltuples::float8, pg_relation_size(c.oid)
			FROM tree JOIN pg_class c ON c.oid = tree.oid JOIN pg_namespace n ON n.oid = c.relnamespace
			ORDER BY c.oid <> $1::oid, n.nspname, c.relname`, s.oid)
		if err != nil {
			return st, fmt.Errorf("read table statistics: %w", err)
		}
		var self bool
		var l leaf
		var kind string
		_, err = pgx.ForEachRow(rows, []any{&self, &l.schema, &l.name, &kind, &l.tuples, &l.bytes}, func() error {
			if kind != "r" && kind != "m" && kind != "f" {
				return nil
			}
			if self {
				st.ownPages = l.bytes / st.blockSize
			}
			st.relations = append(st.relations, l)
			st.bytes += l.bytes
			if l.tuples < 0 || st.tuples < 0 {
				st.tuples = -1 // never analyzed
			} else {
				st.tuples += l.tuples
			}
			return nil
		})
		if err != nil {
			return st, fmt.Errorf("read table statistics: %w", err)
		}
		if st.relations != nil && st.tuples >= 0 {
			return st, nil
		}
	}
	// A query, a view or a table never analyzed: the planner's estimate.
	var plan []struct {
		Plan struct {
			Rows  float64 `json:"Plan Rows"`
			Width float64 `json:"Plan Width"`
		}
	}
	if err := c.pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) SELECT "+s.selectList()+" FROM "+s.from()).Scan(&plan); err != nil || len(plan) != 1 {
		return st, fmt.Errorf("estimate rows: %w", err)
	}
	st.tuples = plan[0].Plan.Rows
	if st.relations == nil {
		st.bytes = int64(plan[0].Plan.Rows * plan[0].Plan.Width)
	}
	return st, nil
}

// worth returns how many partitions the estimates justify: from 1 to max.
func (st stats) worth(max int, minRows int64) int {
	n := int64(math.Ceil(st.tuples / float64(minRows)))
	return int(max64(1, min(int64(max), n)))
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// share returns the estimates of a fraction f of the whole.
func (st stats) share(f float64) (rows, bytes int64) {
	if st.tuples > 0 {
		rows = int64(math.Round(st.tuples * f))
	}
	return rows, int64(math.Round(float64(st.bytes) * f))
}

func (st stats) whole(s *shape) spi.Partition {
	rows, bytes := st.share(1)
	return spi.Partition{Seq: 0, Desc: "all of " + s.label, EstRows: rows, EstBytes: bytes, Spec: map[string]string{"method": PartitionNone}}
}

// keyPartitions splits the key column's range at cut points.
func (c *Conn) keyPartitions(ctx context.Context, s *shape, ds spi.Dataset, key *column, n int, st stats) ([]spi.Partition, error) {
	if n <= 1 {
		return []spi.Partition{st.whole(s)}, nil
	}
	var cuts []string
	if s.query == "" {
		bounds, err := c.histogram(ctx, s, key)
		if err != nil {
			return nil, err
		}
		if m := len(bounds) - 1; m >= 1 {
			for i := 1; i < n; i++ {
				if idx := int(math.Round(float64(i*m) / float64(n))); idx > 0 {
					cuts = append(cuts, bounds[idx])
				}
			}
		}
	}
	if cuts == nil {
		var err error
		if cuts, err = c.equalCuts(ctx, s, ds, key, n); err != nil {
			return nil, err
		}
	}
	cuts = slices.Compact(cuts)
	parts := make([]spi.Partition, 0, len(cuts)+1)
	k := len(cuts) + 1
	rows, bytes := st.share(1 / float64(k))
	for i := 0; i < k; i++ {
		spec := map[string]string{"method": PartitionKey, "column": key.name}
		lo, hi := "-inf", "+inf"
		if i > 0 {
			spec["lo"], lo = cuts[i-1], cuts[i-1]
		}
		if i < k-1 {
			spec["hi"], hi = cuts[i], cuts[i]
		}
		desc := fmt.Sprintf("%s in [%s, %s)", key.name, lo, hi)
		if i == 0 {
			spec["nulls"] = "true"
			desc += " or NULL"
		}
		parts = append(parts, spi.Partition{Seq: i, Desc: desc, EstRows: rows, EstBytes: bytes, Spec: spec})
	}
	return parts, nil
}

// histogram returns the key column's histogram bounds from pg_stats, in
// order, as text; none when the table was never analyzed.
func (c *Conn) histogram(ctx context.Context, s *shape, key *column) ([]string, error) {
	sql := `SELECT b::text FROM (
			SELECT histogram_bounds FROM pg_stats
			WHERE schemaname = $1 AND tablename = $2 AND attname = $3
			ORDER BY inherited DESC LIMIT 1) s,
		unnest(s.histogram_bounds::text::` + key.typ + `[]) WITH ORDINALITY AS u(b, k)
		ORDER BY k`
	rows, err := c.pool.Query(ctx, sql, s.table.Schema, s.table.Name, key.name)
	if err != nil {
		return nil, fmt.Errorf("read histogram of %s: %w", key.name, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read histogram of %s: %w", key.name, err)
	}
	return out, nil
}

// equalCuts splits [min, max] of the key into n ranges of equal width.
func (c *Conn) equalCuts(ctx context.Context, s *shape, ds spi.Dataset, key *column, n int) ([]string, error) {
	col := "q." + quoteIdent(key.name)
	var lo, hi *string
	// Read only, as every read of the source.
	err := pgx.BeginTxFunc(ctx, c.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "SELECT min("+col+")::text, max("+col+")::text FROM "+s.from()).Scan(&lo, &hi)
	})
	if err != nil {
		return nil, fmt.Errorf("read range of %s: %w", key.name, err)
	}
	if lo == nil || hi == nil {
		return nil, nil // no key values: one partition
	}
	var expr string
	switch key.oid {
	case pgtype.DateOID:
		expr = `(CAST($1::text AS date) + ((CAST($2::text AS date) - CAST($1::text AS date)) * g / $3::int))::text`
	case pgtype.TimestampOID, pgtype.TimestamptzOID:
		expr = `(CAST($1::text AS ` + key.typ + `) + (CAST($2::text AS ` + key.typ + `) - CAST($1::text AS ` + key.typ + `)) * (g::float8 / $3::int))::text`
	default:
		expr = `(CAST($1::text AS numeric) + floor((CAST($2::text AS numeric) - CAST($1::text AS numeric)) * g / $3::int))::text`
	}
	rows, err := c.pool.Query(ctx, "SELECT "+expr+" FROM generate_series(1, $3::int - 1) AS g ORDER BY g", *lo, *hi, n)
	if err != nil {
		return nil, fmt.Errorf("split range of %s: %w", key.name, err)
	}
	cuts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("split range of %s: %w", key.name, err)
	}
	// A cut at the minimum would leave the first range empty.
	return slices.DeleteFunc(cuts, func(c string) bool { return c == *lo }), nil
}

// declaredPartitions reads each relation of the table's tree, grouping them
// into at most max partitions balanced by size.
func (c *Conn) declaredPartitions(s *shape, st stats, limit int, minRows int64) ([]spi.Partition, error) {
	if len(st.relations) == 0 {
		return []spi.Partition{st.whole(s)}, nil // a partitioned table without partitions
	}
	if s.relkind != "p" && len(st.relations) == 1 {
		return nil, fmt.Errorf("%w: %s has no declared partitions or inheritance children", spi.ErrInvalid, s.label)
	}
	n := min(limit, len(st.relations), st.worth(limit, minRows))
	type bin struct {
		leaves []leaf
		bytes  int64
		tuples float64
	}
	bins := make([]bin, n)
	sorted := slices.Clone(st.relations)
	slices.SortStableFunc(sorted, func(a, b leaf) int { return int(b.bytes - a.bytes) })
	for _, l := range sorted {
		best := 0
		for i := range bins {
			if bins[i].bytes < bins[best].bytes {
				best = i
			}
		}
		bins[best].leaves = append(bins[best].leaves, l)
		bins[best].bytes += l.bytes
		bins[best].tuples += max(l.tuples, 0)
	}
	for i := range bins {
		slices.SortFunc(bins[i].leaves, func(a, b leaf) int {
			return strings.Compare(a.schema+"."+a.name, b.schema+"."+b.name)
		})
	}
	slices.SortFunc(bins, func(a, b bin) int {
		return strings.Compare(a.leaves[0].schema+"."+a.leaves[0].name, b.leaves[0].schema+"."+b.leaves[0].name)
	})
	parts := make([]spi.Partition, 0, n)
	for i, b := range bins {
		names := make([][2]string, len(b.leaves))
		shown := make([]string, len(b.leaves))
		for j, l := range b.leaves {
			names[j] = [2]string{l.schema, l.name}
			shown[j] = tableName{Schema: l.schema, Name: l.name}.String()
		}
		tables, _ := json.Marshal(names)
		var rows int64
		if st.tuples >= 0 {
			rows = int64(b.tuples)
		}
		parts = append(parts, spi.Partition{
			Seq: i, Desc: "only " + strings.Join(shown, ", "), EstRows: rows, EstBytes: b.bytes,
			Spec: map[string]string{"method": PartitionDeclared, "tables": string(tables)},
		})
	}
	return parts, nil
}

// blockPartitions splits the table's blocks into n ctid ranges.
func blockPartitions(s *shape, st stats, n int) []spi.Partition {
	pages := st.ownPages
	if int64(n) > pages {
		n = int(max(pages, 1))
	}
	if n <= 1 {
		return []spi.Partition{st.whole(s)}
	}
	parts := make([]spi.Partition, 0, n)
	for i := 0; i < n; i++ {
		from, to := pages*int64(i)/int64(n), pages*int64(i+1)/int64(n)
		spec := map[string]string{"method": PartitionBlocks}
		desc := "ctid blocks ["
		if i > 0 {
			spec["from"] = strconv.FormatInt(from, 10)
			desc += spec["from"]
		} else {
			desc += "0"
		}
		desc += ", "
		if i < n-1 {
			spec["to"] = strconv.FormatInt(to, 10)
			desc += spec["to"] + ")"
		} else {
			desc += "end)"
		}
		rows, bytes := st.share(float64(to-from) / float64(pages))
		parts = append(parts, spi.Partition{Seq: i, Desc: desc, EstRows: rows, EstBytes: bytes, Spec: spec})
	}
	return parts
}

// readPlan is what one partition reads: one or more FROM items (aliased q)
// and conditions whose values are bound.
type readPlan struct {
	froms []string
	conds []func(ph func(int) string) string
	args  []string
}

func (pl *readPlan) arg(v string) int {
	pl.args = append(pl.args, v)
	return len(pl.args) - 1
}

// where renders the conditions, ph naming the i-th value.
func (pl *readPlan) where(ph func(int) string) string {
	if len(pl.conds) == 0 {
		return ""
	}
	parts := make([]string, len(pl.conds))
	for i, f := range pl.conds {
		parts[i] = f(ph)
	}
	return " WHERE " + strings.Join(parts, " AND ")
}

// readPlan turns a partition's Spec (from Partitions, kept in the run's
// plan) and the dataset's watermark into a readPlan, checking the Spec.
func (s *shape) readPlan(ds spi.Dataset, p spi.Partition) (*readPlan, error) {
	pl := &readPlan{froms: []string{s.from()}}
	bad := func(why string) error {
		return fmt.Errorf("%w: partition %d spec %v: %s", spi.ErrInvalid, p.Seq, p.Spec, why)
	}
	for k, v := range p.Spec {
		if strings.IndexByte(v, 0) >= 0 {
			return nil, bad("NUL byte in " + k)
		}
	}
	switch p.Spec["method"] {
	case "", PartitionNone:
	case PartitionKey:
		col, err := s.column(p.Spec["column"], "partition_by")
		if err != nil {
			return nil, err
		}
		if !keyType(col.oid) {
			return nil, bad("column " + col.name + " is not an integer, date or timestamp")
		}
		ref, typ := "q."+quoteIdent(col.name), col.typ
		lo, hasLo := p.Spec["lo"]
		hi, hasHi := p.Spec["hi"]
		for _, v := range []string{lo, hi} {
			if col.ftype == spi.TypeInt && v != "" {
				if _, err := strconv.ParseInt(v, 10, 64); err != nil {
					return nil, bad(fmt.Sprintf("bound %q is not an integer", v))
				}
			}
		}
		var li, hj int
		if hasLo {
			li = pl.arg(lo)
		}
		if hasHi {
			hj = pl.arg(hi)
		}
		nulls := p.Spec["nulls"] == "true"
		if hasLo || hasHi {
			pl.conds = append(pl.conds, func(ph func(int) string) string {
				var r []string
				if hasLo {
					r = append(r, ref+" >= CAST("+ph(li)+" AS "+typ+")")
				}
				if hasHi {
					r = append(r, ref+" < CAST("+ph(hj)+" AS "+typ+")")
				}
				if nulls {
					return "(" + strings.Join(r, " AND ") + " OR " + ref + " IS NULL)"
				}
				return strings.Join(r, " AND ")
			})
		}
	case PartitionBlocks:
		if s.query != "" {
			return nil, bad("block ranges need a table")
		}
		for _, k := range []string{"from", "to"} {
			v, ok := p.Spec[k]
			if !ok {
				continue
			}
			b, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, bad(fmt.Sprintf("block %q is not a block number", v))
			}
			i := pl.arg(fmt.Sprintf("(%d,0)", b))
			op := ">="
			if k == "to" {
				op = "<"
			}
			pl.conds = append(pl.conds, func(ph func(int) string) string {
				return "q.ctid " + op + " CAST(" + ph(i) + " AS tid)"
			})
		}
	case PartitionDeclared:
		if s.query != "" {
			return nil, bad("declared partitions need a table")
		}
		var names [][2]string
		if err := json.Unmarshal([]byte(p.Spec["tables"]), &names); err != nil || len(names) == 0 {
			return nil, bad("tables is not a list of [schema, table] pairs")
		}
		pl.froms = pl.froms[:0]
		for _, n := range names {
			if n[0] == "" || n[1] == "" {
				return nil, bad("empty table name")
			}
			pl.froms = append(pl.froms, "ONLY "+pgx.Identifier{n[0], n[1]}.Sanitize()+" AS q")
		}
	default:
		return nil, bad("unknown method")
	}
	if w := ds.Watermark; w != nil {
		col, err := s.column(w.Column, "watermark")
		if err != nil {
			return nil, err
		}
		if w.After != "" {
			if strings.IndexByte(w.After, 0) >= 0 {
				return nil, fmt.Errorf("%w: watermark holds a NUL byte", spi.ErrInvalid)
			}
			i := pl.arg(w.After)
			ref, typ := "q."+quoteIdent(col.name), col.typ
			pl.conds = append(pl.conds, func(ph func(int) string) string {
				return ref + " > CAST(" + ph(i) + " AS " + typ + ")"
			})
		}
	}
	return pl, nil
}
