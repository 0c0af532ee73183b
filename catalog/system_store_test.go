package catalog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func fsSystem(name, root string) *catalog.System {
	return &catalog.System{Name: name, Kind: catalog.KindFS, Region: testRegion, Settings: catalog.NewJSON(map[string]string{"root": root})}
}

func TestSystemValidation(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		mod   func(*catalog.System)
		field string
	}{
		{func(s *catalog.System) { s.Name = "" }, "name"},
		{func(s *catalog.System) { s.Name = "Upper" }, "name"},
		{func(s *catalog.System) { s.Name = "-dash" }, "name"},
		{func(s *catalog.System) { s.Name = "a/b" }, "name"},
		{func(s *catalog.System) { s.Kind = "" }, "kind"},
		{func(s *catalog.System) { s.Kind = "oracle" }, "kind"},
		{func(s *catalog.System) { s.Region = "" }, "region"},
		{func(s *catalog.System) { s.Region = "EU West" }, "region"},
		{func(s *catalog.System) { s.MaxConcurrentRuns = -1 }, "max_concurrent_runs"},
		{func(s *catalog.System) { s.Settings.V = nil }, "settings.root"},
		{func(s *catalog.System) { s.Settings.V["root"] = "relative/dir" }, "settings.root"},
		{func(s *catalog.System) { s.Settings.V["root"] = "/data/../etc" }, "settings.root"},
	} {
		sys := fsSystem("fs1", "/data/fs1")
		c.mod(sys)
		requireInvalid(t, sys.Validate(), c.field, fmt.Sprintf("%+v", sys))
	}
	require.NoError(t, fsSystem("fs1", "/data/fs1").Validate())
	require.NoError(t, (&catalog.System{Name: "sink", Kind: catalog.KindNull, Region: testRegion}).Validate(), "a null system needs no root")
}

func TestSystemsStore(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		bad := fsSystem("fs1", "relative")
		requireInvalid(t, s.CreateSystem(ctx, bad), "settings.root")
		_, err := s.GetSystem(ctx, "fs1")
		require.ErrorIs(t, err, catalog.ErrNotFound, "a refused system is not stored")

		sys := fsSystem("fs1", "/data/fs1")
		sys.Secrets = catalog.NewJSON(map[string]string{"password": "hunter2-s3cr3t"})
		sys.MaxConcurrentRuns = 2
		require.NoError(t, s.CreateSystem(ctx, sys))
		require.ErrorIs(t, s.CreateSystem(ctx, fsSystem("fs1", "/x")), catalog.ErrConflict)
		require.NoError(t, s.CreateSystem(ctx, &catalog.System{Name: "sink", Kind: catalog.KindNull, Region: testRegion}))

		got, err := s.GetSystem(ctx, "fs1")
		require.NoError(t, err)
		require.Equal(t, "hunter2-s3cr3t", got.Secrets.V["password"], "connectors read secrets from the catalog")
		require.Equal(t, 2, got.MaxConcurrentRuns)
		b, err := json.Marshal(got)
		require.NoError(t, err)
		require.NotContains(t, string(b), "hunter2-s3cr3t", "secrets never leave in JSON")
		require.NotContains(t, string(b), "secrets")
		all, err := s.ListSystems(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"fs1", "sink"}, []string{all[0].Name, all[1].Name})
		b, err = json.Marshal(all)
		require.NoError(t, err)
		require.NotContains(t, string(b), "hunter2-s3cr3t")

		// Update keeps the secrets unless new ones are given.
		up := fsSystem("fs1", "/data/other")
		up.MaxConcurrentRuns = 5
		require.NoError(t, s.UpdateSystem(ctx, up))
		require.Equal(t, "/data/other", up.Settings.V["root"])
		require.Equal(t, "hunter2-s3cr3t", up.Secrets.V["password"])
		up = fsSystem("fs1", "/data/other")
		up.Secrets = catalog.NewJSON(map[string]string{"password": "new"})
		require.NoError(t, s.UpdateSystem(ctx, up))
		got, err = s.GetSystem(ctx, "fs1")
		require.NoError(t, err)
		require.Equal(t, "new", got.Secrets.V["password"])
		bad = fsSystem("fs1", "/data/other")
		bad.MaxConcurrentRuns = -3
		requireInvalid(t, s.UpdateSystem(ctx, bad), "max_concurrent_runs")
		require.ErrorIs(t, s.UpdateSystem(ctx, fsSystem("nope", "/x")), catalog.ErrNotFound)
		got, err = s.GetSystem(ctx, "fs1")
		require.NoError(t, err)
		require.Equal(t, 0, got.MaxConcurrentRuns)

		require.ErrorIs(t, s.DeleteSystem(ctx, "nope"), catalog.ErrNotFound)
	})
}

