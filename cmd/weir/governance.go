package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
	"github.com/weirdata/weir/dispatcher"
	"github.com/weirdata/weir/monitor"
	"github.com/weirdata/weir/profiler"
)

// Defaults of the governance flags.
const (
	// AgentListenDefault is where the dispatcher agent of a worker or an
	// agent node listens: a free loopback port, recorded in the node's row
	// (its Address), so that several nodes fit on one host and nothing is
	// reachable from other hosts unless asked for with --agent-listen.
	AgentListenDefault = "127.0.0.1:0"
	// ProbeIntervalDefault is how often `weir agent` probes its systems again.
	ProbeIntervalDefault = 5 * time.Minute
	// AlertMinSeverityDefault is the least severe alert sent to webhooks.
	AlertMinSeverityDefault = catalog.AlertInfo
)

// bindNode binds the flags every node role has: host sampling and external commands.
func (f *serviceFlags) bindNode(cmd *cobra.Command, diskDefault string) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.diskPaths, "disk-path", envList("WEIR_DISK_PATHS", filepath.SplitList),
		"directory whose disk space the profiler reports; repeat for several (env WEIR_DISK_PATHS, ':'-separated; default "+diskDefault+")")
	fl.DurationVar(&f.sampleInterval, "sample-interval", f.envDuration("WEIR_SAMPLE_INTERVAL", profiler.IntervalDefault),
		"time between two samples of this host's CPU, memory, disk and network (env WEIR_SAMPLE_INTERVAL)")
	fl.StringArrayVar(&f.commands, "command", envList("WEIR_COMMANDS", func(s string) []string { return strings.Split(s, ";") }),
		"external command this node runs and restarts when it dies: name=/abs/path[,arg,...]; repeat for several (env WEIR_COMMANDS, ';'-separated)")
	fl.StringVar(&f.catalogCommands, "catalog-commands", os.Getenv("WEIR_CATALOG_COMMANDS"),
		"directory of executables: the node also runs the commands registered for it in the catalog (weir nodes commands) whose executable, links followed, is a file inside it; "+
			"without it the node runs none (env WEIR_CATALOG_COMMANDS). Put there only programs any API admin may start on this host")
	f.gossip.bindFlags(cmd, f)
}

// bindAlerts binds the flags of alert delivery (servers).
func (f *serviceFlags) bindAlerts(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.webhooks, "alert-webhook", envList("WEIR_ALERT_WEBHOOKS", strings.Fields),
		"URL alerts are POSTed to as JSON; repeat for several; signed with WEIR_ALERT_WEBHOOK_SECRET when set (env WEIR_ALERT_WEBHOOKS, space-separated)")
	fl.StringVar(&f.alertMinSeverity, "alert-min-severity", envOr("WEIR_ALERT_MIN_SEVERITY", AlertMinSeverityDefault),
		"least severe alert sent to the webhooks: "+strings.Join(catalog.AlertSeverities, ", ")+" (env WEIR_ALERT_MIN_SEVERITY)")
}

// bindAgentListen binds the flags of a dispatcher agent on its own listener (workers, agents).
func (f *serviceFlags) bindAgentListen(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.agentListen, "agent-listen", envOr("WEIR_AGENT_LISTEN", AgentListenDefault),
		"address the dispatcher agent listens on; the default is a free loopback port (env WEIR_AGENT_LISTEN)")
	fl.StringVar(&f.agentAdvertise, "agent-advertise", os.Getenv("WEIR_AGENT_ADVERTISE"),
		"URL others reach the dispatcher agent at, recorded as the node's address (env WEIR_AGENT_ADVERTISE; default http://<listen address>, with the host name for 0.0.0.0)")
}

func envList(key string, split func(string) []string) []string {
	var out []string
	for _, v := range split(os.Getenv(key)) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// envDuration reads a flag's default duration from the environment; a bad
// value is reported when the flags are checked.
func (f *serviceFlags) envDuration(key string, def time.Duration) time.Duration {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		f.envErrs = append(f.envErrs, withHint(fmt.Errorf("bad %s %q: not a duration", key, v), "give a duration such as 30s or 5m, or unset it for the default %s", def))
		return def
	}
	return d
}

