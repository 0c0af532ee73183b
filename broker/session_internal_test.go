package broker

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSignInLimiterRefusesNewKeysWhenFull(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	l := &signInLimiter{limit: 3, window: time.Minute, keys: map[string][]time.Time{}}
	d, _ := l.attempt([]string{"user:victim"}, t0)
	require.Zero(t, d)
	d, _ = l.attempt([]string{"user:victim"}, t0)
	require.Zero(t, d)
	for i := range signInKeysMax {
		l.attempt([]string{fmt.Sprintf("user:spray%d", i)}, t0.Add(time.Second))
	}
	require.LessOrEqual(t, len(l.keys), signInKeysMax)
	d, _ = l.attempt([]string{"user:new"}, t0.Add(2*time.Second))
	require.Equal(t, signInFullWait, d, "a new key while full waits")
	require.Len(t, l.keys["user:victim"], 2, "the victim's count survives the spray")
	d, reached := l.attempt([]string{"user:victim"}, t0.Add(3*time.Second))
	require.Zero(t, d)
	require.Equal(t, []string{"user:victim"}, reached)
	d, _ = l.attempt([]string{"user:victim"}, t0.Add(4*time.Second))
	require.Greater(t, d, time.Duration(0))
	// Once the window passes, old keys are pruned and new ones fit.
	d, _ = l.attempt([]string{"user:new"}, t0.Add(2*time.Minute))
	require.Zero(t, d)
}

func TestSignInAddrKeyCountsIPv6By64(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1": "ip:192.0.2.1", "2001:db8:1:2:3:4:5:6": "ip:2001:db8:1:2::/64",
	} {
		require.Equal(t, want, signInAddrKey(netip.MustParseAddr(in)))
	}
}
