package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
	gossip "github.com/weirdata/weir/cluster"
)

// Gossip membership and the federation of regions, as the binary wires them.
//
// One pool for every region: every `weir server`, `weir worker` and
// `weir agent` of every region joins the same memberlist pool (--join,
// retried until it works). Servers see the servers of the other regions
// there, which is how they forward; the servers of a region record the
// comings and goings of their own region's members in their catalog (the
// other regions' members are not theirs to record). `weir dev` and
// `weir bench` gossip only when given --join or --bind.

// Names of the services membership and federation add to a node.
const (
	ServiceGossip     = "gossip"     // the node's member of the gossip pool
	ServiceFederation = "federation" // replication from the other regions (servers)
)

// Defaults of the gossip and federation flags.
const (
	// GossipBindDefault is where servers, workers and agents gossip.
	GossipBindDefault = "0.0.0.0:7946"
	// ReconcileIntervalDefault is how often a server compares the pool with
	// its catalog's nodes, for changes whose event was dropped.
	ReconcileIntervalDefault = 5 * time.Second
)

// Environment variables of membership and federation that have no flag:
// secrets never go on a command line.
const (
	// EnvFederationSecret signs the requests between regions (see
	// broker.ParseFederationSecrets).
	EnvFederationSecret = "WEIR_FEDERATION_SECRET"
)

// gossipFlags are the flags of membership (every node role) and
// federation (servers), and the node's membership once started.
type gossipFlags struct {
	join          []string
	bind          string
	advertise     string
	profile       string
	probeInterval time.Duration
	suspicionMult int
	bindGiven     bool           // WEIR_BIND was given: no fallback port
	flags         *pflag.FlagSet // tells whether --bind was given

	// Servers.
	authoritative  string
	syncInterval   time.Duration
	forwardTimeout time.Duration
	server         bool // the federation flags were bound

	node *gossipNode // this process's member, once a service asked for it
}

// bindFlags binds the membership flags on a node command, and the
// federation flags on commands that run a server.
func (g *gossipFlags) bindFlags(cmd *cobra.Command, f *serviceFlags) {
	fl := cmd.Flags()
	def := GossipBindDefault
	if cmd.Name() == "dev" {
		def = "" // one process, no gossip, unless asked for
	}
	fl.StringSliceVar(&g.join, "join", envList("WEIR_JOIN", func(s string) []string { return strings.Split(s, ",") }),
		"gossip pool members to join, host[:port], comma-separated or repeated; retried until one answers (env WEIR_JOIN). Gossip is encrypted with WEIR_GOSSIP_KEY (base64 of 16, 24 or 32 bytes, the same on every node)")
	fl.StringVar(&g.bind, "bind", envOr("WEIR_BIND", def),
		"IP[:port] the gossip pool is reached at, UDP and TCP (env WEIR_BIND; port "+strconv.Itoa(gossip.BindPortDefault)+" when left out, 0 for any free port)")
	fl.StringVar(&g.advertise, "advertise", os.Getenv("WEIR_ADVERTISE"),
		"IP[:port] other members reach this node's gossip at (env WEIR_ADVERTISE; default the bound address, or this host's first private address when bound to 0.0.0.0)")
	fl.StringVar(&g.profile, "gossip-profile", envOr("WEIR_GOSSIP_PROFILE", gossip.ProfileDefault),
		"gossip timings: lan (a dead node is noticed in about 5s) or wan (slower, for pools that span regions over the internet) (env WEIR_GOSSIP_PROFILE)")
	fl.DurationVar(&g.probeInterval, "gossip-probe-interval", f.envDuration("WEIR_GOSSIP_PROBE_INTERVAL", 0),
		"time between two probes of a member, overriding the profile's (env WEIR_GOSSIP_PROBE_INTERVAL)")
	fl.IntVar(&g.suspicionMult, "gossip-suspicion-mult", 0,
		"probe intervals a suspected member has to refute before it is declared dead, overriding the profile's")
	g.bindGiven, g.flags = os.Getenv("WEIR_BIND") != "", fl
	if cmd.Name() != "server" && cmd.Name() != "dev" {
		return
	}
	g.server = true
	fl.StringVar(&g.authoritative, "authoritative-region", os.Getenv("WEIR_AUTHORITATIVE_REGION"),
		"region that manages users, tokens and entitlements; the others replicate them and refuse writes to them (env WEIR_AUTHORITATIVE_REGION; default: every region manages its own). Servers of different regions authenticate each other with WEIR_FEDERATION_SECRET")
	fl.DurationVar(&g.syncInterval, "federation-sync-interval", f.envDuration("WEIR_FEDERATION_SYNC_INTERVAL", broker.SyncIntervalDefault),
		"time between two pulls of the identities and mapping directories of the other regions (env WEIR_FEDERATION_SYNC_INTERVAL)")
	fl.DurationVar(&g.forwardTimeout, "forward-timeout", f.envDuration("WEIR_FORWARD_TIMEOUT", broker.ForwardTimeoutDefault),
		"longest wait for another region's answer to a forwarded request before answering 503 (env WEIR_FORWARD_TIMEOUT)")
}

