package catalog

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// Migration 0009_gov_node_commands creates node_commands: the external
// commands the monitor of each node supervises, next to its --command flags.
func init() {
	registerMigration(&gormigrate.Migration{
		ID: "0009_gov_node_commands",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&NodeCommand{})
		},
	})
}

// NodeCommandAllNodes is the node of a command that runs on every node.
const NodeCommandAllNodes = "*"

// Limits of a node command.
const (
	NodeCommandArgsMax   = 64   // entries of argv
	NodeCommandArgMax    = 4096 // characters of one entry
	NodeCommandEnvMax    = 32   // names in the environment allow-list
	nodeCommandNodeIDMax = 128
)

// nodeCommandEnvReserved starts the names of Weir's own settings, which hold
// the node's secrets: a command's environment allow-list never names them.
const nodeCommandEnvReserved = "WEIR_"

var (
	// nodeCommandNameRE is a command's name: it becomes the name of the
	// service the monitor runs (the monitor's service names).
	nodeCommandNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	// nodeIDRE is what a node ID looks like (a host name, usually).
	nodeIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)
	// envNameRE is an environment variable's name.
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// NodeCommand is an external command that must run on a node (or on every
// node): its monitor starts it, restarts it when it dies, and stops it once
// the command is deleted or disabled. It is executed directly from Argv,
// never through a shell. Env names the variables of the node's own
// environment passed to it (an allow-list of names: values are never
// stored in the catalog, so secrets stay on the node).
type NodeCommand struct {
	ID int64 `gorm:"primaryKey" json:"id"`
	// Node is a node's ID, or NodeCommandAllNodes.
	Node string `gorm:"size:128;not null;uniqueIndex:idx_node_command_name" json:"node"`
	// Name is the service name the command runs as on the node.
	Name string `gorm:"size:64;not null;uniqueIndex:idx_node_command_name" json:"name"`
	// Argv is the executable's absolute path, then its arguments.
	Argv JSON[[]string] `gorm:"not null" json:"argv"`
	// Env are the names of the node's environment variables passed on.
	Env       JSON[[]string] `json:"env"`
	Enabled   bool           `gorm:"not null" json:"enabled"`
	CreatedBy string         `gorm:"size:128;not null;default:''" json:"created_by"`
	CreatedAt time.Time      `json:"created_at"`
}

// Validate checks a node command: a service name, a node ID or "*", argv
// whose first entry is an absolute, clean path, no NUL byte anywhere, and
// environment variable names, none of Weir's own (WEIR_*). Where the
// executable lives is the node's to check: it runs only executables inside
// its --catalog-commands directory.
func (c *NodeCommand) Validate() error {
	if !nodeCommandNameRE.MatchString(c.Name) {
		return Invalid("name", "%q is not a command name: use 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", c.Name)
	}
	if c.Node != NodeCommandAllNodes && (len(c.Node) > nodeCommandNodeIDMax || !nodeIDRE.MatchString(c.Node)) {
		return Invalid("node", "%q is not a node ID; give a node's ID (weir nodes list) or \"*\" for every node", c.Node)
	}
	argv := c.Argv.V
	switch {
	case len(argv) == 0:
		return Invalid("argv", "give the command as a list: the executable's absolute path, then its arguments, such as [\"/usr/bin/rsync\", \"--daemon\"]")
	case len(argv) > NodeCommandArgsMax:
		return Invalid("argv", "at most %d entries, got %d", NodeCommandArgsMax, len(argv))
	}
	for i, a := range argv {
		f := fmt.Sprintf("argv[%d]", i)
		switch {
		case strings.ContainsRune(a, 0) || !utf8.ValidString(a):
			return Invalid(f, "must be valid UTF-8 without NUL bytes")
		case utf8.RuneCountInString(a) > NodeCommandArgMax:
			return Invalid(f, "must be at most %d characters", NodeCommandArgMax)
		}
	}
	if p := argv[0]; strings.ContainsFunc(p, unicode.IsSpace) {
		return Invalid("argv[0]", "%q holds white space: argv is a list, never a shell string; write [\"/usr/bin/rsync\", \"--daemon\"]", p)
	}
	if p := argv[0]; !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return Invalid("argv[0]", "%q must be the executable's absolute, clean path (such as /usr/bin/rsync): commands never go through a shell or PATH", p)
	}
	if len(c.Env.V) > NodeCommandEnvMax {
		return Invalid("env", "at most %d names, got %d", NodeCommandEnvMax, len(c.Env.V))
	}
	for i, n := range c.Env.V {
		if !envNameRE.MatchString(n) {
			return Invalid(fmt.Sprintf("env[%d]", i), "%q is not an environment variable name: env lists the names of the node's variables passed on, never values", n)
		}
		if strings.HasPrefix(strings.ToUpper(n), nodeCommandEnvReserved) {
			return Invalid(fmt.Sprintf("env[%d]", i), "%q is Weir's own setting (such as WEIR_ADMIN_TOKEN or WEIR_CATALOG_DSN): a node never passes %s* variables to its commands; name another variable", n, nodeCommandEnvReserved)
		}
	}
	return nil
}

// CreateNodeCommand stores a new command; ErrConflict when the node (or
// "*") has a command of that name already.
func (s *Store) CreateNodeCommand(ctx context.Context, c *NodeCommand) error {
	if c.Env.V == nil {
		c.Env = NewJSON([]string{})
	}
	if err := c.Validate(); err != nil {
		return err
	}
	c.ID = 0
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// A command for every node and one for a node would run under one
		// service name on that node: refuse the second.
		q := tx.Model(&NodeCommand{}).Where("name = ?", c.Name)
		if c.Node != NodeCommandAllNodes {
			q = q.Where("node = ?", NodeCommandAllNodes)
		}
		var other NodeCommand
		switch err := q.First(&other).Error; {
		case err == nil:
			return fmt.Errorf("%w: node %s runs a command named %s already (command %d, for %s)", ErrConflict, c.Node, c.Name, other.ID, other.Node)
		case !errors.Is(err, gorm.ErrRecordNotFound):
			return err
		}
		return tx.Create(c).Error
	})
	if err != nil {
		return fmt.Errorf("create command %s on node %s: %w", c.Name, c.Node, translate(err))
	}
	return nil
}

// ListNodeCommands lists commands by ID: all of them when node is "", else
// those that run on node (its own and those for every node).
func (s *Store) ListNodeCommands(ctx context.Context, node string) ([]NodeCommand, error) {
	q := s.db.WithContext(ctx).Order("id")
	if node != "" {
		q = q.Where("node = ? OR node = ?", node, NodeCommandAllNodes)
	}
	var out []NodeCommand
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list commands: %w", err)
	}
	return out, nil
}

// GetNodeCommand returns command id; ErrNotFound when there is none.
func (s *Store) GetNodeCommand(ctx context.Context, id int64) (*NodeCommand, error) {
	var c NodeCommand
	if err := s.db.WithContext(ctx).First(&c, id).Error; err != nil {
		return nil, fmt.Errorf("get command %d: %w", id, translate(err))
	}
	return &c, nil
}

// DeleteNodeCommand deletes command id; ErrNotFound when there is none.
func (s *Store) DeleteNodeCommand(ctx context.Context, id int64) error {
	res := s.db.WithContext(ctx).Delete(&NodeCommand{}, id)
	if res.Error != nil {
		return fmt.Errorf("delete command %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("delete command %d: %w", id, ErrNotFound)
	}
	return nil
}
