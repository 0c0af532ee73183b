package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/client"
)

// completionTimeout bounds the server call behind a dynamic completion: a
// shell waiting on Tab must not hang when the server is away.
const completionTimeout = 2 * time.Second

// addDynamicCompletion completes mapping names and run ids from the server
// for the commands that take them. `weir completion bash|zsh|fish|powershell`
// (cobra's) prints the shell scripts that call it.
func addDynamicCompletion(root *cobra.Command, g *globals) {
	set := func(path string, fn cobra.CompletionFunc) {
		c, _, err := root.Find(strings.Fields(path))
		if err == nil && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = fn
		}
	}
	for _, p := range []string{"submit", "mappings show"} {
		set(p, g.completeMappings)
	}
	for _, p := range []string{"runs show", "runs cancel", "runs events", "runs manifest"} {
		set(p, g.completeRunIDs)
	}
}

// completionClient is a client without retries, for one quick call.
func (g *globals) completionClient() (*client.Client, error) {
	token, err := g.resolveToken()
	if err != nil {
		return nil, err
	}
	return client.New(g.server, token, client.WithRetry(client.RetryPolicy{MaxAttempts: 1}))
}

func (g *globals) completeMappings(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := g.completionClient()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	ms, err := c.ListMappings(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, m := range ms {
		if strings.HasPrefix(m.Name, toComplete) {
			out = append(out, cobra.CompletionWithDesc(m.Name, strings.SplitN(m.Description, "\n", 2)[0]))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeRunIDs offers the newest runs (one page), with their mapping and state.
func (g *globals) completeRunIDs(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := g.completionClient()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	page, err := c.ListRuns(ctx, client.ListRunsOptions{Limit: 100})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, r := range page.Runs {
		if strings.HasPrefix(r.ID, toComplete) {
			out = append(out, cobra.CompletionWithDesc(r.ID, r.Mapping+" "+string(r.State)))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
