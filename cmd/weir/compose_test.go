package main

import (
	"context"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/catalog"
	gossip "github.com/weirdata/weir/cluster"
)

// composeEnv is what `docker compose up` needs in the environment.
func composeEnv() map[string]string {
	return map[string]string{
		gossip.EnvGossipKey: gossip.GenerateGossipKey(),
		EnvFederationSecret: strings.Repeat("f", 64),
		"WEIR_ADMIN_TOKEN":  catalog.NewTokenSecret(),
	}
}

func loadCompose(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, "docker-compose.yml")}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("weir", true) })
}

// flagDefaults returns the default of every flag of every command, by
// "command path --flag", as built from the current environment.
func flagDefaults() map[string]string {
	out := map[string]string{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { out[c.CommandPath()+" --"+f.Name] = f.DefValue })
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(NewMain(io.Discard, io.Discard)))
	return out
}

// documentedEnv returns the WEIR_* names the commands' help texts and flag
// usages name: the variables the binary reads without a flag (secrets).
func documentedEnv() map[string]bool {
	re := regexp.MustCompile(`WEIR_[A-Z0-9_]+`)
	out := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		text := c.Long
		c.Flags().VisitAll(func(f *pflag.Flag) { text += " " + f.Usage })
		for _, m := range re.FindAllString(text, -1) {
			out[m] = true
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(NewMain(io.Discard, io.Discard)))
	return out
}

// weirService is a service that runs the weir image, with its command
// parsed by the binary's own commands.
type weirService struct {
	name   string
	svc    types.ServiceConfig
	cmd    *cobra.Command
	flags  map[string][]string // flag name -> values given
	region string
}

func (w *weirService) flag(name string) string {
	if v := w.flags[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// parseService finds the subcommand of the service's command line and
// parses its flags as the binary would.
func parseService(t *testing.T, name string, svc types.ServiceConfig) *weirService {
	t.Helper()
	args := []string(svc.Command)
	require.NotEmpty(t, args, "service %s has no command", name)
	root := newRootCmd(NewMain(io.Discard, io.Discard))
	cmd, rest, err := root.Find(args)
	require.NoError(t, err, "service %s: %v", name, args)
	require.Equal(t, args[0], cmd.Name(), "service %s: %q is not a weir command", name, args[0])
	require.NoError(t, cmd.ParseFlags(rest), "service %s: the flags of `weir %s`", name, strings.Join(args, " "))
	require.Empty(t, cmd.Flags().Args(), "service %s: `weir %s` takes no arguments", name, args[0])
	w := &weirService{name: name, svc: svc, cmd: cmd, flags: map[string][]string{}}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			w.flags[f.Name] = sv.GetSlice()
		} else {
			w.flags[f.Name] = []string{f.Value.String()}
		}
	})
	if v := svc.Environment["WEIR_REGION"]; v != nil {
		w.region = *v
	}
	if r := w.flag("region"); r != "" {
		w.region = r
	}
	return w
}

