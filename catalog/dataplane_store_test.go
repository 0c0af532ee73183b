package catalog_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func dataSystems(t *testing.T, s *catalog.Store) {
	t.Helper()
	ctx := context.Background()
	for _, sys := range []*catalog.System{
		{Name: "files", Kind: catalog.KindFS, Region: "eu", Settings: catalog.NewJSON(map[string]string{"root": "/data"})},
		{Name: "pg", Kind: catalog.KindPostgres, Region: "eu", Settings: catalog.NewJSON(map[string]string{"dsn": "postgres://weir@db:5432/sales"}),
			Secrets: catalog.NewJSON(map[string]string{"password": "s3cret"})},
	} {
		require.NoError(t, s.CreateSystem(ctx, sys))
	}
}

func rowMapping() *catalog.Mapping {
	return &catalog.Mapping{Name: "trades-to-pg", Enabled: true,
		Source: catalog.NewJSON(catalog.Endpoint{System: "files", Path: "in/{day}/*.csv", Format: "csv",
			Options: map[string]string{"delimiter": ";"},
			Schema:  []catalog.SchemaField{{Name: "id", Type: "int"}, {Name: "px", Type: "decimal", Precision: 18, Scale: 4}}}),
		Target:          catalog.NewJSON(catalog.Endpoint{System: "pg", Table: "sales.trades"}),
		Params:          catalog.NewJSON([]catalog.ParamSpec{{Name: "day", Type: catalog.ParamDate}}),
		Fields:          catalog.NewJSON([]catalog.FieldMapping{{Name: "id"}, {Name: "px2", Type: "decimal", Expr: "px * 2"}}),
		Filter:          "px > 0",
		WriteMode:       catalog.WriteUpsert,
		WriteKey:        catalog.NewJSON([]string{"id"}),
		BadRows:         catalog.NewJSON(catalog.BadRowPolicy{Policy: catalog.BadRowsReject, MaxRejects: 10}),
		WatermarkColumn: "",
		Tables:          catalog.NewJSON(map[string]map[string]string{"side": {"B": "buy"}}),
		Timezone:        "Europe/Paris",
	}
}

func TestMappingDataPlaneRoundTrip(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		dataSystems(t, s)
		m := rowMapping()
		require.NoError(t, s.CreateMapping(ctx, m))
		got, err := s.GetMapping(ctx, m.Name)
		require.NoError(t, err)
		require.Equal(t, m.Source.V, got.Source.V)
		require.Equal(t, m.Target.V, got.Target.V)
		require.Equal(t, m.Fields.V, got.Fields.V)
		require.Equal(t, "px > 0", got.Filter)
		require.Equal(t, catalog.WriteUpsert, got.Mode())
		require.Equal(t, []string{"id"}, got.WriteKey.V)
		require.Equal(t, catalog.BadRowPolicy{Policy: catalog.BadRowsReject, MaxRejects: 10}, got.BadRows.V)
		require.Equal(t, "buy", got.Tables.V["side"]["B"])
		require.Equal(t, "Europe/Paris", got.Timezone)
		require.Equal(t, catalog.DataPathRows, got.DataPath(catalog.KindFS, catalog.KindPostgres))

		// A new version keeps every declaration.
		got.Filter = "px >= 1"
		require.NoError(t, s.PutMapping(ctx, got))
		v2, err := s.GetMappingVersion(ctx, m.Name, 2)
		require.NoError(t, err)
		require.Equal(t, "px >= 1", v2.Filter)
		require.Equal(t, m.Fields.V, v2.Fields.V)
	})
}

