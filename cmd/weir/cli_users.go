package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// passwordInput reads passwords: from stdin, one per line, with
// --password-stdin; otherwise typed at the terminal without echo. A
// password is never a flag value, which other users could read in ps.
type passwordInput struct {
	fromStdin bool
	lines     *bufio.Reader
}

func (p *passwordInput) read(cmd *cobra.Command, prompt string, confirm bool) (string, error) {
	if p.fromStdin {
		if p.lines == nil {
			p.lines = bufio.NewReader(cmd.InOrStdin())
		}
		line, err := p.lines.ReadString('\n')
		if err != nil && (!errors.Is(err, io.EOF) || line == "") {
			return "", usageHint(fmt.Errorf("read %s from stdin: no line left", strings.ToLower(prompt)), "give one password per line on stdin")
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", usageHint(errors.New("no terminal to type the password at"), "pipe it in with --password-stdin, one per line")
	}
	errw := cmd.ErrOrStderr()
	fmt.Fprintf(errw, "%s: ", prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(errw)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if confirm {
		fmt.Fprintf(errw, "%s again: ", prompt)
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(errw)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(again) != string(b) {
			return "", usageHint(errors.New("the two passwords differ"), "type the same password twice")
		}
	}
	return string(b), nil
}

// checkPassword refuses a password the server would refuse, before sending it.
func checkPassword(pw string) error {
	if err := catalog.ValidatePassword(pw); err != nil {
		return usageHint(err, "choose a password of %d to %d characters; a few unrelated words make a good one", catalog.PasswordMinLength, catalog.PasswordMaxLength)
	}
	return nil
}

// userArg resolves a user given by name or by numeric ID.
func userArg(cmd *cobra.Command, c *client.Client, arg string) (*catalog.User, error) {
	if id, err := strconv.ParseInt(arg, 10, 64); err == nil && id > 0 {
		return c.GetUser(cmd.Context(), id)
	}
	u, err := c.UserByName(cmd.Context(), arg)
	if err != nil && errors.Is(err, catalog.ErrNotFound) {
		return nil, withHint(err, "%s", usersNotFound)
	}
	return u, err
}

const usersNotFound = "`weir users list` shows the users"

func newUsersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Create, list, disable users and set their roles and passwords (admin)",
		Long: `Users call Weir with API tokens and sign in to the web pages with a password.
A user's role (viewer < submitter < operator < admin) bounds what it may do at
all; entitlements, granted to it or to its groups, say on what. Setting a
password or disabling a user ends its web sessions. These commands are for
admins, except that users may change their own password (passwd --current).
Every change lands in the audit log (weir audit).`,
		Example: `  weir users list
  weir users create carol --role submitter --password
  printf '%s\n' "$PW" | weir users create carol --password-stdin
  weir users passwd carol
  weir users role carol operator
  weir users disable carol`,
		Args: noArgs,
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List users",
		Example: "  weir users list\n  weir users list -o json | jq -r '.users[].name'",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			us, err := c.ListUsers(cmd.Context())
			if err != nil {
				return g.explain(err, "")
			}
			if us == nil {
				us = []catalog.User{}
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), map[string]any{"users": us})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROLE\tSTATUS\tCREATED")
			for _, u := range us {
				status := "enabled"
				if u.Disabled {
					status = "disabled"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", u.ID, u.Name, u.Role, status, fmtTime(u.CreatedAt))
			}
			return tw.Flush()
		},
	}

	var role string
	var withPassword bool
	pw := &passwordInput{}
	create := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a user, optionally with a password to sign in with",
		Example: "  weir users create carol --role submitter --password",
		Args:    exactArgs(1, "the user's name", "weir users create NAME [--role ROLE] [--password | --password-stdin]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if role != "" && !slices.Contains(catalog.ValidRoles, role) {
				return usageHint(fmt.Errorf("bad --role %q", role), "use one of %s", strings.Join(catalog.ValidRoles, ", "))
			}
			req := client.UserRequest{Name: args[0], Role: role}
			if withPassword || pw.fromStdin {
				p, err := pw.read(cmd, "Password for "+args[0], true)
				if err != nil {
					return err
				}
				if err := checkPassword(p); err != nil {
					return err
				}
				req.Password = p
			}
			c, err := g.newClient()
			if err != nil {
				return err
			}
			u, err := c.CreateUser(cmd.Context(), req)
			if err != nil {
				return g.explain(err, "")
			}
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), u)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "User %s created (id %d, role %s).\n", u.Name, u.ID, u.Role)
			return err
		},
	}
	create.Flags().StringVar(&role, "role", "", "viewer (default), submitter, operator or admin")
	create.Flags().BoolVar(&withPassword, "password", false, "type a password at the terminal (asked twice)")
	create.Flags().BoolVar(&pw.fromStdin, "password-stdin", false, "read the password from the first line of stdin")

	var current bool
	passwdIn := &passwordInput{}
	passwd := &cobra.Command{
		Use:   "passwd USER",
		Short: "Set a user's password; the user's web sessions end",
		Long: `Set a user's password. Admins set anyone's. Users who are not admins set
their own with --current, giving their current password first. With
--password-stdin, stdin holds the current password (with --current) and
then the new one, one per line.`,
		Example: "  weir users passwd carol\n  printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | weir users passwd carol --current --password-stdin",
		Args:    exactArgs(1, "the user's name or ID", "weir users passwd USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.newClient()
			if err != nil {
				return err
			}
			var u *catalog.User
			if current {
				who, err := c.WhoAmI(cmd.Context())
				if err != nil {
					return g.explain(err, "")
				}
				if who.Name != args[0] && strconv.FormatInt(who.ID, 10) != args[0] {
					return usageHint(fmt.Errorf("--current sets only your own password, and you are %s", who.Name), "leave --current out if you are an admin")
				}
				u = &catalog.User{ID: who.ID, Name: who.Name}
			} else if u, err = userArg(cmd, c, args[0]); err != nil {
				return g.explain(err, usersNotFound)
			}
			var cur string
			if current {
				if cur, err = passwdIn.read(cmd, "Current password", false); err != nil {
					return err
				}
			}
			p, err := passwdIn.read(cmd, "New password for "+u.Name, true)
			if err != nil {
				return err
			}
			if err := checkPassword(p); err != nil {
				return err
			}
			if err := c.SetPassword(cmd.Context(), u.ID, p, cur); err != nil {
				return g.explain(err, usersNotFound)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Password of %s set; its web sessions ended.\n", u.Name)
			return err
		},
	}
	passwd.Flags().BoolVar(&current, "current", false, "set your own password, giving the current one (for non-admins)")
	passwd.Flags().BoolVar(&passwdIn.fromStdin, "password-stdin", false, "read the password(s) from stdin, one per line")

	update := func(use, short string, patch func(args []string) (client.UserPatch, error), done string, nargs int, argsHint string) *cobra.Command {
		return &cobra.Command{
			Use:     use,
			Short:   short,
			Example: "  weir users " + strings.ReplaceAll(strings.ReplaceAll(use, "USER", "carol"), "ROLE", "operator"),
			Args:    exactArgs(nargs, argsHint, "weir users "+use),
			RunE: func(cmd *cobra.Command, args []string) error {
				req, err := patch(args)
				if err != nil {
					return err
				}
				c, err := g.newClient()
				if err != nil {
					return err
				}
				u, err := userArg(cmd, c, args[0])
				if err != nil {
					return g.explain(err, usersNotFound)
				}
				if u, err = c.UpdateUser(cmd.Context(), u.ID, req); err != nil {
					return g.explain(err, usersNotFound)
				}
				if g.jsonOut() {
					return printJSON(cmd.OutOrStdout(), u)
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), done+"\n", u.Name, u.Role)
				return err
			},
		}
	}
	yes, no := true, false
	disable := update("disable USER", "Disable a user: its tokens and sessions stop working at once",
		func([]string) (client.UserPatch, error) { return client.UserPatch{Disabled: &yes}, nil },
		"User %s (role %s) disabled; its sessions ended.", 1, "the user's name or ID")
	enable := update("enable USER", "Enable a disabled user again",
		func([]string) (client.UserPatch, error) { return client.UserPatch{Disabled: &no}, nil },
		"User %s (role %s) enabled.", 1, "the user's name or ID")
	setRole := update("role USER ROLE", "Set a user's role: viewer, submitter, operator or admin",
		func(args []string) (client.UserPatch, error) {
			if !slices.Contains(catalog.ValidRoles, args[1]) {
				return client.UserPatch{}, usageHint(fmt.Errorf("bad role %q", args[1]), "use one of %s", strings.Join(catalog.ValidRoles, ", "))
			}
			r := args[1]
			return client.UserPatch{Role: &r}, nil
		},
		"User %s now has the role %s.", 2, "the user's name or ID, and the role")
	cmd.AddCommand(list, create, passwd, disable, enable, setRole)
	return cmd
}
