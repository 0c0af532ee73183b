package catalog

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
)

// JSON stores a value of type T as JSON text in one column, on PostgreSQL and SQLite alike.
type JSON[T any] struct{ V T }

// NewJSON wraps v.
func NewJSON[T any](v T) JSON[T] { return JSON[T]{V: v} }

// Value implements driver.Valuer.
func (j JSON[T]) Value() (driver.Value, error) {
	b, err := json.Marshal(j.V)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// Scan implements sql.Scanner. The column replaces the value: nothing of a
// previous value survives (json.Unmarshal alone would merge into a map).
func (j *JSON[T]) Scan(src any) error {
	var zero T
	j.V = zero
	var b []byte
	switch v := src.(type) {
	case nil:
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scan JSON column: unsupported type %T", src)
	}
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, &j.V); err != nil {
		return fmt.Errorf("scan JSON column: %w", err)
	}
	return nil
}

// MarshalJSON encodes the wrapped value.
func (j JSON[T]) MarshalJSON() ([]byte, error) { return json.Marshal(j.V) }

// UnmarshalJSON decodes into the wrapped value.
func (j *JSON[T]) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &j.V) }

// GormDataType keeps the column a plain text column on every dialect.
func (JSON[T]) GormDataType() string { return "text" }
