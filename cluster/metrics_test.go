package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestMembersMetricsByState(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	cfg := fastConfig("m0", "us-east", []string{RoleServer})
	cfg.Metrics = reg
	seed := startNode(t, cfg)
	a := startNode(t, fastConfig("m1", "us-east", []string{RoleWorker}, addr(seed)))
	b := startNode(t, fastConfig("m2", "us-east", []string{RoleWorker}, addr(seed)))
	waitFor(t, 5*time.Second, "the seed sees all", func() bool { return countState(seed, StateAlive) == 3 })

	require.NoError(t, a.Leave(2*time.Second))
	require.NoError(t, a.Shutdown())
	require.NoError(t, b.Shutdown()) // a crash
	waitFor(t, 5*time.Second, "the seed sees m1 left and m2 dead", func() bool {
		return stateOf(seed, "m1") == StateLeft && stateOf(seed, "m2") == StateDead
	})
	want := `
# HELP weir_gossip_members Members of the gossip pool this node knows, itself included, by state (alive, dead, left).
# TYPE weir_gossip_members gauge
weir_gossip_members{state="alive"} 1
weir_gossip_members{state="dead"} 1
weir_gossip_members{state="left"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "weir_gossip_members"))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}
