package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/weirdata/weir/connector/spi"
)

// targetColumn is one column of a target table.
type targetColumn struct {
	name      string
	ftype     spi.FieldType // how this package reads it
	baseOID   uint32
	typ       string // the type's quoted name (typeRef): what staged values are cast to
	shown     string // format_type(atttypid, atttypmod), for errors
	notNull   bool
	defaulted bool // has a default, or is an identity column
	generated bool
}

// target is a resolved target table.
type target struct {
	rel  relation
	cols map[string]*targetColumn
	// order is the table's columns in their order.
	order []string
}

// target resolves ds as a table that rows can be inserted into.
func (c *Conn) target(ctx context.Context, ds spi.Dataset) (*target, error) {
	if ds.Query != "" {
		return nil, fmt.Errorf("%w: a query cannot be a target; name a table", spi.ErrInvalid)
	}
	if ds.Table == "" {
		return nil, fmt.Errorf("%w: a target dataset needs a table", spi.ErrInvalid)
	}
	rel, err := c.resolve(ctx, ds.Table)
	if err != nil {
		return nil, err
	}
	if rel.relkind != "r" && rel.relkind != "p" {
		return nil, fmt.Errorf("%w: %s is %s, not a table rows can be loaded into", spi.ErrInvalid, rel.name, relkindName(rel.relkind, ""))
	}
	pc, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", rel.name, err)
	}
	defer pc.Release()
	// The row description reports domains as their base types.
	sd, err := pc.Conn().PgConn().Prepare(ctx, "", "SELECT * FROM "+rel.name.sanitize(), nil)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", rel.name, err)
	}
	base := map[uint16]uint32{}
	for _, f := range sd.Fields {
		base[f.TableAttributeNumber] = f.DataTypeOID
	}
	rows, err := pc.Query(ctx, `SELECT a.attnum, a.attname, `+typeRef+`, format_type(a.atttypid, a.atttypmod),
			a.attnotnull, a.atthasdef OR a.attidentity <> '', a.attgenerated <> ''
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, rel.oid)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", rel.name, err)
	}
	t := &target{rel: rel, cols: map[string]*targetColumn{}}
	var num int16
	var col targetColumn
	_, err = pgx.ForEachRow(rows, []any{&num, &col.name, &col.typ, &col.shown, &col.notNull, &col.defaulted, &col.generated}, func() error {
		cc := col
		cc.baseOID = base[uint16(num)]
		cc.ftype, _ = fieldType(cc.baseOID)
		t.cols[cc.name] = &cc
		t.order = append(t.order, cc.name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", rel.name, err)
	}
	return t, nil
}

// check verifies that rows of schema fit t.
func (t *target) check(schema spi.Schema) error {
	if len(schema) == 0 {
		return fmt.Errorf("%w: the schema has no fields", spi.ErrInvalid)
	}
	seen := map[string]bool{}
	for _, f := range schema {
		if seen[f.Name] {
			return fmt.Errorf("%w: the schema has two fields named %s", spi.ErrInvalid, f.Name)
		}
		seen[f.Name] = true
		col, ok := t.cols[f.Name]
		if !ok {
			return fmt.Errorf("%w: table %s has no column %s", spi.ErrInvalid, t.rel.name, f.Name)
		}
		if col.generated {
			return fmt.Errorf("%w: column %s of table %s is generated; it takes no values", spi.ErrInvalid, f.Name, t.rel.name)
		}
		if !compatible(f.Type, col.ftype) {
			return fmt.Errorf("%w: column %s is %s, the field is %s", spi.ErrInvalid, f.Name, col.shown, f.Type)
		}
	}
	for _, name := range t.order {
		col := t.cols[name]
		if col.notNull && !col.defaulted && !col.generated && !seen[name] {
			return fmt.Errorf("%w: column %s of table %s is NOT NULL without a default, and the schema has no field %s", spi.ErrInvalid, name, t.rel.name, name)
		}
	}
	return nil
}

// Check verifies that ds is a table with a column of a compatible type for
// every field of schema (int into integer, numeric or float columns; float
// and decimal into numeric or float; date into date or timestamp; any other
// type into a column read as the same type, string taking every type read as
// its text), and that no NOT NULL column without a default is left out.
// It changes nothing.
func (c *Conn) Check(ctx context.Context, ds spi.Dataset, schema spi.Schema) error {
	t, err := c.target(ctx, ds)
	if err != nil {
		return c.fail("check", ds.Table, err)
	}
	if err := t.check(schema); err != nil {
		return c.fail("check", ds.Table, err)
	}
	return nil
}

// commitsTable is the qualified commit-marker table.
func (c *Conn) commitsTable() string {
	return pgx.Identifier{c.commitSchema, spi.CommitTable}.Sanitize()
}

// Committed reports whether runID's marker is in weir_commits.
func (c *Conn) Committed(ctx context.Context, runID string) (bool, error) {
	var one int
	err := c.pool.QueryRow(ctx, "SELECT 1 FROM "+c.commitsTable()+" WHERE run_id = $1", runID).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows), pgCode(err) == "42P01": // no marker, or no marker table yet
		return false, nil
	case err != nil:
		return false, c.fail("committed", spi.CommitTable, fmt.Errorf("read commit marker of run %s: %w", runID, err))
	}
	return true, nil
}

// LastWatermark returns the watermark of the mapping's latest committed run
// that recorded one.
func (c *Conn) LastWatermark(ctx context.Context, mapping string) (string, bool, error) {
	var w string
	err := c.pool.QueryRow(ctx, "SELECT watermark FROM "+c.commitsTable()+
		" WHERE mapping = $1 AND watermark IS NOT NULL ORDER BY committed_at DESC, run_id DESC LIMIT 1", mapping).Scan(&w)
	switch {
	case errors.Is(err, pgx.ErrNoRows), pgCode(err) == "42P01":
		return "", false, nil
	case err != nil:
		return "", false, c.fail("watermark", spi.CommitTable, fmt.Errorf("read last watermark of mapping %s: %w", mapping, err))
	}
	return w, true, nil
}
