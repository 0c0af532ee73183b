package broker_test

import (
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// dataEnv is a broker env with a file system holding trades.csv and an
// SQLite system holding a trades table, and a user who may read the
// mapping "rows" but not its source system.
func dataEnv(t *testing.T) *env {
	e := newEnv(t, catalogtest.Open(t, catalog.DialectSQLite))
	files, lite := t.TempDir(), t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(files, "in", "2026-11-20"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(files, "in", "2026-11-20", "trades.csv"),
		[]byte("id,sym,qty,px\n1,aapl,10,1.5\n2,msft,0,2.25\n3,ibm,-4,3\n4,\"bad,1,x\n5,goog,7,4.75\n"), 0o644))
	db, err := sql.Open("sqlite", filepath.Join(lite, "trades.db"))
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE trades (id INTEGER PRIMARY KEY, sym TEXT, qty INTEGER, px DOUBLE);
		INSERT INTO trades VALUES (1, 'aapl', 10, 1.5), (2, 'msft', 0, 2.25), (3, 'ibm', -4, 3.0)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	for _, sys := range []*catalog.System{
		{Name: "files", Kind: catalog.KindFS, Region: testRegion, Settings: catalog.NewJSON(map[string]string{"root": files})},
		{Name: "lite", Kind: catalog.KindSQLite, Region: testRegion, Settings: catalog.NewJSON(map[string]string{"root": lite, "path": "trades.db"})},
		{Name: "pg", Kind: catalog.KindPostgres, Region: testRegion, Settings: catalog.NewJSON(map[string]string{"dsn": "postgres://weir@127.0.0.1:1/none"})},
	} {
		require.NoError(t, e.store.CreateSystem(e.ctx, sys))
	}
	e.addUser("mapreader", catalog.RoleViewer, grant{"mapping:rows", catalog.ActionRead, nil})
	return e
}

var csvSchema = []catalog.SchemaField{{Name: "id", Type: "int"}, {Name: "sym", Type: "string"}, {Name: "qty", Type: "int"}, {Name: "px", Type: "float"}}

func csvToLite(fields []catalog.FieldMapping, filter string) map[string]any {
	return map[string]any{
		"name":   "rows",
		"source": catalog.Endpoint{System: "files", Path: "in/{day}/trades.csv", Format: "csv", Schema: csvSchema},
		"target": catalog.Endpoint{System: "lite", Table: "trades"},
		"params": []catalog.ParamSpec{{Name: "day", Type: catalog.ParamDate, Required: true}},
		"fields": fields, "filter": filter,
	}
}

func (e *env) post(path, user string, body any) response {
	return e.do(request{Method: http.MethodPost, Path: path, Token: e.tokens[user], Body: body})
}

func compileError(t *testing.T, r response) broker.CompileErrorDetail {
	t.Helper()
	require.Equal(t, http.StatusBadRequest, r.Status, "%s", r)
	var b broker.CompileErrorBody
	r.decode(t, &b)
	require.Equal(t, broker.CodeInvalid, b.Error.Code)
	require.NotEmpty(t, b.Error.Errors)
	return b.Error
}