// envFloat reads a flag's default number from the environment; a bad value
// is reported when the flags are checked.
func (f *serviceFlags) envFloat(key string, def float64) float64 {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		f.envErrs = append(f.envErrs, withHint(fmt.Errorf("bad %s %q: not a number", key, v), "give a number such as 0.75, or unset it for the default %v", def))
		return def
	}
	return x
}

// minSampleInterval is the shortest --sample-interval (the profiler's own limit).
const minSampleInterval = 10 * time.Millisecond

// checkNode checks the flags of bindNode.
func (f *serviceFlags) checkNode() error {
	if len(f.envErrs) > 0 {
		return f.envErrs[0]
	}
	if f.sampleInterval < minSampleInterval {
		return withHint(fmt.Errorf("bad --sample-interval %s: must be at least %s", f.sampleInterval, minSampleInterval),
			"leave it out for %s, or give a duration such as 10s", profiler.IntervalDefault)
	}
	if _, err := parseCommands(f.commands); err != nil {
		return err
	}
	if f.catalogCommands != "" {
		if _, err := monitor.ResolveCommandsDir(f.catalogCommands); err != nil {
			return withHint(fmt.Errorf("bad --catalog-commands %q: %w", f.catalogCommands, err),
				"give a directory that exists and holds only the executables the catalog's admins may run on this host, or leave it out to run none")
		}
	}
	return f.gossip.check()
}

// diskPathsFor returns --disk-path, or defaults when it was not given; each
// path is made absolute and must be a directory that exists.
func (f *serviceFlags) diskPathsFor(defaults ...string) ([]string, error) {
	given := len(f.diskPaths) > 0
	paths := f.diskPaths
	if !given {
		paths = defaults
	}
	var out []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("disk path %q: %w", p, err)
		}
		st, err := os.Stat(abs)
		if err != nil || !st.IsDir() {
			if !given {
				continue // a default that is not here (an fs root on another host) is skipped
			}
			return nil, withHint(fmt.Errorf("bad --disk-path %q: not a directory on this host", p), "give directories that exist, such as the data or catalog directory")
		}
		if !slices.Contains(out, abs) {
			out = append(out, abs)
		}
	}
	if len(out) == 0 {
		out = append(out, profiler.DiskPathsDefault...)
	}
	return out, nil
}

// addProfiler supervises the profiler of this node's host, sampling every
// --sample-interval and reporting the space of diskPaths.
func (s *stack) addProfiler(f *serviceFlags, diskPaths []string) error {
	cfg := profiler.Config{NodeID: s.node, Region: f.region, Interval: f.sampleInterval, DiskPaths: diskPaths,
		Logger: s.base.With("component", "profiler"), Metrics: s.reg}
	build := func() (func(context.Context) error, error) {
		sampler, err := profiler.NewHostSampler(diskPaths)
		if err != nil {
			return nil, err
		}
		p, err := profiler.New(cfg, s.store, sampler)
		if err != nil {
			return nil, err
		}
		return p.Run, nil
	}
	first, err := build()
	if err != nil {
		return fmt.Errorf("start the profiler: %w", err)
	}
	s.log.Info("profiler configured", "interval", f.sampleInterval, "disk_paths", diskPaths)
	return s.addRun(ServiceProfiler, first, build)
}

// commandSpecRE is a --command value: name=path[,arg...].
var commandSpecRE = regexp.MustCompile(`^([a-z0-9][a-z0-9._-]{0,63})=(.+)$`)

