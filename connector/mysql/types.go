package mysql

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/connector/sqlrow"
)

// kind is how a column is scanned and bound.
type kind int

const (
	kInt       kind = iota // integers
	kUint64                // BIGINT UNSIGNED, read as decimal text
	kBoolInt               // TINYINT(1)
	kBoolBit               // BIT(1)
	kFloat                 // FLOAT, DOUBLE
	kDecimal               // DECIMAL
	kString                // text types
	kBytes                 // binary types
	kDate                  // DATE
	kTimestamp             // DATETIME, TIMESTAMP
)

var kindType = map[kind]spi.FieldType{
	kInt: spi.TypeInt, kUint64: spi.TypeDecimal, kBoolInt: spi.TypeBool, kBoolBit: spi.TypeBool,
	kFloat: spi.TypeFloat, kDecimal: spi.TypeDecimal, kString: spi.TypeString, kBytes: spi.TypeBytes,
	kDate: spi.TypeDate, kTimestamp: spi.TypeTimestamp,
}

// columnKind classifies a table column from information_schema.COLUMNS
// (DATA_TYPE and COLUMN_TYPE, lower case).
func columnKind(dataType, columnType string) (kind, error) {
	dataType, columnType = strings.ToLower(dataType), strings.ToLower(columnType)
	unsigned := strings.Contains(columnType, "unsigned")
	switch dataType {
	case "tinyint":
		if strings.HasPrefix(columnType, "tinyint(1)") {
			return kBoolInt, nil
		}
		return kInt, nil
	case "smallint", "mediumint", "int", "integer", "year":
		return kInt, nil
	case "bigint":
		if unsigned {
			return kUint64, nil
		}
		return kInt, nil
	case "float", "double", "real", "double precision":
		return kFloat, nil
	case "decimal", "numeric", "dec", "fixed":
		return kDecimal, nil
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "json", "enum", "set", "time",
		"uuid", "inet4", "inet6":
		return kString, nil
	case "date":
		return kDate, nil
	case "datetime", "timestamp":
		return kTimestamp, nil
	case "bit":
		if columnType == "bit(1)" {
			return kBoolBit, nil
		}
		return kBytes, nil
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
		return kBytes, nil
	}
	return 0, fmt.Errorf("type %s is not one Weir reads", columnType)
}

// resultKind classifies a query's result column from the driver's type name.
func resultKind(typeName string) (kind, error) {
	switch typeName {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "YEAR",
		"UNSIGNED TINYINT", "UNSIGNED SMALLINT", "UNSIGNED MEDIUMINT", "UNSIGNED INT":
		return kInt, nil
	case "UNSIGNED BIGINT":
		return kUint64, nil
	case "FLOAT", "DOUBLE":
		return kFloat, nil
	case "DECIMAL":
		return kDecimal, nil
	case "CHAR", "VARCHAR", "TEXT", "TINYTEXT", "MEDIUMTEXT", "LONGTEXT", "JSON", "ENUM", "SET", "TIME", "NULL":
		return kString, nil
	case "DATE":
		return kDate, nil
	case "DATETIME", "TIMESTAMP":
		return kTimestamp, nil
	case "BINARY", "VARBINARY", "BLOB", "TINYBLOB", "MEDIUMBLOB", "LONGBLOB", "BIT", "GEOMETRY":
		return kBytes, nil
	}
	return 0, fmt.Errorf("result type %s is not one Weir reads", typeName)
}

