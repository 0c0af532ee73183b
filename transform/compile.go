package transform

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/checker"
	exprcompiler "github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
)

// Program is a compiled Spec. It is immutable and safe for concurrent use;
// each thread of a run makes its own Thread with NewThread.
type Program struct {
	source []Field
	output []Field
	filter *exprProgram // nil: every row is kept
	// dropAll: the filter is constantly false.
	dropAll bool
	fields  []fieldProgram
	// base is the number of VM variable slots the expressions' own `let`
	// variables use; source field j is read from slot base+j.
	base int
	// filterRefs and fieldRefs are the source fields the filter and the
	// other expressions read (fieldRefs without those of the filter) that
	// must be put in slots before they run.
	filterRefs, fieldRefs []int
	// in converts source field j's row value to its expression value.
	in []func(any) (any, error)
	// zeroCopy: no slot needs converting, and no expression has variables
	// of its own, so the VM can read the input row itself.
	zeroCopy bool
}

type exprProgram struct {
	prog *vm.Program
	// eval, when not nil, computes the expression without the VM; slots
	// is the number of variables it uses.
	eval  evalFunc
	slots int
	// callSites names the user function inlined at a location, to say so in
	// run-time errors.
	callSites map[file.Location]string
}

type fieldKind int

const (
	fieldCopy     fieldKind = iota // out = in[src]
	fieldConvert                   // out = conv(in[src])
	fieldConstant                  // out = value
	fieldExpr                      // out = conv(run(prog))
)

type fieldProgram struct {
	name  string
	typ   Type
	kind  fieldKind
	src   int
	value any
	expr  *exprProgram
	// out converts an expression value to the field's row value.
	out func(any) (any, error)
}

// userFunc is a Function being compiled.
type userFunc struct {
	Function
	index   int
	invalid bool
}

// compiler holds what the expressions of one Spec are compiled with.
type compiler struct {
	spec    Spec
	env     *env
	fns     map[string]*fnDef
	sources map[string]int
	funcs   map[string]*userFunc
	tables  []string
	params  []string
	errs    []error
	config  *conf.Config // for mapping expressions: the source fields
	seq     int          // for unique variable names of inlined functions
	vmOnly  bool
	// typedFns are the functions called by OpCallTyped, by "name/arity".
	typedFns map[string]any
}

// internal names never typed by users: env keys and inlined variables.
func sourceKey(i int) string { return "$f" + strconv.Itoa(i) }
func paramKey(i int) string  { return "$p" + strconv.Itoa(i) }

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Compile checks every expression of spec against the source fields and
// compiles it once for the whole run. Each bad expression (or spec entry)
// gives a *CompileError; they are returned joined (see CompileErrors).
func Compile(spec Spec) (*Program, error) {
	return compile(spec, false)
}

