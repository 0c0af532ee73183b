package workload

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
)

func planFixture() (*catalog.Run, *catalog.Mapping, map[string]*catalog.System) {
	r := &catalog.Run{ID: "177000000000012300000001", Mapping: "trades", MappingVersion: 3, SourceSystem: "src", TargetSystem: "dst",
		Params: catalog.NewJSON(map[string]string{"business_date": "2026-11-20", "symbol": "ACME"})}
	m := &catalog.Mapping{Name: "trades", Version: 3,
		Source: catalog.NewJSON(catalog.Endpoint{System: "src", Path: "trades/{business_date}/{symbol}*.csv"}),
		Target: catalog.NewJSON(catalog.Endpoint{System: "dst", Path: "in/./{business_date}"})}
	systems := map[string]*catalog.System{
		"src": {Name: "src", Kind: catalog.KindFS, Settings: catalog.NewJSON(map[string]string{"root": "/data/src"})},
		"dst": {Name: "dst", Kind: catalog.KindFS, Settings: catalog.NewJSON(map[string]string{"root": "/data/dst"})},
		"nul": {Name: "nul", Kind: catalog.KindNull},
	}
	return r, m, systems
}

func TestDraftPlanFSToFS(t *testing.T) {
	r, m, systems := planFixture()
	d, err := draftPlan(r, m, systems)
	require.NoError(t, err)
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	p := d.finish(WorkerLoad{ID: "w1", Slots: 6, Active: 2}, now)
	require.Equal(t, &catalog.Plan{
		SchemaVersion:  catalog.PlanSchemaVersion,
		RunID:          r.ID,
		Mapping:        "trades",
		MappingVersion: 3,
		Params:         map[string]string{"business_date": "2026-11-20", "symbol": "ACME"},
		Steps:          []string{"list", "copy", "stage", "commit", "manifest"},
		Source:         catalog.PlanEndpoint{System: "src", Kind: "fs", Path: "trades/2026-11-20/ACME*.csv"},
		Target:         catalog.PlanEndpoint{System: "dst", Kind: "fs", Path: "in/2026-11-20"},
		Worker:         "w1",
		MaxThreads:     6,
		CreatedAt:      now,
	}, p)
	// finish copies: the draft stays reusable.
	p2 := d.finish(WorkerLoad{ID: "w2", Slots: 1}, now)
	require.Equal(t, "w1", p.Worker)
	require.Equal(t, "w2", p2.Worker)
	require.Equal(t, 1, p2.MaxThreads)
}

func TestDraftPlanNullKinds(t *testing.T) {
	tests := []struct {
		src, dst  string
		steps     []string
		srcPath   string
		dstPath   string
		dstPatter string
	}{
		{"src", "nul", []string{"list", "read", "discard"}, "trades/2026-11-20/ACME*.csv", "", ""},
		{"nul", "dst", []string{"read", "stage", "commit", "manifest"}, "", "in/2026-11-20", "in/{business_date}"},
		{"nul", "nul", []string{"read", "discard"}, "", "", ""},
		{"src", "dst", []string{"list", "copy", "stage", "commit", "manifest"}, "trades/2026-11-20/ACME*.csv", ".", ""},
	}
	for _, tc := range tests {
		t.Run(tc.src+"-"+tc.dst, func(t *testing.T) {
			r, m, systems := planFixture()
			r.SourceSystem, r.TargetSystem = tc.src, tc.dst
			if tc.src == "nul" {
				m.Source.V.Path = ""
			}
			m.Target.V.Path = tc.dstPatter
			d, err := draftPlan(r, m, systems)
			require.NoError(t, err)
			require.Equal(t, tc.steps, d.plan.Steps)
			require.Equal(t, tc.srcPath, d.plan.Source.Path)
			require.Equal(t, tc.dstPath, d.plan.Target.Path)
			require.Equal(t, systems[tc.src].Kind, d.plan.Source.Kind)
			require.Equal(t, systems[tc.dst].Kind, d.plan.Target.Kind)
		})
	}
}

