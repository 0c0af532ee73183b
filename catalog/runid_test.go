package catalog_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
)

func TestRunIDForm(t *testing.T) {
	t.Parallel()
	g := catalog.NewRunIDGenerator("eu-west")
	before := time.Now().UTC().Truncate(time.Millisecond)
	id := g.Next()
	after := time.Now().UTC()
	require.Len(t, id, catalog.RunIDLength)
	require.Equal(t, 24, catalog.RunIDLength)
	for _, c := range id {
		require.True(t, c >= '0' && c <= '9', id)
	}
	at, region, err := catalog.ParseRunID(id)
	require.NoError(t, err)
	require.Equal(t, catalog.RegionCode("eu-west"), region)
	require.False(t, at.Before(before), "%v < %v", at, before)
	require.False(t, at.After(after))
	require.Equal(t, time.UTC, at.Location())
}

func TestRegionCode(t *testing.T) {
	t.Parallel()
	for _, r := range []string{"", "local", "eu-west", "us-east-1", strings.Repeat("r", 64)} {
		c := catalog.RegionCode(r)
		require.GreaterOrEqual(t, c, 0)
		require.Less(t, c, 1000)
		require.Equal(t, c, catalog.RegionCode(r), "stable")
		id := catalog.NewRunIDGenerator(r).Next()
		_, got, err := catalog.ParseRunID(id)
		require.NoError(t, err)
		require.Equal(t, c, got, "region %q round-trips", r)
	}
}

func TestRunIDStrictlyIncreasing(t *testing.T) {
	t.Parallel()
	g := catalog.NewRunIDGenerator("local")
	prev := g.Next()
	for range 200_000 { // many per millisecond
		id := g.Next()
		require.Len(t, id, catalog.RunIDLength)
		if id <= prev {
			t.Fatalf("run_id %s after %s", id, prev)
		}
		prev = id
	}
}

func TestRunIDConcurrentUseIsUnique(t *testing.T) {
	t.Parallel()
	g := catalog.NewRunIDGenerator("local")
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		wg   sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			var ids []string
			for range 5000 {
				ids = append(ids, g.Next())
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if seen[id] {
					t.Errorf("duplicate run_id %s", id)
				}
				seen[id] = true
			}
		})
	}
	wg.Wait()
	require.Len(t, seen, 20000)
}

// steppingClock returns a clock that walks through times, then stays on the last.
func steppingClock(times ...time.Time) func() time.Time {
	var mu sync.Mutex
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := times[0]
		if len(times) > 1 {
			times = times[1:]
		}
		return t
	}
}

func TestRunIDMonotonicAcrossClockStepBack(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	g := catalog.NewRunIDGenerator("local")
	g.SetClock(steppingClock(
		t0, t0.Add(time.Millisecond),
		t0.Add(-time.Hour), t0.Add(-time.Hour), // NTP stepped the clock back an hour
		t0.Add(-time.Hour+time.Millisecond),
		t0.Add(2*time.Millisecond), // and caught up
		t0.Add(2*time.Millisecond),
	))
	var ids []string
	for range 8 {
		ids = append(ids, g.Next())
	}
	for i := 1; i < len(ids); i++ {
		require.Greater(t, ids[i], ids[i-1], "run_id %d", i)
	}
	// After the step back the ids keep the last time seen, not the earlier one.
	at, _, err := catalog.ParseRunID(ids[3])
	require.NoError(t, err)
	require.Equal(t, t0.Add(time.Millisecond), at)
}

func TestRunIDSequenceOverflowBorrowsNextMillisecond(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	g := catalog.NewRunIDGenerator("local")
	g.SetClock(func() time.Time { return t0 }) // a frozen clock
	g.SetState(t0.UnixMilli(), 99_999_998)     // the millisecond's sequence is nearly used up
	var ids []string
	for range 5 {
		ids = append(ids, g.Next())
	}
	for i := 1; i < len(ids); i++ {
		require.Greater(t, ids[i], ids[i-1])
	}
	require.True(t, strings.HasSuffix(ids[0], "99999999"), ids[0])
	at, _, err := catalog.ParseRunID(ids[1])
	require.NoError(t, err)
	require.Equal(t, t0.Add(time.Millisecond), at, "borrowed the next millisecond")
}

func TestRunIDsOfTwoRegionsNeverCollide(t *testing.T) {
	t.Parallel()
	require.NotEqual(t, catalog.RegionCode("eu-west"), catalog.RegionCode("us-east"))
	a, b := catalog.NewRunIDGenerator("eu-west"), catalog.NewRunIDGenerator("us-east")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	same := func() time.Time { return t0 } // both in the very same millisecond
	a.SetClock(same)
	b.SetClock(same)
	seen := make(map[string]bool, 200_000)
	for range 100_000 {
		for _, id := range []string{a.Next(), b.Next()} {
			require.False(t, seen[id], "collision on %s", id)
			seen[id] = true
		}
	}
}

func TestParseRunIDRejectsBadInput(t *testing.T) {
	t.Parallel()
	for _, id := range []string{
		"",
		"12345",
		"1234567890123456789012345", // 25 digits
		"12345678901234567890123",   // 23 digits
		"12345678901234567890123a",  // a letter
		"-12345678901234567890123",  // a sign
		"+12345678901234567890123",  // a sign
		" 12345678901234567890123",  // a space
		"12345678901234567890123\n", // a newline
		"１２３４５６７８９０１２３４５６７８９０１２３４",     // full-width digits
		"1234567890123456789012\u00e9", // 24 bytes, not 24 digits
	} {
		_, _, err := catalog.ParseRunID(id)
		requireInvalid(t, err, "run_id", "%q", id)
	}
}

func FuzzParseRunID(f *testing.F) {
	for _, s := range []string{"", "177000000000012300000001", "17700000000001230000000x", "１２３", "000000000000000000000000", "999999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		at, region, err := catalog.ParseRunID(id)
		digits := len(id) == catalog.RunIDLength
		for i := 0; i < len(id); i++ {
			digits = digits && id[i] >= '0' && id[i] <= '9'
		}
		if !digits {
			require.Error(t, err, "%q accepted", id)
			return
		}
		require.NoError(t, err, "%q refused", id)
		require.GreaterOrEqual(t, region, 0)
		require.Less(t, region, 1000)
		require.Equal(t, id[:13], fmt.Sprintf("%013d", at.UnixMilli()), "time round-trips")
	})
}
