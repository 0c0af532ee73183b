package cluster

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/catalog"
)

func validConfig() Config {
	return Config{NodeName: "w1", Region: "us-east", Roles: []string{RoleWorker},
		APIAddr: "http://10.0.0.5:8080", AgentAddr: "10.0.0.5:7070", Version: "1.2.3", Capacity: 4}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	require.Equal(t, BindAddrDefault, c.BindAddr)
	require.Equal(t, BindPortDefault, c.BindPort)
	require.Equal(t, ProfileLAN, c.Profile)
	require.Equal(t, JoinRetryIntervalDefault, c.JoinRetry.Interval)
	require.Zero(t, c.JoinRetry.Max, "retry until joined by default")
	require.Equal(t, LeaveTimeoutDefault, c.LeaveTimeout)
	require.Equal(t, EventBufferDefault, c.EventBuffer)
	require.Equal(t, RetainDefault, c.Retain)
	require.NotNil(t, c.Logger)
	require.NoError(t, validConfig().WithDefaults().validate())
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		field  string
		msg    string
	}{
		{"no name", func(c *Config) { c.NodeName = "" }, "cluster.node_name", "is required"},
		{"name with space", func(c *Config) { c.NodeName = "w 1" }, "cluster.node_name", "space or control"},
		{"name too long", func(c *Config) { c.NodeName = strings.Repeat("n", MaxNodeNameLen+1) }, "cluster.node_name", "129 bytes, more than the 128"},
		{"no region", func(c *Config) { c.Region = "" }, "cluster.region", "is required"},
		{"region too long", func(c *Config) { c.Region = strings.Repeat("r", MaxRegionLen+1) }, "cluster.region", "65 bytes, more than the 64"},
		{"no roles", func(c *Config) { c.Roles = nil }, "cluster.roles", "at least one role"},
		{"too many roles", func(c *Config) { c.Roles = []string{"a", "b", "c", "d", "e"} }, "cluster.roles", "5 roles, more than 4"},
		{"role too long", func(c *Config) { c.Roles = []string{strings.Repeat("x", MaxRoleLen+1)} }, "cluster.roles", "1 to 16 characters"},
		{"role upper case", func(c *Config) { c.Roles = []string{"Server"} }, "cluster.roles", "lowercase"},
		{"role twice", func(c *Config) { c.Roles = []string{"worker", "worker"} }, "cluster.roles", "listed twice"},
		{"api addr without scheme", func(c *Config) { c.APIAddr = "10.0.0.5:8080" }, "cluster.api_addr", "http:// or https://"},
		{"api addr with path", func(c *Config) { c.APIAddr = "http://10.0.0.5:8080/api" }, "cluster.api_addr", "scheme, a host and an optional port"},
		{"api addr bad port", func(c *Config) { c.APIAddr = "http://10.0.0.5:99999" }, "cluster.api_addr", "between 1 and 65535"},
		{"api addr too long", func(c *Config) { c.APIAddr = "https://" + strings.Repeat("h", 115) + ":65535" }, "cluster.api_addr", "129 bytes, more than the 128"},
		{"agent addr no port", func(c *Config) { c.AgentAddr = "10.0.0.5" }, "cluster.agent_addr", "not a host:port"},
		{"agent addr port zero", func(c *Config) { c.AgentAddr = "10.0.0.5:0" }, "cluster.agent_addr", "between 1 and 65535"},
		{"agent addr too long", func(c *Config) { c.AgentAddr = strings.Repeat("h", 115) + ":65535" }, "cluster.agent_addr", "121 bytes, more than the 120"},
		{"version too long", func(c *Config) { c.Version = strings.Repeat("v", MaxVersionLen+1) }, "cluster.version", "65 bytes, more than the 64"},
		{"capacity negative", func(c *Config) { c.Capacity = -1 }, "cluster.capacity", "between 0 and 65535, got -1"},
		{"capacity huge", func(c *Config) { c.Capacity = MaxCapacity + 1 }, "cluster.capacity", "got 65536"},
		{"bind addr hostname", func(c *Config) { c.BindAddr = "localhost" }, "cluster.bind_addr", `"localhost" is not an IP address`},
		{"bind port", func(c *Config) { c.BindPort = 70000 }, "cluster.bind_port", "got 70000"},
		{"advertise addr hostname", func(c *Config) { c.AdvertiseAddr = "node1.example" }, "cluster.advertise_addr", "not an IP address"},
		{"advertise port", func(c *Config) { c.AdvertisePort = -2 }, "cluster.advertise_port", "got -2"},
		{"empty seed", func(c *Config) { c.Join = []string{"10.0.0.1:7946", " "} }, "cluster.join[1]", "empty seed"},
		{"seed bad port", func(c *Config) { c.Join = []string{"10.0.0.1:http"} }, "cluster.join[0]", `port "http"`},
		{"seed no host", func(c *Config) { c.Join = []string{":7946"} }, "cluster.join[0]", "has no host"},
		{"key 15 bytes", func(c *Config) { c.GossipKey = make([]byte, 15) }, "cluster.gossip_key", "is 15 bytes; want 16, 24 or 32"},
		{"key 33 bytes", func(c *Config) { c.GossipKey = make([]byte, 33) }, "cluster.gossip_key", "is 33 bytes"},
		{"profile", func(c *Config) { c.Profile = "moon" }, "cluster.profile", `got "moon"`},
		{"probe timeout not shorter", func(c *Config) { c.ProbeInterval = time.Second; c.ProbeTimeout = time.Second }, "cluster.probe_timeout", "shorter than the probe interval (1s), got 1s"},
		{"probe timeout over wan interval", func(c *Config) { c.Profile = ProfileWAN; c.ProbeTimeout = 6 * time.Second }, "cluster.probe_timeout", "(5s), got 6s"},
		{"negative timing", func(c *Config) { c.SuspicionMult = -1 }, "cluster", "must not be negative"},
		{"negative retry", func(c *Config) { c.JoinRetry.Max = -1 }, "cluster.join_retry", "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			tc.change(&cfg)
			_, err := New(cfg)
			require.Error(t, err)
			var ve *catalog.ValidationError
			require.True(t, errors.As(err, &ve), "%T %v", err, err)
			require.Equal(t, tc.field, ve.Field)
			require.Contains(t, ve.Message, tc.msg)
		})
	}
}

