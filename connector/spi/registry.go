package spi

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Opener opens a connection to a system of the kind it is registered for.
type Opener func(ctx context.Context, sys System) (Conn, error)

// Registry maps system kinds to openers. Its methods are safe for concurrent use.
type Registry struct {
	mu      sync.RWMutex
	openers map[string]Opener
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{openers: map[string]Opener{}} }

// Register makes kind open with open. Registering a kind twice, an empty
// kind or a nil opener is a programming error and panics.
func (r *Registry) Register(kind string, open Opener) {
	if kind == "" || open == nil {
		panic("connector: Register needs a kind and an opener")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.openers[kind]; dup {
		panic("connector: kind " + kind + " registered twice")
	}
	r.openers[kind] = open
}

// Kinds returns the registered kinds, sorted.
func (r *Registry) Kinds() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.openers))
	for k := range r.openers {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Open connects to sys with the opener of its kind.
func (r *Registry) Open(ctx context.Context, sys System) (Conn, error) {
	r.mu.RLock()
	open := r.openers[sys.Kind]
	r.mu.RUnlock()
	if open == nil {
		return nil, &Error{Op: "connect", System: sys.Name, Err: fmt.Errorf("%w %q (known: %v)", ErrUnknownKind, sys.Kind, r.Kinds())}
	}
	c, err := open(ctx, sys)
	if err != nil {
		return nil, fmt.Errorf("open %s system %s: %w", sys.Kind, sys.Name, err)
	}
	return c, nil
}
