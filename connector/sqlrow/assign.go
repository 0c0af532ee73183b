package sqlrow

import (
	"fmt"
	"strings"

	"github.com/weirdata/weir/connector/spi"
)

// Assignable tells whether a column read as type col can take values of
// field type f without losing them silently:
//
//	column      takes
//	string      string
//	int         int, bool (0 and 1)
//	float       float, int
//	decimal     decimal, int, float
//	bool        bool
//	date        date
//	timestamp   timestamp, date (at 00:00 UTC)
//	bytes       bytes, string (its UTF-8 bytes)
//
// An empty col (a column without a declared type) takes anything. Mapping
// expressions convert values explicitly when a transfer needs more.
func Assignable(col, f spi.FieldType) bool {
	if col == "" || col == f {
		return true
	}
	switch col {
	case spi.TypeInt:
		return f == spi.TypeBool
	case spi.TypeFloat:
		return f == spi.TypeInt
	case spi.TypeDecimal:
		return f == spi.TypeInt || f == spi.TypeFloat
	case spi.TypeTimestamp:
		return f == spi.TypeDate
	case spi.TypeBytes:
		return f == spi.TypeString
	}
	return false
}

// TargetColumn is what Check needs to know of one column of a target table.
type TargetColumn struct {
	Name string
	// Native is the column's type as the database declares it, for errors.
	Native string
	// Type is the field type the column reads as ("" when it has none).
	Type spi.FieldType
	// Required is true when an INSERT must give the column a value: NOT
	// NULL without a default, not filled by the database itself.
	Required bool
	// Generated columns cannot be written.
	Generated bool
}

// CheckColumns matches a schema to a target table's columns by name (case
// insensitive, as both servers compare column names) and returns the
// matched columns in schema order, or one error listing every problem:
// a field without a column, a column that cannot take the field's type, a
// generated column, a required column the schema does not fill, a field
// named twice. Errors wrap spi.ErrInvalid.
func CheckColumns(table string, cols []TargetColumn, schema spi.Schema) ([]TargetColumn, error) {
	if len(schema) == 0 {
		return nil, fmt.Errorf("%w: table %s: the schema to load has no fields", spi.ErrInvalid, table)
	}
	byName := make(map[string]int, len(cols))
	for i, c := range cols {
		byName[strings.ToLower(c.Name)] = i
	}
	var problems []string
	out := make([]TargetColumn, 0, len(schema))
	used := map[int]string{}
	for _, f := range schema {
		i, ok := byName[strings.ToLower(f.Name)]
		if !ok {
			problems = append(problems, fmt.Sprintf("table %s has no column %q", table, f.Name))
			continue
		}
		c := cols[i]
		if prev, dup := used[i]; dup {
			problems = append(problems, fmt.Sprintf("fields %q and %q both name column %s.%s", prev, f.Name, table, c.Name))
			continue
		}
		used[i] = f.Name
		switch {
		case c.Generated:
			problems = append(problems, fmt.Sprintf("column %s.%s is generated and cannot be written", table, c.Name))
		case !Assignable(c.Type, f.Type):
			problems = append(problems, fmt.Sprintf("column %s.%s is %s (%s), it cannot take field %q of type %s", table, c.Name, c.Native, c.Type, f.Name, f.Type))
		}
		out = append(out, c)
	}
	for i, c := range cols {
		if _, ok := used[i]; !ok && c.Required {
			problems = append(problems, fmt.Sprintf("column %s.%s is NOT NULL without a default and the schema does not fill it", table, c.Name))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", spi.ErrInvalid, strings.Join(problems, "; "))
	}
	return out, nil
}