// TestComposeFileMatchesTheBinary loads docker-compose.yml with the
// compose-spec library (which normalizes it and checks it against the
// schema) and checks it against the binary: two regions, each with its
// PostgreSQL, a migration, one server and two workers, with health checks;
// every command line parses with the binary's flags and its gossip and
// federation settings are valid; every WEIR_* variable is one the binary
// reads; ports, joins, health checks and catalogs point where they should.
func TestComposeFileMatchesTheBinary(t *testing.T) {
	// Without the secrets, docker compose refuses to start, saying which.
	_, err := loadCompose(t, map[string]string{})
	require.Error(t, err)
	require.Contains(t, err.Error(), "WEIR_GOSSIP_KEY")

	env := composeEnv()
	p, err := loadCompose(t, env)
	require.NoError(t, err)

	baseline := flagDefaults()
	documented := documentedEnv()
	accepted := map[string]bool{}

	weir := map[string]*weirService{}
	postgres := map[string]types.ServiceConfig{}
	for name, svc := range p.Services {
		switch {
		case svc.Build != nil:
			require.Equal(t, "weir:local", svc.Image, "service %s: one image for every weir service", name)
			weir[name] = parseService(t, name, svc)
		case strings.HasPrefix(svc.Image, "postgres:"):
			postgres[name] = svc
		default:
			t.Errorf("service %s runs an unexpected image %q", name, svc.Image)
		}
	}

	byRegion := map[string]map[string][]*weirService{} // region -> command -> services
	nodeIDs := map[string]string{}
	for name, w := range weir {
		require.NotEmpty(t, w.region, "service %s has no region", name)
		if byRegion[w.region] == nil {
			byRegion[w.region] = map[string][]*weirService{}
		}
		byRegion[w.region][w.cmd.Name()] = append(byRegion[w.region][w.cmd.Name()], w)

		// Environment: WEIR_* only, each read by the binary: it changes a
		// flag's default, or the help names it (secrets have no flag).
		for k, v := range w.svc.Environment {
			require.True(t, strings.HasPrefix(k, "WEIR_"), "service %s sets %s, which weir does not read", name, k)
			require.NotNil(t, v, "service %s: %s has no value", name, k)
			if accepted[k] || documented[k] {
				continue
			}
			t.Setenv(k, *v)
			changed := false
			for key, def := range flagDefaults() {
				if baseline[key] != def {
					changed = true
				}
			}
			os.Unsetenv(k)
			require.True(t, changed, "service %s sets %s=%q, which no weir flag reads and no help names", name, k, *v)
			accepted[k] = true
		}

		if w.cmd.Name() == "migrate" {
			require.Nil(t, w.svc.HealthCheck, "service %s: a one-shot job needs no health check", name)
			continue
		}
		id := w.flag("node-id")
		require.NotEmpty(t, id, "service %s: give --node-id, so that a restart is the same node", name)
		require.Empty(t, nodeIDs[id], "node id %s is used by %s and %s", id, name, nodeIDs[id])
		nodeIDs[id] = name
		require.Equal(t, id, w.svc.Hostname, "service %s: the host name is what the node advertises", name)

		// Gossip and federation settings, checked by the binary's own code.
		var gf gossipFlags
		sf := &serviceFlags{}
		dummy := &cobra.Command{Use: w.cmd.Name()}
		for k, v := range w.svc.Environment {
			t.Setenv(k, *v)
		}
		gf.bindFlags(dummy, sf)
		dummy.FParseErrWhitelist.UnknownFlags = true
		require.NoError(t, dummy.ParseFlags(slices.Clone([]string(w.svc.Command[1:]))))
		cfg, err := gf.clusterConfig()
		require.NoError(t, err, "service %s: gossip flags", name)
		require.NotEmpty(t, cfg.GossipKey, "service %s: gossip must be encrypted", name)
		require.NotEmpty(t, gf.join, "service %s joins no one", name)
		for _, j := range gf.join {
			host, port, err := net.SplitHostPort(j)
			require.NoError(t, err, "service %s: --join %s", name, j)
			seed := weir[host]
			if seed == nil {
				seed = parseService(t, host, p.Services[host])
			}
			require.Equal(t, "server", seed.cmd.Name(), "service %s joins %s, which is not a server", name, host)
			_, bport, err := net.SplitHostPort(seed.flag("bind"))
			require.NoError(t, err)
			require.Equal(t, bport, port, "service %s joins %s on a port it does not gossip on", name, host)
		}
		for k := range w.svc.Environment {
			os.Unsetenv(k)
		}

		// Health check: `weir probe` on the port the node serves.
		hc := w.svc.HealthCheck
		require.NotNil(t, hc, "service %s has no health check", name)
		test := []string(hc.Test)
		require.Len(t, test, 4, "service %s: health check %v", name, test)
		require.Equal(t, []string{"CMD", "/usr/local/bin/weir", "probe"}, test[:3])
		probe, _, err := newRootCmd(NewMain(io.Discard, io.Discard)).Find([]string{"probe", test[3]})
		require.NoError(t, err)
		require.Equal(t, "probe", probe.Name())
		u, err := url.Parse(test[3])
		require.NoError(t, err)
		listen := map[string]string{"server": "listen", "worker": "agent-listen", "agent": "agent-listen"}[w.cmd.Name()]
		require.NotEmpty(t, listen, "service %s runs weir %s", name, w.cmd.Name())
		_, lport, err := net.SplitHostPort(w.flag(listen))
		require.NoError(t, err, "service %s: --%s %q", name, listen, w.flag(listen))
		require.Equal(t, lport, u.Port(), "service %s: the health check probes a port the node does not serve", name)
		for _, pc := range w.svc.Ports {
			require.Equal(t, lport, strconv.Itoa(int(pc.Target)), "service %s publishes port %d, which it does not serve", name, pc.Target)
		}
		if w.cmd.Name() == "server" {
			require.Equal(t, []string{"/readyz"}, []string{u.Path}, "service %s: a server is ready when its catalog answers", name)
			require.NoError(t, gf.checkServer(), "service %s", name)
			require.Len(t, w.svc.Ports, 1, "service %s: publish the API", name)
			require.NotEmpty(t, w.svc.Environment[EnvFederationSecret], "service %s needs the federation secret", name)
		}
	}

	// Two regions, each: its catalog, a migration, one server, two workers.
	require.Len(t, byRegion, 2, "regions: %v", byRegion)
	var authoritative []string
	catalogs := map[string]bool{}
	for region, cmds := range byRegion {
		require.Len(t, cmds["migrate"], 1, "region %s", region)
		require.Len(t, cmds["server"], 1, "region %s", region)
		require.Len(t, cmds["worker"], 2, "region %s", region)
		mig := cmds["migrate"][0]
		dsn := *mig.svc.Environment["WEIR_CATALOG"]
		u, err := url.Parse(dsn)
		require.NoError(t, err)
		pg, ok := postgres[u.Hostname()]
		require.True(t, ok, "region %s: the catalog %s is not a PostgreSQL service", region, u.Hostname())
		require.False(t, catalogs[u.Hostname()], "two regions share the catalog %s", u.Hostname())
		catalogs[u.Hostname()] = true
		require.NotNil(t, pg.HealthCheck, "catalog %s has no health check", u.Hostname())
		pw, _ := u.User.Password()
		require.Equal(t, *pg.Environment["POSTGRES_PASSWORD"], pw, "region %s: catalog password", region)
		require.Equal(t, "/"+*pg.Environment["POSTGRES_DB"], u.Path, "region %s: catalog database", region)
		require.Equal(t, "service_healthy", mig.svc.DependsOn[u.Hostname()].Condition, "region %s: migrate waits for its catalog", region)
		for _, c := range []string{"server", "worker"} {
			for _, w := range cmds[c] {
				require.Equal(t, dsn, *w.svc.Environment["WEIR_CATALOG"], "service %s: not its region's catalog", w.name)
				require.Equal(t, "service_completed_successfully", w.svc.DependsOn[mig.name].Condition, "service %s waits for %s", w.name, mig.name)
			}
		}
		authoritative = append(authoritative, cmds["server"][0].flag("authoritative-region"))
	}
	require.Equal(t, authoritative[0], authoritative[1], "the servers name different authoritative regions")
	require.Contains(t, byRegion, authoritative[0], "the authoritative region is not in the federation")
}