func TestMappingExpressionsCompileAtCreation(t *testing.T) {
	e := dataEnv(t)
	// A field expression that does not compile: its field, line, column and reason.
	r := e.post("/api/v1/mappings", "admin", csvToLite([]catalog.FieldMapping{
		{Name: "id"}, {Name: "total", Type: "float", Expr: "qty *\n  prix"}}, ""))
	ce := compileError(t, r)
	require.Equal(t, "fields[1].expr", ce.Field)
	require.Equal(t, 2, ce.Line)
	require.Equal(t, 3, ce.Column)
	require.Contains(t, ce.Reason, `unknown source field "prix"`)
	require.Contains(t, ce.Message, "fields[1].expr (2:3)")
	require.Equal(t, http.StatusNotFound, e.get("/api/v1/mappings/rows", "admin").Status, "nothing stored")

	// Every bad expression is listed; a wrong type has a hint.
	r = e.post("/api/v1/mappings", "admin", csvToLite([]catalog.FieldMapping{
		{Name: "n", Type: "int", Expr: "round(px)"}, {Name: "s", Type: "string", Expr: "upper(sym"}}, "qty >> 1"))
	ce = compileError(t, r)
	fields := map[string]broker.ExprError{}
	for _, x := range ce.Errors {
		fields[x.Field] = x
	}
	require.Contains(t, fields, "fields[0].expr")
	require.Contains(t, fields["fields[0].expr"].Reason, "to_int")
	require.Contains(t, fields, "fields[1].expr")
	require.Contains(t, fields, "filter")

	// Good expressions: created.
	r = e.post("/api/v1/mappings", "admin", csvToLite([]catalog.FieldMapping{
		{Name: "id"}, {Name: "sym", Type: "string", Expr: "upper(sym)"}, {Name: "qty"}, {Name: "px", Type: "float", Expr: "px * 2"}}, "qty > 0"))
	require.Equal(t, http.StatusCreated, r.Status, "%s", r)
	var m catalog.Mapping
	r.decode(t, &m)
	require.Equal(t, "qty > 0", m.Filter)
	require.Len(t, m.Fields.V, 4)

	// A change is checked too, and a bad one stores nothing.
	bad := csvToLite([]catalog.FieldMapping{{Name: "id", Type: "float", Expr: "id / nope"}}, "")
	r = e.do(request{Method: http.MethodPut, Path: "/api/v1/mappings/rows", Body: bad})
	ce = compileError(t, r)
	require.Equal(t, "fields[0].expr", ce.Field)
	got, err := e.store.GetMapping(e.ctx, "rows")
	require.NoError(t, err)
	require.Equal(t, 1, got.Version)
}

func TestMappingDescribesItsSource(t *testing.T) {
	e := dataEnv(t)
	body := func(expr string) map[string]any {
		return map[string]any{"name": "lite2csv",
			"source": catalog.Endpoint{System: "lite", Table: "trades"},
			"target": catalog.Endpoint{System: "files", Path: "out", Format: "parquet"},
			"fields": []catalog.FieldMapping{{Name: "id"}, {Name: "v", Type: "float", Expr: expr}}}
	}
	ce := compileError(t, e.post("/api/v1/mappings", "admin", body("pxx * qty")))
	require.Contains(t, ce.Reason, `did you mean "px"?`, "the table's columns were described through the connector")
	r := e.post("/api/v1/mappings", "admin", body("px * qty"))
	require.Equal(t, http.StatusCreated, r.Status, "%s", r)

	// A path with a parameter is described through a glob over its values.
	noSchema := csvToLite([]catalog.FieldMapping{{Name: "id", Type: "int", Expr: "to_int(id)"}, {Name: "s", Type: "string", Expr: "symbol"}}, "")
	noSchema["name"] = "globbed"
	noSchema["source"] = catalog.Endpoint{System: "files", Path: "in/{day}/trades.csv", Format: "csv"}
	ce = compileError(t, e.post("/api/v1/mappings", "admin", noSchema))
	require.Contains(t, ce.Reason, `unknown source field "symbol"`)

	// An unreachable source cannot be described: said so, with the way out.
	unreachable := body("1.0")
	unreachable["name"] = "unreachable"
	unreachable["source"] = catalog.Endpoint{System: "pg", Table: "t"}
	r = e.post("/api/v1/mappings", "admin", unreachable)
	require.Equal(t, http.StatusBadRequest, r.Status, "%s", r)
	require.Contains(t, r.String(), "cannot describe the source")
	require.Contains(t, r.String(), "declare source.schema")
}

