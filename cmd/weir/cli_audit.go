package main

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

func newAuditCmd(g *globals) *cobra.Command {
	var o client.AuditOptions
	var since, until string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log: admin changes, sign-ins and refused requests (admin)",
		Long: `The audit log records every change to users, passwords (never the password),
tokens, entitlements, groups, thresholds, systems, mappings, functions and
schedules, every sign-in and sign-out, every request refused with 401 or 403,
and the dispatcher agent's commands. Newest first.`,
		Example: `  weir audit
  weir audit --actor carol --since 2026-11-29T00:00:00Z
  weir audit --action 'token.*'
  weir audit --outcome forbidden -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Outcome != "" && !slices.Contains(catalog.AuditOutcomes, o.Outcome) {
				return usageHint(fmt.Errorf("bad --outcome %q", o.Outcome), "use one of %s", strings.Join(catalog.AuditOutcomes, ", "))
			}
			for _, t := range []struct {
				flag, v string
				dst     *time.Time
			}{{"since", since, &o.Since}, {"until", until, &o.Until}} {
				if t.v == "" {
					continue
				}
				v, err := time.Parse(time.RFC3339, t.v)
				if err != nil {
					if d, derr := time.ParseDuration(t.v); derr == nil && d > 0 {
						v = time.Now().Add(-d)
					} else {
						return usageHint(fmt.Errorf("bad --%s %q", t.flag, t.v), "give an RFC 3339 time such as 2026-11-29T15:00:00Z, or a duration back from now such as 24h")
					}
				}
				*t.dst = v
			}
			if o.Limit < 0 || o.Limit > catalog.AuditLimitMax {
				return usageHint(fmt.Errorf("bad --limit %d", o.Limit), "give 1 to %d, or leave it out", catalog.AuditLimitMax)
			}
			c, err := g.newClient()
			if err != nil {
				return err
			}
			page, err := c.ListAudit(cmd.Context(), o)
			if err != nil {
				return g.explain(err, "")
			}
			if page.Entries == nil {
				page.Entries = []catalog.AuditEntry{}
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), page)
			}
			out := cmd.OutOrStdout()
			if len(page.Entries) == 0 {
				_, err := fmt.Fprintln(out, "No audit entries.")
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tAT\tACTOR\tACTION\tTARGET\tOUTCOME\tFROM\tDETAIL")
			for _, e := range page.Entries {
				actor := e.Actor
				if actor == "" {
					actor = "-"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, fmtTime(e.At), actor, e.Action, e.Target, e.Outcome, e.ClientIP, e.Detail)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.NextCursor > 0 {
				fmt.Fprintf(out, "More: weir audit --cursor %d\n", page.NextCursor)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Actor, "actor", "", "only entries of this user")
	fl.StringVar(&o.Action, "action", "", "only this action, or a prefix ending in * (token.*)")
	fl.StringVar(&o.Target, "target", "", "only this target, such as user:carol")
	fl.StringVar(&o.Outcome, "outcome", "", "only this outcome: "+strings.Join(catalog.AuditOutcomes, ", "))
	fl.StringVar(&since, "since", "", "only entries at or after this time (RFC 3339, or a duration back from now: 24h)")
	fl.StringVar(&until, "until", "", "only entries before this time")
	fl.IntVar(&o.Limit, "limit", 0, fmt.Sprintf("entries per page (default %d)", catalog.AuditLimitDefault))
	fl.Int64Var(&o.Cursor, "cursor", 0, "the page after this cursor (printed at the end of a page)")
	return cmd
}
