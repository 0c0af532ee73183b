package main

import "github.com/spf13/cobra"

// clientCommands are the commands that talk to a server over REST.
func clientCommands(g *globals) []*cobra.Command {
	return nil
}