// defaultBind reports whether gossip binds the default address, not one given.
func (g *gossipFlags) defaultBind() bool {
	return !g.bindGiven && g.bind == GossipBindDefault && (g.flags == nil || !g.flags.Changed("bind"))
}

// enabled reports whether this node gossips.
func (g *gossipFlags) enabled() bool { return g.bind != "" || len(g.join) > 0 }

// clusterConfig checks the flags and WEIR_GOSSIP_KEY and returns the
// member's configuration without its identity (name, region, roles,
// addresses), which the services fill.
func (g *gossipFlags) clusterConfig() (gossip.Config, error) {
	var cfg gossip.Config
	bind := g.bind
	if bind == "" {
		bind = GossipBindDefault
	}
	host, port, err := splitHostPortDefault(bind, gossip.BindPortDefault)
	if err != nil || net.ParseIP(host) == nil {
		return cfg, withHint(fmt.Errorf("bad --bind %q: not an IP address with an optional port", bind), "give IP[:port], such as 0.0.0.0:7946 or 10.0.0.5")
	}
	cfg.BindAddr, cfg.BindPort = host, port
	if port == 0 {
		cfg.BindPort = gossip.BindPortAuto // a free port, for nodes that join others
	}
	if g.advertise != "" {
		ah, ap, err := splitHostPortDefault(g.advertise, 0)
		if err != nil || net.ParseIP(ah) == nil {
			return cfg, withHint(fmt.Errorf("bad --advertise %q: not an IP address with an optional port", g.advertise), "give IP[:port] that the other members reach this host at")
		}
		cfg.AdvertiseAddr, cfg.AdvertisePort = ah, ap
	} else if ip := net.ParseIP(host); ip.IsUnspecified() {
		cfg.AdvertiseAddr = advertiseIP()
	}
	cfg.Join = g.join
	for i, j := range g.join {
		g.join[i] = strings.TrimSpace(j)
	}
	if k := os.Getenv(gossip.EnvGossipKey); k != "" {
		key, err := gossip.ParseGossipKey(k)
		if err != nil {
			return cfg, withHint(fmt.Errorf("bad %s: %w", gossip.EnvGossipKey, err), "give 16, 24 or 32 random bytes in base64, the same on every node: `openssl rand -base64 32`")
		}
		cfg.GossipKey = key
	}
	switch g.profile {
	case gossip.ProfileLAN, gossip.ProfileWAN:
	default:
		return cfg, withHint(fmt.Errorf("bad --gossip-profile %q", g.profile), "use lan or wan")
	}
	cfg.Profile = g.profile
	if g.probeInterval < 0 || (g.probeInterval > 0 && g.probeInterval < 10*time.Millisecond) {
		return cfg, withHint(fmt.Errorf("bad --gossip-probe-interval %s: must be at least 10ms", g.probeInterval), "leave it out for the profile's")
	}
	if g.suspicionMult < 0 {
		return cfg, withHint(fmt.Errorf("bad --gossip-suspicion-mult %d: must not be negative", g.suspicionMult), "leave it out for the profile's")
	}
	cfg.ProbeInterval, cfg.SuspicionMult = g.probeInterval, g.suspicionMult
	if g.probeInterval > 0 {
		cfg.ProbeTimeout = g.probeInterval / 2
		cfg.GossipInterval = min(g.probeInterval/2, 200*time.Millisecond)
	}
	return cfg, nil
}