func TestConfigAcceptsAddressForms(t *testing.T) {
	cfg := validConfig()
	cfg.APIAddr = "https://weir-eu.example.com"
	cfg.AgentAddr = "[fd00::5]:7070"
	cfg.BindAddr = "::"
	cfg.AdvertiseAddr = "fd00::5"
	cfg.Join = []string{"10.0.0.1", "10.0.0.2:7947", "seed.example.com", "[fd00::1]:7946", "fd00::2"}
	cfg.GossipKey = make([]byte, 24)
	cfg.Roles = []string{RoleServer, RoleWorker, RoleAgent, "probe-2"}
	_, err := New(cfg)
	require.NoError(t, err)
}

func TestNewCopiesSlices(t *testing.T) {
	cfg := validConfig()
	cfg.GossipKey = make([]byte, 16)
	c, err := New(cfg)
	require.NoError(t, err)
	cfg.Roles[0] = "changed"
	cfg.GossipKey[0] = 1
	require.Equal(t, []string{RoleWorker}, c.LocalMember().Roles)
	require.Zero(t, c.cfg.GossipKey[0])
}

func TestParseGossipKey(t *testing.T) {
	for _, n := range []int{16, 24, 32} {
		raw := make([]byte, n)
		for i := range raw {
			raw[i] = byte(i * 7)
		}
		key, err := ParseGossipKey(" " + base64.StdEncoding.EncodeToString(raw) + "\n")
		require.NoError(t, err)
		require.Equal(t, raw, key)
	}
	secret := base64.StdEncoding.EncodeToString([]byte("fifteen bytes!!"))
	_, err := ParseGossipKey(secret)
	require.EqualError(t, err, "parse gossip key: is 15 bytes; want 16, 24 or 32 (AES-128, AES-192 or AES-256)")
	require.NotContains(t, err.Error(), secret)

	_, err = ParseGossipKey("not*base64*at*all*")
	require.ErrorContains(t, err, "parse gossip key: not base64")
	require.NotContains(t, err.Error(), "not*base64")

	_, err = ParseGossipKey("  ")
	require.EqualError(t, err, "parse gossip key: empty")

	gen := GenerateGossipKey()
	key, err := ParseGossipKey(gen)
	require.NoError(t, err)
	require.Len(t, key, 32)
	require.NotEqual(t, gen, GenerateGossipKey())
}

func TestConfigLogValueHidesKey(t *testing.T) {
	cfg := validConfig()
	cfg.GossipKey = []byte("0123456789abcdef")
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("cfg", slog.Any("config", cfg))
	require.Contains(t, b.String(), "config.encrypted=true")
	require.Contains(t, b.String(), "config.node=w1")
	require.NotContains(t, b.String(), "0123456789abcdef")
	require.NotContains(t, b.String(), base64.StdEncoding.EncodeToString(cfg.GossipKey))
}

func TestMemberlistConfig(t *testing.T) {
	lan := validConfig().WithDefaults()
	mc, err := lan.memberlistConfig()
	require.NoError(t, err)
	def := memberlist.DefaultLANConfig()
	require.Equal(t, def.ProbeInterval, mc.ProbeInterval)
	require.Equal(t, def.ProbeTimeout, mc.ProbeTimeout)
	require.Equal(t, def.SuspicionMult, mc.SuspicionMult)
	require.Equal(t, def.GossipInterval, mc.GossipInterval)
	require.Equal(t, "w1", mc.Name)
	require.Equal(t, BindPortDefault, mc.BindPort)
	require.Equal(t, BindPortDefault, mc.AdvertisePort)
	require.Nil(t, mc.Keyring)

	wan := validConfig()
	wan.Profile = ProfileWAN
	wan.GossipInterval = 300 * time.Millisecond
	wan.GossipKey = make([]byte, 32)
	wan.BindPort = BindPortAuto
	wan.AdvertisePort = 9000
	mc, err = wan.WithDefaults().memberlistConfig()
	require.NoError(t, err)
	def = memberlist.DefaultWANConfig()
	require.Equal(t, def.ProbeInterval, mc.ProbeInterval)
	require.Equal(t, def.ProbeTimeout, mc.ProbeTimeout)
	require.Equal(t, def.SuspicionMult, mc.SuspicionMult)
	require.Equal(t, 300*time.Millisecond, mc.GossipInterval, "override")
	require.Equal(t, 0, mc.BindPort, "auto port")
	require.Equal(t, 9000, mc.AdvertisePort)
	require.True(t, mc.EncryptionEnabled())
	require.True(t, mc.GossipVerifyIncoming)
	require.True(t, mc.GossipVerifyOutgoing)

	fast := validConfig()
	fast.ProbeInterval, fast.ProbeTimeout, fast.SuspicionMult = 200*time.Millisecond, 100*time.Millisecond, 3
	mc, err = fast.WithDefaults().memberlistConfig()
	require.NoError(t, err)
	require.Equal(t, 200*time.Millisecond, mc.ProbeInterval)
	require.Equal(t, 100*time.Millisecond, mc.ProbeTimeout)
	require.Equal(t, 3, mc.SuspicionMult)
}