func TestDeleteSystemRefusedWhileUsed(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)
		require.NoError(t, s.CreateSystem(ctx, fsSystem("a", "/a")))
		require.NoError(t, s.CreateSystem(ctx, fsSystem("b", "/b")))
		require.NoError(t, s.CreateSystem(ctx, fsSystem("c", "/c")))
		require.NoError(t, s.PutMapping(ctx, &catalog.Mapping{Name: "m", Source: catalog.NewJSON(catalog.Endpoint{System: "a"}), Target: catalog.NewJSON(catalog.Endpoint{System: "b"}), Enabled: true}))

		err := s.DeleteSystem(ctx, "a")
		require.ErrorIs(t, err, catalog.ErrConflict)
		require.Contains(t, err.Error(), "m")
		require.ErrorIs(t, s.DeleteSystem(ctx, "b"), catalog.ErrConflict, "used as a target")
		_, err = s.GetSystem(ctx, "a")
		require.NoError(t, err)

		// m v2 moves from a to c: a is free, c is used.
		require.NoError(t, s.PutMapping(ctx, &catalog.Mapping{Name: "m", Source: catalog.NewJSON(catalog.Endpoint{System: "c"}), Target: catalog.NewJSON(catalog.Endpoint{System: "b"}), Enabled: true}))
		require.NoError(t, s.DeleteSystem(ctx, "a"), "only the mapping's current version counts")
		require.ErrorIs(t, s.DeleteSystem(ctx, "c"), catalog.ErrConflict)

		// A disabled mapping no longer holds its systems.
		require.NoError(t, s.DisableMapping(ctx, "m", "admin"))
		require.NoError(t, s.DeleteSystem(ctx, "c"))
		_, err = s.GetSystem(ctx, "c")
		require.ErrorIs(t, err, catalog.ErrNotFound)
	})
}