func TestDraftPlanMaxThreads(t *testing.T) {
	tests := []struct {
		name     string
		src, dst string // max_threads settings; "" for unset
		want     int
		wantErr  string
	}{
		{name: "unset: the worker's slots", want: 4},
		{name: "source sets it", src: "2", want: 2},
		{name: "target sets it", dst: " 3 ", want: 3},
		{name: "the smaller of both", src: "8", dst: "5", want: 5},
		{name: "above the worker's slots is allowed", src: "16", want: 16},
		{name: "not a number", src: "many", wantErr: `system src: setting max_threads must be a positive integer, got "many"`},
		{name: "zero", dst: "0", wantErr: `system dst: setting max_threads must be a positive integer, got "0"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, m, systems := planFixture()
			if tc.src != "" {
				systems["src"].Settings.V[SettingMaxThreads] = tc.src
			}
			if tc.dst != "" {
				systems["dst"].Settings.V[SettingMaxThreads] = tc.dst
			}
			d, err := draftPlan(r, m, systems)
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, d.finish(WorkerLoad{ID: "w", Slots: 4}, t0).MaxThreads)
		})
	}
}

func TestDraftPlanErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(r *catalog.Run, m *catalog.Mapping, systems map[string]*catalog.System)
		want   string
	}{
		{"source system gone", func(r *catalog.Run, _ *catalog.Mapping, s map[string]*catalog.System) { delete(s, "src") },
			"source system src no longer exists"},
		{"target system gone", func(r *catalog.Run, _ *catalog.Mapping, s map[string]*catalog.System) { delete(s, "dst") },
			"target system dst no longer exists"},
		{"unknown kind", func(r *catalog.Run, _ *catalog.Mapping, s map[string]*catalog.System) { s["dst"].Kind = "oracle" },
			"no data path from a fs system to a oracle system"},
		{"a path on a database", func(r *catalog.Run, _ *catalog.Mapping, s map[string]*catalog.System) { s["dst"].Kind = "postgres" },
			"target.path: a postgres system has tables, not paths"},
		{"parameter escapes the root", func(r *catalog.Run, _ *catalog.Mapping, _ map[string]*catalog.System) {
			r.Params.V["business_date"] = "../../etc"
		}, `source.path: "trades/../../etc/ACME*.csv" escapes the system's root`},
		{"parameter without a value", func(r *catalog.Run, _ *catalog.Mapping, _ map[string]*catalog.System) {
			delete(r.Params.V, "symbol")
		}, "source.path: parameter {symbol} has no value"},
		{"target path escapes", func(_ *catalog.Run, m *catalog.Mapping, _ map[string]*catalog.System) {
			m.Target.V.Path = "/abs/{business_date}"
		}, `target.path: "/abs/2026-11-20" must be relative to the system's root`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, m, systems := planFixture()
			tc.change(r, m, systems)
			_, err := draftPlan(r, m, systems)
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestLiveWorkers(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	worker := catalog.NewJSON([]string{catalog.NodeRoleServer, catalog.NodeRoleWorker})
	nodes := []catalog.Node{
		{ID: "ok", State: catalog.NodeAlive, Roles: worker, Slots: 4, LastSeen: now.Add(-time.Second)},
		{ID: "edge", State: catalog.NodeAlive, Roles: worker, Slots: 1, LastSeen: now.Add(-15 * time.Second)},
		{ID: "silent", State: catalog.NodeAlive, Roles: worker, Slots: 4, LastSeen: now.Add(-16 * time.Second)},
		{ID: "dead", State: catalog.NodeDead, Roles: worker, Slots: 4, LastSeen: now},
		{ID: "left", State: catalog.NodeLeft, Roles: worker, Slots: 4, LastSeen: now},
		{ID: "server", State: catalog.NodeAlive, Roles: catalog.NewJSON([]string{catalog.NodeRoleServer}), Slots: 4, LastSeen: now},
		{ID: "noslots", State: catalog.NodeAlive, Roles: worker, Slots: 0, LastSeen: now},
	}
	got := liveWorkers(nodes, map[string]int{"ok": 3, "dead": 2}, now, 15*time.Second)
	require.Equal(t, []WorkerLoad{{ID: "ok", Slots: 4, Active: 3}, {ID: "edge", Slots: 1}}, got)
}

func TestConfig(t *testing.T) {
	c := Config{Region: "local", NodeID: "n1"}.WithDefaults()
	require.Equal(t, MaxActiveRunsDefault, c.MaxActiveRuns)
	require.Equal(t, LeaseTTLDefault, c.LeaseTTL)
	require.Equal(t, PollIntervalDefault, c.PollInterval)
	require.Equal(t, NodeDeadAfterDefault, c.NodeDeadAfter)
	require.NotNil(t, c.Logger)
	require.NoError(t, c.validate())

	kept := Config{Region: "r", NodeID: "n", MaxActiveRuns: 4, LeaseTTL: time.Second, PollInterval: time.Millisecond, NodeDeadAfter: time.Minute}
	require.Equal(t, kept.MaxActiveRuns, kept.WithDefaults().MaxActiveRuns)
	require.Equal(t, kept.LeaseTTL, kept.WithDefaults().LeaseTTL)

	for field, c := range map[string]Config{
		"region":          {NodeID: "n"},
		"node_id":         {Region: "r"},
		"max_active_runs": {Region: "r", NodeID: "n", MaxActiveRuns: -1},
		"lease_ttl":       {Region: "r", NodeID: "n", LeaseTTL: -time.Second},
		"poll_interval":   {Region: "r", NodeID: "n", PollInterval: -time.Second},
		"node_dead_after": {Region: "r", NodeID: "n", NodeDeadAfter: -time.Second},
	} {
		err := c.WithDefaults().validate()
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve, field)
		require.Equal(t, field, ve.Field)
	}
	// Run refuses a bad config before touching the catalog.
	err := New(Config{NodeID: "n"}, nil).Run(t.Context())
	require.ErrorContains(t, err, "region: is required")
}

func TestNoLongerPending(t *testing.T) {
	require.True(t, noLongerPending(fmt.Errorf("dispatch run x: %w", &catalog.TransitionError{RunID: "x", From: []catalog.RunState{catalog.StateCanceled}, To: catalog.StateQueued, Err: catalog.ErrIllegalTransition})))
	// Refused from pending itself: the state machine disagrees, which must be seen.
	require.False(t, noLongerPending(&catalog.TransitionError{RunID: "x", From: []catalog.RunState{catalog.StatePending}, To: catalog.StateFailed, Err: catalog.ErrIllegalTransition}))
	require.False(t, noLongerPending(fmt.Errorf("abort: %w", catalog.ErrNotLeader)))
	require.False(t, noLongerPending(errors.New("connection reset")))
}

func TestDraftPlanRows(t *testing.T) {
	r, m, systems := planFixture()
	systems["pg"] = &catalog.System{Name: "pg", Kind: catalog.KindPostgres, Settings: catalog.NewJSON(map[string]string{"dsn": "postgres://u@h/db"})}
	r.TargetSystem = "pg"
	m.Source.V.Format = "csv"
	m.Target.V = catalog.Endpoint{System: "pg", Table: "sales.trades"}
	d, err := draftPlan(r, m, systems)
	require.NoError(t, err)
	require.Equal(t, []string{"describe", "read", "write", "commit", "count", "manifest"}, d.plan.Steps)
	require.Equal(t, catalog.PlanEndpoint{System: "pg", Kind: "postgres", Table: "sales.trades"}, d.plan.Target)
	require.Equal(t, "trades/2026-11-20/ACME*.csv", d.plan.Source.Path)

	m.Filter = "qty > 0"
	m.Fields = catalog.NewJSON([]catalog.FieldMapping{{Name: "qty"}})
	d, err = draftPlan(r, m, systems)
	require.NoError(t, err)
	require.Equal(t, []string{"describe", "read", "filter", "map", "write", "commit", "count", "manifest"}, d.plan.Steps)

	// Files to files with a format change are rows too.
	r, m, systems = planFixture()
	m.Target.V.Format = "parquet"
	d, err = draftPlan(r, m, systems)
	require.NoError(t, err)
	require.Equal(t, []string{"describe", "read", "write", "commit", "count", "manifest"}, d.plan.Steps)
}
