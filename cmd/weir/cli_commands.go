package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/client"
)

// newNodeCommandsCmd is `weir nodes commands`: the external commands the
// nodes' monitors supervise, registered in the catalog (admins only).
func newNodeCommandsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "commands",
		Short: "List, add and delete the external commands the nodes' monitors run (admins)",
		Long: `External commands registered in the catalog run on a node (or on every
node, "*") under its monitor, next to the commands of its --command flags:
the monitor starts a new one within seconds, restarts it when it dies, and
stops it once it is deleted. A command is executed directly, never through
a shell: give the executable's absolute path, then each argument. --env
names variables of the node's own environment passed to it (values never
reach the catalog; WEIR_* names are refused). A node runs these commands
only when started with --catalog-commands DIR, and only those whose
executable, links followed, is inside DIR; the others show as failed in
weir nodes show, with the reason.`,
		Example: `  weir nodes commands add --node w1 --name sync -- /usr/bin/rsync --daemon --no-detach
  weir nodes commands add --node '*' --name exporter --env EXPORTER_TOKEN -- /opt/exporter --port 9100
  weir nodes commands list --node w1
  weir nodes commands delete 3`,
		Args: noArgs,
	}
	var node string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the commands (of one node with --node: its own and those for every node)",
		Example: "  weir nodes commands list\n  weir nodes commands list --node w1 -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			cs, err := c.ListCommands(cmd.Context(), node)
			if err != nil {
				return g.explain(err, "")
			}
			if cs == nil {
				cs = []client.NodeCommand{}
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), map[string]any{"commands": cs})
			}
			out := cmd.OutOrStdout()
			if len(cs) == 0 {
				fmt.Fprintln(out, "No commands.")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNODE\tNAME\tENABLED\tENV\tARGV")
			for _, x := range cs {
				env := "-"
				if len(x.Env.V) > 0 {
					env = strings.Join(x.Env.V, ",")
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%t\t%s\t%s\n", x.ID, x.Node, x.Name, x.Enabled, env, strconv.Quote(strings.Join(x.Argv.V, " ")))
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&node, "node", "", "only the commands that run on this node")

	var req client.CommandRequest
	var disabled bool
	add := &cobra.Command{
		Use:   "add --node NODE --name NAME [--env NAME]... -- /ABSOLUTE/PATH [ARG]...",
		Short: "Register a command for a node's monitor to run",
		Example: `  weir nodes commands add --node w1 --name sync -- /usr/bin/rsync --daemon --no-detach
  weir nodes commands add --node '*' --name exporter -- /opt/exporter`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return withHint(fmt.Errorf("%s needs the command to run", cmd.CommandPath()),
					"put it after --: weir nodes commands add --node w1 --name sync -- /usr/bin/rsync --daemon")
			}
			req.Argv = args
			if disabled {
				f := false
				req.Enabled = &f
			}
			c, err := g.newClient()
			if err != nil {
				return err
			}
			x, err := c.CreateCommand(cmd.Context(), req)
			if err != nil {
				return g.explain(err, "")
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), x)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Command %d (%s) registered for node %s; its monitor starts it within seconds.\n", x.ID, x.Name, x.Node)
			return err
		},
	}
	fl := add.Flags()
	fl.StringVar(&req.Node, "node", "", "the node's ID (weir nodes list), or '*' for every node (required)")
	fl.StringVar(&req.Name, "name", "", "the service name it runs as on the node (required)")
	fl.StringSliceVar(&req.Env, "env", nil, "the name of a variable of the node's environment to pass on (repeat)")
	fl.BoolVar(&disabled, "disabled", false, "register it without running it")
	_ = add.MarkFlagRequired("node")
	_ = add.MarkFlagRequired("name")

	del := &cobra.Command{
		Use:     "delete ID",
		Short:   "Delete a command: the monitors stop it",
		Example: "  weir nodes commands delete 3",
		Args:    exactArgs(1, "the command's ID", "weir nodes commands delete ID; `weir nodes commands list` shows the IDs"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return withHint(fmt.Errorf("bad command ID %q", args[0]), "give the number in the ID column of `weir nodes commands list`")
			}
			c, err := g.newClient()
			if err != nil {
				return err
			}
			if err := c.DeleteCommand(cmd.Context(), id); err != nil {
				return g.explain(err, "`weir nodes commands list` shows the commands and their IDs")
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Command %d deleted; the monitors stop it.\n", id)
			return err
		},
	}
	cmd.AddCommand(list, add, del)
	return cmd
}
