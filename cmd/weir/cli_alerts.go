package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

func newAlertsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "List, acknowledge and resolve alerts",
		Long: `Alerts are raised for runs held by health, failed runs, nodes going red or
silent, services that keep dying, repeated authentication failures and
deviations from a host's baseline. One condition is one alert: while it
lasts, its count and last-seen time grow. Servers started with
--alert-webhook deliver them to webhooks.

Listing alerts is for operators, admins and users who may read everything;
acknowledging and resolving them is for operators and admins.`,
		Example: `  weir alerts list --open
  weir alerts ack 12
  weir alerts resolve 12`,
		Args: noArgs,
	}
	var o client.ListAlertsOptions
	list := &cobra.Command{
		Use:   "list",
		Short: "List alerts, newest first",
		Example: `  weir alerts list
  weir alerts list --open --severity warning
  weir alerts list --open --unacked -o json | jq -r '.alerts[].subject'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Severity != "" && catalog.AlertSeverityRank(o.Severity) == 0 {
				return usageHint(fmt.Errorf("bad --severity %q", o.Severity), "use one of %s", strings.Join(catalog.AlertSeverities, ", "))
			}
			if o.Limit < 0 || o.Limit > catalog.ListLimitMax {
				return usageHint(fmt.Errorf("bad --limit %d", o.Limit), "give 1 to %d, or leave it out", catalog.ListLimitMax)
			}
			c, err := g.newClient()
			if err != nil {
				return err
			}
			page, err := c.ListAlerts(cmd.Context(), o)
			if err != nil {
				return g.explain(err, "")
			}
			if page.Alerts == nil {
				page.Alerts = []client.Alert{}
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), page)
			}
			out := cmd.OutOrStdout()
			if len(page.Alerts) == 0 {
				fmt.Fprintln(out, "No alerts.")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSEVERITY\tSTATUS\tCOUNT\tFIRST_SEEN\tLAST_SEEN\tSUBJECT")
			for _, a := range page.Alerts {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", a.ID, a.Severity, alertStatus(&a), a.Count, fmtTime(a.FirstSeen), fmtTime(a.LastSeen), a.Subject)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.NextCursor > 0 {
				fmt.Fprintf(out, "More: weir alerts list --cursor %d\n", page.NextCursor)
			}
			return nil
		},
	}
	fl := list.Flags()
	fl.BoolVar(&o.Open, "open", false, "only alerts not resolved")
	fl.BoolVar(&o.Unacked, "unacked", false, "only alerts nobody acknowledged")
	fl.StringVar(&o.Severity, "severity", "", "only this severity and worse: info, warning, critical")
	fl.StringVar(&o.Region, "region", "", "only this region")
	fl.StringVar(&o.Key, "key", "", "only alerts of this dedupe key, such as node-red:w1")
	fl.IntVar(&o.Limit, "limit", 0, "alerts per page (default: the server's, 50)")
	fl.Int64Var(&o.Cursor, "cursor", 0, "the page after this cursor (printed at the end of a page)")

	action := func(use, short, verb string, do func(*client.Client, *cobra.Command, int64) (*client.Alert, error)) *cobra.Command {
		return &cobra.Command{
			Use:     use + " ID",
			Short:   short,
			Example: fmt.Sprintf("  weir alerts %s 12", use),
			Args:    exactArgs(1, "the alert's ID", fmt.Sprintf("weir alerts %s ID; `weir alerts list --open` shows the IDs", use)),
			RunE: func(cmd *cobra.Command, args []string) error {
				id, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil || id <= 0 {
					return usageHint(fmt.Errorf("bad alert ID %q", args[0]), "give the number in the ID column of `weir alerts list`")
				}
				c, err := g.newClient()
				if err != nil {
					return err
				}
				a, err := do(c, cmd, id)
				if err != nil {
					return g.explain(err, "`weir alerts list` shows the alerts and their IDs")
				}
				if g.jsonOut() {
					return printJSON(cmd.OutOrStdout(), a)
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "Alert %d %s (%s): %s\n", a.ID, verb, alertStatus(a), a.Subject)
				return err
			},
		}
	}
	ack := action("ack", "Acknowledge an alert: you have seen it (the first acknowledgement stands)", "acknowledged",
		func(c *client.Client, cmd *cobra.Command, id int64) (*client.Alert, error) {
			return c.AckAlert(cmd.Context(), id)
		})
	resolve := action("resolve", "Resolve an alert; a condition that persists raises a new one", "resolved",
		func(c *client.Client, cmd *cobra.Command, id int64) (*client.Alert, error) {
			return c.ResolveAlert(cmd.Context(), id)
		})
	cmd.AddCommand(list, ack, resolve)
	return cmd
}

// alertStatus says whether an alert is open, acknowledged (by whom) or resolved.
func alertStatus(a *client.Alert) string {
	switch {
	case a.ResolvedAt != nil:
		return "resolved"
	case a.AckedAt != nil:
		return "acked by " + a.AckedBy
	}
	return "open"
}
