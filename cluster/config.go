package cluster

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/weirdata/weir/catalog"
)

// Defaults applied by Config.WithDefaults.
const (
	// BindAddrDefault listens on every IPv4 interface.
	BindAddrDefault = "0.0.0.0"
	// BindPortDefault is memberlist's customary port, for both UDP and TCP.
	BindPortDefault = 7946
	// ProfileDefault is the timing profile when none is named.
	ProfileDefault = ProfileLAN
	// JoinRetryIntervalDefault is the pause between two join attempts.
	JoinRetryIntervalDefault = time.Second
	// LeaveTimeoutDefault bounds how long Run waits for its leave to be
	// gossiped before it shuts down.
	LeaveTimeoutDefault = 5 * time.Second
	// EventBufferDefault is the capacity of the Events channel.
	EventBufferDefault = 256
	// RetainDefault is how long a dead or left member stays in Members.
	RetainDefault = time.Hour
)

// BindPortAuto asks for a free port chosen by the system (tests, several
// nodes on one host). The port in use is in LocalMember().Addr after Start.
const BindPortAuto = -1

// Timing profiles.
const (
	// ProfileLAN uses memberlist.DefaultLANConfig: probe every 1s, 500ms
	// probe timeout, suspicion multiplier 4, gossip every 200ms.
	ProfileLAN = "lan"
	// ProfileWAN uses memberlist.DefaultWANConfig: probe every 5s, 3s probe
	// timeout, suspicion multiplier 6, gossip every 500ms.
	ProfileWAN = "wan"
)

// EnvGossipKey names the environment variable that carries the gossip key,
// base64-encoded; cmd/weir reads it and passes it to ParseGossipKey.
const EnvGossipKey = "WEIR_GOSSIP_KEY"

// JoinRetry says how a node retries joining its seeds at start.
type JoinRetry struct {
	// Interval between attempts (JoinRetryIntervalDefault when zero).
	Interval time.Duration
	// Max attempts before giving up; 0 retries until the node joins or
	// its context ends. When Max attempts fail, WaitJoined and Run return
	// an error wrapping ErrJoinFailed.
	Max int
}