func TestMappingKindsAndPolicies(t *testing.T) {
	e := dataEnv(t)
	for _, c := range []struct {
		name  string
		edit  func(b map[string]any)
		field string
	}{
		{"table on files", func(b map[string]any) {
			b["source"] = catalog.Endpoint{System: "files", Table: "t"}
		}, "source.table"},
		{"path on a database", func(b map[string]any) { b["target"] = catalog.Endpoint{System: "lite", Path: "x"} }, "target.path"},
		{"no table", func(b map[string]any) { b["target"] = catalog.Endpoint{System: "lite"} }, "target.table"},
		{"bad format option", func(b map[string]any) {
			b["source"] = catalog.Endpoint{System: "files", Path: "in/{day}/trades.csv", Format: "csv", Options: map[string]string{"delimiterr": ";"}, Schema: csvSchema}
		}, "source.options"},
		{"files without a format", func(b map[string]any) {
			b["target"] = catalog.Endpoint{System: "files", Path: "out"}
		}, "target.format"},
		{"upsert into files", func(b map[string]any) {
			b["target"] = catalog.Endpoint{System: "files", Path: "out", Format: "csv"}
			b["write_mode"], b["key"] = "upsert", []string{"id"}
		}, "write_mode"},
		{"watermark on files", func(b map[string]any) { b["watermark_column"] = "id" }, "watermark_column"},
		{"reject without a file system", func(b map[string]any) {
			b["source"] = catalog.Endpoint{System: "lite", Table: "trades"}
			b["params"] = nil
			b["bad_rows"] = catalog.BadRowPolicy{Policy: "reject"}
		}, "bad_rows.reject_system"},
		{"reject to a database", func(b map[string]any) {
			b["bad_rows"] = catalog.BadRowPolicy{Policy: "reject", RejectSystem: "lite"}
		}, "bad_rows.reject_system"},
		{"bad zone", func(b map[string]any) { b["timezone"] = "Moon/Base" }, "timezone"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := csvToLite(nil, "")
			c.edit(b)
			r := e.post("/api/v1/mappings", "admin", b)
			require.Equal(t, http.StatusBadRequest, r.Status, "%s", r)
			var eb broker.ErrorBody
			r.decode(t, &eb)
			require.Equal(t, c.field, eb.Error.Field, "%s", r)
		})
	}
	b := csvToLite(nil, "")
	b["bad_rows"] = catalog.BadRowPolicy{Policy: "reject", MaxRejects: 10}
	r := e.post("/api/v1/mappings", "admin", b)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r)
}

