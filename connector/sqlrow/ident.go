package sqlrow

import (
	"fmt"
	"strings"

	"github.com/weirdata/weir/connector/spi"
)

// SplitTable splits a table name given as "schema.table" at its first dot;
// a name without a dot has no schema. Names holding a dot themselves cannot
// be given.
func SplitTable(name string) (schema, table string) {
	if s, t, ok := strings.Cut(name, "."); ok {
		return s, t
	}
	return "", name
}

// Quote returns name as an identifier quoted with q (a backtick or a double
// quote), q doubled inside. Empty names and names holding NUL are refused
// with an error wrapping spi.ErrInvalid.
func Quote(name string, q byte) (string, error) {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: identifier %q is empty or holds a NUL byte", spi.ErrInvalid, name)
	}
	s := string(q)
	return s + strings.ReplaceAll(name, s, s+s) + s, nil
}