// check checks the membership flags, WEIR_GOSSIP_KEY and, on servers, the
// federation flags and WEIR_FEDERATION_SECRET: before the node touches
// anything.
func (g *gossipFlags) check() error {
	if g.enabled() {
		cfg, err := g.clusterConfig()
		if err != nil {
			return err
		}
		// The member's own checks (seeds, timings), with a stand-in identity.
		cfg.NodeName, cfg.Region, cfg.Roles = "check", "check", []string{catalog.NodeRoleWorker}
		if _, err := gossip.New(cfg); err != nil {
			return withHint(fmt.Errorf("bad gossip settings: %w", err), "check --join (host[:port], comma-separated), --bind, --advertise and the --gossip-* timings")
		}
	}
	if !g.server {
		return nil
	}
	if err := g.checkServer(); err != nil {
		return err
	}
	if v := os.Getenv(EnvFederationSecret); v != "" {
		if _, err := broker.ParseFederationSecrets(v); err != nil {
			return withHint(fmt.Errorf("bad %s: %w", EnvFederationSecret, err), "set the same random secret on every server of every region, such as `openssl rand -hex 32`")
		}
	}
	return nil
}

// checkServer checks the federation flags.
func (g *gossipFlags) checkServer() error {
	if g.authoritative != "" {
		if err := catalog.ValidateName("authoritative-region", g.authoritative); err != nil {
			return withHint(fmt.Errorf("bad --authoritative-region %q: %w", g.authoritative, err), "give the name of the region that manages users and tokens")
		}
	}
	if g.syncInterval < 10*time.Millisecond {
		return withHint(fmt.Errorf("bad --federation-sync-interval %s: must be at least 10ms", g.syncInterval), "leave it out for %s", broker.SyncIntervalDefault)
	}
	if g.forwardTimeout < 100*time.Millisecond {
		return withHint(fmt.Errorf("bad --forward-timeout %s: must be at least 100ms", g.forwardTimeout), "leave it out for %s", broker.ForwardTimeoutDefault)
	}
	return nil
}

// splitHostPortDefault splits "host:port" or "host" (port def).
func splitHostPortDefault(s string, def int) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		if net.ParseIP(strings.Trim(s, "[]")) == nil {
			return "", 0, err
		}
		return strings.Trim(s, "[]"), def, nil
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q must be between 0 (any free port) and 65535", p)
	}
	return host, port, nil
}

// portFree reports whether the gossip port host:port can be bound (TCP and UDP).
func portFree(host string, port int) bool {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	_ = ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	_ = pc.Close()
	return true
}

// advertiseIP picks the address to advertise when gossip is bound to every
// interface: the first private IPv4 address, else the first global unicast
// one, else loopback (a lone node).
func advertiseIP() string {
	addrs, _ := net.InterfaceAddrs()
	var global string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil || ipn.IP.IsLoopback() {
			continue
		}
		if ipn.IP.IsPrivate() {
			return ipn.IP.String()
		}
		if global == "" && ipn.IP.IsGlobalUnicast() {
			global = ipn.IP.String()
		}
	}
	if global != "" {
		return global
	}
	return "127.0.0.1"
}

// gossipNode is this process's member of the pool: what the services tell
// the pool about the node, and the member of the current life of the
// gossip service (a new one after a restart).
type gossipNode struct {
	mu        sync.Mutex
	roles     []string
	apiAddr   string
	agentAddr string
	capacity  int

	current atomic.Pointer[gossip.Cluster]
}

// Peers returns the pool's members for the broker (broker.Membership).
func (n *gossipNode) Peers() []broker.Peer {
	c := n.current.Load()
	if c == nil {
		return nil
	}
	ms := c.Members()
	out := make([]broker.Peer, 0, len(ms))
	for _, m := range ms {
		out = append(out, broker.Peer{Name: m.Name, Region: m.Region, Roles: m.Roles, APIAddr: m.APIAddr, AgentAddr: m.AgentAddr,
			Version: m.Version, Capacity: m.Capacity, State: m.State.CatalogState(), Leaving: m.Leaving, Since: m.Since, Started: m.Started})
	}
	return out
}