// parseCommands parses --command values into the commands to supervise.
func parseCommands(specs []string) ([]monitor.CommandService, error) {
	var out []monitor.CommandService
	seen := map[string]bool{}
	for _, spec := range specs {
		m := commandSpecRE.FindStringSubmatch(spec)
		if m == nil {
			return nil, withHint(fmt.Errorf("bad --command %q", spec),
				"use name=/absolute/path[,arg,...] with a name of lower-case letters, digits, '.', '_' or '-', such as --command exporter=/usr/bin/node_exporter,--web.listen-address=:9100")
		}
		name, parts := m[1], strings.Split(m[2], ",")
		path := parts[0]
		if seen[name] {
			return nil, withHint(fmt.Errorf("bad --command %q: two commands are named %s", spec, name), "give each command its own name")
		}
		seen[name] = true
		if !filepath.IsAbs(path) {
			return nil, withHint(fmt.Errorf("bad --command %s: %q is not an absolute path", name, path), "commands run without a shell and without PATH lookup: give the executable's absolute path")
		}
		st, err := os.Stat(path)
		switch {
		case err != nil:
			return nil, withHint(fmt.Errorf("bad --command %s: %w", name, err), "give the path of an executable that exists on this host")
		case st.IsDir() || st.Mode().Perm()&0o111 == 0:
			return nil, withHint(fmt.Errorf("bad --command %s: %s is not an executable file", name, path), "give the path of an executable that exists on this host")
		}
		out = append(out, monitor.CommandService{Name: name, Path: path, Args: parts[1:]})
	}
	return out, nil
}

// addCommands supervises the --command commands.
func (s *stack) addCommands(f *serviceFlags) error {
	cmds, err := parseCommands(f.commands)
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if err := s.sup.AddCommand(c); err != nil {
			return withHint(fmt.Errorf("bad --command %s: %w", c.Name, err), "each command needs a name that no service of this node has (%s are taken)",
				strings.Join([]string{ServiceAPI, ServiceWorkload, ServiceScheduler, ServiceWorker, ServiceProfiler, ServicePresence, ServiceNotifier, ServiceDispatcher, ServiceProber}, ", "))
		}
		s.log.Info("external command configured", "service", c.Name, "path", c.Path, "args", len(c.Args))
	}
	return nil
}

// alertWebhooks builds the --alert-webhook receivers.
func (f *serviceFlags) alertWebhooks() ([]monitor.Webhook, error) {
	if f.alertMinSeverity == "" {
		f.alertMinSeverity = AlertMinSeverityDefault
	}
	if catalog.AlertSeverityRank(f.alertMinSeverity) == 0 {
		return nil, withHint(fmt.Errorf("bad --alert-min-severity %q", f.alertMinSeverity), "use one of %s", strings.Join(catalog.AlertSeverities, ", "))
	}
	secret := os.Getenv("WEIR_ALERT_WEBHOOK_SECRET")
	var hooks []monitor.Webhook
	for _, u := range f.webhooks {
		hooks = append(hooks, monitor.Webhook{URL: u, Secret: secret, MinSeverity: f.alertMinSeverity})
	}
	return hooks, nil
}

// addNotifier supervises the delivery of alerts to --alert-webhook, when any is given.
func (s *stack) addNotifier(f *serviceFlags) error {
	hooks, err := f.alertWebhooks()
	if err != nil || len(hooks) == 0 {
		return err
	}
	cfg := monitor.NotifierConfig{Webhooks: hooks, Logger: s.log.With("component", "notifier")}
	build := func() (func(context.Context) error, error) {
		n, err := monitor.NewNotifier(cfg, s.store)
		if err != nil {
			return nil, err
		}
		return n.Run, nil
	}
	first, err := build()
	if err != nil {
		// The error names the webhook (its host and a hash), never the URL, which may hold a token.
		return withHint(fmt.Errorf("bad --alert-webhook: %w", err), "give absolute http:// or https:// URLs")
	}
	names := make([]string, len(hooks))
	for i, h := range hooks {
		names[i] = h.String()
	}
	s.log.Info("alerts are delivered to webhooks", "webhooks", names, "min_severity", f.alertMinSeverity)
	return s.addRun(ServiceNotifier, first, build)
}

