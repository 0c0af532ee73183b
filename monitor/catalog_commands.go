package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/weirdata/weir/catalog"
)

// CommandsIntervalDefault is how often a supervisor reads its node's
// commands from the catalog.
const CommandsIntervalDefault = 10 * time.Second

// CommandSource lists the catalog's commands that run on a node (its own
// and those for every node); *catalog.Store has it.
type CommandSource interface {
	ListNodeCommands(ctx context.Context, node string) ([]catalog.NodeCommand, error)
}

// start runs u in its own goroutine of group, with a context of its own so
// that a catalog command can be stopped alone.
func (s *Supervisor) start(ctx context.Context, group *sync.WaitGroup, u *unit) {
	uctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	u.stop, u.exited = cancel, make(chan struct{})
	s.mu.Unlock()
	group.Go(func() {
		defer close(u.exited)
		defer cancel()
		s.supervise(uctx, u)
	})
}

// watchCommands applies the node's catalog commands now and every
// CommandsInterval until ctx ends. A catalog that cannot be read changes
// nothing: the commands running go on.
func (s *Supervisor) watchCommands(ctx context.Context, group *sync.WaitGroup) {
	t := time.NewTicker(s.cfg.CommandsInterval)
	defer t.Stop()
	failing := false
	for {
		cmds, err := s.cfg.Commands.ListNodeCommands(ctx, s.cfg.NodeID)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			failing = true
			s.log.Warn("cannot read the node's commands from the catalog; keeping those running", slog.String("error", err.Error()))
		case err == nil:
			failing = false
			s.applyCommands(ctx, group, cmds)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ResolveCommandsDir returns dir, the directory of the executables a node
// may run as catalog commands, absolute with its symbolic links resolved;
// an error when it is not a directory that exists.
func ResolveCommandsDir(dir string) (string, error) {
	if dir == "" {
		return "", catalog.Invalid("commands_dir", "give the directory of the executables catalog commands may run")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("catalog commands directory %s: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("catalog commands directory %s: %w", dir, err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("catalog commands directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return "", catalog.Invalid("commands_dir", "%s is not a directory", dir)
	}
	return real, nil
}

// resolveExecutable returns the file path (an absolute, clean path, as
// NodeCommand.Validate checks) resolves to, symbolic links followed: a
// regular file inside the commands directory, else an error saying why the
// command is not run.
func (s *Supervisor) resolveExecutable(path string) (string, error) {
	real, err := filepath.EvalSymlinks(filepath.Clean(path))
	if err != nil {
		return "", fmt.Errorf("executable %s: %w", path, err)
	}
	rel, err := filepath.Rel(s.commandsDir, real)
	if err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("executable %s (%s) is outside this node's catalog commands directory %s: only the executables put there run", path, real, s.commandsDir)
	}
	st, err := os.Stat(real)
	switch {
	case err != nil:
		return "", fmt.Errorf("executable %s: %w", path, err)
	case !st.Mode().IsRegular():
		return "", fmt.Errorf("executable %s (%s) is not a regular file", path, real)
	}
	return real, nil
}

// commandOf turns a catalog command into the command to run: its
// executable resolved inside the commands directory, its environment the
// node's values of the names it allows. An error says why it is not run.
func (s *Supervisor) commandOf(c *catalog.NodeCommand) (*CommandService, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid command: %w", err)
	}
	path, err := s.resolveExecutable(c.Argv.V[0])
	if err != nil {
		return nil, err
	}
	var env []string
	for _, name := range c.Env.V {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	cs := &CommandService{Name: c.Name, Path: path, Args: slices.Clone(c.Argv.V[1:]), Env: env}
	if err := checkCommand(cs); err != nil {
		return nil, fmt.Errorf("invalid command: %w", err)
	}
	return cs, nil
}

func sameCommand(a, b *CommandService) bool {
	return a.Path == b.Path && a.Dir == b.Dir && slices.Equal(a.Args, b.Args) && slices.Equal(a.Env, b.Env)
}

// applyCommands makes the catalog commands running match cmds: it stops
// those gone, disabled or changed (a changed one starts again as it is
// now), and starts the new ones. A command named like a service added
// otherwise is not run (logged once). A command that is invalid, or whose
// executable is not inside the commands directory, is not run either: it is
// logged once and its service row shows it failed, with the reason. A
// command that does not stop in time is kept, and stopped again at the next
// pass, so that it never runs twice.
func (s *Supervisor) applyCommands(ctx context.Context, group *sync.WaitGroup, cmds []catalog.NodeCommand) {
	want := map[string]*CommandService{}
	refused := map[string]string{}
	invalid := map[int64]string{}
	for i := range cmds {
		c := &cmds[i]
		if !c.Enabled {
			continue
		}
		cs, err := s.commandOf(c)
		switch {
		case err == nil:
			want[c.Name] = cs
		case serviceNameRE.MatchString(c.Name):
			refused[c.Name] = err.Error()
		default: // no service row can show it
			invalid[c.ID] = err.Error()
			if s.invalid[c.ID] != err.Error() {
				s.log.Warn("catalog command not run", slog.Int64("id", c.ID), slog.String("error", err.Error()))
			}
		}
	}
	s.invalid = invalid

	s.mu.Lock()
	var stop, drop []*unit
	have := map[string]*unit{}
	for _, u := range s.units {
		have[u.name] = u
		if !u.fromCatalog {
			continue
		}
		w, ok := want[u.name]
		switch {
		case u.refused != "":
			if reason, ok := refused[u.name]; !ok || reason != u.refused {
				drop = append(drop, u)
			}
		case !ok || !sameCommand(w, u.cmd):
			stop = append(stop, u)
		}
	}
	var add []*unit
	for name, cs := range want {
		u, exists := have[name]
		if exists && !u.fromCatalog {
			s.conflict(name)
			continue
		}
		if exists && u.refused == "" && sameCommand(cs, u.cmd) {
			continue
		}
		nu := &unit{name: name, kind: catalog.ServiceCommand, cmd: cs, fromCatalog: true}
		nu.row = catalog.Service{Node: s.cfg.NodeID, Name: name, Kind: nu.kind, Status: catalog.ServiceStopped}
		add = append(add, nu)
	}
	for name, reason := range refused {
		u, exists := have[name]
		if exists && !u.fromCatalog {
			s.conflict(name)
			continue
		}
		if exists && u.refused == reason {
			continue
		}
		now := time.Now()
		nu := &unit{name: name, kind: catalog.ServiceCommand, fromCatalog: true, refused: reason, done: true, dirty: true}
		nu.row = catalog.Service{Node: s.cfg.NodeID, Name: name, Kind: nu.kind, Status: catalog.ServiceFailed, LastError: "not run: " + reason, LastExit: &now}
		add = append(add, nu)
	}
	s.units = slices.DeleteFunc(s.units, func(u *unit) bool { return slices.Contains(drop, u) })
	s.mu.Unlock()

	stuck := map[string]bool{}
	for _, u := range stop {
		u.stop()
		select {
		case <-u.exited:
		case <-time.After(s.cfg.StopTimeout):
			// Its goroutine still waits for the process: forgetting it
			// would start a second copy next to it.
			stuck[u.name] = true
			s.log.Error("catalog command did not stop in time; trying again at the next pass", slog.String("command", u.name))
			continue
		}
		s.mu.Lock()
		s.units = slices.DeleteFunc(s.units, func(o *unit) bool { return o == u })
		s.mu.Unlock()
		s.log.Info("catalog command stopped: deleted, disabled or changed", slog.String("command", u.name))
	}
	for _, u := range add {
		if ctx.Err() != nil {
			return
		}
		if stuck[u.name] {
			continue
		}
		s.mu.Lock()
		s.units = slices.DeleteFunc(s.units, func(o *unit) bool { return o.name == u.name && o.refused != "" })
		s.units = append(s.units, u)
		s.mu.Unlock()
		if u.refused != "" {
			s.log.Warn("catalog command not run", slog.String("command", u.name), slog.String("error", u.refused))
			continue
		}
		s.start(ctx, group, u)
		s.log.Info("catalog command started", slog.String("command", u.name), slog.String("path", u.cmd.Path))
	}
	if len(stop) > 0 || len(drop) > 0 {
		s.mu.Lock()
		s.pruned = false // the rows of those gone go at the next flush
		s.mu.Unlock()
	}
	wake(s.wake)
}

// conflict logs, once, that the catalog command name is not run because a
// service of the node has its name. s.mu is held.
func (s *Supervisor) conflict(name string) {
	if s.conflicts == nil {
		s.conflicts = map[string]bool{}
	}
	if !s.conflicts[name] {
		s.conflicts[name] = true
		s.log.Warn("catalog command not run: a service of this node has its name", slog.String("command", name))
	}
}
