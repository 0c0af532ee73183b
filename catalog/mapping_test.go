package catalog_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
)

func paramMapping() *catalog.Mapping {
	return &catalog.Mapping{Name: "m", Params: catalog.NewJSON([]catalog.ParamSpec{
		{Name: "business_date", Type: catalog.ParamDate, Required: true, Window: &catalog.DateWindow{Min: "2026-01-01", Max: "2026-12-31", MaxAgeDays: 30}},
		{Name: "symbol", Type: catalog.ParamString, Default: "ALL"},
		{Name: "limit", Type: catalog.ParamInt},
		{Name: "future", Type: catalog.ParamDate, Window: &catalog.DateWindow{AllowFuture: true}},
		{Name: "any_day", Type: catalog.ParamDate},
		{Name: "old_default", Type: catalog.ParamDate, Default: "2026-01-02", Window: &catalog.DateWindow{MaxAgeDays: 10}},
	})}
}

func TestResolveParams(t *testing.T) {
	t.Parallel()
	today := time.Date(2026, 3, 1, 23, 30, 0, 0, time.FixedZone("UTC+2", 2*3600)) // 1 March in the region
	bd := func(extra map[string]any) map[string]any {
		in := map[string]any{"business_date": "2026-02-27", "old_default": "2026-02-25"}
		for k, v := range extra {
			in[k] = v
		}
		return in
	}
	for _, c := range []struct {
		name  string
		in    map[string]any
		want  map[string]string // nil: error
		field string
	}{
		{"required and defaults", bd(nil), map[string]string{"business_date": "2026-02-27", "symbol": "ALL", "old_default": "2026-02-25"}, ""},
		{"today is allowed", bd(map[string]any{"business_date": "2026-03-01"}), map[string]string{"business_date": "2026-03-01", "symbol": "ALL", "old_default": "2026-02-25"}, ""},
		{"string given", bd(map[string]any{"symbol": "AAPL", "limit": "10"}), map[string]string{"business_date": "2026-02-27", "symbol": "AAPL", "limit": "10", "old_default": "2026-02-25"}, ""},
		{"int as JSON number", bd(map[string]any{"limit": float64(42)}), map[string]string{"business_date": "2026-02-27", "symbol": "ALL", "limit": "42", "old_default": "2026-02-25"}, ""},
		{"int as json.Number", bd(map[string]any{"limit": json.Number("7")}), map[string]string{"business_date": "2026-02-27", "symbol": "ALL", "limit": "7", "old_default": "2026-02-25"}, ""},
		{"int normalised", bd(map[string]any{"limit": "007"}), map[string]string{"business_date": "2026-02-27", "symbol": "ALL", "limit": "7", "old_default": "2026-02-25"}, ""},
		{"int as Go int", bd(map[string]any{"limit": 5}), map[string]string{"business_date": "2026-02-27", "symbol": "ALL", "limit": "5", "old_default": "2026-02-25"}, ""},
		{"largest exact float", bd(map[string]any{"limit": float64(1 << 62)}), map[string]string{"business_date": "2026-02-27", "symbol": "ALL", "limit": "4611686018427387904", "old_default": "2026-02-25"}, ""},
		{"negative int", bd(map[string]any{"limit": float64(-3)}), map[string]string{"business_date": "2026-02-27", "symbol": "ALL", "limit": "-3", "old_default": "2026-02-25"}, ""},
		{"future allowed by window", bd(map[string]any{"future": "2027-01-01"}), map[string]string{"business_date": "2026-02-27", "symbol": "ALL", "future": "2027-01-01", "old_default": "2026-02-25"}, ""},
		{"null is absent", bd(map[string]any{"limit": nil}), map[string]string{"business_date": "2026-02-27", "symbol": "ALL", "old_default": "2026-02-25"}, ""},

		{"required missing", map[string]any{}, nil, "params.business_date"},
		{"required null", map[string]any{"business_date": nil}, nil, "params.business_date"},
		{"unknown param", bd(map[string]any{"nope": "x"}), nil, "params.nope"},
		{"not a date", bd(map[string]any{"business_date": "27/02/2026"}), nil, "params.business_date"},
		{"impossible date", bd(map[string]any{"business_date": "2026-02-30"}), nil, "params.business_date"},
		{"date with time", bd(map[string]any{"business_date": "2026-02-27T00:00:00Z"}), nil, "params.business_date"},
		{"date in the future", bd(map[string]any{"business_date": "2026-03-02"}), nil, "params.business_date"},
		{"no window: future refused too", bd(map[string]any{"any_day": "2026-03-02"}), nil, "params.any_day"},
		{"before min", bd(map[string]any{"business_date": "2025-12-31"}), nil, "params.business_date"},
		{"older than max age", bd(map[string]any{"business_date": "2026-01-29"}), nil, "params.business_date"},
		{"allow_future and today", bd(map[string]any{"future": "2027-01-01", "business_date": "2026-03-01"}), map[string]string{"business_date": "2026-03-01", "symbol": "ALL", "future": "2027-01-01", "old_default": "2026-02-25"}, ""},
		{"int not integral", bd(map[string]any{"limit": 1.5}), nil, "params.limit"},
		{"int too large for a float", bd(map[string]any{"limit": 1e20}), nil, "params.limit"},
		{"int far below range", bd(map[string]any{"limit": -1e19}), nil, "params.limit"},
		{"json.Number for a string", bd(map[string]any{"symbol": json.Number("5")}), nil, "params.symbol"},
		{"json.Number not an int", bd(map[string]any{"limit": json.Number("1.5")}), nil, "params.limit"},
		{"int as text", bd(map[string]any{"limit": "ten"}), nil, "params.limit"},
		{"number for a string", bd(map[string]any{"symbol": float64(5)}), nil, "params.symbol"},
		{"number for a date", bd(map[string]any{"business_date": float64(20260227)}), nil, "params.business_date"},
		{"bool", bd(map[string]any{"symbol": true}), nil, "params.symbol"},
		{"object", bd(map[string]any{"symbol": map[string]any{"a": 1}}), nil, "params.symbol"},
		{"NUL in string", bd(map[string]any{"symbol": "a\x00b"}), nil, "params.symbol"},
		{"default outside its window today", map[string]any{"business_date": "2026-02-27"}, nil, "params.old_default"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := paramMapping().ResolveParams(c.in, today)
			if c.want == nil {
				requireInvalid(t, err, c.field)
				require.Nil(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
	// After max: a window that ended.
	m := &catalog.Mapping{Name: "m", Params: catalog.NewJSON([]catalog.ParamSpec{{Name: "d", Type: catalog.ParamDate, Window: &catalog.DateWindow{Max: "2026-01-31"}}})}
	_, err := m.ResolveParams(map[string]any{"d": "2026-02-01"}, today)
	requireInvalid(t, err, "params.d")
	got, err := m.ResolveParams(map[string]any{"d": "2026-01-31"}, today)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"d": "2026-01-31"}, got)
}

func TestExpandPathAndCleanRelPath(t *testing.T) {
	t.Parallel()
	params := map[string]string{"d": "2026-02-27", "up": "..", "abs": "/etc", "deep": "a/../../b", "sub": "x/y", "back": `..\..`, "empty": ""}
	for _, c := range []struct {
		pattern string
		want    string // "": error
	}{
		{"in/{d}/*.csv", "in/2026-02-27/*.csv"},
		{"{d}", "2026-02-27"},
		{"in/{sub}/z", "in/x/y/z"},
		{"a//b/./c/", "a/b/c"},
		{"", "."},
		{".", "."},
		{"in/{empty}/x", "in/x"},
		{"{up}/x", ""},
		{"in/{up}", ""},
		{"{abs}", ""},
		{"{abs}/x", ""},
		{"in/{deep}", ""},
		{"in/{back}", ""},
		{"../x", ""},
		{"x/..", ""},
		{"/x", ""},
		{"{missing}", ""},
	} {
		got, err := catalog.ExpandPath("target.path", c.pattern, params)
		if c.want == "" {
			requireInvalid(t, err, "target.path", c.pattern)
			continue
		}
		require.NoError(t, err, c.pattern)
		require.Equal(t, c.want, got, c.pattern)
		require.False(t, strings.HasPrefix(got, "/"))
	}
	for _, p := range []string{"..", "../", "a/../..", "/", `a\b`, "a/\x00b"} {
		_, err := catalog.CleanRelPath("p", p)
		requireInvalid(t, err, "p", p)
	}
	got, err := catalog.CleanRelPath("p", "a/./b//c")
	require.NoError(t, err)
	require.Equal(t, "a/b/c", got)
}

func FuzzCleanRelPath(f *testing.F) {
	for _, s := range []string{"a/b", "../a", "a/../../b", "/abs", "a/./b", "", "..", `a\..\b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := catalog.CleanRelPath("p", p)
		if err != nil {
			return
		}
		// Whatever is accepted stays below the root.
		require.False(t, strings.HasPrefix(got, "/"), "%q -> %q", p, got)
		require.NotEqual(t, "..", got)
		require.False(t, strings.HasPrefix(got, "../"), "%q -> %q", p, got)
		for _, el := range strings.Split(got, "/") {
			require.NotEqual(t, "..", el, "%q -> %q", p, got)
		}
		require.NotContains(t, got, "\x00")
	})
}
