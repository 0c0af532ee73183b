package transform

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUsedFunctions(t *testing.T) {
	all := []Function{
		{Name: "a", Params: []string{"x"}, Expr: "b(x) + 1"},
		{Name: "b", Params: []string{"x"}, Expr: "x * 2"},
		{Name: "c", Params: []string{"x"}, Expr: "x"},
	}
	got := UsedFunctions([]string{"a(n) + upper(s)", ""}, all)
	require.Equal(t, []Function{all[0], all[1]}, got, "a, and b through a; not c, nor the built-in upper")
	require.Empty(t, UsedFunctions([]string{"n + 1"}, all))
}