// decoder returns a scan destination for a column of kind k and the
// function turning what was scanned into the field's value.
func decoder(k kind) (any, func() (any, error)) {
	switch k {
	case kInt:
		d := new(sql.NullInt64)
		return d, func() (any, error) {
			if !d.Valid {
				return nil, nil
			}
			return d.Int64, nil
		}
	case kBoolInt:
		d := new(sql.NullInt64)
		return d, func() (any, error) {
			if !d.Valid {
				return nil, nil
			}
			switch d.Int64 {
			case 0:
				return false, nil
			case 1:
				return true, nil
			}
			return nil, fmt.Errorf("value %d of a TINYINT(1) column is not a boolean (0 or 1)", d.Int64)
		}
	case kBoolBit:
		d := new(sql.RawBytes)
		return d, func() (any, error) {
			if *d == nil {
				return nil, nil
			}
			if len(*d) == 1 && (*d)[0] <= 1 {
				return (*d)[0] == 1, nil
			}
			return nil, fmt.Errorf("value %x of a BIT(1) column is not a boolean", []byte(*d))
		}
	case kFloat:
		d := new(sql.NullFloat64)
		return d, func() (any, error) {
			if !d.Valid {
				return nil, nil
			}
			return d.Float64, nil
		}
	case kUint64, kDecimal, kString:
		d := new(sql.RawBytes)
		return d, func() (any, error) {
			if *d == nil {
				return nil, nil
			}
			return string(*d), nil
		}
	case kBytes:
		d := new(sql.RawBytes)
		return d, func() (any, error) {
			if *d == nil {
				return nil, nil
			}
			return append(make([]byte, 0, len(*d)), *d...), nil
		}
	case kDate, kTimestamp:
		d := new(sql.NullTime)
		return d, func() (any, error) {
			if !d.Valid {
				return nil, nil
			}
			if d.Time.IsZero() {
				return nil, errors.New("zero date '0000-00-00' has no calendar value")
			}
			return d.Time.UTC(), nil
		}
	}
	panic("mysql: unknown kind")
}

// encoder returns the function binding values of field type f into a
// column of kind k. Check has verified that the column can take f.
func encoder(k kind, f spi.FieldType) sqlrow.Encoder {
	switch f {
	case spi.TypeInt:
		return func(v any) (any, error) {
			i, ok := v.(int64)
			if !ok {
				return nil, typeErr(v, f)
			}
			return i, nil
		}
	case spi.TypeBool:
		return func(v any) (any, error) {
			b, ok := v.(bool)
			if !ok {
				return nil, typeErr(v, f)
			}
			if b {
				return int64(1), nil
			}
			return int64(0), nil
		}
	case spi.TypeFloat:
		return func(v any) (any, error) {
			x, ok := v.(float64)
			if !ok {
				return nil, typeErr(v, f)
			}
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("MySQL cannot store %v", x)
			}
			return x, nil
		}
	case spi.TypeDecimal:
		return func(v any) (any, error) {
			s, ok := v.(string)
			if !ok {
				return nil, typeErr(v, f)
			}
			return sqlrow.Decimal(s)
		}
	case spi.TypeString:
		return func(v any) (any, error) {
			s, ok := v.(string)
			if !ok {
				return nil, typeErr(v, f)
			}
			if k == kBytes {
				return []byte(s), nil
			}
			return s, nil
		}
	case spi.TypeBytes:
		return func(v any) (any, error) {
			b, ok := v.([]byte)
			if !ok {
				return nil, typeErr(v, f)
			}
			if b == nil {
				b = []byte{} // a nil slice would bind as NULL
			}
			return b, nil
		}
	case spi.TypeDate, spi.TypeTimestamp:
		return func(v any) (any, error) {
			t, ok := v.(time.Time)
			if !ok {
				return nil, typeErr(v, f)
			}
			return t.UTC(), nil
		}
	}
	return func(v any) (any, error) { return nil, typeErr(v, f) }
}

func typeErr(v any, f spi.FieldType) error {
	return fmt.Errorf("%T is not a value of a %s field", v, f)
}

// Watermark text: how a column's greatest value is written and read back.
const (
	dateLayout      = "2006-01-02"
	timestampLayout = "2006-01-02 15:04:05.999999"
)

// watermarkArg parses a watermark's text into the value compared with a
// column of kind k.
func watermarkArg(k kind, s string) (any, error) {
	switch k {
	case kInt:
		return strconv.ParseInt(s, 10, 64)
	case kFloat:
		return strconv.ParseFloat(s, 64)
	case kUint64, kDecimal:
		return sqlrow.Decimal(s)
	case kString:
		return s, nil
	case kDate:
		return time.Parse(dateLayout, s)
	case kTimestamp:
		return time.Parse(timestampLayout, s)
	}
	return nil, errors.New("a column of this type cannot be a watermark")
}

// watermarkText formats a decoded value of kind k as watermark text.
func watermarkText(k kind, v any) string {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return x
	case time.Time:
		if k == kDate {
			return x.Format(dateLayout)
		}
		return x.UTC().Format(timestampLayout)
	}
	return fmt.Sprint(v)
}