// compile is Compile; vmOnly keeps every expression on expr's VM (tests
// run both evaluators).
func compile(spec Spec, vmOnly bool) (prog *Program, err error) {
	defer func() {
		if p := recover(); p != nil {
			prog, err = nil, &CompileError{Reason: fmt.Sprintf("internal compiler error: %v", p)}
		}
	}()
	c := &compiler{
		vmOnly:   vmOnly,
		spec:     spec,
		sources:  map[string]int{},
		funcs:    map[string]*userFunc{},
		typedFns: map[string]any{},
	}
	if c.spec.Location == nil {
		c.spec.Location = time.UTC
	}
	if c.spec.Now.IsZero() {
		c.spec.Now = time.Now()
	}
	c.env = &env{loc: c.spec.Location, now: c.spec.Now.In(c.spec.Location), tables: spec.Tables}
	c.fns = map[string]*fnDef{}
	for _, f := range builtins(c.env) {
		c.fns[f.name] = f
	}
	for name := range spec.Tables {
		c.tables = append(c.tables, name)
	}
	sort.Strings(c.tables)
	for name := range spec.Params {
		c.params = append(c.params, name)
	}
	sort.Strings(c.params)

	c.checkSpec()
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	envTypes := types.Map{}
	for i, f := range spec.Source {
		envTypes[sourceKey(i)] = types.TypeOf(reflect.Zero(fieldExprType(f.Type)).Interface())
	}
	c.config = c.newConfig(envTypes)
	c.compileFunctions()

	p := &Program{source: append([]Field(nil), spec.Source...)}
	used := map[int]bool{}
	if strings.TrimSpace(spec.Filter) != "" {
		ep, node, refs, err := c.compileExpr(spec.Filter, "", true, "")
		if err != nil {
			c.errs = append(c.errs, err)
		} else if v, ok := constValue(node); ok {
			if v != true {
				p.dropAll = true
			}
		} else {
			p.filter = ep
			for _, j := range refs {
				used[j] = true
				p.filterRefs = append(p.filterRefs, j)
			}
		}
	}
	for _, fs := range spec.Fields {
		p.output = append(p.output, Field{Name: fs.Name, Type: fs.Type})
		fp := fieldProgram{name: fs.Name, typ: fs.Type, out: outConverter(fs.Type)}
		ep, node, refs, err := c.compileExpr(fs.Expr, fs.Name, false, fs.Type)
		if err != nil {
			c.errs = append(c.errs, err)
			continue
		}
		switch n := node.(type) {
		case *ast.IdentifierNode:
			j := c.sourceOf(n.Value)
			if j < 0 {
				c.errs = append(c.errs, &CompileError{Field: fs.Name, Reason: "internal compiler error: unresolved name " + n.Value})
				continue
			}
			fp.src = j
			if spec.Source[j].Type == fs.Type {
				fp.kind = fieldCopy
			} else {
				fp.kind = fieldConvert
				inConv := inConverter(spec.Source[j])
				outConv := fp.out
				fp.out = func(v any) (any, error) {
					x, err := inConv(v)
					if err != nil {
						return nil, err
					}
					return outConv(x)
				}
			}
		default:
			if v, ok := constValue(node); ok {
				out, err := fp.out(v)
				if err != nil {
					c.errs = append(c.errs, &CompileError{Field: fs.Name, Line: 1, Column: 1, Reason: err.Error()})
					continue
				}
				fp.kind, fp.value = fieldConstant, out
				break
			}
			fp.kind, fp.expr = fieldExpr, ep
			for _, j := range refs {
				if !used[j] {
					used[j] = true
					p.fieldRefs = append(p.fieldRefs, j)
				}
			}
		}
		p.fields = append(p.fields, fp)
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}

	// Source fields are read from VM variable slots after the expressions'
	// own variables.
	var progs []*vm.Program
	if p.filter != nil {
		progs = append(progs, p.filter.prog)
	}
	for _, f := range p.fields {
		if f.kind == fieldExpr {
			progs = append(progs, f.expr.prog)
		}
	}
	for _, prog := range progs {
		for i, op := range prog.Bytecode {
			if op == vm.OpStore && prog.Arguments[i]+1 > p.base {
				p.base = prog.Arguments[i] + 1
			}
		}
	}
	for _, prog := range progs {
		if err := c.bindSources(prog, p.base); err != nil {
			return nil, &CompileError{Reason: "internal compiler error: " + err.Error()}
		}
	}
	// Closures read fields from the row itself, except decimals and dates,
	// which are converted into slots; the VM reads every field from a slot.
	onVM := p.filter != nil && p.filter.eval == nil
	for _, f := range p.fields {
		onVM = onVM || (f.kind == fieldExpr && f.expr.eval == nil)
	}
	if !onVM {
		converted := func(refs []int) []int {
			var out []int
			for _, j := range refs {
				if t := spec.Source[j].Type; t == TypeDecimal || t == TypeDate {
					out = append(out, j)
				}
			}
			return out
		}
		p.filterRefs, p.fieldRefs = converted(p.filterRefs), converted(p.fieldRefs)
	}
	p.in = make([]func(any) (any, error), len(spec.Source))
	p.zeroCopy = p.base == 0
	for j := range used {
		if t := spec.Source[j].Type; t == TypeDecimal || t == TypeDate {
			p.in[j] = inConverter(spec.Source[j])
			p.zeroCopy = false
		}
	}
	return p, nil
}

// checkSpec validates names and types: everything that is not an
// expression.
func (c *compiler) checkSpec() {
	bad := func(e *CompileError) { c.errs = append(c.errs, e) }
	for i, f := range c.spec.Source {
		switch {
		case f.Name == "":
			bad(&CompileError{Reason: fmt.Sprintf("source field %d has no name", i+1)})
		case !f.Type.Valid():
			bad(&CompileError{Reason: fmt.Sprintf("source field %q has unknown type %q", f.Name, f.Type)})
		}
		if _, dup := c.sources[f.Name]; dup {
			bad(&CompileError{Reason: fmt.Sprintf("source field %q appears twice", f.Name)})
		}
		c.sources[f.Name] = i
	}
	seen := map[string]bool{}
	for i, f := range c.spec.Fields {
		switch {
		case f.Name == "":
			bad(&CompileError{Reason: fmt.Sprintf("target field %d has no name", i+1)})
		case !f.Type.Valid():
			bad(&CompileError{Field: f.Name, Reason: fmt.Sprintf("unknown type %q (one of string, int, float, decimal, bool, date, timestamp, bytes)", f.Type)})
		case strings.TrimSpace(f.Expr) == "":
			bad(&CompileError{Field: f.Name, Reason: "empty expression"})
		case seen[f.Name]:
			bad(&CompileError{Field: f.Name, Reason: "target field appears twice"})
		}
		seen[f.Name] = true
	}
	for i, f := range c.spec.Functions {
		switch {
		case !identRE.MatchString(f.Name):
			bad(&CompileError{Function: f.Name, Reason: fmt.Sprintf("function %d: name %q is not an identifier (letters, digits, _)", i+1, f.Name)})
		case c.fns[f.Name] != nil:
			bad(&CompileError{Function: f.Name, Reason: "a built-in function has this name"})
		case c.funcs[f.Name] != nil:
			bad(&CompileError{Function: f.Name, Reason: "function defined twice"})
		case strings.TrimSpace(f.Expr) == "":
			bad(&CompileError{Function: f.Name, Reason: "empty expression"})
		}
		ps := map[string]bool{}
		for _, p := range f.Params {
			switch {
			case !identRE.MatchString(p):
				bad(&CompileError{Function: f.Name, Reason: fmt.Sprintf("parameter %q is not an identifier", p)})
			case ps[p]:
				bad(&CompileError{Function: f.Name, Reason: fmt.Sprintf("parameter %q appears twice", p)})
			case p == "params":
				bad(&CompileError{Function: f.Name, Reason: `parameter name "params" is reserved for the run's parameters`})
			}
			ps[p] = true
		}
		if c.funcs[f.Name] == nil {
			c.funcs[f.Name] = &userFunc{Function: f, index: i}
		}
	}
}

