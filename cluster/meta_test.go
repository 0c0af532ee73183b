package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
)

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []meta{
		{Region: "us-east", Roles: []string{RoleServer}, APIAddr: "http://10.0.0.1:8080", Version: "0.4.0", Started: time.Now().UnixNano()},
		{Region: "eu-west", Roles: []string{RoleWorker, RoleAgent}, AgentAddr: "10.0.0.2:7070", Capacity: 16, Started: 1},
		{Region: "r", Roles: []string{"a"}},
	} {
		got, err := decodeMeta(m.encode())
		require.NoError(t, err)
		require.Equal(t, m, got)
	}
}

// largestConfig is a Config with every metadata field at its maximum.
func largestConfig() Config {
	host := strings.Repeat("h", 114)
	return Config{
		NodeName:  strings.Repeat("n", MaxNodeNameLen),
		Region:    strings.Repeat("r", MaxRegionLen),
		Roles:     []string{"server-xxxxxxxxx", "worker-xxxxxxxxx", "agent-xxxxxxxxxx", "other-xxxxxxxxxx"},
		APIAddr:   "https://" + host + ":65535",
		AgentAddr: host + ":65535",
		Version:   strings.Repeat("v", MaxVersionLen),
		Capacity:  MaxCapacity,
	}
}

// TestMetaLargest proves that the largest metadata the limits allow fits in
// memberlist's 512 bytes, and that New accepts it and memberlist carries it.
func TestMetaLargest(t *testing.T) {
	cfg := largestConfig()
	for _, r := range cfg.Roles {
		require.Len(t, r, MaxRoleLen)
	}
	require.Len(t, cfg.APIAddr, MaxAPIAddrLen)
	require.Len(t, cfg.AgentAddr, MaxAgentAddrLen)
	require.Len(t, cfg.Roles, MaxRoles)

	md := cfg.meta()
	md.Started = time.Now().UnixNano()
	b := md.encode()
	require.Len(t, b, maxMetaLen, "maxMetaLen is the worst case")
	require.LessOrEqual(t, len(b), memberlist.MetaMaxSize)
	t.Logf("largest metadata: %d of %d bytes", len(b), memberlist.MetaMaxSize)
	got, err := decodeMeta(b)
	require.NoError(t, err)
	require.Equal(t, md, got)

	c, err := New(cfg)
	require.NoError(t, err)
	require.Len(t, c.metaBuf, maxMetaLen)
	require.Equal(t, b[:5], c.metaBuf[:5])
	require.Equal(t, b[13:], c.metaBuf[13:], "only the start stamp (bytes 5 to 12) differs")
}

func TestMetaOverLimitRefused(t *testing.T) {
	// Every field one over its limit is refused by name (not truncated);
	// TestConfigValidate checks the messages.
	for _, change := range []func(*Config){
		func(c *Config) { c.Region += "r" },
		func(c *Config) { c.APIAddr = "https://h" + c.APIAddr[len("https://"):] },
		func(c *Config) { c.AgentAddr = "h" + c.AgentAddr },
		func(c *Config) { c.Version += "v" },
		func(c *Config) { c.Roles = append(c.Roles, "fifth") },
		func(c *Config) { c.Roles[0] += "x" },
		func(c *Config) { c.Capacity++ },
	} {
		cfg := largestConfig()
		change(&cfg)
		_, err := New(cfg)
		require.Error(t, err)
	}
}

func TestMetaDecodeErrors(t *testing.T) {
	full := meta{Region: "us-east", Roles: []string{RoleServer, RoleWorker}, APIAddr: "http://a:1", AgentAddr: "a:2",
		Version: "1", Capacity: 300, Started: 42}.encode()
	for i := 0; i < len(full); i++ {
		_, err := decodeMeta(full[:i])
		require.Error(t, err, "prefix of %d bytes", i)
	}
	_, err := decodeMeta(full[:5])
	require.ErrorContains(t, err, "decode node metadata at byte")
	require.ErrorContains(t, err, "truncated")

	_, err = decodeMeta([]byte{0, 0})
	require.EqualError(t, err, "decode node metadata: unknown version 0")

	// A later version appends fields: this decoder reads what it knows.
	newer := append([]byte{2}, full[1:]...)
	newer = append(newer, 0xde, 0xad)
	got, err := decodeMeta(newer)
	require.NoError(t, err)
	require.Equal(t, "us-east", got.Region)
	require.Equal(t, 300, got.Capacity)
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(meta{Region: "us-east", Roles: []string{RoleServer}, Capacity: 3, Started: 9}.encode())
	f.Add(largestConfig().meta().encode())
	f.Add([]byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		if m.Capacity > MaxCapacity || len(m.Roles) > MaxRoles*4 {
			t.Fatalf("accepted out-of-range metadata %+v", m)
		}
		again, err := decodeMeta(m.encode())
		require.NoError(t, err)
		require.Equal(t, m, again)
	})
}

func TestLeaveIntentRoundTrip(t *testing.T) {
	li := leaveIntent{Name: "w1", Started: time.Now().UnixNano()}
	got, err := decodeLeaveIntent(li.encode())
	require.NoError(t, err)
	require.Equal(t, li, got)
	b := li.encode()
	for i := 0; i < len(b); i++ {
		_, err := decodeLeaveIntent(b[:i])
		require.Error(t, err, "prefix of %d bytes", i)
	}
	_, err = decodeLeaveIntent([]byte{9, 0})
	require.EqualError(t, err, "decode leave notice: message type 9")
}