// announce adds roles and an address to what the node tells the pool: an
// API URL for a server, else the agent's URL (as host:port).
func (n *gossipNode) announce(roles []string, address string, capacity int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range roles {
		if !slices.Contains(n.roles, r) {
			n.roles = append(n.roles, r)
		}
	}
	switch {
	case address == "":
	case slices.Contains(roles, catalog.NodeRoleServer):
		n.apiAddr = address
	default:
		if u, err := url.Parse(address); err == nil && u.Host != "" {
			n.agentAddr = u.Host
		} else {
			n.agentAddr = address
		}
	}
	n.capacity = max(n.capacity, min(capacity, gossip.MaxCapacity))
}

// gossipNode returns the process's member, adding the gossip service the
// first time; nil when the node does not gossip.
func (s *stack) gossipNode(f *serviceFlags) (*gossipNode, error) {
	g := &f.gossip
	if !g.enabled() {
		return nil, nil
	}
	if g.node != nil {
		return g.node, nil
	}
	base, err := g.clusterConfig()
	if err != nil {
		return nil, err
	}
	node := &gossipNode{}
	g.node = node
	region, name := f.region, s.node
	log := s.base.With("component", "gossip") // the member names the node itself
	recLog := s.log.With("component", "membership")
	err = s.add(ServiceGossip, func() (func(context.Context) error, error) {
		cfg := base
		node.mu.Lock()
		cfg.NodeName, cfg.Region, cfg.Roles = name, region, slices.Clone(node.roles)
		cfg.APIAddr, cfg.AgentAddr, cfg.Capacity = node.apiAddr, node.agentAddr, node.capacity
		node.mu.Unlock()
		cfg.Version, cfg.Logger, cfg.Metrics = clusterVersion(), log, s.reg
		if g.defaultBind() && !portFree(cfg.BindAddr, cfg.BindPort) {
			// Another node on this host has the customary port (several
			// nodes on one host): take a free one. Members reach this node
			// once it joined them (--join).
			log.Warn("the default gossip port is taken; using a free port: give --bind IP:PORT to choose", slog.Int("port", cfg.BindPort))
			cfg.BindPort = gossip.BindPortAuto
		}
		c, err := gossip.New(cfg)
		if err != nil {
			return nil, withHint(fmt.Errorf("configure gossip: %w", err), "check --bind, --advertise, --join and the node's name and addresses")
		}
		recorder := slices.Contains(cfg.Roles, catalog.NodeRoleServer)
		return func(ctx context.Context) error {
			node.current.Store(c)
			var wg sync.WaitGroup
			if recorder {
				rec := &membershipRecorder{store: s.store, region: region, self: name, log: recLog, every: ReconcileIntervalDefault}
				wg.Go(func() { rec.run(ctx, c) })
			} else {
				wg.Go(func() { drainEvents(c.Events()) })
			}
			err := c.Run(ctx)
			wg.Wait()
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return node, nil
}

// clusterVersion is version() cut to what the gossip metadata holds.
func clusterVersion() string {
	v := version()
	if len(v) > gossip.MaxVersionLen {
		v = v[:gossip.MaxVersionLen]
	}
	return v
}

// drainEvents reads the events of a node that does not record them.
func drainEvents(ch <-chan gossip.Event) {
	for range ch {
	}
}

// joinPool tells the pool about the node's roles and address (a worker's,
// an agent's or a server's presence); nothing when the node does not gossip.
func (s *stack) joinPool(f *serviceFlags, roles []string, address string, capacity int) error {
	node, err := s.gossipNode(f)
	if err != nil || node == nil {
		return err
	}
	node.announce(roles, address, capacity)
	return nil
}

// addFederation federates the server's broker: GET /api/v1/cluster always;
// with WEIR_FEDERATION_SECRET, forwarding to the other regions found in the
// pool and replication from them (the federation service).
func (s *stack) addFederation(f *serviceFlags, b *broker.Server, apiURL string) error {
	g := &f.gossip
	if g.server {
		if err := g.checkServer(); err != nil {
			return err
		}
	}
	cfg := broker.FederationConfig{AuthoritativeRegion: g.authoritative, SyncInterval: g.syncInterval, ForwardTimeout: g.forwardTimeout}
	if v := os.Getenv(EnvFederationSecret); v != "" {
		secrets, err := broker.ParseFederationSecrets(v)
		if err != nil {
			return withHint(fmt.Errorf("bad %s: %w", EnvFederationSecret, err), "set the same random secret on every server of every region, such as `openssl rand -hex 32`")
		}
		cfg.Secrets = secrets
	}
	node, err := s.gossipNode(f)
	if err != nil {
		return err
	}
	if node != nil {
		node.announce([]string{catalog.NodeRoleServer}, apiURL, 0)
		cfg.Membership = node
	} else if len(cfg.Secrets) > 0 {
		s.log.Warn("WEIR_FEDERATION_SECRET is set but this node gossips with no one: no other region can be reached; give --join or --bind")
	}
	fed, err := b.Federate(cfg, s.store)
	if err != nil {
		return withHint(fmt.Errorf("federate: %w", err), "set %s on every server, the same in every region, to federate; or leave --authoritative-region out", EnvFederationSecret)
	}
	if len(cfg.Secrets) == 0 {
		return nil
	}
	s.log.Info("federation on", "authoritative_region", g.authoritative, "gossip", node != nil)
	return s.add(ServiceFederation, func() (func(context.Context) error, error) { return fed.Run, nil })
}

// membershipRecorder keeps the catalog's nodes of its region in step with
// the pool, on servers: a member found dead or gone is marked so (unless it
// heartbeat the catalog since), and its queued runs go back to pending at
// once (RequeueOrphans, which also wakes the workload manager); a member
// that joins is marked alive. Its active runs are retried when their lease
// expires: the lease, not gossip, decides who owns a run.
type membershipRecorder struct {
	store  *catalog.Store
	region string
	self   string
	log    *slog.Logger
	every  time.Duration
}

func (r *membershipRecorder) run(ctx context.Context, c *gossip.Cluster) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	events := c.Events()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			r.record(ctx, ev)
		case <-t.C:
			r.reconcile(ctx, c.Members())
		}
	}
}