func TestMigrationAddsDataPlaneColumnsToAnOlderCatalog(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		dataSystems(t, s)
		old := &catalog.Mapping{Name: "old", Enabled: true, Source: catalog.NewJSON(catalog.Endpoint{System: "files", Path: "a"}),
			Target: catalog.NewJSON(catalog.Endpoint{System: "files", Path: "b"})}
		require.NoError(t, s.CreateMapping(ctx, old))
		// Make the catalog what it was before 0005: no data-plane columns, no functions.
		for _, col := range []string{"fields", "filter", "write_mode", "write_key", "bad_rows", "watermark_column", "tables", "timezone"} {
			require.NoError(t, s.ExecRaw("ALTER TABLE mappings DROP COLUMN "+col), col)
		}
		require.NoError(t, s.ExecRaw("DROP TABLE user_functions"))
		require.NoError(t, s.ExecRaw("DELETE FROM schema_migrations WHERE id = ?", "0005_dataplane"))
		require.Error(t, s.CreateMapping(ctx, rowMapping()), "the model writes columns the old catalog lacks")

		require.NoError(t, s.Migrate(ctx))
		got, err := s.GetMapping(ctx, "old")
		require.NoError(t, err)
		require.Empty(t, got.Fields.V)
		require.Equal(t, catalog.WriteAppend, got.Mode())
		require.Equal(t, catalog.BadRowsFail, got.Policy())
		require.Equal(t, catalog.DataPathCopy, got.DataPath(catalog.KindFS, catalog.KindFS))

		m := rowMapping()
		require.NoError(t, s.CreateMapping(ctx, m))
		back, err := s.GetMapping(ctx, m.Name)
		require.NoError(t, err)
		require.Equal(t, m.Fields.V, back.Fields.V)
		require.NoError(t, s.CreateFunction(ctx, &catalog.Function{Name: "twice", Params: catalog.NewJSON([]string{"x"}), Expr: "x * 2"}))
	})
}

func TestMappingDataPlaneValidation(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		edit  func(m *catalog.Mapping)
		field string
	}{
		{"valid", func(*catalog.Mapping) {}, ""},
		{"table and query", func(m *catalog.Mapping) { m.Source.V = catalog.Endpoint{System: "pg", Table: "t", Query: "SELECT 1"} }, "source.query"},
		{"path and table", func(m *catalog.Mapping) { m.Target.V.Path = "x" }, "target.path"},
		{"query at the target", func(m *catalog.Mapping) { m.Target.V = catalog.Endpoint{System: "pg", Query: "SELECT 1"} }, "target.query"},
		{"query not a select", func(m *catalog.Mapping) { m.Source.V = catalog.Endpoint{System: "pg", Query: "DELETE FROM t"} }, "source.query"},
		{"table with a newline", func(m *catalog.Mapping) { m.Target.V.Table = "a\nb" }, "target.table"},
		{"unknown format", func(m *catalog.Mapping) { m.Source.V.Format = "xml" }, "source.format"},
		{"bad option name", func(m *catalog.Mapping) { m.Source.V.Options = map[string]string{"Delim iter": ","} }, "source.options"},
		{"schema type", func(m *catalog.Mapping) { m.Source.V.Schema[0].Type = "integer" }, "source.schema[0].type"},
		{"schema dup", func(m *catalog.Mapping) { m.Source.V.Schema[1].Name = "id" }, "source.schema[1].name"},
		{"scale above precision", func(m *catalog.Mapping) { m.Source.V.Schema[1].Scale = 20 }, "source.schema[1]"},
		{"field without name", func(m *catalog.Mapping) { m.Fields.V[0].Name = "" }, "fields[0].name"},
		{"field twice", func(m *catalog.Mapping) { m.Fields.V[1].Name = "id" }, "fields[1].name"},
		{"field type", func(m *catalog.Mapping) { m.Fields.V[1].Type = "money" }, "fields[1].type"},
		{"mode", func(m *catalog.Mapping) { m.WriteMode = "merge" }, "write_mode"},
		{"upsert without key", func(m *catalog.Mapping) { m.WriteKey.V = nil }, "key"},
		{"key not a field", func(m *catalog.Mapping) { m.WriteKey.V = []string{"nope"} }, "key[0]"},
		{"key without upsert", func(m *catalog.Mapping) { m.WriteMode = catalog.WriteAppend }, "key"},
		{"policy", func(m *catalog.Mapping) { m.BadRows.V.Policy = "ignore" }, "bad_rows.policy"},
		{"negative max rejects", func(m *catalog.Mapping) { m.BadRows.V.MaxRejects = -1 }, "bad_rows.max_rejects"},
		{"max rejects with fail", func(m *catalog.Mapping) { m.BadRows.V.Policy = catalog.BadRowsFail }, "bad_rows.max_rejects"},
		{"reject path escapes", func(m *catalog.Mapping) { m.BadRows.V.RejectPath = "../x" }, "bad_rows.reject_path"},
		{"incremental truncate", func(m *catalog.Mapping) {
			m.WatermarkColumn, m.WriteMode, m.WriteKey.V = "updated_at", catalog.WriteTruncateInsert, nil
		}, "watermark_column"},
		{"zone", func(m *catalog.Mapping) { m.Timezone = "Mars/Olympus" }, "timezone"},
		{"offset zone", func(m *catalog.Mapping) { m.Timezone = "+25:00" }, "timezone"},
		{"table name", func(m *catalog.Mapping) { m.Tables.V = map[string]map[string]string{"a b": {}} }, "tables.a b"},
		{"filter NUL", func(m *catalog.Mapping) { m.Filter = "a\x00" }, "filter"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := rowMapping()
			m.MaxAttempts, m.TimeoutSeconds = 1, 1
			c.edit(m)
			err := m.Validate()
			if c.field == "" {
				require.NoError(t, err)
				return
			}
			var ve *catalog.ValidationError
			require.True(t, errors.As(err, &ve), "want a validation error, got %v", err)
			require.Equal(t, c.field, ve.Field, "%v", err)
		})
	}
}

