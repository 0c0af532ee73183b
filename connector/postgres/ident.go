package postgres

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/weirdata/weir/connector/spi"
)

// tableName is a table, optionally schema-qualified, as written in a
// dataset: names are taken literally (no case folding); a part may be
// double-quoted to hold a dot or a quote ("my.schema"."Odd ""Table""").
type tableName struct {
	Schema string // "" when not qualified: the search path decides
	Name   string
}

// parseTable parses a dataset's table.
func parseTable(s string) (tableName, error) {
	parts, err := splitIdent(s)
	if err != nil {
		return tableName{}, fmt.Errorf("%w: table %q: %w", spi.ErrInvalid, s, err)
	}
	switch len(parts) {
	case 1:
		return tableName{Name: parts[0]}, nil
	case 2:
		return tableName{Schema: parts[0], Name: parts[1]}, nil
	}
	return tableName{}, fmt.Errorf("%w: table %q: want table or schema.table", spi.ErrInvalid, s)
}

// splitIdent splits a dotted name into its parts, honouring double quotes.
func splitIdent(s string) ([]string, error) {
	var parts []string
	var b strings.Builder
	quoted, inQuote, afterQuote := false, false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case inQuote && ch == '"':
			if i+1 < len(s) && s[i+1] == '"' {
				b.WriteByte('"')
				i++
				continue
			}
			inQuote, afterQuote = false, true
		case inQuote:
			b.WriteByte(ch)
		case ch == '"':
			if b.Len() > 0 || afterQuote {
				return nil, fmt.Errorf("misplaced quote at byte %d", i)
			}
			inQuote, quoted = true, true
		case ch == '.':
			if b.Len() == 0 && !quoted {
				return nil, fmt.Errorf("empty name part at byte %d", i)
			}
			parts = append(parts, b.String())
			b.Reset()
			quoted, afterQuote = false, false
		case afterQuote:
			return nil, fmt.Errorf("text after a closing quote at byte %d", i)
		default:
			b.WriteByte(ch)
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated quote")
	}
	if b.Len() == 0 && !quoted {
		return nil, fmt.Errorf("empty name")
	}
	parts = append(parts, b.String())
	for _, p := range parts {
		if p == "" || strings.IndexByte(p, 0) >= 0 {
			return nil, fmt.Errorf("empty name part or NUL byte")
		}
	}
	return parts, nil
}

// sanitize returns the quoted, qualified name.
func (t tableName) sanitize() string {
	if t.Schema == "" {
		return pgx.Identifier{t.Name}.Sanitize()
	}
	return pgx.Identifier{t.Schema, t.Name}.Sanitize()
}

// String is the name for people: schema.table, parts quoted only when needed.
func (t tableName) String() string {
	if t.Schema == "" {
		return displayIdent(t.Name)
	}
	return displayIdent(t.Schema) + "." + displayIdent(t.Name)
}

// displayIdent shows a name bare when it is a plain lower-case identifier.
func displayIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r == '_' || (r >= 'a' && r <= 'z') || (i > 0 && unicode.IsDigit(r))) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return pgx.Identifier{s}.Sanitize()
}

// checkQuery verifies that q is one SELECT or WITH statement, so that it can
// be wrapped as a subquery, and returns it without a trailing semicolon.
// Strings, quoted identifiers, dollar quotes and comments are skipped while
// looking for a second statement. (Reads also run in read-only transactions,
// which stops a data-modifying WITH.)
func checkQuery(q string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: query must be a single SELECT or WITH statement: %s", spi.ErrInvalid, why)
	}
	first := ""
	end := -1 // index of a statement-ending semicolon
	i := 0
	for i < len(q) {
		ch := q[i]
		switch {
		case ch == '-' && i+1 < len(q) && q[i+1] == '-':
			for i < len(q) && q[i] != '\n' {
				i++
			}
			continue
		case ch == '/' && i+1 < len(q) && q[i+1] == '*':
			depth := 0
			for i < len(q) {
				if q[i] == '/' && i+1 < len(q) && q[i+1] == '*' {
					depth++
					i += 2
				} else if q[i] == '*' && i+1 < len(q) && q[i+1] == '/' {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
			if depth != 0 {
				return bad("unterminated comment")
			}
			continue
		case unicode.IsSpace(rune(ch)) || ch == '(':
			i++
			continue
		}
		if end >= 0 {
			return bad("more than one statement")
		}
		switch {
		case ch == ';':
			end = i
			i++
		case ch == '\'':
			escapes := i > 0 && (q[i-1] == 'E' || q[i-1] == 'e') && (i < 2 || !isIdentByte(q[i-2]))
			j, ok := skipString(q, i, escapes)
			if !ok {
				return bad("unterminated string")
			}
			i = j
		case ch == '"':
			j := i + 1
			for ; j < len(q); j++ {
				if q[j] == '"' {
					if j+1 < len(q) && q[j+1] == '"' {
						j++
						continue
					}
					break
				}
			}
			if j >= len(q) {
				return bad("unterminated quoted identifier")
			}
			i = j + 1
		case ch == '$' && (i == 0 || !isIdentByte(q[i-1])):
			tagEnd := i + 1
			for tagEnd < len(q) && q[tagEnd] != '$' && isIdentByte(q[tagEnd]) && !(tagEnd == i+1 && q[tagEnd] >= '0' && q[tagEnd] <= '9') {
				tagEnd++
			}
			if tagEnd < len(q) && q[tagEnd] == '$' {
				tag := q[i : tagEnd+1]
				k := strings.Index(q[tagEnd+1:], tag)
				if k < 0 {
					return bad("unterminated dollar quote")
				}
				i = tagEnd + 1 + k + len(tag)
			} else {
				i = tagEnd // a parameter $1: refused later, nothing binds it
			}
		case isIdentByte(ch):
			j := i
			for j < len(q) && isIdentByte(q[j]) {
				j++
			}
			if first == "" {
				first = strings.ToUpper(q[i:j])
			}
			i = j
		default:
			i++
		}
	}
	if first != "SELECT" && first != "WITH" {
		if first == "" {
			return bad("it is empty")
		}
		return bad("it starts with " + first)
	}
	if end >= 0 {
		q = q[:end]
	}
	return q, nil
}

// skipString returns the index after the string literal starting at q[i].
func skipString(q string, i int, escapes bool) (int, bool) {
	for j := i + 1; j < len(q); j++ {
		switch q[j] {
		case '\\':
			if escapes {
				j++
			}
		case '\'':
			if j+1 < len(q) && q[j+1] == '\'' {
				j++
				continue
			}
			return j + 1, true
		}
	}
	return 0, false
}

func isIdentByte(ch byte) bool {
	return ch == '_' || ch == '$' || ch >= 0x80 || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
}
