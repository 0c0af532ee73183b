package main

import "github.com/spf13/cobra"

// serviceCommands are the commands that run Weir's roles.
func serviceCommands(g *globals) []*cobra.Command {
	return nil
}