// newConfig is an expr configuration with our functions only and the given
// variables.
func (c *compiler) newConfig(vars types.Map) *conf.Config {
	cfg := conf.CreateNew()
	for _, b := range builtin.Builtins {
		cfg.Disabled[b.Name] = true
	}
	cfg.Builtins = conf.FunctionsTable{}
	for name, f := range c.fns {
		f := f
		e := c.env
		cfg.Functions[name] = &builtin.Function{
			Name:     name,
			Func:     func(args ...any) (any, error) { return f.call(e, argvOf(args)) },
			Validate: f.check,
		}
	}
	cfg.WithEnv(vars)
	cfg.Strict = true
	return cfg
}

// compileFunctions checks each user function on its own (its parameters of
// unknown type), callees first, and refuses recursion.
func (c *compiler) compileFunctions() {
	// Calls between functions, for recursion and order.
	calls := map[string][]string{}
	callLoc := map[[2]string]file.Location{}
	for _, f := range c.spec.Functions {
		uf := c.funcs[f.Name]
		if uf == nil || uf.Function.Expr != f.Expr {
			continue
		}
		tree, err := parser.ParseWithConfig(f.Expr, c.config)
		if err != nil {
			c.errs = append(c.errs, c.exprError(err, f.Expr, "", false, f.Name))
			uf.invalid = true
			continue
		}
		ast.Find(tree.Node, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallNode); ok {
				if id, ok := call.Callee.(*ast.IdentifierNode); ok && c.funcs[id.Value] != nil {
					if _, seen := callLoc[[2]string{f.Name, id.Value}]; !seen {
						calls[f.Name] = append(calls[f.Name], id.Value)
						callLoc[[2]string{f.Name, id.Value}] = call.Location()
					}
				}
			}
			return false
		})
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var order []string
	var stack []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = visiting
		stack = append(stack, name)
		for _, callee := range calls[name] {
			switch state[callee] {
			case visiting:
				i := len(stack) - 1
				for stack[i] != callee {
					i--
				}
				cycle := append(append([]string(nil), stack[i:]...), callee)
				for k := i; k < len(stack); k++ {
					caller, next := stack[k], cycle[k-i+1]
					uf := c.funcs[caller]
					if uf.invalid {
						continue
					}
					uf.invalid = true
					e := c.posError(uf.Expr, callLoc[[2]string{caller, next}],
						fmt.Sprintf("recursive function: %s", strings.Join(cycle, " -> ")))
					e.Function = caller
					c.errs = append(c.errs, e)
				}
			case unvisited:
				visit(callee)
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		order = append(order, name)
	}
	for _, f := range c.spec.Functions {
		if c.funcs[f.Name] != nil && state[f.Name] == unvisited {
			visit(f.Name)
		}
	}
	for _, name := range order {
		uf := c.funcs[name]
		if uf.invalid {
			continue
		}
		vars := types.Map{}
		for i := range uf.Params {
			vars[paramKey(i)] = types.Any
		}
		cfg := c.newConfig(vars)
		r := &rewriter{c: c, src: uf.Expr, config: cfg, fn: uf, callSites: map[file.Location]string{}}
		if _, _, err := r.compile(); err != nil {
			uf.invalid = true
			c.errs = append(c.errs, c.exprError(err, uf.Expr, "", false, name))
		}
	}
}

