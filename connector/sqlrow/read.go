// Package sqlrow holds what Weir's database/sql row connectors
// (connector/mysql, connector/sqlite) share: reading a result set into
// batches with reused slices, multi-row INSERT statements sized to the
// server's limits, integer key-range partitions, the commit-marker
// transaction, checks of user queries, exact decimal text and the rule of
// which field types a column can take. The SQL dialect (quoting, types, DDL)
// stays with each connector.
//
// It imports the standard library and connector/spi only.
package sqlrow

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/weirdata/weir/connector/spi"
)

// BatchSizeDefault is the batch size used when a caller asks for zero or less.
const BatchSizeDefault = 1024

// Column is one result column of a read: rows.Scan fills Dest, then Value
// turns what was scanned into the Go value of the column's field type (nil
// for NULL, see spi.FieldType), or says why it cannot.
type Column struct {
	Name  string
	Dest  any
	Value func() (any, error)
	// Skip scans the column without putting it in the row (a row id that
	// only locates bad rows); Value is not called.
	Skip bool
}

// ReadBatches scans rows into batches of at most batchSize rows and calls
// emit with each. The batch, its rows and the rows' value slices are reused
// after emit returns. A row holding a value its column cannot take goes into
// Batch.Bad, located by loc(n) where n counts the rows of this read from 0
// (loc is called right after the row is scanned, so it may read a Skip
// column), and naming the column. ReadBatches closes rows and returns how many rows
// it scanned, good or bad.
func ReadBatches(ctx context.Context, rows *sql.Rows, cols []Column, batchSize int, loc func(n int64) string, emit func(spi.Batch) error) (int64, error) {
	defer rows.Close()
	if batchSize <= 0 {
		batchSize = BatchSizeDefault
	}
	dests := make([]any, len(cols))
	nc := 0
	for i := range cols {
		dests[i] = cols[i].Dest
		if !cols[i].Skip {
			nc++
		}
	}
	// One backing array holds every value of a batch; rows are windows on it.
	store := make([]any, batchSize*nc)
	batch := spi.Batch{Rows: make([]spi.Row, 0, batchSize)}
	flush := func() error {
		if len(batch.Rows) == 0 && len(batch.Bad) == 0 {
			return nil
		}
		if err := emit(batch); err != nil {
			return err
		}
		batch.Rows = batch.Rows[:0]
		batch.Bad = nil
		return ctx.Err()
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(dests...); err != nil {
			return n, fmt.Errorf("scan %s: %w", loc(n), err)
		}
		k := len(batch.Rows)
		row := spi.Row(store[k*nc : (k+1)*nc : (k+1)*nc])
		good := true
		j := 0
		for i := range cols {
			if cols[i].Skip {
				continue
			}
			v, err := cols[i].Value()
			if err != nil {
				batch.Bad = append(batch.Bad, &spi.RowError{Loc: loc(n), Reason: fmt.Sprintf("column %s: %v", cols[i].Name, err)})
				good = false
				break
			}
			row[j] = v
			j++
		}
		if good {
			batch.Rows = append(batch.Rows, row)
		}
		n++
		if len(batch.Rows)+len(batch.Bad) >= batchSize {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("read after %s: %w", loc(n), err)
	}
	return n, flush()
}