func TestZonesAndDataPaths(t *testing.T) {
	t.Parallel()
	for z, off := range map[string]int{"": 0, "UTC": 0, "+05:30": 19800, "-03:00": -10800} {
		loc, err := catalog.ParseZone("tz", z)
		require.NoError(t, err, z)
		_, o := time.Unix(0, 0).In(loc).Zone()
		require.Equal(t, off, o, z)
	}
	loc, err := catalog.ParseZone("tz", "America/New_York")
	require.NoError(t, err)
	require.Equal(t, "America/New_York", loc.String())
	for _, z := range []string{"Local", "local", "+5", "EST5EDTx"} {
		_, err := catalog.ParseZone("tz", z)
		require.Error(t, err, z)
	}

	copyM := &catalog.Mapping{}
	require.Equal(t, catalog.DataPathCopy, copyM.DataPath("fs", "fs"))
	require.Equal(t, catalog.DataPathCopy, copyM.DataPath("null", "fs"))
	require.Equal(t, catalog.DataPathRows, copyM.DataPath("fs", "sqlite"))
	require.Equal(t, catalog.DataPathRows, copyM.DataPath("mysql", "null"))
	withFormat := &catalog.Mapping{Target: catalog.NewJSON(catalog.Endpoint{Format: "parquet"})}
	require.Equal(t, catalog.DataPathRows, withFormat.DataPath("fs", "fs"))
	withFilter := &catalog.Mapping{Filter: "x > 1"}
	require.Equal(t, catalog.DataPathRows, withFilter.DataPath("fs", "fs"))
}

