package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// clientCommands are the commands that talk to a server over REST.
func clientCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{
		newSubmitCmd(g),
		newRunsCmd(g),
		newSystemsCmd(g),
		newMappingsCmd(g),
		newSchedulesCmd(g),
		newWhoAmICmd(g),
		newHealthCmd(g),
		newNodesCmd(g),
		newAlertsCmd(g),
		newThresholdsCmd(g),
		newClusterCmd(g),
		newProbeCmd(g),
	}
}

// cliRetry is the CLI's retry policy: a person waits at most a second or two
// before hearing that the server cannot be reached.
var cliRetry = client.RetryPolicy{MaxAttempts: 3, BaseDelay: 250 * time.Millisecond, MaxDelay: 2 * time.Second}

// newClient checks -o, resolves the token and builds a client of --server.
func (g *globals) newClient() (*client.Client, error) {
	if err := g.checkOutput(); err != nil {
		return nil, err
	}
	token, err := g.resolveToken()
	if err != nil {
		return nil, err
	}
	c, err := client.New(g.server, token, client.WithRetry(cliRetry), client.WithUserAgent("weir-cli/"+version()))
	if err != nil {
		return nil, withHint(err, "set --server or WEIR_SERVER to the server's URL, such as http://%s", ListenDefault)
	}
	return c, nil
}

// jsonOut reports whether -o json was asked for.
func (g *globals) jsonOut() bool { return g.output == "json" }

// explain adds a hint that tells the user what to do about a client error.
// notFound is the hint for a 404, which depends on what was looked up.
func (g *globals) explain(err error, notFound string) error {
	if err == nil {
		return nil
	}
	var ce *client.ConnError
	if errors.As(err, &ce) {
		var dns *net.DNSError
		switch {
		case ce.Refused():
			return withHint(err, "is the server running at %s? start one with `weir dev`, or point --server / WEIR_SERVER at a running server", g.server)
		case errors.As(err, &dns):
			return withHint(err, "check the host name in --server / WEIR_SERVER (now %s)", g.server)
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			return withHint(err, "the server at %s did not answer in time; is it overloaded, or is --server pointing at the wrong address?", g.server)
		}
		return withHint(err, "the connection to %s failed; check --server / WEIR_SERVER and that the server is up", g.server)
	}
	var ae *client.APIError
	if errors.As(err, &ae) {
		// The server's message says what failed; the client's "get run X:"
		// wrapping would only repeat it.
		err = ae
		switch {
		case ae.Status == http.StatusUnauthorized:
			return withHint(err, "check --token / WEIR_TOKEN: the server refused the token (a local `weir dev` writes its admin token to %s/admin-token)", g.dataDir)
		case ae.Status == http.StatusForbidden:
			return withHint(err, "your user has no entitlement for this; ask an admin to grant it (`weir whoami` shows your grants)")
		case ae.Status == http.StatusNotFound && notFound != "":
			return withHint(err, "%s", notFound)
		case ae.Status == http.StatusServiceUnavailable:
			return withHint(err, "the server is starting or cannot reach its catalog; try again in a moment")
		case ae.Status >= 500:
			return withHint(err, "the server failed; its log has the details")
		}
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// printJSON prints v as indented JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON output: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// exactArgs is cobra.ExactArgs with a message that teaches the command's usage.
func exactArgs(n int, what, hint string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageHint(fmt.Errorf("%s takes %d argument (%s), got %d", cmd.CommandPath(), n, what, len(args)), "%s", hint)
		}
		return nil
	}
}

// noArgs refuses positional arguments with a clear message.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageHint(fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), strings.Join(args, " ")), "see `%s --help`", cmd.CommandPath())
	}
	return nil
}

// fmtBytes formats a byte count with decimal units: 1.5 MB.
func fmtBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// fmtRate formats a byte rate.
func fmtRate(bps float64) string {
	if bps <= 0 {
		return "-"
	}
	return fmtBytes(int64(bps)) + "/s"
}

// fmtSeconds formats a duration in seconds, rounded for reading.
func fmtSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// fmtTime formats a timestamp in local time; the zero time is "-".
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtTime(*t)
}

// fmtParams formats parameters as sorted key=value pairs.
func fmtParams(p map[string]string) string {
	if len(p) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + p[k]
	}
	return strings.Join(parts, " ")
}

// parseStates parses --state values (repeated or comma-separated).
func parseStates(vals []string) ([]catalog.RunState, error) {
	var out []catalog.RunState
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			st := catalog.RunState(s)
			if !st.Valid() {
				names := make([]string, len(catalog.AllRunStates))
				for i, a := range catalog.AllRunStates {
					names[i] = string(a)
				}
				return nil, usageHint(fmt.Errorf("unknown run state %q", s), "use one or more of %s, such as --state active,queued", strings.Join(names, ", "))
			}
			out = append(out, st)
		}
	}
	return out, nil
}
