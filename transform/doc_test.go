package transform

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestDocExamples runs every example of the package documentation: a line
// "expr == expected" must be true, a line "expr fails: reason" must fail
// with that reason (at compile time when it is constant, else per row).
func TestDocExamples(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	text = text[strings.Index(text, "// # Functions"):]
	n := 0
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "//\t") {
			continue
		}
		ex := strings.TrimPrefix(line, "//\t")
		n++
		t.Run(ex, func(t *testing.T) {
			if expr, reason, ok := strings.Cut(ex, " fails: "); ok {
				_, err := evalOne(t, expr, TypeString)
				if err == nil {
					t.Fatalf("%s did not fail", expr)
				}
				var ce *CompileError
				var re *RowError
				if !errors.As(err, &ce) && !errors.As(err, &re) {
					t.Fatalf("error is %T", err)
				}
				if !strings.Contains(err.Error(), reason) {
					t.Fatalf("error %q does not say %q", err, reason)
				}
				return
			}
			if !strings.Contains(ex, "==") {
				t.Fatalf("example has neither == nor fails:")
			}
			v, err := evalOne(t, ex, TypeBool)
			if err != nil {
				t.Fatal(err)
			}
			if v != true {
				left, _, _ := strings.Cut(ex, " == ")
				got, _ := evalOne(t, "to_string("+left+")", TypeString)
				t.Fatalf("false; the left side is %v", got)
			}
		})
	}
	if n < 60 {
		t.Fatalf("only %d examples found", n)
	}
}