// nodeAuth is the Store the node's dispatcher agent authenticates through:
// the catalog's API tokens, the other nodes' tokens (catalog node tokens,
// audited as "node:<id>", who may only read systems and mappings: see
// agentcall.go), plus the node's own credential, a random secret that never
// leaves the process, with which the node calls its own agent (`weir agent`
// probing its systems). Those calls are audited as user "node:<id>", who may
// only read systems.
type nodeAuth struct {
	*catalog.Store
	secret    string
	principal *catalog.Principal
}

func newNodeAuth(store *catalog.Store, node string) *nodeAuth {
	return &nodeAuth{Store: store, secret: catalog.NewTokenSecret(), principal: &catalog.Principal{
		User:         catalog.User{Name: "node:" + node, Role: catalog.RoleViewer},
		Entitlements: []catalog.Entitlement{{Action: catalog.ActionRead, Resource: "system:*"}},
	}}
}

// Authenticate resolves raw as the node's own credential, another node's
// token (catalog.AuthenticateNode) or an API token.
func (a *nodeAuth) Authenticate(ctx context.Context, raw string) (*catalog.Principal, error) {
	if len(raw) == len(a.secret) && subtle.ConstantTimeCompare([]byte(raw), []byte(a.secret)) == 1 {
		p := *a.principal
		return &p, nil
	}
	if p, found, err := a.Store.AuthenticateNode(ctx, raw); found || err != nil {
		return p, err
	}
	return a.Store.Authenticate(ctx, raw)
}

// newAgent builds the node's dispatcher agent; systems, when not empty, are
// the only systems it serves.
func (s *stack) newAgent(f *serviceFlags, auth *nodeAuth, systems []string, listen string) (*dispatcher.Agent, error) {
	a, err := dispatcher.NewAgent(dispatcher.AgentConfig{NodeID: s.node, Region: f.region, Listen: listen, Systems: systems,
		Logger: s.base}, auth, connector.Default())
	if err != nil {
		return nil, fmt.Errorf("start the dispatcher agent: %w", err)
	}
	return a, nil
}

// addAgentListener supervises the dispatcher agent on its own listener
// (--agent-listen) and returns the URL it is advertised at.
func (s *stack) addAgentListener(f *serviceFlags, auth *nodeAuth, systems []string) (string, *boundListener, error) {
	first, err := s.newAgent(f, auth, systems, f.agentListen)
	if err != nil {
		return "", nil, err
	}
	b, err := bindListener(f.agentListen, "--agent-listen")
	if err != nil {
		return "", nil, err
	}
	url, err := advertiseURL(f.agentAdvertise, b.Addr(), "--agent-advertise")
	if err != nil {
		b.close()
		return "", nil, err
	}
	serve := func(a *dispatcher.Agent) func(context.Context) error {
		// The agent's commands and the node's metrics (metrics.go).
		return serveHTTP(b, withMetrics(a, s.metrics()), s.log.With("component", "dispatcher"))
	}
	build := func() (func(context.Context) error, error) {
		a, err := s.newAgent(f, auth, systems, b.Addr())
		if err != nil {
			return nil, err
		}
		return serve(a), nil
	}
	if err := s.addRun(ServiceDispatcher, serve(first), build); err != nil {
		b.close()
		return "", nil, err
	}
	s.log.Info("dispatcher agent configured", "listen", b.Addr(), "advertised", url)
	return url, b, nil
}

// withAgent serves the dispatcher agent's commands (/agent/v1/...) on the
// API's listener next to the REST API, so that a server's one address is
// both its API and its agent.
func withAgent(api http.Handler, agent *dispatcher.Agent) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(dispatcher.CommandsPath, agent)
	mux.Handle(dispatcher.CommandsPath+"/", agent)
	mux.Handle("/", api)
	return mux
}

// errNoSystems is returned by `weir agent` without --systems.
var errNoSystems = errors.New("weir agent needs the systems of this host: --systems NAME[,NAME...]")
