package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	drv "github.com/go-sql-driver/mysql"

	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/connector/sqlrow"
)

// infile stages rows with LOAD DATA LOCAL INFILE, streaming each batch as
// the statement's default text format (tab-separated, backslash escapes,
// \N for NULL) from memory through the driver's reader handlers; binary
// values travel as hex and are decoded by UNHEX on the server. With LOCAL
// the server turns bad values and duplicate keys into warnings and skipped
// rows, so every batch checks the warning count and the rows loaded and
// fails when either is off: nothing is ever truncated silently.
type infile struct {
	stmt  string // LOAD DATA ... with the handler name as %s
	enc   []appender
	names []string
	bufs  sync.Pool // *[]byte
}

// appender appends a non-nil value in LOAD DATA's text format.
type appender func(buf []byte, v any) ([]byte, error)

var infileSeq atomic.Int64

func newInfile(stage string, cols []sqlrow.TargetColumn, kinds []kind, schema spi.Schema) *infile {
	f := &infile{}
	var list, set []string
	for i, col := range cols {
		q := quote(col.Name)
		switch v := "@weir_" + strconv.Itoa(i); kinds[i] {
		case kBytes:
			list = append(list, v)
			set = append(set, q+" = UNHEX("+v+")")
		case kBoolBit: // text would be taken as the bits of its characters
			list = append(list, v)
			set = append(set, q+" = CAST("+v+" AS UNSIGNED)")
		default:
			list = append(list, q)
		}
		f.enc = append(f.enc, textAppender(kinds[i], schema[i].Type))
		f.names = append(f.names, col.Name)
	}
	f.stmt = "LOAD DATA LOCAL INFILE 'Reader::%s' INTO TABLE " + stage + " CHARACTER SET utf8mb4 (" + strings.Join(list, ", ") + ")"
	if len(set) > 0 {
		f.stmt += " SET " + strings.Join(set, ", ")
	}
	return f
}

// write stages rows in tx.
func (f *infile) write(ctx context.Context, tx *sql.Tx, rows []spi.Row) error {
	bufp, _ := f.bufs.Get().(*[]byte)
	if bufp == nil {
		bufp = new([]byte)
	}
	b := (*bufp)[:0]
	defer func() {
		if cap(b) <= 16<<20 {
			*bufp = b[:0]
			f.bufs.Put(bufp)
		}
	}()
	var err error
	for i, row := range rows {
		if len(row) != len(f.enc) {
			return fmt.Errorf("%w: row %d has %d values for %d columns", spi.ErrInvalid, i, len(row), len(f.enc))
		}
		for c, v := range row {
			if c > 0 {
				b = append(b, '\t')
			}
			if v == nil {
				b = append(b, '\\', 'N')
				continue
			}
			if b, err = f.enc[c](b, v); err != nil {
				return fmt.Errorf("%w: row %d column %s: %w", spi.ErrInvalid, i, f.names[c], err)
			}
		}
		b = append(b, '\n')
	}
	name := "weir-" + strconv.FormatInt(infileSeq.Add(1), 10)
	drv.RegisterReaderHandler(name, func() io.Reader { return bytes.NewReader(b) })
	defer drv.DeregisterReaderHandler(name)

	res, err := tx.ExecContext(ctx, fmt.Sprintf(f.stmt, name))
	if err != nil {
		return fmt.Errorf("load rows: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	var warnings int
	if err := tx.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&warnings); err != nil {
		return err
	}
	if warnings > 0 {
		return fmt.Errorf("%w: %s", spi.ErrInvalid, f.warnings(ctx, tx, warnings))
	}
	if n != int64(len(rows)) {
		return fmt.Errorf("load rows: the server took %d of %d rows", n, len(rows))
	}
	return nil
}

// warnings describes the first warnings of the last statement on conn;
// their rows count from 1 within the batch.
func (f *infile) warnings(ctx context.Context, tx *sql.Tx, n int) string {
	rows, err := tx.QueryContext(ctx, "SHOW WARNINGS LIMIT 3")
	if err != nil {
		return fmt.Sprintf("%d warnings loading rows", n)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var level, msg string
		var code int
		if rows.Scan(&level, &code, &msg) == nil {
			msgs = append(msgs, fmt.Sprintf("%s %d: %s", level, code, msg))
		}
	}
	return fmt.Sprintf("%d warnings loading rows (rows count from 1 in the batch): %s", n, strings.Join(msgs, "; "))
}

// textAppender returns how values of field type ft are written for a
// column of kind k (Check has verified that it can take them).
func textAppender(k kind, ft spi.FieldType) appender {
	switch ft {
	case spi.TypeInt:
		return func(b []byte, v any) ([]byte, error) {
			i, ok := v.(int64)
			if !ok {
				return b, typeErr(v, ft)
			}
			return strconv.AppendInt(b, i, 10), nil
		}
	case spi.TypeBool:
		return func(b []byte, v any) ([]byte, error) {
			x, ok := v.(bool)
			if !ok {
				return b, typeErr(v, ft)
			}
			if x {
				return append(b, '1'), nil
			}
			return append(b, '0'), nil
		}
	case spi.TypeFloat:
		return func(b []byte, v any) ([]byte, error) {
			x, ok := v.(float64)
			if !ok {
				return b, typeErr(v, ft)
			}
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return b, fmt.Errorf("MySQL cannot store %v", x)
			}
			return strconv.AppendFloat(b, x, 'g', -1, 64), nil
		}
	case spi.TypeDecimal:
		return func(b []byte, v any) ([]byte, error) {
			s, ok := v.(string)
			if !ok {
				return b, typeErr(v, ft)
			}
			d, err := sqlrow.Decimal(s)
			if err != nil {
				return b, err
			}
			return append(b, d...), nil
		}
	case spi.TypeString, spi.TypeBytes:
		return func(b []byte, v any) ([]byte, error) {
			switch x := v.(type) {
			case string:
				if ft != spi.TypeString {
					return b, typeErr(v, ft)
				}
				if k == kBytes {
					return hex.AppendEncode(b, []byte(x)), nil
				}
				return appendEscaped(b, x), nil
			case []byte:
				if ft != spi.TypeBytes {
					return b, typeErr(v, ft)
				}
				if k == kBytes {
					return hex.AppendEncode(b, x), nil
				}
				return appendEscaped(b, x), nil
			}
			return b, typeErr(v, ft)
		}
	case spi.TypeDate, spi.TypeTimestamp:
		layout := timestampLayout
		if k == kDate {
			layout = dateLayout
		}
		return func(b []byte, v any) ([]byte, error) {
			t, ok := v.(time.Time)
			if !ok {
				return b, typeErr(v, ft)
			}
			return t.UTC().AppendFormat(b, layout), nil
		}
	}
	return func(b []byte, v any) ([]byte, error) { return b, typeErr(v, ft) }
}

// appendEscaped escapes the bytes LOAD DATA's default format gives a
// meaning to. UTF-8 never uses them inside a multi-byte character.
func appendEscaped[T string | []byte](b []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case 0:
			b = append(b, '\\', '0')
		default:
			b = append(b, c)
		}
	}
	return b
}

// infileEnabled tells whether the server accepts LOAD DATA LOCAL.
func infileEnabled(ctx context.Context, db *sql.DB) bool {
	var on sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT @@local_infile").Scan(&on); err != nil {
		return false
	}
	return on.String == "1" || strings.EqualFold(on.String, "ON")
}