// Config configures one node of the gossip pool. Its zero value, after
// WithDefaults, lacks only NodeName, Region and Roles.
type Config struct {
	// NodeName is the node's unique name in the pool; it is also the
	// catalog node ID (at most MaxNodeNameLen characters).
	NodeName string
	// Region is the region the node belongs to (at most MaxRegionLen).
	Region string
	// Roles are the node's roles (catalog.NodeRoleServer,
	// catalog.NodeRoleWorker, RoleAgent): 1 to MaxRoles, each at most
	// MaxRoleLen lowercase letters, digits or '-'.
	Roles []string
	// APIAddr is the base URL of the node's REST API ("http://10.0.0.5:8080"),
	// empty when it serves none; at most MaxAPIAddrLen characters.
	APIAddr string
	// AgentAddr is the host:port of the node's dispatcher agent, empty when
	// it runs none; at most MaxAgentAddrLen characters.
	AgentAddr string
	// Version is the Weir version the node runs (at most MaxVersionLen).
	Version string
	// Capacity is the node's run slots (0 to MaxCapacity).
	Capacity int

	// BindAddr is the IP address gossip listens on (BindAddrDefault).
	BindAddr string
	// BindPort is the UDP and TCP port gossip listens on (BindPortDefault;
	// BindPortAuto for a free one).
	BindPort int
	// AdvertiseAddr is the IP address other nodes reach this one at; empty
	// lets memberlist pick the bound address, or a private one when bound
	// to 0.0.0.0.
	AdvertiseAddr string
	// AdvertisePort is the port other nodes reach this one at; zero means
	// the bound port.
	AdvertisePort int
	// Join lists the seed nodes ("host", "host:port" or "[v6]:port"; the
	// port defaults to BindPort). Empty: this node starts a pool and waits
	// for others to join it.
	Join []string
	// JoinRetry says how joining is retried.
	JoinRetry JoinRetry

	// GossipKey, when set, encrypts all gossip (AES-GCM, 16, 24 or 32
	// bytes) and refuses nodes without it. See ParseGossipKey.
	GossipKey []byte

	// Profile picks the timing defaults: ProfileLAN or ProfileWAN.
	Profile string
	// ProbeInterval, ProbeTimeout, SuspicionMult and GossipInterval
	// override the profile's values when positive. A node that stops
	// answering is declared dead about SuspicionMult x max(1, log10(nodes))
	// x ProbeInterval after a probe of it first fails (4 s in a LAN pool of
	// up to ten nodes), longer (up to six times) while too few other nodes
	// confirm the suspicion; the tests declare one dead in about a second
	// with a 200ms probe interval and a multiplier of 3.
	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	SuspicionMult  int
	GossipInterval time.Duration

	// LeaveTimeout bounds Run's graceful leave (LeaveTimeoutDefault).
	LeaveTimeout time.Duration
	// EventBuffer is the capacity of the Events channel (EventBufferDefault).
	EventBuffer int
	// Retain is how long dead and left members stay listed (RetainDefault).
	Retain time.Duration

	// Logger receives the component's and memberlist's logs.
	Logger *slog.Logger
	// Metrics receives the pool's metrics (metrics.go); nil, none.
	Metrics prometheus.Registerer
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.BindAddr == "" {
		c.BindAddr = BindAddrDefault
	}
	if c.BindPort == 0 {
		c.BindPort = BindPortDefault
	}
	if c.Profile == "" {
		c.Profile = ProfileDefault
	}
	if c.JoinRetry.Interval == 0 {
		c.JoinRetry.Interval = JoinRetryIntervalDefault
	}
	if c.LeaveTimeout == 0 {
		c.LeaveTimeout = LeaveTimeoutDefault
	}
	if c.EventBuffer == 0 {
		c.EventBuffer = EventBufferDefault
	}
	if c.Retain == 0 {
		c.Retain = RetainDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// LogValue lets a Config be logged without its gossip key.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("node", c.NodeName), slog.String("region", c.Region),
		slog.Any("roles", c.Roles), slog.String("api_addr", c.APIAddr),
		slog.String("agent_addr", c.AgentAddr), slog.String("bind", c.bindAddr()),
		slog.String("advertise", c.AdvertiseAddr), slog.Any("join", c.Join),
		slog.String("profile", c.Profile), slog.Bool("encrypted", len(c.GossipKey) > 0),
	)
}

// bindAddr is the configured gossip address, for messages.
func (c Config) bindAddr() string {
	port := strconv.Itoa(c.BindPort)
	if c.BindPort == BindPortAuto {
		port = "auto"
	}
	return net.JoinHostPort(c.BindAddr, port)
}

