package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/client"
)

func newSystemsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "systems",
		Short: "List and show systems: the sources and targets data moves between",
		Long: `Systems are the places data moves between: a root directory (kind fs), a
database, or the null sink. Their secrets are never shown, only their names.`,
		Example: `  weir systems list
  weir systems show demo-src -o json`,
		Args: noArgs,
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the systems you may read",
		Example: "  weir systems list\n  weir systems list -o json | jq -r '.systems[].name'",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			systems, err := c.ListSystems(cmd.Context())
			if err != nil {
				return g.explain(err, "")
			}
			if systems == nil {
				systems = []client.System{}
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), map[string]any{"systems": systems})
			}
			out := cmd.OutOrStdout()
			if len(systems) == 0 {
				fmt.Fprintln(out, "No systems.")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tREGION\tMAX_RUNS\tSETTINGS")
			for _, s := range systems {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Kind, s.Region, maxRuns(s.MaxConcurrentRuns), fmtParams(s.Settings.V))
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:     "show NAME",
		Short:   "Show one system",
		Example: "  weir systems show demo-src",
		Args:    exactArgs(1, "the system's name", "weir systems show NAME; `weir systems list` lists them"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			s, err := c.GetSystem(cmd.Context(), args[0])
			if err != nil {
				return g.explain(err, "`weir systems list` lists the systems you may read")
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), s)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "Name\t%s\n", s.Name)
			fmt.Fprintf(tw, "Kind\t%s\n", s.Kind)
			fmt.Fprintf(tw, "Region\t%s\n", s.Region)
			fmt.Fprintf(tw, "Max runs\t%s\n", maxRuns(s.MaxConcurrentRuns))
			fmt.Fprintf(tw, "Settings\t%s\n", fmtParams(s.Settings.V))
			secrets := "-"
			if len(s.SecretKeys) > 0 {
				secrets = strings.Join(s.SecretKeys, ", ") + " (values never shown)"
			}
			fmt.Fprintf(tw, "Secrets\t%s\n", secrets)
			fmt.Fprintf(tw, "Created\t%s\n", fmtTime(s.CreatedAt))
			fmt.Fprintf(tw, "Updated\t%s\n", fmtTime(s.UpdatedAt))
			return tw.Flush()
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}

func maxRuns(n int) string {
	if n <= 0 {
		return "no limit"
	}
	return fmt.Sprint(n)
}

func newMappingsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mappings",
		Short: "List and show mappings: what moves from a source to a target",
		Long: `A mapping says what moves from a source system to a target system, with
which parameters (types, defaults, the time window of dates). Every change
makes a new version; runs record the version they ran.`,
		Example: `  weir mappings list
  weir mappings show demo-trades`,
		Args: noArgs,
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the mappings you may read (their latest versions)",
		Example: "  weir mappings list\n  weir mappings list -o json | jq -r '.mappings[] | select(.enabled) | .name'",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			ms, err := c.ListMappings(cmd.Context())
			if err != nil {
				return g.explain(err, "")
			}
			if ms == nil {
				ms = []client.Mapping{}
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), map[string]any{"mappings": ms})
			}
			out := cmd.OutOrStdout()
			if len(ms) == 0 {
				fmt.Fprintln(out, "No mappings.")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tENABLED\tSOURCE\tTARGET\tPARAMS")
			for _, m := range ms {
				names := make([]string, len(m.Params.V))
				for i, p := range m.Params.V {
					names[i] = p.Name
				}
				params := "-"
				if len(names) > 0 {
					params = strings.Join(names, ",")
				}
				fmt.Fprintf(tw, "%s\t%d\t%t\t%s\t%s\t%s\n", m.Name, m.Version, m.Enabled, endpoint(m.Source.V), endpoint(m.Target.V), params)
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:     "show NAME",
		Short:   "Show a mapping: its endpoints and parameters",
		Example: "  weir mappings show demo-trades",
		Args:    exactArgs(1, "the mapping's name", "weir mappings show NAME; `weir mappings list` lists them"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			m, err := c.GetMapping(cmd.Context(), args[0])
			if err != nil {
				return g.explain(err, "`weir mappings list` lists the mappings you may read")
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), m)
			}
			printMapping(cmd.OutOrStdout(), m)
			return nil
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}

func endpoint(e client.Endpoint) string {
	if e.Path == "" {
		return e.System
	}
	return e.System + ":" + e.Path
}