// compileExpr compiles a field's expression (or the filter), checking its
// result against the field's type. It returns the program, the final
// expression tree (to recognize copies and constants) and the source
// fields read.
func (c *compiler) compileExpr(src, field string, filter bool, typ Type) (ep *exprProgram, node ast.Node, refs []int, err error) {
	r := &rewriter{c: c, src: src, config: c.config, used: map[int]bool{}, callSites: map[file.Location]string{}}
	defer func() {
		// Never let a bug in a library or here crash the caller: report it as
		// the expression's error.
		if p := recover(); p != nil {
			ep, node, refs = nil, nil, nil
			err = &CompileError{Field: field, Filter: filter, Reason: fmt.Sprintf("internal compiler error: %v", p)}
		}
	}()
	prog, t, cerr := r.compile()
	if cerr != nil {
		return nil, nil, nil, c.exprError(cerr, src, field, filter, "")
	}
	if msg := checkResult(t, typ, filter); msg != "" {
		return nil, nil, nil, &CompileError{Field: field, Filter: filter, Line: 1, Column: 1, Reason: msg}
	}
	for j := range r.used {
		refs = append(refs, j)
	}
	sort.Ints(refs)
	return &exprProgram{prog: prog, callSites: r.callSites, eval: r.eval, slots: r.slots}, r.tree.Node, refs, nil
}

// checkResult tells why an expression of type t cannot fill a field of
// type typ (or be the filter); "" when it can.
func checkResult(t reflect.Type, typ Type, filter bool) string {
	c := classOf(t)
	if c&(cAny|cNull) != 0 {
		return ""
	}
	if filter {
		if c != cBool {
			return fmt.Sprintf("the filter is %s; it must be bool", typeName(t))
		}
		return ""
	}
	ok := false
	switch typ {
	case TypeString:
		ok = c&(cArray|cOther|cLayout|cZone|cRegexp) == 0
	case TypeFloat:
		ok = c&(cInt|cFloat) != 0
	case TypeDecimal:
		ok = c&(cInt|cDecimal) != 0
	default:
		ok = c == fieldClass(typ)
	}
	if ok {
		return ""
	}
	hint := ""
	switch {
	case typ == TypeInt && c&(cFloat|cDecimal) != 0:
		hint = " (use round or to_int)"
	case typ == TypeInt && c == cString:
		hint = " (use to_int)"
	case typ == TypeFloat && c&(cDecimal|cString) != 0:
		hint = " (use to_float)"
	case typ == TypeDecimal && c&(cFloat|cString) != 0:
		hint = " (use to_decimal)"
	case typ == TypeDate && c == cTimestamp:
		hint = " (use to_date)"
	case typ == TypeDate && c == cString:
		hint = " (use parse_date or to_date)"
	case typ == TypeTimestamp && c == cDate:
		hint = " (use to_timestamp)"
	case typ == TypeTimestamp && c == cString:
		hint = " (use parse_timestamp or to_timestamp)"
	case typ == TypeBool && c&(cString|cInt) != 0:
		hint = " (use to_bool)"
	}
	return fmt.Sprintf("expression is %s, field is %s%s", typeName(t), typ, hint)
}

// bindSources makes the program read source fields from VM variables, and
// push the functions of typed calls:
// expr compiles each source field to a load from the environment map by
// name; the load becomes a read of slot base+index, so that no map is
// built or searched per row.
func (c *compiler) bindSources(prog *vm.Program, base int) error {
	for i, op := range prog.Bytecode {
		switch op {
		case vm.OpLoadFast:
			key, _ := prog.Constants[prog.Arguments[i]].(string)
			if fn, ok := c.typedFns[key]; ok {
				prog.Bytecode[i] = vm.OpPush
				prog.Arguments[i] = len(prog.Constants)
				prog.Constants = append(prog.Constants, fn)
				continue
			}
			j := c.sourceOf(key)
			if j < 0 {
				return fmt.Errorf("load of %q", key)
			}
			prog.Bytecode[i] = vm.OpLoadVar
			prog.Arguments[i] = base + j
		case vm.OpLoadConst, vm.OpLoadField, vm.OpLoadMethod, vm.OpLoadEnv:
			return fmt.Errorf("unexpected environment access (%v)", op)
		}
	}
	return nil
}

// sourceOf is the source field index of an environment key, -1 if none.
func (c *compiler) sourceOf(key string) int {
	if !strings.HasPrefix(key, "$f") {
		return -1
	}
	j, err := strconv.Atoi(key[2:])
	if err != nil || j < 0 || j >= len(c.spec.Source) {
		return -1
	}
	return j
}

// goTypeNames turns Go type names in expr's messages into ours.
var goTypeNames = strings.NewReplacer(
	"transform.decimal", "decimal", "transform.date", "date", "time.Time", "timestamp",
	"time.Duration", "duration", "[]uint8", "bytes", "float64", "float", "int64", "int",
	"interface {}", "any", "[]interface {}", "array",
)