func TestMappingValidation(t *testing.T) {
	t.Parallel()
	base := func() *catalog.Mapping {
		return &catalog.Mapping{
			Name:   "m",
			Source: catalog.NewJSON(catalog.Endpoint{System: "a", Path: "in/{business_date}/*.csv"}),
			Target: catalog.NewJSON(catalog.Endpoint{System: "b", Path: "out/{business_date}"}),
			Params: catalog.NewJSON([]catalog.ParamSpec{
				{Name: "business_date", Type: catalog.ParamDate, Required: true, Window: &catalog.DateWindow{Min: "2020-01-01", MaxAgeDays: 30}},
				{Name: "n", Type: catalog.ParamInt, Default: "3"},
			}),
			MaxAttempts: 3, TimeoutSeconds: 60,
		}
	}
	require.NoError(t, base().Validate())
	for _, c := range []struct {
		mod   func(*catalog.Mapping)
		field string
	}{
		{func(m *catalog.Mapping) { m.Name = "" }, "name"},
		{func(m *catalog.Mapping) { m.Name = "M" }, "name"},
		{func(m *catalog.Mapping) { m.Name = strings.Repeat("m", 129) }, "name"},
		{func(m *catalog.Mapping) { m.Source.V.System = "" }, "source.system"},
		{func(m *catalog.Mapping) { m.Target.V.System = "" }, "target.system"},
		{func(m *catalog.Mapping) { m.MaxAttempts = 0 }, "max_attempts"},
		{func(m *catalog.Mapping) { m.MaxAttempts = -1 }, "max_attempts"},
		{func(m *catalog.Mapping) { m.MaxAttempts = 101 }, "max_attempts"},
		{func(m *catalog.Mapping) { m.TimeoutSeconds = -5 }, "timeout_seconds"},
		{func(m *catalog.Mapping) { m.Description = strings.Repeat("d", 1001) }, "description"},
		{func(m *catalog.Mapping) { m.Params.V[0].Name = "" }, "params[0].name"},
		{func(m *catalog.Mapping) { m.Params.V[0].Name = "1x" }, "params[0].name"},
		{func(m *catalog.Mapping) { m.Params.V[0].Name = "a-b" }, "params[0].name"},
		{func(m *catalog.Mapping) { m.Params.V[1].Name = "business_date" }, "params[1].name"},
		{func(m *catalog.Mapping) { m.Params.V[1].Type = "float" }, "params[1].type"},
		{func(m *catalog.Mapping) { m.Params.V[1].Type = "" }, "params[1].type"},
		{func(m *catalog.Mapping) { m.Params.V[1].Default = "three" }, "params[1].default"},
		{func(m *catalog.Mapping) { m.Params.V[1].Window = &catalog.DateWindow{} }, "params[1].window"},
		{func(m *catalog.Mapping) { m.Params.V[0].Window.Min = "2020-13-01" }, "params[0].window.min"},
		{func(m *catalog.Mapping) { m.Params.V[0].Window.Max = "yesterday" }, "params[0].window.max"},
		{func(m *catalog.Mapping) { m.Params.V[0].Window.Max = "2019-12-31" }, "params[0].window"},
		{func(m *catalog.Mapping) { m.Params.V[0].Window.MaxAgeDays = -1 }, "params[0].window.max_age_days"},
		{func(m *catalog.Mapping) { m.Params.V[0].Default = "2019-01-01" }, "params[0].default"},
		{func(m *catalog.Mapping) { m.Source.V.Path = "in/{undeclared}" }, "source.path"},
		{func(m *catalog.Mapping) { m.Target.V.Path = "{nope}/x" }, "target.path"},
		{func(m *catalog.Mapping) { m.Source.V.Path = "../etc/passwd" }, "source.path"},
		{func(m *catalog.Mapping) { m.Target.V.Path = "out/../../x" }, "target.path"},
		{func(m *catalog.Mapping) { m.Target.V.Path = "/etc" }, "target.path"},
		{func(m *catalog.Mapping) { m.Source.V.Path = `in\..\x` }, "source.path"},
	} {
		m := base()
		c.mod(m)
		requireInvalid(t, m.Validate(), c.field, c.field)
	}
}