func printMapping(w io.Writer, m *client.Mapping) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Name\t%s (version %d)\n", m.Name, m.Version)
	if m.Description != "" {
		fmt.Fprintf(tw, "Description\t%s\n", m.Description)
	}
	fmt.Fprintf(tw, "Enabled\t%t\n", m.Enabled)
	fmt.Fprintf(tw, "Region\t%s\n", m.Region)
	fmt.Fprintf(tw, "Source\t%s\n", endpoint(m.Source.V))
	fmt.Fprintf(tw, "Target\t%s\n", endpoint(m.Target.V))
	fmt.Fprintf(tw, "Attempts\t%d, timeout %ds\n", m.MaxAttempts, m.TimeoutSeconds)
	if m.MaxHold > 0 {
		fmt.Fprintf(tw, "Max hold\t%s (held by health longer, a run is aborted)\n", m.MaxHold)
	} else {
		fmt.Fprintf(tw, "Max hold\tthe region's (--max-hold of the server)\n")
	}
	fmt.Fprintf(tw, "Changed\t%s by %s\n", fmtTime(m.CreatedAt), m.CreatedBy)
	_ = tw.Flush()
	fmt.Fprintln(w)
	if len(m.Params.V) == 0 {
		fmt.Fprintln(w, "Parameters: none")
		return
	}
	fmt.Fprintln(w, "Parameters:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tTYPE\tREQUIRED\tDEFAULT\tWINDOW")
	for _, p := range m.Params.V {
		def := p.Default
		if def == "" {
			def = "-"
		}
		window := "-"
		if p.Window != nil {
			var parts []string
			if p.Window.Min != "" {
				parts = append(parts, "from "+p.Window.Min)
			}
			if p.Window.Max != "" {
				parts = append(parts, "to "+p.Window.Max)
			}
			if p.Window.MaxAgeDays > 0 {
				parts = append(parts, fmt.Sprintf("last %d days", p.Window.MaxAgeDays))
			}
			if p.Window.AllowFuture {
				parts = append(parts, "future allowed")
			}
			if len(parts) > 0 {
				window = strings.Join(parts, ", ")
			}
		} else if p.Type == "date" {
			window = "not in the future"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%t\t%s\t%s\n", p.Name, p.Type, p.Required, def, window)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nSubmit: weir submit %s%s\n", m.Name, exampleParams(m))
}

// exampleParams writes -p flags for a mapping's required parameters.
func exampleParams(m *client.Mapping) string {
	var b strings.Builder
	for _, p := range m.Params.V {
		if !p.Required || p.Default != "" {
			continue
		}
		v := "VALUE"
		switch p.Type {
		case "date":
			v = "YYYY-MM-DD"
		case "int":
			v = "N"
		}
		fmt.Fprintf(&b, " -p %s=%s", p.Name, v)
	}
	return b.String()
}

func newWhoAmICmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who the server takes you for: user, role, token and grants",
		Long: `Show the user and role the server authenticates your token as, the
address it sees you from, and the entitlements (resource x action) granted to
you. Useful when a command answers 401 or 403.`,
		Example: "  weir whoami\n  WEIR_TOKEN=weir_... weir whoami -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			id, err := c.WhoAmI(cmd.Context())
			if err != nil {
				return g.explain(err, "")
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), id)
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "User\t%s (id %d)\n", id.Name, id.ID)
			fmt.Fprintf(tw, "Role\t%s\n", id.Role)
			fmt.Fprintf(tw, "Token\tid %d\n", id.TokenID)
			fmt.Fprintf(tw, "From\t%s\n", id.ClientIP)
			fmt.Fprintf(tw, "Server\t%s\n", c.BaseURL())
			_ = tw.Flush()
			if id.Role == "admin" {
				fmt.Fprintln(out, "\nAdmins may do everything.")
				return nil
			}
			if len(id.Entitlements) == 0 {
				fmt.Fprintln(out, "\nNo entitlements: ask an admin to grant you some.")
				return nil
			}
			ents := id.Entitlements
			sort.Slice(ents, func(i, j int) bool {
				if ents[i].Resource != ents[j].Resource {
					return ents[i].Resource < ents[j].Resource
				}
				return ents[i].Action < ents[j].Action
			})
			fmt.Fprintln(out, "\nEntitlements:")
			tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  RESOURCE\tACTION\tFROM")
			for _, e := range ents {
				from := "anywhere"
				if len(e.CIDRs.V) > 0 {
					from = strings.Join(e.CIDRs.V, ", ")
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", e.Resource, e.Action, from)
			}
			return tw.Flush()
		},
	}
}
