package catalog_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestJSONValueAndScan(t *testing.T) {
	t.Parallel()
	j := catalog.NewJSON(map[string]string{"a": "b"})
	v, err := j.Value()
	require.NoError(t, err)
	require.Equal(t, `{"a":"b"}`, v)

	var back catalog.JSON[map[string]string]
	require.NoError(t, back.Scan([]byte(`{"x":"y"}`)))
	require.Equal(t, map[string]string{"x": "y"}, back.V)
	require.NoError(t, back.Scan(`{"z":"w"}`))
	require.Equal(t, map[string]string{"z": "w"}, back.V, "a scan replaces, it does not merge")
	require.NoError(t, back.Scan(nil))
	require.Nil(t, back.V)
	require.NoError(t, back.Scan(""))
	require.Nil(t, back.V)
	require.Error(t, back.Scan(42))
	require.Error(t, back.Scan("{not json"))

	var plan catalog.JSON[*catalog.Plan]
	v, err = plan.Value()
	require.NoError(t, err)
	require.Equal(t, "null", v)
	require.NoError(t, plan.Scan("null"))
	require.Nil(t, plan.V)

	// In API JSON the wrapper is invisible.
	b, err := json.Marshal(struct {
		L catalog.JSON[[]string] `json:"l"`
	}{catalog.NewJSON([]string{"x"})})
	require.NoError(t, err)
	require.Equal(t, `{"l":["x"]}`, string(b))
	var in struct {
		L catalog.JSON[[]string] `json:"l"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"l":["p","q"]}`), &in))
	require.Equal(t, []string{"p", "q"}, in.L.V)
}

func TestJSONColumnsRoundTrip(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		f := newFixture(t, s)
		params := map[string]string{"business_date": "2026-02-27", "quote": `he said "hi"`, "unicode": "Zürich ✓", "empty": ""}
		r := f.pending(func(r *catalog.Run) { r.Params = catalog.NewJSON(params) })
		created := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
		plan := &catalog.Plan{SchemaVersion: catalog.PlanSchemaVersion, RunID: r.ID, Mapping: "m", MappingVersion: 2, Params: params,
			Steps: []string{"read", "write"}, Source: catalog.PlanEndpoint{System: "src", Kind: "fs", Path: "in/*"},
			Target: catalog.PlanEndpoint{System: "dst", Kind: "fs", Path: "out"}, Worker: "w1", MaxThreads: 8, CreatedAt: created}
		require.NoError(t, s.DispatchRun(f.ctx, catalog.DispatchParams{RunID: r.ID, Worker: "w1", Plan: plan,
			LeaseName: f.lease.Name, LeaseHolder: f.lease.Holder, LeaseToken: f.lease.Token}))
		got := f.reload(r.ID)
		require.Equal(t, params, got.Params.V)
		require.Equal(t, plan, got.Plan.V)
		require.Nil(t, got.Manifest.V)

		// Empty and nil collections survive as such.
		empty := f.pending(func(r *catalog.Run) { r.Params = catalog.NewJSON(map[string]string{}) })
		require.Equal(t, map[string]string{}, f.reload(empty.ID).Params.V)
		none := f.pending(func(r *catalog.Run) { r.Params = catalog.JSON[map[string]string]{} })
		require.Nil(t, f.reload(none.ID).Params.V)

		// Plans and manifests are served by their own endpoints, not with the run.
		b, err := json.Marshal(got)
		require.NoError(t, err)
		require.NotContains(t, string(b), `"steps"`)
		require.Contains(t, string(b), `"params":{`)
	})
}
