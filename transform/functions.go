package transform

import "regexp"

// callRE finds the names called in an expression: name(.
var callRE = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*\(`)

// UsedFunctions returns the functions of all that exprs call, directly or
// through other functions, in the order they are first met, so that a
// Spec carries only the user functions its expressions need.
func UsedFunctions(exprs []string, all []Function) []Function {
	byName := make(map[string]Function, len(all))
	for _, f := range all {
		byName[f.Name] = f
	}
	used := map[string]bool{}
	var out []Function
	var visit func(string)
	visit = func(src string) {
		for _, m := range callRE.FindAllStringSubmatch(src, -1) {
			f, ok := byName[m[1]]
			if !ok || used[f.Name] {
				continue
			}
			used[f.Name] = true
			out = append(out, f)
			visit(f.Expr)
		}
	}
	for _, e := range exprs {
		visit(e)
	}
	return out
}