// record writes one event about a member of this region.
func (r *membershipRecorder) record(ctx context.Context, ev gossip.Event) {
	m := ev.Member
	if m.Region != r.region || m.Name == r.self {
		return
	}
	switch ev.Type {
	case gossip.EventJoin, gossip.EventUpdate:
		if m.Leaving {
			return
		}
		n := m.CatalogNode()
		if m.APIAddr == "" && m.AgentAddr != "" {
			n.Address = "http://" + m.AgentAddr
		}
		if err := r.store.RecordNodeAlive(ctx, &n); err != nil && ctx.Err() == nil {
			r.log.Warn("record member alive", slog.String("member", m.Name), slog.Any("error", err))
		}
	case gossip.EventDead, gossip.EventLeft:
		r.gone(ctx, m.Name, m.State.CatalogState(), ev.At, m.HasRole(catalog.NodeRoleWorker))
	}
}

// gone marks a member dead or left and sends its queued runs back to pending.
func (r *membershipRecorder) gone(ctx context.Context, name, state string, at time.Time, worker bool) bool {
	changed, err := r.store.RecordNodeGone(ctx, name, state, at)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("record member gone", slog.String("member", name), slog.String("state", state), slog.Any("error", err))
		}
		return false
	}
	if !changed {
		return false
	}
	r.log.Info("node "+state+" (gossip)", slog.String("node_id", name))
	if worker {
		ids, err := r.store.RequeueOrphans(ctx, r.region)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("requeue the runs of a gone worker", slog.String("node_id", name), slog.Any("error", err))
		}
		for _, id := range ids {
			r.log.Info("run back to pending: its worker is gone", slog.String("run_id", id), slog.String("node_id", name))
		}
	}
	return true
}

