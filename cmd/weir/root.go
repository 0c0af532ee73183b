package main

import (
	"fmt"
	"os"
	"path/filepath"
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

  weir submit demo-trades -p business_date=2026-11-20 --wait`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", envOr("WEIR_SERVER", "http://"+ListenDefault), "Weir server URL (env WEIR_SERVER)")
	pf.StringVar(&g.token, "token", os.Getenv("WEIR_TOKEN"), "API token (env WEIR_TOKEN; default: the admin token weir dev wrote to <data-dir>/admin-token)")
	pf.StringVar(&g.dataDir, "data-dir", envOr("WEIR_DATA_DIR", DataDirDefault), "directory of the embedded catalog, demo data and admin token (env WEIR_DATA_DIR)")
	pf.StringVarP(&g.output, "output", "o", "text", "output format: text or json")

	root.AddCommand(clientCommands(g)...)
	root.AddCommand(serviceCommands(g)...)
	return root
}

// checkOutput validates -o.
func (g *globals) checkOutput() error {
	switch g.output {
	case "text", "json":
		return nil
	}
	return withHint(fmt.Errorf("unknown output format %q", g.output), "use -o text or -o json")
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
