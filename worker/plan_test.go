package worker

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/connector"
)

func TestDecideParallelism(t *testing.T) {
	const MiB = 1 << 20
	for _, tc := range []struct {
		threads, planMax, files int
		bytes                   int64
		want                    int
		reason                  string
	}{
		{8, 0, 0, 0, 1, "nothing to copy: the selection is empty"},
		{8, 0, 100, 1000 * MiB, 8, "8 threads for 100 files, 1000.0 MiB: limited by the worker's 8 threads"},
		{8, 3, 100, 1000 * MiB, 3, "3 threads for 100 files, 1000.0 MiB: limited by the plan's maximum of 3 threads"},
		{8, 16, 100, 1000 * MiB, 8, "limited by the worker's 8 threads"},
		{8, 0, 2, 1000 * MiB, 2, "2 threads for 2 files, 1000.0 MiB: limited by 2 files"},
		{8, 0, 1, 5 * MiB, 1, "1 thread for 1 file, 5.0 MiB: limited by 1 file"},
		{8, 0, 500, 9 * MiB, 3, "3 threads for 500 files, 9.0 MiB: limited by 9.0 MiB of data at 4.0 MiB per thread"},
		{8, 0, 500, 8 * MiB, 2, "limited by 8.0 MiB of data at 4.0 MiB per thread"},
		{8, 0, 50, 0, 1, "1 thread for 50 files, 0 B: limited by 0 B of data at 4.0 MiB per thread"},
		{8, 0, 50, 100, 1, "limited by 100 B of data"},
		{4, 4, 4, 16 * MiB, 4, "limited by the worker's 4 threads and the plan's maximum of 4 threads and 4 files and 16.0 MiB of data at 4.0 MiB per thread"},
		{1, 0, 1000, 1 << 40, 1, "limited by the worker's 1 threads"},
	} {
		t.Run(fmt.Sprintf("%d/%d/%d/%d", tc.threads, tc.planMax, tc.files, tc.bytes), func(t *testing.T) {
			n, reason := decideParallelism(tc.threads, tc.planMax, tc.files, tc.bytes)
			require.Equal(t, tc.want, n)
			require.Contains(t, reason, tc.reason)
		})
	}
}

func TestDeal(t *testing.T) {
	files := []connector.File{
		{Path: "a", Size: 10}, {Path: "b", Size: 50}, {Path: "c", Size: 30}, {Path: "d", Size: 50},
		{Path: "e", Size: 1}, {Path: "f", Size: 20}, {Path: "g", Size: 40},
	}
	parts := deal(files, 3)
	names := func(p []connector.File) (out []string) {
		for _, f := range p {
			out = append(out, f.Path)
		}
		return out
	}
	// Sorted: b50 d50 g40 c30 f20 a10 e1, dealt round-robin.
	require.Equal(t, []string{"b", "c", "e"}, names(parts[0]))
	require.Equal(t, []string{"d", "f"}, names(parts[1]))
	require.Equal(t, []string{"g", "a"}, names(parts[2]))
	require.Equal(t, "a", files[0].Path, "the caller's slice is not reordered")
	require.Nil(t, deal(nil, 4))
	require.Len(t, deal(files, 1)[0], 7)
}

func TestHumanBytes(t *testing.T) {
	for in, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB", 1536: "1.5 KiB"} {
		require.Equal(t, want, humanBytes(in))
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{NodeID: "w1", Region: "r1"}.WithDefaults()
	require.NoError(t, ok.validate())
	require.Equal(t, []string{"worker"}, ok.Roles)
	require.Equal(t, SlotsDefault, ok.Slots)
	require.Equal(t, LeaseTTLDefault, ok.LeaseTTL)
	require.Equal(t, HeartbeatIntervalDefault, ok.HeartbeatInterval)
	short := Config{NodeID: "w1", Region: "r1", LeaseTTL: 3 * time.Second}.WithDefaults()
	require.Equal(t, 750*time.Millisecond, short.HeartbeatInterval, "a short lease shortens the heartbeat")
	require.NoError(t, short.validate())
	for name, c := range map[string]Config{
		"no node":         {Region: "r1"},
		"no region":       {NodeID: "w1"},
		"negative slots":  {NodeID: "w1", Region: "r1", Slots: -1},
		"slow heartbeat":  {NodeID: "w1", Region: "r1", LeaseTTL: 2 * time.Second, HeartbeatInterval: 600 * time.Millisecond},
		"negative thread": {NodeID: "w1", Region: "r1", Threads: -2},
	} {
		require.Error(t, c.WithDefaults().validate(), name)
	}
}