// reconcile applies the pool's dead and left members of this region, for
// events that were dropped or written while the catalog did not answer.
func (r *membershipRecorder) reconcile(ctx context.Context, members []gossip.Member) {
	for _, m := range members {
		if m.Region != r.region || m.Name == r.self || m.State == gossip.StateAlive {
			continue
		}
		r.gone(ctx, m.Name, m.State.CatalogState(), m.Since, m.HasRole(catalog.NodeRoleWorker))
	}
}

func newClusterCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cluster",
		Short: "Show the federation's regions and nodes",
		Long: `Show the regions of the federation as the server sees them (the local one
marked *, the authoritative one marked auth), with their alive servers and
nodes, whether requests can be forwarded to them and how far behind the
replication from them is; then every node with its roles, state (the
catalog's for the server's own region, gossip's for the others) and health.`,
		Example: `  weir cluster
  weir cluster -o json --server http://eu-west.example.com:8080`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			v, err := c.Cluster(cmd.Context())
			if err != nil {
				return g.explain(err, "")
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), v)
			}
			return printCluster(cmd.OutOrStdout(), v)
		},
	}
}

// ProbeTimeoutDefault bounds `weir probe`.
const ProbeTimeoutDefault = 3 * time.Second

func newProbeCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "probe URL",
		Short: "Exit 0 when a URL answers 200: the health check of containers without a shell",
		Long: `GET the URL and exit 0 when it answers 200 within --timeout, 1 otherwise,
saying why. Container images without a shell or curl use it as their health
check: a server's /readyz (its catalog answers), a worker's or agent's
dispatcher /healthz.`,
		Example: `  weir probe http://127.0.0.1:8080/readyz
  weir probe http://127.0.0.1:7071/healthz --timeout 1s`,
		Args: exactArgs(1, "the URL to probe", "such as `weir probe http://127.0.0.1:8080/readyz`"),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := url.Parse(args[0])
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return withHint(fmt.Errorf("bad URL %q", args[0]), "give an http:// or https:// URL, such as http://127.0.0.1:8080/readyz")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return &exitError{code: ExitError, msg: fmt.Sprintf("probe %s: %v", u.Redacted(), err)}
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return &exitError{code: ExitError, msg: fmt.Sprintf("probe %s: %s", u.Redacted(), resp.Status)}
			}
			fmt.Fprintln(g.main.Stdout, "ok")
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", ProbeTimeoutDefault, "longest wait for the answer")
	return cmd
}

// printCluster writes the cluster view as two tables.
func printCluster(w io.Writer, v *client.Cluster) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tCODE\tSERVERS\tNODES\tREACHABLE\tREPLICATION")
	for _, r := range v.Regions {
		name := r.Name
		if r.Local {
			name += " *"
		}
		if r.Authoritative {
			name += " (auth)"
		}
		reach := "no"
		if r.Reachable {
			reach = "yes"
		}
		var repl []string
		for _, s := range r.Replication {
			lag := "never"
			if s.LagSeconds != nil {
				lag = fmtSeconds(*s.LagSeconds) + " ago"
			}
			item := s.Stream + " " + lag
			if s.LastError != "" {
				item += " (failing)"
			}
			repl = append(repl, item)
		}
		if len(repl) == 0 {
			repl = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", name, r.Code, r.ServersAlive, r.NodesAlive, reach, strings.Join(repl, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tREGION\tROLES\tSTATE\tGOSSIP\tHEALTH\tLAST SEEN")
	now := v.GeneratedAt
	for _, n := range v.Nodes {
		state := n.State
		if n.Leaving {
			state += " (leaving)"
		}
		gs, health := "-", "-"
		if n.GossipState != "" {
			gs = n.GossipState
		}
		if n.Health != nil {
			health = n.Health.Color
		}
		seen := "-"
		if !n.LastSeen.IsZero() && !now.IsZero() {
			seen = fmtSeconds(max(now.Sub(n.LastSeen), 0).Seconds()) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.Region, strings.Join(n.Roles, ","), state, gs, health, seen)
	}
	return tw.Flush()
}