// exprError turns an error of compiling expression src into a CompileError.
func (c *compiler) exprError(err error, src, field string, filter bool, function string) *CompileError {
	ce := &CompileError{Field: field, Filter: filter, Function: function}
	var fe *file.Error
	if errors.As(err, &fe) {
		if fe.Line == 0 {
			fe.Bind(file.NewSource(src))
		}
		ce.Line, ce.Column = fe.Line, fe.Column+1
		ce.Reason = goTypeNames.Replace(fe.Message)
	} else {
		ce.Reason = goTypeNames.Replace(err.Error())
	}
	return ce
}

// posError is an error at a node's location in src.
func (c *compiler) posError(src string, loc file.Location, msg string) *CompileError {
	fe := (&file.Error{Location: loc, Message: msg}).Bind(file.NewSource(src))
	return &CompileError{Line: fe.Line, Column: fe.Column + 1, Reason: msg}
}

// rewriter compiles one expression: it resolves names (source fields,
// parameters, variables, functions), inlines user functions, turns
// operators into our functions, folds constants, then has expr check and
// compile the tree.
type rewriter struct {
	c      *compiler
	src    string
	config *conf.Config
	// fn is the user function whose body this is (checked on its own).
	fn        *userFunc
	tree      *parser.Tree
	err       *file.Error
	used      map[int]bool
	callSites map[file.Location]string
	// inlining is the stack of user functions being inlined.
	inlining []string
	// eval and slots: the expression as closures (see eval.go).
	eval  evalFunc
	slots int
	// resolved are the names already resolved.
	resolved map[*ast.IdentifierNode]bool
}

// scope maps the names visible in an expression to what they stand for.
type scope struct {
	name   string
	rename string   // a variable: its name in the tree
	subst  ast.Node // a parameter bound to a constant or variable: a copy of it
	up     *scope
}

func (s *scope) lookup(name string) *scope {
	for ; s != nil; s = s.up {
		if s.name == name {
			return s
		}
	}
	return nil
}

func (r *rewriter) compile() (*vm.Program, reflect.Type, error) {
	r.resolved = map[*ast.IdentifierNode]bool{}
	tree, err := parser.ParseWithConfig(r.src, r.config)
	if err != nil {
		return nil, nil, err
	}
	r.tree = tree
	var sc *scope
	if r.fn != nil {
		for i, p := range r.fn.Params {
			sc = &scope{name: p, rename: paramKey(i), up: sc}
		}
	}
	r.walk(&tree.Node, sc)
	if r.err != nil {
		return nil, nil, r.err.Bind(tree.Source)
	}
	t, err := checker.Check(tree, r.config)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			if name, ok := r.callSites[fe.Location]; ok {
				fe.Message = "in function " + name + ": " + fe.Message
			}
		}
		return nil, nil, err
	}
	if r.fn == nil && !r.c.vmOnly {
		b := &closureBuilder{c: r.c}
		if f, ok := b.build(tree.Node, nil); ok {
			r.eval, r.slots = f, b.slots
		}
	}
	// Calls with up to two arguments become typed calls that need no
	// argument slice: the callee is renamed "name/n", typed func(any...) any,
	// and bound to the function value with the source fields (bindSources).
	ast.Walk(&tree.Node, typedCalls{r.c})
	prog, err := exprcompiler.Compile(tree, r.config)
	if err != nil {
		return nil, nil, err
	}
	return prog, t, nil
}

func (r *rewriter) fail(n ast.Node, format string, args ...any) {
	if r.err != nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if len(r.inlining) > 0 {
		msg = "in function " + r.inlining[len(r.inlining)-1] + ": " + msg
	}
	r.err = &file.Error{Location: n.Location(), Message: msg}
}

func place(n ast.Node, loc file.Location) ast.Node {
	n.SetLocation(loc)
	return n
}

func call(name string, loc file.Location, args ...ast.Node) *ast.CallNode {
	return place(&ast.CallNode{Callee: place(&ast.IdentifierNode{Value: name}, loc), Arguments: args}, loc).(*ast.CallNode)
}

// neverNullBool tells whether n is a bool that is never NULL.
func (r *rewriter) neverNullBool(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.BoolNode:
		return true
	case *ast.ConstantNode:
		_, ok := x.Value.(bool)
		return ok
	case *ast.UnaryNode:
		return x.Operator == "not" || x.Operator == "!"
	case *ast.BinaryNode:
		switch x.Operator {
		case "and", "&&", "or", "||":
			return true
		}
	case *ast.CallNode:
		if id, ok := x.Callee.(*ast.IdentifierNode); ok {
			switch id.Value {
			case fnTruth, "is_null", "op<", "op>", "op<=", "op>=", "op==", "op!=",
				"op in", "op contains", "op startsWith", "op endsWith", "op matches":
				return true
			}
		}
	}
	return false
}

// truth wraps a condition so that NULL counts as false.
func (r *rewriter) truth(n *ast.Node) {
	if r.neverNullBool(*n) {
		return
	}
	*n = call(fnTruth, (*n).Location(), *n)
}

