// Package connector is the one small interface between Weir's worker and the
// systems data moves between, and the registry of connectors by system kind.
//
// The names are defined in connector/spi (a leaf that connector packages
// import) and re-exported here, so that Default can import every connector
// without an import cycle. A component imports this package only; cmd/weir
// hands it Default(). It imports the standard library and its own
// subpackages only.
package connector

import (
	"github.com/weirdata/weir/connector/fs"
	"github.com/weirdata/weir/connector/null"
	"github.com/weirdata/weir/connector/spi"
)

// Re-exported contract; see connector/spi for each name's documentation.
type (
	// System is what a connector is told about a catalog system.
	System = spi.System
	// Conn is an open connection to one system, used by one run.
	Conn = spi.Conn
	// File is one file a source selected.
	File = spi.File
	// FileSource is a system files are read from.
	FileSource = spi.FileSource
	// FileTarget is a system files are delivered to.
	FileTarget = spi.FileTarget
	// Stage holds the files of one attempt until they are committed.
	Stage = spi.Stage
	// Written describes one staged file.
	Written = spi.Written
	// Error is a failed connector operation on one path of one system.
	Error = spi.Error
	// Opener opens a connection to a system of one kind.
	Opener = spi.Opener
	// Registry maps system kinds to openers.
	Registry = spi.Registry
)

// Re-exported names and errors; see connector/spi.
const (
	StagingDir         = spi.StagingDir
	ManifestName       = spi.ManifestName
	ManifestTempPrefix = spi.ManifestTempPrefix
)

// Errors callers branch on with errors.Is; see connector/spi.
var (
	ErrEscape      = spi.ErrEscape
	ErrInvalid     = spi.ErrInvalid
	ErrUnknownKind = spi.ErrUnknownKind
)

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return spi.NewRegistry() }

// Default returns a registry holding every connector built into Weir: fs and null.
func Default() *Registry {
	r := spi.NewRegistry()
	fs.Register(r)
	null.Register(r)
	return r
}

// CleanPath cleans a path relative to a system's root, refusing escapes; see spi.CleanPath.
func CleanPath(p string) (string, error) { return spi.CleanPath(p) }