func TestFunctionsAPI(t *testing.T) {
	e := dataEnv(t)
	fn := map[string]any{"name": "cents", "params": []string{"x"}, "expr": "to_int(round(x * 100))", "description": "money to cents"}
	r := e.post("/api/v1/functions", "admin", fn)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r)
	var f catalog.Function
	r.decode(t, &f)
	require.Equal(t, 1, f.Version)
	require.Equal(t, "admin", f.CreatedBy)
	require.Equal(t, http.StatusConflict, e.post("/api/v1/functions", "admin", fn).Status)

	// Not compiling: position and reason; a built-in's name is refused.
	ce := compileError(t, e.post("/api/v1/functions", "admin", map[string]any{"name": "twice", "params": []string{"x"}, "expr": "x * * 2"}))
	require.Equal(t, "expr", ce.Field)
	require.Equal(t, 1, ce.Line)
	ce = compileError(t, e.post("/api/v1/functions", "admin", map[string]any{"name": "upper", "params": []string{"x"}, "expr": "x"}))
	require.Contains(t, ce.Reason, "built-in")
	r = e.post("/api/v1/functions", "admin", map[string]any{"name": "Bad-Name", "expr": "1"})
	require.Equal(t, http.StatusBadRequest, r.Status)

	// Managing needs manage; reading any caller may.
	require.Equal(t, http.StatusForbidden, e.post("/api/v1/functions", "sub", map[string]any{"name": "x", "expr": "1"}).Status)
	r = e.get("/api/v1/functions", "sub")
	require.Equal(t, http.StatusOK, r.Status)
	var list struct{ Functions []catalog.Function }
	r.decode(t, &list)
	require.Len(t, list.Functions, 1)

	// A mapping calls it; a new version changes it; while used it stays.
	r = e.post("/api/v1/mappings", "admin", csvToLite([]catalog.FieldMapping{{Name: "id"}, {Name: "c", Type: "int", Expr: "cents(px)"}}, ""))
	require.Equal(t, http.StatusCreated, r.Status, "%s", r)
	ce = compileError(t, e.post("/api/v1/mappings", "admin", func() map[string]any {
		b := csvToLite([]catalog.FieldMapping{{Name: "c", Type: "int", Expr: "cents(px, 2)"}}, "")
		b["name"] = "rows2"
		return b
	}()))
	require.Contains(t, ce.Reason, "cents takes 1 argument, got 2")
	r = e.do(request{Method: http.MethodPut, Path: "/api/v1/functions/cents", Body: map[string]any{"params": []string{"x"}, "expr": "to_int(x * 100)"}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	r = e.get("/api/v1/functions/cents", "viewer")
	r.decode(t, &f)
	require.Equal(t, 2, f.Version)
	r = e.get("/api/v1/functions/cents/versions/1", "viewer")
	r.decode(t, &f)
	require.Equal(t, "to_int(round(x * 100))", f.Expr)
	r = e.do(request{Method: http.MethodDelete, Path: "/api/v1/functions/cents"})
	require.Equal(t, http.StatusConflict, r.Status)
	require.Contains(t, r.String(), "mappings rows")

	require.Equal(t, http.StatusOK, e.do(request{Method: http.MethodDelete, Path: "/api/v1/mappings/rows"}).Status)
	require.Equal(t, http.StatusNoContent, e.do(request{Method: http.MethodDelete, Path: "/api/v1/functions/cents"}).Status)
	require.Equal(t, http.StatusNotFound, e.get("/api/v1/functions/cents", "admin").Status)
	require.Equal(t, http.StatusNotFound, e.get("/api/v1/functions/NOPE", "admin").Status)
}

type previewAnswer struct {
	Mapping      string
	Params       map[string]string
	SourceFields []catalog.SchemaField `json:"source_fields"`
	Rows         []struct {
		Loc     string
		Input   []any
		Output  []any
		Dropped bool
		Error   string
	}
	Bad []struct{ Loc, Raw, Reason string }
}

func TestPreview(t *testing.T) {
	e := dataEnv(t)
	r := e.post("/api/v1/mappings", "admin", csvToLite([]catalog.FieldMapping{
		{Name: "id"}, {Name: "sym", Type: "string", Expr: "upper(sym)"}, {Name: "unit", Type: "float", Expr: "px / qty"}}, "qty >= 0"))
	require.Equal(t, http.StatusCreated, r.Status, "%s", r)

	r = e.post("/api/v1/mappings/rows/preview", "admin", map[string]any{"params": map[string]any{"day": "2026-11-20"}, "limit": 10})
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	var p previewAnswer
	r.decode(t, &p)
	require.Equal(t, "2026-11-20", p.Params["day"])
	require.Len(t, p.SourceFields, 4)
	require.Len(t, p.Rows, 4)
	require.Equal(t, "in/2026-11-20/trades.csv:2", p.Rows[0].Loc)
	require.Equal(t, []any{1.0, "aapl", 10.0, 1.5}, p.Rows[0].Input)
	require.Equal(t, []any{1.0, "AAPL", 0.15}, p.Rows[0].Output)
	require.Contains(t, p.Rows[1].Error, `field "unit": division by zero`)
	require.True(t, p.Rows[2].Dropped, "qty -4 fails the filter")
	require.Equal(t, []any{5.0, "GOOG", 4.75 / 7}, p.Rows[3].Output)
	require.Len(t, p.Bad, 1)
	require.Contains(t, p.Bad[0].Reason, "unterminated quoted field")

	r = e.post("/api/v1/mappings/rows/preview", "admin", map[string]any{"params": map[string]any{"day": "2026-11-20"}, "limit": 2})
	r.decode(t, &p)
	require.Len(t, p.Rows, 2)

	// Bad requests, and who may look.
	r = e.post("/api/v1/mappings/rows/preview", "admin", map[string]any{"params": map[string]any{"day": "2026-11-20"}, "limit": 101})
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Contains(t, r.String(), "limit")
	r = e.post("/api/v1/mappings/rows/preview", "admin", map[string]any{"params": map[string]any{}})
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Contains(t, r.String(), "params.day")
	require.Equal(t, http.StatusForbidden, e.post("/api/v1/mappings/rows/preview", "mapreader", map[string]any{"params": map[string]any{"day": "2026-11-20"}}).Status,
		"the sample is the source system's data")
	require.Equal(t, http.StatusOK, e.post("/api/v1/mappings/rows/preview", "viewer", map[string]any{"params": map[string]any{"day": "2026-11-20"}}).Status)
	require.Equal(t, http.StatusForbidden, e.post("/api/v1/mappings/rows/preview", "nobody", map[string]any{}).Status)
	require.Equal(t, http.StatusNotFound, e.post("/api/v1/mappings/nope/preview", "admin", map[string]any{}).Status)
	r = e.post("/api/v1/mappings/trades/preview", "admin", map[string]any{"params": map[string]any{"business_date": "2026-11-20"}})
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Contains(t, r.String(), "copies files byte for byte")
}
