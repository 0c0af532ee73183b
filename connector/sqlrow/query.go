package sqlrow

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/weirdata/weir/connector/spi"
)

// CheckQuery accepts a single SELECT or WITH query and returns it without
// surrounding blanks and a final semicolon. It refuses anything else (an
// UPDATE, a second statement after a semicolon) with an error wrapping
// spi.ErrInvalid. Connectors also read the query as a derived table, which
// the servers refuse for anything but a query, so this is the precise error
// and not the only guard. backslashEscapes says whether a backslash escapes
// a quote inside a string literal (MySQL) or not (SQLite, standard SQL).
func CheckQuery(q string, backslashEscapes bool) (string, error) {
	q = strings.TrimSpace(q)
	// Find the statement's end: the first semicolon outside quotes and comments.
	end := len(q)
scan:
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for j < len(q) {
				if q[j] == '\\' && c != '`' && backslashEscapes {
					j += 2
					continue
				}
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c { // doubled quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			if j >= len(q) {
				return "", fmt.Errorf("%w: query has an unterminated %c quote", spi.ErrInvalid, c)
			}
			i = j
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				i = len(q)
			} else {
				i += j
			}
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				return "", fmt.Errorf("%w: query has an unterminated comment", spi.ErrInvalid)
			}
			i += j + 3
		case c == ';':
			end = i
			break scan
		}
	}
	if end < len(q) && !onlyBlanks(q[end:]) {
		return "", fmt.Errorf("%w: query holds more than one statement; give a single SELECT or WITH query", spi.ErrInvalid)
	}
	body := strings.TrimSpace(q[:end])
	first := firstWord(stripLeadingComments(body))
	if first != "SELECT" && first != "WITH" {
		return "", fmt.Errorf("%w: query must be a single SELECT or WITH query, got one starting with %q", spi.ErrInvalid, first)
	}
	return body, nil
}

// stripLeadingComments drops blanks and comments before the first word.
func stripLeadingComments(s string) string {
	for {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		switch {
		case strings.HasPrefix(s, "--"):
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				return ""
			}
			s = s[i+1:]
		case strings.HasPrefix(s, "/*"):
			i := strings.Index(s, "*/")
			if i < 0 {
				return ""
			}
			s = s[i+2:]
		default:
			return s
		}
	}
}

// onlyBlanks tells whether s holds nothing but blanks, comments and semicolons.
func onlyBlanks(s string) bool {
	for {
		s = stripLeadingComments(s)
		if s == "" {
			return true
		}
		if s[0] != ';' {
			return false
		}
		s = s[1:]
	}
}

func firstWord(s string) string {
	end := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsLetter(r) })
	if end < 0 {
		end = len(s)
	}
	return strings.ToUpper(s[:end])
}
