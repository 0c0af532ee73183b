package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// Defaults of the global flags.
const (
	DataDirDefault = "weir-data"
	ListenDefault  = "127.0.0.1:8080"
	RegionDefault  = "local"
)

// globals are the flags every client command shares.
type globals struct {
	main    *Main
	server  string // --server, WEIR_SERVER
	token   string // --token, WEIR_TOKEN
	dataDir string // --data-dir, WEIR_DATA_DIR: where `weir dev` keeps its catalog and token
	output  string // -o: text or json
	quiet   bool   // -q: no progress bars or informational messages
}

// info is where informational messages go: stderr, or nowhere with --quiet.
func (g *globals) info(stderr io.Writer) io.Writer {
	if g.quiet {
		return io.Discard
	}
	return stderr
}

func newRootCmd(m *Main) *cobra.Command {
	g := &globals{main: m}
	root := &cobra.Command{
		Use:   "weir",
		Short: "Weir moves data between systems, governed by a metadata catalog",
		Long: `Weir moves data between files and databases in parallel, governed by a
metadata catalog: clients submit runs of mappings over REST, a workload
manager admits them within limits, and workers move the data.

Start everything in one process on an embedded SQLite catalog with demo data:

  weir dev

then, in another terminal, submit a run and watch it:

  weir submit demo-trades -p business_date=2026-11-20 --wait

The service commands (dev, server, worker, agent, migrate) read their flags
from --config FILE (or WEIR_CONFIG) too; flags win over WEIR_<FLAG_NAME>
variables, which win over the file. See ` + "`weir config print --help`" + `.

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Without Args, cobra reports an unknown command as a plain error;
		// this makes it a usage error with a hint.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			hint := "see `weir --help` for the commands"
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				hint = fmt.Sprintf("did you mean `weir %s`? %s", s[0], hint)
			}
			return usageErr(withHint(fmt.Errorf("unknown command %q for weir", args[0]), "%s", hint))
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SuggestionsMinimumDistance = 2
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr(withHint(err, "see `%s --help` for its flags", c.CommandPath()))
	})
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", envOr("WEIR_SERVER", "http://"+ListenDefault), "Weir server URL (env WEIR_SERVER)")
	pf.StringVar(&g.token, "token", os.Getenv("WEIR_TOKEN"), "API token (env WEIR_TOKEN; default: the admin token weir dev wrote to <data-dir>/admin-token)")
	pf.StringVar(&g.dataDir, "data-dir", envOr("WEIR_DATA_DIR", DataDirDefault), "directory of the embedded catalog, demo data and admin token (env WEIR_DATA_DIR)")
	pf.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "no progress bars or informational messages; results and errors are still printed")

	root.AddCommand(clientCommands(g)...)
	root.AddCommand(serviceCommands(g)...)
	root.AddCommand(newConfigCmd(g), newVersionCmd(g))
	for _, c := range root.Commands() {
		if slices.Contains(configCommands, c.Name()) {
			bindConfigFlag(c)
		}
	}
	addDynamicCompletion(root, g)
	return root
}

// checkOutput validates -o.
func (g *globals) checkOutput() error {
	switch g.output {
	case "text", "json":
		return nil
	}
	return usageErr(withHint(fmt.Errorf("unknown output format %q", g.output), "use -o text or -o json"))
}

// resolveToken returns --token, WEIR_TOKEN, or the dev data dir's admin token.
func (g *globals) resolveToken() (string, error) {
	if g.token != "" {
		return g.token, nil
	}
	p := filepath.Join(g.dataDir, "admin-token")
	b, err := os.ReadFile(p)
	if err != nil {
		return "", withHint(fmt.Errorf("no API token: --token and WEIR_TOKEN are empty and %s cannot be read", p),
			"pass --token or set WEIR_TOKEN; `weir dev` writes its admin token to <data-dir>/admin-token")
	}
	return strings.TrimSpace(string(b)), nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
