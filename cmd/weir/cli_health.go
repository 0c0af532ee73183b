package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/client"
)

func newHealthCmd(g *globals) *cobra.Command {
	var region string
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Show the health of regions, nodes, systems and services, with the reasons",
		Long: `Show the health of everything the server knows: each region, node,
system (that you may read) and service is green, yellow or red, with the
reason in words ("cpu 97% > 95% critical", "keeps dying (6 restarts)").
The first line is the worst of all, followed by every reason that makes it
so; then one table per kind, and the run counts (pending, held by health,
queued, active, failed in the last day).

Colors come from the profiler's latest host samples judged by the
thresholds (see weir thresholds) and from the heartbeats of the nodes.`,
		Example: `  weir health
  weir health --region us-east
  weir health -o json | jq -r '.health.color'
  weir health -o json | jq -r '.nodes[] | select(.health.color != "green") | .id'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			rep, err := c.Health(cmd.Context(), region)
			if err != nil {
				return g.explain(err, "")
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			return writeHealthReport(cmd.OutOrStdout(), rep)
		},
	}
	cmd.Flags().StringVar(&region, "region", "", "only this region (default every region)")
	return cmd
}

// colorWord is a health color for people: upper case.
func colorWord(c string) string {
	if c == "" {
		return "UNKNOWN"
	}
	return strings.ToUpper(c)
}

// firstReason is the worst reason of h, "-" when green.
func firstReason(h client.Health) string {
	if len(h.Reasons) == 0 {
		return "-"
	}
	s := h.Reasons[0].Text
	if n := len(h.Reasons) - 1; n > 0 {
		s += fmt.Sprintf(" (+%d more)", n)
	}
	return s
}

func writeHealthReport(w io.Writer, rep *client.HealthReport) error {
	fmt.Fprintf(w, "Health: %s (as of %s)\n", colorWord(rep.Health.Color), fmtTime(rep.At))
	for _, r := range rep.Health.Reasons {
		fmt.Fprintf(w, "  %-6s %s\n", r.Level, r.String())
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(rep.Regions) > 0 {
		fmt.Fprintln(tw, "\nREGION\tHEALTH\tNODES (GREEN/YELLOW/RED)")
		for _, r := range rep.Regions {
			fmt.Fprintf(tw, "%s\t%s\t%d/%d/%d\n", r.Region, colorWord(r.Health.Color), r.Nodes.Green, r.Nodes.Yellow, r.Nodes.Red)
		}
	}
	if len(rep.Nodes) > 0 {
		fmt.Fprintln(tw, "\nNODE\tREGION\tROLES\tSTATE\tHEALTH\tREASON")
		for _, n := range rep.Nodes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.Region, strings.Join(n.Roles.V, ","), n.State, colorWord(n.Health.Color), firstReason(n.Health))
		}
	} else {
		fmt.Fprintln(tw, "\nNo nodes.")
	}
	if len(rep.Systems) > 0 {
		fmt.Fprintln(tw, "\nSYSTEM\tKIND\tREGION\tHOST\tHEALTH\tREASON")
		for _, s := range rep.Systems {
			host := s.Health.Host
			if host == "" {
				host = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Kind, s.Region, host, colorWord(s.Health.Color), firstReason(s.Health.Health))
		}
	}
	if len(rep.Services) > 0 {
		fmt.Fprintln(tw, "\nSERVICE\tNODE\tKIND\tSTATUS\tRESTARTS\tHEALTH\tREASON")
		for _, s := range rep.Services {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Node, s.Kind, s.Status, s.Restarts, colorWord(s.Health.Color), firstReason(s.Health))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	r := rep.Runs
	_, err := fmt.Fprintf(w, "\nRuns: %d pending (%d held), %d queued, %d active, %d failed or aborted since %s\n",
		r.Pending, r.Held, r.Queued, r.Active, r.Failed, fmtTime(r.FailedSince))
	return err
}
