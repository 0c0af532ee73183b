package monitor

import (
	"context"
	"log/slog"
	"os"
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

// commandOf turns a catalog command into the command to run: its
// environment is the node's values of the names it allows.
func commandOf(c *catalog.NodeCommand) CommandService {
	var env []string
	for _, name := range c.Env.V {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return CommandService{Name: c.Name, Path: c.Argv.V[0], Args: slices.Clone(c.Argv.V[1:]), Env: env}
}

func sameCommand(a, b *CommandService) bool {
	return a.Path == b.Path && a.Dir == b.Dir && slices.Equal(a.Args, b.Args) && slices.Equal(a.Env, b.Env)
}

// applyCommands makes the catalog commands running match cmds: it stops
// those gone, disabled or changed (a changed one starts again as it is
// now), and starts the new ones. A command named like a service added
// otherwise is not run (logged once).
func (s *Supervisor) applyCommands(ctx context.Context, group *sync.WaitGroup, cmds []catalog.NodeCommand) {
	want := map[string]*CommandService{}
	for i := range cmds {
		c := &cmds[i]
		if !c.Enabled || len(c.Argv.V) == 0 {
			continue
		}
		cs := commandOf(c)
		if err := checkCommand(&cs); err != nil || !serviceNameRE.MatchString(cs.Name) {
			s.log.Warn("catalog command not run: it is not valid", slog.String("command", c.Name), slog.Int64("id", c.ID))
			continue
		}
		want[c.Name] = &cs
	}
	s.mu.Lock()
	var stop []*unit
	have := map[string]*unit{}
	for _, u := range s.units {
		have[u.name] = u
		if w, ok := want[u.name]; u.fromCatalog && (!ok || !sameCommand(w, u.cmd)) {
			stop = append(stop, u)
		}
	}
	var add []*unit
	for name, cs := range want {
		u, exists := have[name]
		if exists && !u.fromCatalog {
			if s.conflicts == nil {
				s.conflicts = map[string]bool{}
			}
			if !s.conflicts[name] {
				s.conflicts[name] = true
				s.log.Warn("catalog command not run: a service of this node has its name", slog.String("command", name))
			}
			continue
		}
		if exists && sameCommand(cs, u.cmd) {
			continue
		}
		nu := &unit{name: name, kind: catalog.ServiceCommand, cmd: cs, fromCatalog: true}
		nu.row = catalog.Service{Node: s.cfg.NodeID, Name: name, Kind: nu.kind, Status: catalog.ServiceStopped}
		add = append(add, nu)
	}
	s.mu.Unlock()

	for _, u := range stop {
		u.stop()
		select {
		case <-u.exited:
		case <-time.After(s.cfg.StopTimeout):
			s.log.Error("catalog command did not stop in time", slog.String("command", u.name))
		}
		s.mu.Lock()
		s.units = slices.DeleteFunc(s.units, func(o *unit) bool { return o == u })
		s.pruned = false // its row goes at the next flush
		s.mu.Unlock()
		s.log.Info("catalog command stopped: deleted, disabled or changed", slog.String("command", u.name))
	}
	for _, u := range add {
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.units = append(s.units, u)
		s.mu.Unlock()
		s.start(ctx, group, u)
		s.log.Info("catalog command started", slog.String("command", u.name), slog.String("path", u.cmd.Path))
	}
	if len(stop) > 0 {
		wake(s.wake)
	}
}
