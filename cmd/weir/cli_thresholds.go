package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// thresholdScopeHint explains scopes.
const thresholdScopeHint = `a scope is "default" (every node and system without its own), "node:<id>" or "system:<name>"`

func newThresholdsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "thresholds",
		Short: "Show and set the health thresholds of nodes and systems",
		Long: `Health thresholds are the warning (yellow) and critical (red) levels of
each metric: cpu (busy %), memory (used %), disk_free (free % of each disk
path, bad below), deviation (standard deviations from the host's baseline)
and heartbeat (seconds since the node was heard from). They are set per
scope: "node:<id>", "system:<name>", or "default" for every node and system
without its own; built-in levels apply where none is set. A level of 0 is
not checked.

The workload manager reads them at every tick: a host red on cpu, memory or
free disk gets no run to or from it until they clear; changing them takes
effect without a restart. Thresholds are for admins.`,
		Example: `  weir thresholds get node:w1
  weir thresholds set node:w1 cpu --warn 80 --crit 90
  weir thresholds set system:db-main disk_free --warn 15 --crit 8
  weir thresholds delete node:w1 cpu`,
		Args: noArgs,
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List every threshold set, and the built-in levels",
		Example: "  weir thresholds list\n  weir thresholds list -o json | jq '.thresholds'",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			l, err := c.ListThresholds(cmd.Context())
			if err != nil {
				return g.explain(err, "")
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), l)
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SCOPE\tMETRIC\tWARN\tCRIT\tUPDATED_BY\tUPDATED")
			for _, m := range sortedKeys(l.BuiltIn) {
				b := l.BuiltIn[m]
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t-\t-\n", client.ThresholdBuiltIn, m, fmtLevel(m, b.Warn), fmtLevel(m, b.Crit))
			}
			for _, t := range l.Thresholds {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Scope, t.Metric, fmtLevel(t.Metric, t.Warn), fmtLevel(t.Metric, t.Crit), dash(t.UpdatedBy), fmtTime(t.UpdatedAt))
			}
			return tw.Flush()
		},
	}
	get := &cobra.Command{
		Use:   "get SCOPE",
		Short: "Show the thresholds a scope sets and the levels in force for it",
		Example: `  weir thresholds get node:w1
  weir thresholds get default -o json`,
		Args: exactArgs(1, "the scope", "weir thresholds get SCOPE; "+thresholdScopeHint),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkScopeArg(args[0]); err != nil {
				return err
			}
			c, err := g.newClient()
			if err != nil {
				return err
			}
			st, err := c.GetThresholds(cmd.Context(), args[0])
			if err != nil {
				return g.explain(err, "")
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), st)
			}
			return writeScopeThresholds(cmd.OutOrStdout(), st)
		},
	}
	var warn, crit float64
	set := &cobra.Command{
		Use:   "set SCOPE METRIC",
		Short: "Set a metric's warning and critical levels for a scope",
		Long: `Set the warning and critical levels of one metric for a scope. Both
levels are replaced: one left out is 0, not checked. For disk_free the
levels are free percentages (critical below warning); for the others
critical is at or above warning.`,
		Example: `  weir thresholds set node:w1 cpu --warn 80 --crit 90
  weir thresholds set default heartbeat --warn 20 --crit 45
  weir thresholds set system:landing disk_free --crit 5`,
		Args: exactArgs(2, "the scope and the metric", "weir thresholds set SCOPE METRIC --warn X --crit Y; "+thresholdScopeHint),
		RunE: func(cmd *cobra.Command, args []string) error {
			scope, metric := args[0], args[1]
			if err := checkScopeArg(scope); err != nil {
				return err
			}
			if err := checkMetricArg(metric); err != nil {
				return err
			}
			if !cmd.Flags().Changed("warn") && !cmd.Flags().Changed("crit") {
				return usageHint(fmt.Errorf("weir thresholds set %s %s: give --warn, --crit or both", scope, metric), "to remove the threshold, use weir thresholds delete %s %s", scope, metric)
			}
			c, err := g.newClient()
			if err != nil {
				return err
			}
			st, err := c.SetThresholds(cmd.Context(), scope, map[string]client.ThresholdLevels{metric: {Warn: warn, Crit: crit}})
			if err != nil {
				return g.explain(err, "")
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), st)
			}
			return writeScopeThresholds(cmd.OutOrStdout(), st)
		},
	}
	set.Flags().Float64Var(&warn, "warn", 0, "warning level (yellow); 0 is not checked")
	set.Flags().Float64Var(&crit, "crit", 0, "critical level (red); 0 is not checked")
	del := &cobra.Command{
		Use:   "delete SCOPE [METRIC]",
		Short: "Remove a scope's threshold of a metric, or all of its thresholds",
		Example: `  weir thresholds delete node:w1 cpu
  weir thresholds delete node:w1`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageHint(fmt.Errorf("%s takes a scope and optionally a metric, got %d arguments", cmd.CommandPath(), len(args)), "weir thresholds delete SCOPE [METRIC]; %s", thresholdScopeHint)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			scope, metric := args[0], ""
			if err := checkScopeArg(scope); err != nil {
				return err
			}
			if len(args) == 2 {
				metric = args[1]
				if err := checkMetricArg(metric); err != nil {
					return err
				}
			}
			c, err := g.newClient()
			if err != nil {
				return err
			}
			if err := c.DeleteThresholds(cmd.Context(), scope, metric); err != nil {
				return g.explain(err, fmt.Sprintf("`weir thresholds get %s` shows what the scope sets", scope))
			}
			what := "every threshold of " + scope
			if metric != "" {
				what = "the " + metric + " threshold of " + scope
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), map[string]any{"scope": scope, "metric": metric, "deleted": true})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Deleted %s.\n", what)
			return err
		},
	}
	cmd.AddCommand(list, get, set, del)
	return cmd
}

func checkScopeArg(scope string) error {
	if err := catalog.ValidateThresholdScope(scope); err != nil {
		return usageHint(fmt.Errorf("bad scope %q: %w", scope, err), "%s", thresholdScopeHint)
	}
	return nil
}

func checkMetricArg(metric string) error {
	if !slices.Contains(catalog.ThresholdMetrics, metric) {
		return usageHint(fmt.Errorf("unknown threshold metric %q", metric), "use one of %s", strings.Join(catalog.ThresholdMetrics, ", "))
	}
	return nil
}

func writeScopeThresholds(w io.Writer, st *client.ScopeThresholds) error {
	fmt.Fprintf(w, "Scope %s (levels in force: warning / critical; 0 is not checked)\n", st.Scope)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tWARN\tCRIT\tFROM")
	for _, m := range sortedKeys(st.Effective) {
		e := st.Effective[m]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m, fmtLevel(m, e.Warn), fmtLevel(m, e.Crit), e.From)
	}
	return tw.Flush()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