func (r *rewriter) walk(node *ast.Node, sc *scope) {
	if r.err != nil || *node == nil {
		return
	}
	switch n := (*node).(type) {
	case *ast.NilNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.StringNode, *ast.BytesNode, *ast.ConstantNode:
	case *ast.IdentifierNode:
		r.identifier(node, n, sc)
	case *ast.MemberNode:
		r.member(node, n, sc)
	case *ast.CallNode:
		r.call(node, n, sc)
	case *ast.UnaryNode:
		r.walk(&n.Node, sc)
		switch n.Operator {
		case "not", "!":
			r.truth(&n.Node)
		case "-":
			*node = call(fnNeg, n.Location(), n.Node)
			r.fold(node, r.c.fns[fnNeg])
		}
	case *ast.BinaryNode:
		r.walk(&n.Left, sc)
		r.walk(&n.Right, sc)
		if r.err != nil {
			return
		}
		switch n.Operator {
		case "and", "&&", "or", "||":
			r.truth(&n.Left)
			r.truth(&n.Right)
			return
		}
		if name, ok := opNames[n.Operator]; ok {
			c := call(name, n.Location(), n.Left, n.Right)
			*node = c
			if r.precompile(c, r.c.fns[name]) {
				r.fold(node, r.c.fns[name])
			}
		}
	case *ast.ConditionalNode:
		r.walk(&n.Cond, sc)
		r.walk(&n.Exp1, sc)
		r.walk(&n.Exp2, sc)
		r.truth(&n.Cond)
	case *ast.VariableDeclaratorNode:
		r.walk(&n.Value, sc)
		inner := &scope{name: n.Name, rename: n.Name, up: sc}
		if len(r.inlining) > 0 || r.fn != nil {
			r.c.seq++
			inner.rename = n.Name + "#" + strconv.Itoa(r.c.seq)
			n.Name = inner.rename
		}
		r.walk(&n.Expr, inner)
	case *ast.SequenceNode:
		for i := range n.Nodes {
			r.walk(&n.Nodes[i], sc)
		}
	case *ast.ArrayNode:
		values := make([]any, 0, len(n.Nodes))
		for i := range n.Nodes {
			r.walk(&n.Nodes[i], sc)
			if v, ok := constValue(n.Nodes[i]); ok {
				values = append(values, v)
			}
		}
		if r.err == nil && len(values) == len(n.Nodes) {
			*node = place(&ast.ConstantNode{Value: values}, n.Location())
		}
	case *ast.BuiltinNode:
		r.fail(n, "unknown function %q", n.Name)
	case *ast.MapNode, *ast.PairNode:
		r.fail(n, "maps {...} are not supported")
	case *ast.SliceNode:
		r.fail(n, "slices [a:b] are not supported (use substr)")
	case *ast.ChainNode:
		r.fail(n, "optional chaining ?. is not supported")
	case *ast.PredicateNode, *ast.PointerNode:
		r.fail(n, "predicates and # are not supported")
	default:
		r.fail(n, "unsupported expression")
	}
}

func (r *rewriter) identifier(node *ast.Node, n *ast.IdentifierNode, sc *scope) {
	// The parser shares a node between two comparisons (1 < x < 9 is
	// 1 < x and x < 9): resolve it once.
	if r.resolved[n] {
		return
	}
	defer func() { r.resolved[n] = true }()
	name := n.Value
	if s := sc.lookup(name); s != nil {
		if s.subst != nil {
			*node = place(copyLeaf(s.subst), n.Location())
			return
		}
		n.Value = s.rename
		if j := r.c.sourceOf(s.rename); j >= 0 && r.used != nil {
			r.used[j] = true
		}
		return
	}
	if name == "$env" {
		r.fail(n, `$env can only be used as $env["field name"]`)
		return
	}
	if r.fn != nil || len(r.inlining) > 0 {
		r.fail(n, "unknown name %q (a function sees only its parameters)", name)
		return
	}
	r.sourceField(n, name)
}

// sourceField resolves a source field by name.
func (r *rewriter) sourceField(n *ast.IdentifierNode, name string) {
	j, ok := r.c.sources[name]
	if !ok {
		names := make([]string, 0, len(r.c.spec.Source))
		for _, f := range r.c.spec.Source {
			names = append(names, f.Name)
		}
		if r.c.funcs[name] != nil || r.c.fns[name] != nil {
			r.fail(n, "unknown source field %q (%s is a function: call it with parentheses)", name, name)
			return
		}
		r.fail(n, "unknown source field %q%s", name, suggest(name, names))
		return
	}
	n.Value = sourceKey(j)
	r.used[j] = true
}