func TestResolveFields(t *testing.T) {
	t.Parallel()
	src := []catalog.SchemaField{{Name: "id", Type: "int"}, {Name: "odd name", Type: "string"}, {Name: "ts", Type: "timestamp"}}
	m := &catalog.Mapping{}
	all, err := m.ResolveFields(src)
	require.NoError(t, err)
	require.Equal(t, []catalog.FieldMapping{{Name: "id", Type: "int", Expr: "id"}, {Name: "odd name", Type: "string", Expr: `$env["odd name"]`},
		{Name: "ts", Type: "timestamp", Expr: "ts"}}, all)

	m.Fields = catalog.NewJSON([]catalog.FieldMapping{{Name: "ts"}, {Name: "n", Expr: "id"}, {Name: "x", Type: "int", Expr: "id + 1"}})
	got, err := m.ResolveFields(src)
	require.NoError(t, err)
	require.Equal(t, []catalog.FieldMapping{{Name: "ts", Type: "timestamp", Expr: "ts"}, {Name: "n", Type: "int", Expr: "id"},
		{Name: "x", Type: "int", Expr: "id + 1"}}, got)

	for _, c := range []struct {
		f     catalog.FieldMapping
		field string
		msg   string
	}{
		{catalog.FieldMapping{Name: "ID"}, "fields[0].expr", `did you mean "id"?`},
		{catalog.FieldMapping{Name: "y", Expr: "id * 2"}, "fields[0].type", "is required"},
	} {
		m.Fields = catalog.NewJSON([]catalog.FieldMapping{c.f})
		_, err := m.ResolveFields(src)
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Equal(t, c.field, ve.Field)
		require.Contains(t, ve.Message, c.msg)
	}
}

func TestDatabaseSystemSettings(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		kind  string
		set   map[string]string
		field string
	}{
		{"postgres", map[string]string{"dsn": "postgres://weir@db:5432/sales"}, ""},
		{"postgres", map[string]string{"dsn": "host=db dbname=sales user=weir"}, ""},
		{"postgres", map[string]string{"dsn": "postgres://weir:pw@db:5432/sales"}, "settings.dsn"},
		{"postgres", map[string]string{"dsn": "postgres://weir@db/sales?password=pw"}, "settings.dsn"},
		{"postgres", map[string]string{"dsn": "host=db password=pw"}, "settings.dsn"},
		{"postgres", map[string]string{}, "settings.dsn"},
		{"postgres", map[string]string{"dsn": "postgres://weir@db/s", "max_conns": "1"}, "settings.max_conns"},
		{"postgres", map[string]string{"dsn": "postgres://weir@db/s", "password": "pw"}, "settings.password"},
		{"mysql", map[string]string{"dsn": "root@tcp(127.0.0.1:3306)/test"}, ""},
		{"mysql", map[string]string{"dsn": "root:pw@tcp(127.0.0.1:3306)/test"}, "settings.dsn"},
		{"mysql", map[string]string{"dsn": "root@tcp(127.0.0.1:3306)/"}, "settings.dsn"},
		{"mysql", map[string]string{"dsn": "tcp(127.0.0.1:3306)/test"}, "settings.dsn"},
		{"sqlite", map[string]string{"path": "/var/lib/x.db"}, ""},
		{"sqlite", map[string]string{"root": "/var/lib", "path": "x/y.db"}, ""},
		{"sqlite", map[string]string{"root": "/var/lib", "path": "/var/lib/y.db"}, ""},
		{"sqlite", map[string]string{"path": "x.db"}, "settings.path"},
		{"sqlite", map[string]string{"root": "/var/lib", "path": "../y.db"}, "settings.path"},
		{"sqlite", map[string]string{"root": "/var/lib", "path": "/etc/y.db"}, "settings.path"},
		{"sqlite", map[string]string{}, "settings.path"},
		{"fs", map[string]string{"root": "/d", "max_threads": "0"}, "settings.max_threads"},
		{"fs", map[string]string{"root": "/d", "max_threads": "4"}, ""},
	} {
		sys := &catalog.System{Name: "s", Kind: c.kind, Region: "eu", Settings: catalog.NewJSON(c.set)}
		err := sys.Validate()
		if c.field == "" {
			require.NoError(t, err, "%s %v", c.kind, c.set)
			continue
		}
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve, "%s %v", c.kind, c.set)
		require.Equal(t, c.field, ve.Field, "%s %v: %v", c.kind, c.set, err)
		require.NotContains(t, ve.Message, "pw", "a password is never echoed")
	}
}

