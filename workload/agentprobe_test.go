package workload

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// proberFunc is a SystemProber made of a function.
type proberFunc func(system string) (*AgentProbe, error)

func (f proberFunc) Probe(_ context.Context, system string) (*AgentProbe, error) { return f(system) }

// TestAgentProberPass: only the leader probes, only systems linked to an
// agent whose last probe is stale, keeping the link; a failed probe keeps
// the last attributes beside the error; a system without a live agent is
// left alone.
func TestAgentProberPass(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	e := newEnv(t, s)
	ctx := context.Background()
	for _, n := range []string{"fresh", "stale", "never", "failing", "orphan", "unlinked"} {
		e.system(n, 0)
	}
	now := s.Now().UTC()
	old := now.Add(-2 * time.Hour).Format(time.RFC3339)
	for name, attrs := range map[string]map[string]string{
		"fresh":   {catalog.SystemNodeAttribute: "a1", catalog.SystemProbedAt: now.Format(time.RFC3339)},
		"stale":   {catalog.SystemNodeAttribute: "a1", catalog.SystemProbedAt: old, "version": "old"},
		"never":   {catalog.SystemNodeAttribute: "a1"},
		"failing": {catalog.SystemNodeAttribute: "a2", catalog.SystemProbedAt: old, "version": "15"},
		"orphan":  {catalog.SystemNodeAttribute: "gone"},
	} {
		require.NoError(t, s.SetSystemAttributes(ctx, name, attrs))
	}
	var asked []string
	probed := now.Add(-time.Second)
	p := NewAgentProber(AgentProberConfig{Region: region, NodeID: "s1", StaleAfter: time.Hour}, s, proberFunc(func(sys string) (*AgentProbe, error) {
		asked = append(asked, sys)
		switch sys {
		case "failing":
			return nil, errors.New("dispatcher agent: 502 system_error: connection refused")
		case "orphan":
			return nil, ErrNoAgent
		}
		return &AgentProbe{Node: "a1", ProbedAt: probed, Attributes: map[string]string{"kind": "fs", "version": "new"}}, nil
	}))

	done, err := p.Pass(ctx)
	require.NoError(t, err)
	require.Empty(t, done, "probed without the leader lease")
	require.Empty(t, asked)
	_, err = s.AcquireLease(ctx, catalog.LeaderLeaseName(region), "other", time.Minute)
	require.NoError(t, err)
	done, err = p.Pass(ctx)
	require.NoError(t, err)
	require.Empty(t, done, "probed while another server leads")
	require.NoError(t, s.ReleaseLease(ctx, catalog.LeaderLeaseName(region), "other"))

	_, err = s.AcquireLease(ctx, catalog.LeaderLeaseName(region), "s1", time.Minute)
	require.NoError(t, err)
	done, err = p.Pass(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"stale", "never", "failing"}, done)
	require.ElementsMatch(t, []string{"stale", "never", "failing", "orphan"}, asked, "fresh or unlinked systems were probed")

	got, err := s.GetSystemAttributes(ctx, "stale")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"kind": "fs", "version": "new", catalog.SystemNodeAttribute: "a1",
		catalog.SystemProbedAt: probed.Format(time.RFC3339), catalog.SystemProbedBy: "s1"}, got)
	got, err = s.GetSystemAttributes(ctx, "failing")
	require.NoError(t, err)
	require.Equal(t, "15", got["version"], "a failed probe dropped the last attributes")
	require.Equal(t, "a2", got[catalog.SystemNodeAttribute])
	require.Equal(t, old, got[catalog.SystemProbedAt])
	require.Contains(t, got[catalog.SystemProbeError], "connection refused")
	require.NotEmpty(t, got[catalog.SystemProbeErrorAt])
	got, err = s.GetSystemAttributes(ctx, "orphan")
	require.NoError(t, err)
	require.Equal(t, map[string]string{catalog.SystemNodeAttribute: "gone"}, got, "a system without a live agent was changed")

	// Everything probed is fresh now; the failed one waits StaleAfter too.
	asked = nil
	done, err = p.Pass(ctx)
	require.NoError(t, err)
	require.Empty(t, done)
	require.Equal(t, []string{"orphan"}, asked)
}
