package worker

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
)

// bound is the upper end of an incremental run's range: the source's
// greatest watermark, read before the rows. A row whose watermark column
// is greater (written while the run read) is left for the next run, so
// that the watermark committed covers exactly the rows delivered: no
// overlap with the next run, no gap. Text columns are compared by the
// database's collation, which the worker cannot mirror: they are bounded by
// the source alone (a source that reads in one snapshot, as PostgreSQL
// does, needs no bound).
type bound struct {
	col  int
	typ  connector.FieldType
	i    int64
	f    float64
	d    *big.Rat
	t    time.Time
	none bool // the source was empty: every row is beyond
}

// timeLayouts are the forms in which connectors give a date or timestamp
// watermark as text; a zone-less one is UTC (the connectors' sessions).
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02",
}

func parseWatermarkTime(s string) (time.Time, bool) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// newBound returns the bound of column col at top (nil when rows need no
// bound); an unreadable top is an error.
func newBound(schema connector.Schema, col, top string) (*bound, error) {
	k := -1
	for i, f := range schema {
		if f.Name == col {
			k = i
			break
		}
	}
	if k < 0 {
		var names []string
		for _, f := range schema {
			names = append(names, f.Name)
		}
		return nil, catalog.Invalid("watermark_column", "%q is not a field of the source (fields: %s)", col, strings.Join(names, ", "))
	}
	b := &bound{col: k, typ: schema[k].Type}
	if top == "" {
		b.none = true
		return b, nil
	}
	var err error
	switch b.typ {
	case connector.TypeInt:
		b.i, err = strconv.ParseInt(strings.TrimSpace(top), 10, 64)
	case connector.TypeFloat:
		b.f, err = strconv.ParseFloat(strings.TrimSpace(top), 64)
	case connector.TypeDecimal:
		var ok bool
		if b.d, ok = new(big.Rat).SetString(strings.TrimSpace(top)); !ok {
			err = fmt.Errorf("not a decimal")
		}
	case connector.TypeDate, connector.TypeTimestamp:
		var ok bool
		if b.t, ok = parseWatermarkTime(strings.TrimSpace(top)); !ok {
			return nil, nil // a form of its own (SQLite keeps text as given): bounded by the source alone
		}
	case connector.TypeString:
		return nil, nil
	default:
		return nil, catalog.Invalid("watermark_column", "%s is a %s field; a watermark is a number, a date, a timestamp or text", col, b.typ)
	}
	if err != nil {
		return nil, fmt.Errorf("the source's greatest %s, %q, cannot be read as a %s: %v", col, top, b.typ, err)
	}
	return b, nil
}

// beyond reports whether row's watermark is greater than the bound. A NULL
// watermark is never selected by the source, nor beyond.
func (b *bound) beyond(row connector.Row) bool {
	v := row[b.col]
	if v == nil {
		return false
	}
	if b.none {
		return true
	}
	switch x := v.(type) {
	case int64:
		return x > b.i
	case float64:
		return x > b.f
	case string:
		if b.d != nil {
			r, ok := new(big.Rat).SetString(x)
			return ok && r.Cmp(b.d) > 0
		}
	case time.Time:
		return x.After(b.t)
	}
	return false
}
