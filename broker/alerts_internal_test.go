package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFailureTrackerSlidesAndStaysBounded(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tr := newFailureTracker(3, time.Minute)
	n, due := tr.record("a", t0)
	require.Equal(t, 1, n)
	require.False(t, due)
	tr.record("a", t0.Add(10*time.Second))
	n, due = tr.record("a", t0.Add(20*time.Second))
	require.Equal(t, 3, n)
	require.True(t, due, "the limit reached in the window")
	n, due = tr.record("a", t0.Add(30*time.Second))
	require.Equal(t, 3, n, "at most limit failures are kept")
	require.False(t, due, "once per window")
	n, due = tr.record("a", t0.Add(75*time.Second))
	require.Equal(t, 3, n, "t0+10s fell out of the window; +20s, +30s, +75s remain")
	require.False(t, due)
	n, due = tr.record("a", t0.Add(85*time.Second))
	require.Equal(t, 3, n)
	require.True(t, due, "a window after the last raise")
	n, _ = tr.record("a", t0.Add(10*time.Minute))
	require.Equal(t, 1, n, "old failures forgotten")

	// Many addresses: the table stays bounded, quiet keys go first.
	for i := range authFailureKeysMax + 500 {
		tr.record(fmt.Sprintf("k%d", i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	require.LessOrEqual(t, len(tr.keys), authFailureKeysMax)
	_, ok := tr.keys[fmt.Sprintf("k%d", authFailureKeysMax+499)]
	require.True(t, ok, "the newest key is tracked")
}