// validate checks a Config that went through WithDefaults.
func (c Config) validate() error {
	if err := checkText("cluster.node_name", c.NodeName, MaxNodeNameLen, true); err != nil {
		return err
	}
	if err := checkText("cluster.region", c.Region, MaxRegionLen, true); err != nil {
		return err
	}
	if err := checkRoles(c.Roles); err != nil {
		return err
	}
	if err := checkAPIAddr(c.APIAddr); err != nil {
		return err
	}
	if err := checkHostPort("cluster.agent_addr", c.AgentAddr, MaxAgentAddrLen); err != nil {
		return err
	}
	if err := checkText("cluster.version", c.Version, MaxVersionLen, false); err != nil {
		return err
	}
	if c.Capacity < 0 || c.Capacity > MaxCapacity {
		return catalog.Invalid("cluster.capacity", "must be between 0 and %d, got %d", MaxCapacity, c.Capacity)
	}
	if net.ParseIP(c.BindAddr) == nil {
		return catalog.Invalid("cluster.bind_addr", "%q is not an IP address (use 0.0.0.0 for every interface)", c.BindAddr)
	}
	if c.BindPort != BindPortAuto && (c.BindPort < 1 || c.BindPort > 65535) {
		return catalog.Invalid("cluster.bind_port", "must be between 1 and 65535, got %d", c.BindPort)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		return catalog.Invalid("cluster.advertise_addr", "%q is not an IP address", c.AdvertiseAddr)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return catalog.Invalid("cluster.advertise_port", "must be between 1 and 65535 (0 for the bound port), got %d", c.AdvertisePort)
	}
	for i, j := range c.Join {
		if err := checkSeed(j); err != nil {
			return catalog.Invalid(fmt.Sprintf("cluster.join[%d]", i), "%v", err)
		}
	}
	if c.JoinRetry.Interval < 0 || c.JoinRetry.Max < 0 {
		return catalog.Invalid("cluster.join_retry", "interval and max must not be negative")
	}
	if err := checkGossipKey(c.GossipKey); err != nil {
		return catalog.Invalid("cluster.gossip_key", "%v", err)
	}
	if c.Profile != ProfileLAN && c.Profile != ProfileWAN {
		return catalog.Invalid("cluster.profile", "must be %q or %q, got %q", ProfileLAN, ProfileWAN, c.Profile)
	}
	if c.ProbeInterval < 0 || c.ProbeTimeout < 0 || c.SuspicionMult < 0 || c.GossipInterval < 0 {
		return catalog.Invalid("cluster", "probe interval, probe timeout, suspicion multiplier and gossip interval must not be negative")
	}
	if c.LeaveTimeout < 0 || c.EventBuffer < 0 || c.Retain < 0 {
		return catalog.Invalid("cluster", "leave timeout, event buffer and retain must not be negative")
	}
	mc := c.timings()
	if mc.ProbeTimeout >= mc.ProbeInterval {
		return catalog.Invalid("cluster.probe_timeout", "must be shorter than the probe interval (%s), got %s", mc.ProbeInterval, mc.ProbeTimeout)
	}
	if n := len(c.meta().encode()); n > memberlist.MetaMaxSize {
		// Unreachable with the field limits above (see TestMetaLargest);
		// kept so that a new field cannot silently break the limit.
		return catalog.Invalid("cluster", "node metadata is %d bytes, more than memberlist's limit of %d", n, memberlist.MetaMaxSize)
	}
	return nil
}

// timings returns the memberlist profile with c's overrides applied.
func (c Config) timings() *memberlist.Config {
	var mc *memberlist.Config
	if c.Profile == ProfileWAN {
		mc = memberlist.DefaultWANConfig()
	} else {
		mc = memberlist.DefaultLANConfig()
	}
	if c.ProbeInterval > 0 {
		mc.ProbeInterval = c.ProbeInterval
	}
	if c.ProbeTimeout > 0 {
		mc.ProbeTimeout = c.ProbeTimeout
	}
	if c.SuspicionMult > 0 {
		mc.SuspicionMult = c.SuspicionMult
	}
	if c.GossipInterval > 0 {
		mc.GossipInterval = c.GossipInterval
	}
	return mc
}