func (r *rewriter) member(node *ast.Node, n *ast.MemberNode, sc *scope) {
	id, _ := n.Node.(*ast.IdentifierNode)
	prop, isString := n.Property.(*ast.StringNode)
	switch {
	case id != nil && id.Value == "$env" && sc.lookup("$env") == nil:
		if !isString {
			r.fail(n, `$env can only be used as $env["field name"]`)
			return
		}
		if r.fn != nil || len(r.inlining) > 0 {
			r.fail(n, "unknown name %q (a function sees only its parameters)", prop.Value)
			return
		}
		ident := place(&ast.IdentifierNode{Value: prop.Value}, n.Location()).(*ast.IdentifierNode)
		*node = ident
		r.sourceField(ident, prop.Value)
		r.resolved[ident] = true
	case id != nil && id.Value == "params" && sc.lookup("params") == nil:
		if !isString {
			r.fail(n, `parameters are read as params.NAME or params["NAME"]`)
			return
		}
		v, ok := r.c.spec.Params[prop.Value]
		if !ok {
			known := "the run has no parameters"
			if len(r.c.params) > 0 {
				known = "known: " + strings.Join(r.c.params, ", ")
			}
			r.fail(n.Property, "unknown parameter %q (%s)", prop.Value, known)
			return
		}
		*node = place(&ast.StringNode{Value: v}, n.Location())
	default:
		r.fail(n, "member access with . or [] is not supported (only params.NAME and $env[\"field\"])")
	}
}

func (r *rewriter) call(node *ast.Node, n *ast.CallNode, sc *scope) {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok {
		r.fail(n, "only named functions can be called")
		return
	}
	name := id.Value
	if sc.lookup(name) != nil {
		r.fail(n, "%q is a variable, not a function", name)
		return
	}
	for i := range n.Arguments {
		r.walk(&n.Arguments[i], sc)
	}
	if r.err != nil {
		return
	}
	if uf := r.c.funcs[name]; uf != nil {
		r.inline(node, n, uf)
		return
	}
	f := r.c.fns[name]
	if f == nil || f.op != "" {
		names := make([]string, 0, len(r.c.fns)+len(r.c.funcs))
		for k, f := range r.c.fns {
			if f.op == "" {
				names = append(names, k)
			}
		}
		for k := range r.c.funcs {
			names = append(names, k)
		}
		r.fail(n, "unknown function %q%s", name, suggest(name, names))
		return
	}
	if name == "translate" && len(n.Arguments) > 0 {
		s, ok := n.Arguments[0].(*ast.StringNode)
		switch {
		case !ok:
			r.fail(n.Arguments[0], "translate: the table must be a quoted name, as in translate(\"gender\", code)")
			return
		case r.c.spec.Tables[s.Value] == nil:
			known := "the mapping has no tables"
			if len(r.c.tables) > 0 {
				known = "known: " + strings.Join(r.c.tables, ", ")
			}
			r.fail(n.Arguments[0], "unknown translation table %q (%s)", s.Value, known)
			return
		}
	}
	if !r.precompile(n, f) {
		return
	}
	r.fold(node, f)
}

// precompile compiles a call's constant layouts, zones and regular
// expressions once, false when one is wrong.
func (r *rewriter) precompile(n *ast.CallNode, f *fnDef) bool {
	for _, pc := range []struct {
		i    int
		comp func(string) (any, error)
	}{
		{f.layoutArg, func(s string) (any, error) { return compileLayout(s) }},
		{f.zoneArg, func(s string) (any, error) { return loadZone(s) }},
		{f.regexpArg, func(s string) (any, error) { return compileRegexp(s) }},
	} {
		if pc.i < 0 || pc.i >= len(n.Arguments) {
			continue
		}
		s, ok := n.Arguments[pc.i].(*ast.StringNode)
		if !ok {
			continue
		}
		v, err := pc.comp(s.Value)
		if err != nil {
			name := f.name
			if f.op != "" {
				name = f.op
			}
			r.fail(n.Arguments[pc.i], "%s: %v", name, err)
			return false
		}
		n.Arguments[pc.i] = place(&ast.ConstantNode{Value: v}, s.Location())
	}
	return true
}

// fold evaluates a call whose arguments are all constants, when its types
// check (otherwise the checker reports the call).
func (r *rewriter) fold(node *ast.Node, f *fnDef) {
	n, ok := (*node).(*ast.CallNode)
	if !ok || r.err != nil {
		return
	}
	args := make([]any, len(n.Arguments))
	ts := make([]reflect.Type, len(n.Arguments))
	for i, a := range n.Arguments {
		v, ok := constValue(a)
		if !ok {
			return
		}
		args[i] = v
		if v != nil {
			ts[i] = reflect.TypeOf(v)
		}
	}
	if _, err := f.check(ts); err != nil {
		return
	}
	v, err := f.call(r.c.env, argvOf(args))
	if err != nil {
		r.fail(n, "%s", err.Error())
		return
	}
	if v == nil {
		*node = place(&ast.NilNode{}, n.Location())
		return
	}
	*node = place(&ast.ConstantNode{Value: v}, n.Location())
}