func TestFunctions(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		f := &catalog.Function{Name: "full_name", Params: catalog.NewJSON([]string{"first", "last"}), Expr: `concat(first, " ", last)`, CreatedBy: "ann"}
		require.NoError(t, s.CreateFunction(ctx, f))
		require.Equal(t, 1, f.Version)
		err := s.CreateFunction(ctx, &catalog.Function{Name: "full_name", Expr: "1"})
		require.ErrorIs(t, err, catalog.ErrConflict)

		f2 := &catalog.Function{Name: "full_name", Params: catalog.NewJSON([]string{"first", "last"}), Expr: `concat(last, ", ", first)`, CreatedBy: "bob"}
		require.NoError(t, s.UpdateFunction(ctx, f2))
		require.Equal(t, 2, f2.Version)
		got, err := s.GetFunction(ctx, "full_name")
		require.NoError(t, err)
		require.Equal(t, `concat(last, ", ", first)`, got.Expr)
		v1, err := s.GetFunctionVersion(ctx, "full_name", 1)
		require.NoError(t, err)
		require.Equal(t, `concat(first, " ", last)`, v1.Expr)
		require.ErrorIs(t, s.UpdateFunction(ctx, &catalog.Function{Name: "nope", Expr: "1"}), catalog.ErrNotFound)

		require.NoError(t, s.CreateFunction(ctx, &catalog.Function{Name: "shout", Params: catalog.NewJSON([]string{"s"}), Expr: "upper(full_name(s, s))"}))
		list, err := s.ListFunctions(ctx)
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, "full_name", list[0].Name)
		require.Equal(t, 2, list[0].Version)

		// In use: by a function, then by a mapping too.
		err = s.DeleteFunction(ctx, "full_name", "ann")
		require.ErrorIs(t, err, catalog.ErrConflict)
		require.Contains(t, err.Error(), "functions shout")
		dataSystems(t, s)
		m := rowMapping()
		m.Fields.V[1].Expr = "full_name(px, px)"
		m.Fields.V[1].Type = "string"
		require.NoError(t, s.CreateMapping(ctx, m))
		ms, fs, err := s.FunctionUsers(ctx, "full_name")
		require.NoError(t, err)
		require.Equal(t, []string{"trades-to-pg"}, ms)
		require.Equal(t, []string{"shout"}, fs)
		ms, _, err = s.FunctionUsers(ctx, "name") // a suffix of full_name is not a call of name
		require.NoError(t, err)
		require.Empty(t, ms)

		require.NoError(t, s.DeleteFunction(ctx, "shout", "ann"))
		require.NoError(t, s.DisableMapping(ctx, m.Name, "ann"))
		require.NoError(t, s.DeleteFunction(ctx, "full_name", "ann"))
		_, err = s.GetFunction(ctx, "full_name")
		require.ErrorIs(t, err, catalog.ErrNotFound)
		require.ErrorIs(t, s.DeleteFunction(ctx, "full_name", "ann"), catalog.ErrNotFound)
		list, err = s.ListFunctions(ctx)
		require.NoError(t, err)
		require.Empty(t, list)
		// Re-created after deletion: the history goes on.
		f3 := &catalog.Function{Name: "full_name", Params: catalog.NewJSON([]string{"a"}), Expr: "a"}
		require.NoError(t, s.CreateFunction(ctx, f3))
		require.Equal(t, 4, f3.Version)
	})
}

func TestFunctionValidation(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		f     catalog.Function
		field string
	}{
		{catalog.Function{Name: "Bad", Expr: "1"}, "name"},
		{catalog.Function{Name: "params", Expr: "1"}, "name"},
		{catalog.Function{Name: "f", Expr: " "}, "expr"},
		{catalog.Function{Name: "f", Expr: "1", Params: catalog.NewJSON([]string{"a", "a"})}, "params[1]"},
		{catalog.Function{Name: "f", Expr: "1", Params: catalog.NewJSON([]string{"1a"})}, "params[0]"},
	} {
		err := c.f.Validate()
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve, "%+v", c.f)
		require.Equal(t, c.field, ve.Field)
	}
}