// memberlistConfig builds the memberlist configuration of a valid c.
func (c Config) memberlistConfig() (*memberlist.Config, error) {
	mc := c.timings()
	mc.Name = c.NodeName
	mc.BindAddr = c.BindAddr
	mc.BindPort = c.BindPort
	if c.BindPort == BindPortAuto {
		mc.BindPort = 0
	}
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.AdvertisePort
	if c.AdvertisePort == 0 {
		mc.AdvertisePort = mc.BindPort
	}
	if len(c.GossipKey) > 0 {
		kr, err := memberlist.NewKeyring(nil, c.GossipKey)
		if err != nil {
			return nil, fmt.Errorf("make keyring: %w", err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	return mc, nil
}

// ParseGossipKey decodes a base64 (standard encoding) gossip key, as found in
// WEIR_GOSSIP_KEY, and checks its length. Errors never contain the key.
func ParseGossipKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("parse gossip key: empty")
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("parse gossip key: not base64 (standard encoding): %w", err)
	}
	if err := checkGossipKey(key); err != nil {
		return nil, fmt.Errorf("parse gossip key: %w", err)
	}
	return key, nil
}

// GenerateGossipKey returns a new random 32-byte key, base64-encoded for
// WEIR_GOSSIP_KEY.
func GenerateGossipKey() string {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	return base64.StdEncoding.EncodeToString(key)
}

func checkGossipKey(key []byte) error {
	switch len(key) {
	case 0, 16, 24, 32:
		return nil
	}
	return fmt.Errorf("is %d bytes; want 16, 24 or 32 (AES-128, AES-192 or AES-256)", len(key))
}

// checkText checks a short, printable, space-free field.
func checkText(field, s string, max int, required bool) error {
	if s == "" {
		if required {
			return catalog.Invalid(field, "is required")
		}
		return nil
	}
	if len(s) > max {
		return catalog.Invalid(field, "is %d bytes, more than the %d the gossip metadata allows", len(s), max)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return catalog.Invalid(field, "%q contains a space or control character", s)
		}
	}
	return nil
}

func checkRoles(roles []string) error {
	if len(roles) == 0 {
		return catalog.Invalid("cluster.roles", "at least one role is required (%s, %s, %s)", RoleServer, RoleWorker, RoleAgent)
	}
	if len(roles) > MaxRoles {
		return catalog.Invalid("cluster.roles", "has %d roles, more than %d", len(roles), MaxRoles)
	}
	seen := map[string]bool{}
	for _, r := range roles {
		if r == "" || len(r) > MaxRoleLen {
			return catalog.Invalid("cluster.roles", "role %q must be 1 to %d characters", r, MaxRoleLen)
		}
		for _, ch := range r {
			if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-') {
				return catalog.Invalid("cluster.roles", "role %q may hold only lowercase letters, digits and '-'", r)
			}
		}
		if seen[r] {
			return catalog.Invalid("cluster.roles", "role %q is listed twice", r)
		}
		seen[r] = true
	}
	return nil
}

func checkAPIAddr(s string) error {
	const field = "cluster.api_addr"
	if s == "" {
		return nil
	}
	if len(s) > MaxAPIAddrLen {
		return catalog.Invalid(field, "is %d bytes, more than the %d the gossip metadata allows; advertise an IP address or a shorter name", len(s), MaxAPIAddrLen)
	}
	u, err := url.Parse(s)
	if err != nil {
		return catalog.Invalid(field, "%q is not a URL; it must start with http:// or https://, like http://10.0.0.5:8080", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return catalog.Invalid(field, "%q must start with http:// or https://", s)
	}
	if u.Hostname() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return catalog.Invalid(field, "%q must be a scheme, a host and an optional port, like http://10.0.0.5:8080", s)
	}
	if p := u.Port(); p != "" {
		if err := checkPort(p); err != nil {
			return catalog.Invalid(field, "%q: %v", s, err)
		}
	}
	return nil
}

func checkHostPort(field, s string, max int) error {
	if s == "" {
		return nil
	}
	if len(s) > max {
		return catalog.Invalid(field, "is %d bytes, more than the %d the gossip metadata allows; advertise an IP address or a shorter name", len(s), max)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return catalog.Invalid(field, "%q is not a host:port like 10.0.0.5:7070", s)
	}
	if err := checkPort(port); err != nil {
		return catalog.Invalid(field, "%q: %v", s, err)
	}
	return nil
}

func checkSeed(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("empty seed address")
	}
	if host, port, err := net.SplitHostPort(s); err == nil {
		if host == "" {
			return fmt.Errorf("%q has no host", s)
		}
		return checkPort(port)
	}
	if !strings.Contains(s, ":") || net.ParseIP(s) != nil {
		return nil // a host alone, or a bare IPv6 address: BindPort applies
	}
	return fmt.Errorf("%q is not a host or host:port", s)
}

func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q must be a number between 1 and 65535", p)
	}
	return nil
}
