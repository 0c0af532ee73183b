package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

const groupsNotFound = "`weir groups list` shows the groups"

// groupArg resolves a group given by name or by numeric ID.
func groupArg(cmd *cobra.Command, c *client.Client, arg string) (*catalog.Group, error) {
	if id, err := strconv.ParseInt(arg, 10, 64); err == nil && id > 0 {
		d, err := c.GetGroup(cmd.Context(), id)
		if err != nil {
			return nil, err
		}
		return &d.Group, nil
	}
	gr, err := c.GroupByName(cmd.Context(), arg)
	if err != nil && errors.Is(err, catalog.ErrNotFound) {
		return nil, withHint(err, "%s", groupsNotFound)
	}
	return gr, err
}

func newGroupsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "Manage groups of users, whose entitlements apply to every member (admin)",
		Long: `A group gathers users: an entitlement granted to the group (POST
/api/v1/entitlements with group_id) applies to each member, from its next
request. Deleting a group deletes its memberships and its entitlements.`,
		Example: `  weir groups create desk --description "trading desk"
  weir groups add desk carol
  weir groups show desk
  weir groups remove desk carol`,
		Args: noArgs,
	}
	list := &cobra.Command{
		Use:     "list",
		Example: "  weir groups list",
		Short:   "List groups and their member counts",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			gs, err := c.ListGroups(cmd.Context())
			if err != nil {
				return g.explain(err, "")
			}
			if gs == nil {
				gs = []catalog.Group{}
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), map[string]any{"groups": gs})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tMEMBERS\tDESCRIPTION")
			for _, gr := range gs {
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\n", gr.ID, gr.Name, len(gr.MemberIDs), gr.Description)
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:     "show GROUP",
		Example: "  weir groups show desk",
		Short:   "Show a group's members and entitlements",
		Args:    exactArgs(1, "the group's name or ID", "weir groups show GROUP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			gr, err := groupArg(cmd, c, args[0])
			if err != nil {
				return g.explain(err, groupsNotFound)
			}
			d, err := c.GetGroup(cmd.Context(), gr.ID)
			if err != nil {
				return g.explain(err, groupsNotFound)
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), d)
			}
			us, err := c.ListUsers(cmd.Context())
			if err != nil {
				return g.explain(err, "")
			}
			names := map[int64]string{}
			for _, u := range us {
				names[u.ID] = u.Name
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Group %s (id %d) %s\n", d.Name, d.ID, d.Description)
			members := make([]string, 0, len(d.MemberIDs))
			for _, id := range d.MemberIDs {
				members = append(members, names[id])
			}
			fmt.Fprintf(out, "Members: %s\n", strings.Join(members, ", "))
			if len(d.Entitlements) == 0 {
				_, err = fmt.Fprintln(out, "Entitlements: none")
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ENTITLEMENT\tACTION\tRESOURCE\tFROM")
			for _, e := range d.Entitlements {
				from := "anywhere"
				if len(e.CIDRs.V) > 0 {
					from = strings.Join(e.CIDRs.V, ",")
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", e.ID, e.Action, e.Resource, from)
			}
			return tw.Flush()
		},
	}
	var description string
	create := &cobra.Command{
		Use:     "create NAME",
		Example: "  weir groups create desk --description \"trading desk\"",
		Short:   "Create a group",
		Args:    exactArgs(1, "the group's name", "weir groups create NAME [--description TEXT]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			gr, err := c.CreateGroup(cmd.Context(), args[0], description)
			if err != nil {
				return g.explain(err, "")
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), gr)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Group %s created (id %d).\n", gr.Name, gr.ID)
			return err
		},
	}
	create.Flags().StringVar(&description, "description", "", "what the group is for")
	del := &cobra.Command{
		Use:     "delete GROUP",
		Example: "  weir groups delete desk",
		Short:   "Delete a group with its memberships and entitlements",
		Args:    exactArgs(1, "the group's name or ID", "weir groups delete GROUP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			gr, err := groupArg(cmd, c, args[0])
			if err != nil {
				return g.explain(err, groupsNotFound)
			}
			if err := c.DeleteGroup(cmd.Context(), gr.ID); err != nil {
				return g.explain(err, groupsNotFound)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Group %s deleted.\n", gr.Name)
			return err
		},
	}
	member := func(use, short, done string, do func(c *client.Client, cmd *cobra.Command, gid, uid int64) error) *cobra.Command {
		return &cobra.Command{
			Use:     use + " GROUP USER",
			Short:   short,
			Example: "  weir groups " + use + " desk carol",
			Args:    exactArgs(2, "the group and the user, by name or ID", "weir groups "+use+" GROUP USER"),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := g.newClient()
				if err != nil {
					return err
				}
				gr, err := groupArg(cmd, c, args[0])
				if err != nil {
					return g.explain(err, groupsNotFound)
				}
				u, err := userArg(cmd, c, args[1])
				if err != nil {
					return g.explain(err, usersNotFound)
				}
				if err := do(c, cmd, gr.ID, u.ID); err != nil {
					return g.explain(err, fmt.Sprintf("`weir groups show %s` shows its members", gr.Name))
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), done+"\n", u.Name, gr.Name)
				return err
			},
		}
	}
	add := member("add", "Put a user in a group", "%s is now a member of %s.",
		func(c *client.Client, cmd *cobra.Command, gid, uid int64) error {
			return c.AddGroupMember(cmd.Context(), gid, uid)
		})
	remove := member("remove", "Take a user out of a group", "%s is no longer a member of %s.",
		func(c *client.Client, cmd *cobra.Command, gid, uid int64) error {
			return c.RemoveGroupMember(cmd.Context(), gid, uid)
		})
	cmd.AddCommand(list, show, create, del, add, remove)
	return cmd
}