// inline replaces a call of a user function by its body, with the
// parameters bound to the arguments: constants and plain names are
// substituted, other arguments are evaluated once into variables.
func (r *rewriter) inline(node *ast.Node, n *ast.CallNode, uf *userFunc) {
	if uf.invalid {
		r.fail(n, "function %q is not valid (see its own error)", uf.Name)
		return
	}
	if len(n.Arguments) != len(uf.Params) {
		s := "s"
		if len(uf.Params) == 1 {
			s = ""
		}
		r.fail(n, "%s takes %d argument%s, got %d", uf.Name, len(uf.Params), s, len(n.Arguments))
		return
	}
	if len(r.inlining) > 32 {
		r.fail(n, "functions nested too deeply")
		return
	}
	tree, err := parser.ParseWithConfig(uf.Expr, r.config)
	if err != nil {
		r.fail(n, "function %q does not parse", uf.Name)
		return
	}
	loc := n.Location()
	body := tree.Node
	// Errors and run-time failures inside the body point at the call.
	ast.Walk(&body, locator{loc})
	var sc *scope
	type binding struct {
		name  string
		value ast.Node
	}
	var lets []binding
	for i, p := range uf.Params {
		arg := n.Arguments[i]
		switch arg.(type) {
		case *ast.IdentifierNode, *ast.NilNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.StringNode, *ast.BytesNode, *ast.ConstantNode:
			sc = &scope{name: p, subst: arg, up: sc}
		default:
			r.c.seq++
			v := p + "#" + strconv.Itoa(r.c.seq)
			sc = &scope{name: p, rename: v, up: sc}
			lets = append(lets, binding{v, arg})
		}
	}
	r.inlining = append(r.inlining, uf.Name)
	r.walk(&body, sc)
	r.inlining = r.inlining[:len(r.inlining)-1]
	if r.err != nil {
		return
	}
	for i := len(lets) - 1; i >= 0; i-- {
		body = place(&ast.VariableDeclaratorNode{Name: lets[i].name, Value: lets[i].value, Expr: body}, loc)
	}
	r.callSites[loc] = uf.Name
	*node = body
}

type typedCalls struct{ c *compiler }

func (v typedCalls) Visit(n *ast.Node) {
	call, ok := (*n).(*ast.CallNode)
	if !ok || len(call.Arguments) >= len(typedFuncTypes) {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || v.c.fns[id.Value] == nil {
		return
	}
	k := len(call.Arguments)
	key := id.Value + "/" + strconv.Itoa(k)
	if v.c.typedFns[key] == nil {
		v.c.typedFns[key] = v.c.fns[id.Value].typed(v.c.env, k)
	}
	id.Value = key
	id.SetType(typedFuncTypes[k])
}

type locator struct{ loc file.Location }

func (l locator) Visit(n *ast.Node) { (*n).SetLocation(l.loc) }

// copyLeaf copies a constant or a name (an argument substituted into an
// inlined function).
func copyLeaf(n ast.Node) ast.Node {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		return &ast.IdentifierNode{Value: x.Value}
	case *ast.NilNode:
		return &ast.NilNode{}
	case *ast.IntegerNode:
		return &ast.IntegerNode{Value: x.Value}
	case *ast.FloatNode:
		return &ast.FloatNode{Value: x.Value}
	case *ast.BoolNode:
		return &ast.BoolNode{Value: x.Value}
	case *ast.StringNode:
		return &ast.StringNode{Value: x.Value}
	case *ast.BytesNode:
		return &ast.BytesNode{Value: x.Value}
	case *ast.ConstantNode:
		return &ast.ConstantNode{Value: x.Value}
	}
	panic(fmt.Sprintf("copyLeaf %T", n))
}

// constValue is the value of a constant node.
func constValue(n ast.Node) (any, bool) {
	switch x := n.(type) {
	case *ast.NilNode:
		return nil, true
	case *ast.IntegerNode:
		return int64(x.Value), true
	case *ast.FloatNode:
		return x.Value, true
	case *ast.BoolNode:
		return x.Value, true
	case *ast.StringNode:
		return x.Value, true
	case *ast.BytesNode:
		return x.Value, true
	case *ast.ConstantNode:
		return x.Value, true
	}
	return nil, false
}

// suggest proposes the closest name ("; did you mean \"price\"?").
func suggest(name string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		d := distance(strings.ToLower(name), strings.ToLower(n))
		if d < bestD || (d == bestD && n < best) {
			best, bestD = n, d
		}
	}
	if best == "" || bestD > 2 || (bestD == 2 && utf8.RuneCountInString(name) <= 3) {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 99
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] || unicode.ToLower(ra[i-1]) == unicode.ToLower(rb[j-1]) {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
