package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/client"
)

func newNodesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List and show the nodes: servers, workers and agents, with their health",
		Long: `Nodes are the Weir processes of the cluster: servers, workers and agents
(on source and target hosts). Each records itself in the catalog with its
roles, address (where its dispatcher agent answers), slots and heartbeat;
its profiler records its host's latest sample; its monitor records the
services that must run on it.`,
		Example: `  weir nodes list
  weir nodes show w1
  weir nodes list -o json | jq -r '.nodes[] | select(.health.color == "red") | .id'`,
		Args: noArgs,
	}
	var region string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the nodes with their state and health",
		Example: "  weir nodes list\n  weir nodes list --region us-east -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			nodes, err := c.ListNodes(cmd.Context(), region)
			if err != nil {
				return g.explain(err, "")
			}
			if nodes == nil {
				nodes = []client.Node{}
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), map[string]any{"nodes": nodes})
			}
			out := cmd.OutOrStdout()
			if len(nodes) == 0 {
				fmt.Fprintln(out, "No nodes.")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tREGION\tROLES\tSTATE\tSLOTS\tHEALTH\tLAST_SEEN\tADDRESS\tREASON")
			for _, n := range nodes {
				addr := n.Address
				if addr == "" {
					addr = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", n.ID, n.Region, strings.Join(n.Roles.V, ","), n.State, n.Slots,
					colorWord(n.Health.Color), fmtTime(n.LastSeen), addr, firstReason(n.Health))
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&region, "region", "", "only this region (default every region)")
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one node: health and reasons, host sample, thresholds, services, runs",
		Example: `  weir nodes show w1
  weir nodes show w1 -o json | jq '.services[] | {name, status, restarts}'`,
		Args: exactArgs(1, "the node's ID", "weir nodes show ID; `weir nodes list` lists them"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			n, err := c.GetNode(cmd.Context(), args[0])
			if err != nil {
				return g.explain(err, "`weir nodes list` lists the nodes")
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), n)
			}
			return writeNode(cmd, n)
		},
	}
	cmd.AddCommand(list, show, newNodeCommandsCmd(g))
	return cmd
}

func writeNode(cmd *cobra.Command, n *client.NodeDetail) error {
	out := cmd.OutOrStdout()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Node\t%s\n", n.ID)
	fmt.Fprintf(tw, "Region\t%s\n", n.Region)
	fmt.Fprintf(tw, "Roles\t%s\n", strings.Join(n.Roles.V, ", "))
	fmt.Fprintf(tw, "State\t%s\n", n.State)
	addr := n.Address
	if addr == "" {
		addr = "-"
	}
	fmt.Fprintf(tw, "Address\t%s\n", addr)
	fmt.Fprintf(tw, "Slots\t%d\n", n.Slots)
	fmt.Fprintf(tw, "Version\t%s\n", n.Version)
	fmt.Fprintf(tw, "Started\t%s\n", fmtTime(n.StartedAt))
	fmt.Fprintf(tw, "Last seen\t%s\n", fmtTime(n.LastSeen))
	fmt.Fprintf(tw, "Health\t%s\n", colorWord(n.Health.Color))
	for _, r := range n.Health.Reasons {
		fmt.Fprintf(tw, "\t%s: %s\n", r.Level, r.Text)
	}
	if s := n.Sample; s != nil {
		fmt.Fprintf(tw, "Sampled\t%s (%s ago)\n", fmtTime(s.At), time.Since(s.At).Round(time.Second))
		fmt.Fprintf(tw, "CPU\t%.1f%%\n", s.CPUPct)
		fmt.Fprintf(tw, "Memory\t%.1f%% used (%s)\n", s.MemUsedPct, fmtBytes(int64(s.MemUsedBytes)))
		fmt.Fprintf(tw, "Load\t%.2f %.2f %.2f\n", s.Load1, s.Load5, s.Load15)
		for _, d := range s.Disks {
			fmt.Fprintf(tw, "Disk %s\t%.1f%% free (%s)\n", d.Path, 100-d.UsedPct, fmtBytes(int64(d.FreeBytes)))
		}
		fmt.Fprintf(tw, "Disk I/O\tread %s, write %s\n", fmtRate(s.DiskReadBps), fmtRate(s.DiskWriteBps))
		fmt.Fprintf(tw, "Network\tin %s, out %s\n", fmtRate(s.NetRxBps), fmtRate(s.NetTxBps))
		fmt.Fprintf(tw, "Weir process\tcpu %.1f%%, rss %s, %d open files, %d goroutines\n", s.Process.CPUPct,
			fmtBytes(int64(s.Process.RSSBytes)), s.Process.OpenFiles, s.Process.Goroutines)
	} else {
		fmt.Fprintf(tw, "Sampled\tnever (no profiler has reported this host)\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(n.Thresholds) > 0 {
		metrics := make([]string, 0, len(n.Thresholds))
		for m := range n.Thresholds {
			metrics = append(metrics, m)
		}
		sort.Strings(metrics)
		fmt.Fprintln(out, "\nThresholds (warning / critical; 0 is not checked):")
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		for _, m := range metrics {
			l := n.Thresholds[m]
			fmt.Fprintf(tw, "  %s\t%s / %s\n", m, fmtLevel(m, l.Warn), fmtLevel(m, l.Crit))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(n.Services) > 0 {
		fmt.Fprintln(out, "\nServices:")
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  NAME\tKIND\tSTATUS\tRESTARTS\tPID\tSTARTED\tHEALTH\tLAST_ERROR")
		for _, s := range n.Services {
			pid, lastErr := "-", "-"
			if s.PID > 0 {
				pid = fmt.Sprint(s.PID)
			}
			if s.LastError != "" {
				lastErr = s.LastError
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", s.Name, s.Kind, s.Status, s.Restarts, pid, fmtTimePtr(s.LastStart), colorWord(s.Health.Color), lastErr)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(n.Runs) > 0 {
		fmt.Fprintln(out, "\nRuns:")
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  RUN_ID\tMAPPING\tSTATE\tPARAMS")
		for _, r := range n.Runs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", r.ID, r.Mapping, r.State, fmtParams(r.Params.V))
		}
		return tw.Flush()
	}
	return nil
}

// fmtLevel formats a threshold level in its metric's unit.
func fmtLevel(metric string, v float64) string {
	if v == 0 {
		return "-"
	}
	switch metric {
	case "heartbeat":
		return fmt.Sprintf("%gs", v)
	case "deviation":
		return fmt.Sprintf("%gσ", v)
	}
	return fmt.Sprintf("%g%%", v)
}