func TestMappingVersions(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)
		require.NoError(t, s.CreateSystem(ctx, fsSystem("a", "/a")))
		other := fsSystem("b", "/b")
		other.Region = "r2"
		require.NoError(t, s.CreateSystem(ctx, other))

		m := &catalog.Mapping{Name: "m", Description: "first", Source: catalog.NewJSON(catalog.Endpoint{System: "a", Path: "in"}),
			Target: catalog.NewJSON(catalog.Endpoint{System: "b", Path: "out"}), Enabled: true, CreatedBy: "alice"}
		require.NoError(t, s.PutMapping(ctx, m))
		require.Equal(t, 1, m.Version)
		require.Equal(t, catalog.MaxAttemptsDefault, m.MaxAttempts)
		require.Equal(t, catalog.TimeoutSecondsDefault, m.TimeoutSeconds)
		require.Equal(t, testRegion, m.Region, "a mapping lives in its source's region")

		clock.Advance(time.Hour)
		m2 := &catalog.Mapping{Name: "m", Description: "second", Source: catalog.NewJSON(catalog.Endpoint{System: "a", Path: "in2"}),
			Target: catalog.NewJSON(catalog.Endpoint{System: "b", Path: "out"}), Enabled: true, CreatedBy: "bob"}
		require.NoError(t, s.PutMapping(ctx, m2))
		require.Equal(t, 2, m2.Version)

		got, err := s.GetMapping(ctx, "m")
		require.NoError(t, err)
		require.Equal(t, 2, got.Version)
		require.Equal(t, "in2", got.Source.V.Path)
		require.True(t, got.CreatedAt.Equal(clock.Now()))
		v1, err := s.GetMappingVersion(ctx, "m", 1)
		require.NoError(t, err)
		require.Equal(t, "first", v1.Description)
		require.Equal(t, "in", v1.Source.V.Path)
		_, err = s.GetMappingVersion(ctx, "m", 3)
		require.ErrorIs(t, err, catalog.ErrNotFound)
		_, err = s.GetMapping(ctx, "nope")
		require.ErrorIs(t, err, catalog.ErrNotFound)

		// Disabling is a new version, with its own author and time.
		clock.Advance(time.Hour)
		require.NoError(t, s.DisableMapping(ctx, "m", "carol"))
		got, err = s.GetMapping(ctx, "m")
		require.NoError(t, err)
		require.Equal(t, 3, got.Version)
		require.False(t, got.Enabled)
		require.Equal(t, "carol", got.CreatedBy)
		require.True(t, got.CreatedAt.Equal(clock.Now()), "the disabled version was made now, not %v", got.CreatedAt)
		require.Equal(t, "in2", got.Source.V.Path)
		require.NoError(t, s.DisableMapping(ctx, "m", "carol"), "disabling twice is harmless")
		got, err = s.GetMapping(ctx, "m")
		require.NoError(t, err)
		require.Equal(t, 3, got.Version, "and makes no new version")
		require.ErrorIs(t, s.DisableMapping(ctx, "nope", "carol"), catalog.ErrNotFound)

		// Unknown systems, named by field; nothing stored.
		err = s.PutMapping(ctx, &catalog.Mapping{Name: "x", Source: catalog.NewJSON(catalog.Endpoint{System: "zz"}), Target: catalog.NewJSON(catalog.Endpoint{System: "a"})})
		requireInvalid(t, err, "source.system")
		err = s.PutMapping(ctx, &catalog.Mapping{Name: "x", Source: catalog.NewJSON(catalog.Endpoint{System: "a"}), Target: catalog.NewJSON(catalog.Endpoint{System: "zz"})})
		requireInvalid(t, err, "target.system")
		err = s.PutMapping(ctx, &catalog.Mapping{Name: "x", Source: catalog.NewJSON(catalog.Endpoint{System: "a", Path: "../up"}), Target: catalog.NewJSON(catalog.Endpoint{System: "a"})})
		requireInvalid(t, err, "source.path")
		_, err = s.GetMapping(ctx, "x")
		require.ErrorIs(t, err, catalog.ErrNotFound)

		require.NoError(t, s.PutMapping(ctx, &catalog.Mapping{Name: "a-first", Source: catalog.NewJSON(catalog.Endpoint{System: "a"}), Target: catalog.NewJSON(catalog.Endpoint{System: "a"}), Enabled: true}))
		ms, err := s.ListMappings(ctx)
		require.NoError(t, err)
		require.Len(t, ms, 2)
		require.Equal(t, "a-first", ms[0].Name)
		require.Equal(t, 1, ms[0].Version)
		require.Equal(t, "m", ms[1].Name)
		require.Equal(t, 3, ms[1].Version, "the list shows the latest version")

		// JSON shows source and target as endpoints, not the denormalised columns.
		b, err := json.Marshal(ms[1])
		require.NoError(t, err)
		require.Contains(t, string(b), `"source":{"system":"a","path":"in2"}`)
		require.NotContains(t, string(b), "SourceSystem")
	})
}

func TestRequestType(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ src, dst, want string }{
		{"fs", "fs", catalog.RequestTransfer},
		{"fs", "null", catalog.RequestTransfer},
		{"null", "fs", catalog.RequestTransfer},
		{"fs", "postgres", catalog.RequestLoad},
		{"postgres", "fs", catalog.RequestExtract},
		{"postgres", "mysql", catalog.RequestReplicate},
	} {
		require.Equal(t, c.want, catalog.RequestType(c.src, c.dst), "%s -> %s", c.src, c.dst)
	}
}
