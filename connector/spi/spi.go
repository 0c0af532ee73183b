// Package spi is the contract between Weir's worker and its connectors: the
// small interfaces a connector implements, the values that cross them, the
// registry that maps a system kind to its opener, and the errors callers
// branch on.
//
// It is a leaf of plain types so that every connector package (connector/fs,
// connector/null, later connector/postgres ...) can import it while package
// connector, which re-exports these names, imports the connectors to build its
// Default registry. It imports the standard library only.
//
// A connection is opened per run. File-level connectors implement FileSource
// and FileTarget; row-level connectors (databases, CSV decoding) will add their
// own interfaces next to these, and the worker picks the data path by type
// assertion.
package spi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// System is what a connector is told about a catalog system.
type System struct {
	Name     string
	Kind     string
	Settings map[string]string
	Secrets  map[string]string // never logged, never put in an error
}

// Conn is an open connection to one system, used by one run and then closed.
type Conn interface {
	Close() error
}

// File is one file a source selected.
type File struct {
	// Path is the file's path relative to the system's root: what OpenFile takes.
	Path string
	// Rel is the path relative to the selection's base directory: where the
	// file lands under the target path.
	Rel string
	// Size in bytes, at listing time.
	Size int64
}

// FileSource is a system files are read from.
type FileSource interface {
	Conn
	// ListFiles returns the regular files that pattern selects: a file, a
	// directory (every file under it, recursively) or a glob (path.Match
	// syntax per element; matched directories are walked), relative to the
	// system's root. A literal path that does not exist is an error wrapping
	// fs.ErrNotExist; a glob that matches nothing is an empty list.
	ListFiles(ctx context.Context, pattern string) ([]File, error)
	// OpenFile opens a file returned by ListFiles (its Path) for reading.
	OpenFile(ctx context.Context, path string) (io.ReadCloser, error)
}

// FileTarget is a system files are delivered to: staged first, committed into
// place once, the delivery manifest written last.
type FileTarget interface {
	Conn
	// Stage returns a fresh staging area for one attempt of a run, first
	// removing whatever earlier attempts of the same run left behind.
	Stage(ctx context.Context, runID string, attempt int) (Stage, error)
	// WriteManifest writes data as ManifestName in dir (relative to the
	// root) atomically: readers see the old manifest or the whole new one.
	WriteManifest(ctx context.Context, dir string, data []byte) error
}

// Stage holds the files of one attempt until they are committed.
type Stage interface {
	// Put writes src to the staged file rel, calling progress (when not nil)
	// with the bytes copied as the copy advances, and returns its size and
	// SHA-256. It stops early with ctx's error when ctx ends.
	Put(ctx context.Context, rel string, src io.Reader, progress func(n int64)) (Written, error)
	// Commit moves the staged files rels into dir (relative to the root),
	// replacing files of the same name, each atomically, then removes the
	// staging area. It checks ctx between files.
	Commit(ctx context.Context, dir string, rels []string) error
	// Discard removes the staging area; committed files stay.
	Discard() error
}

// Written describes one staged or delivered file.
type Written struct {
	// Path is the delivered file's path relative to the target's root, set
	// by row loads (Commit.Files); Stage.Put leaves it empty, its caller
	// knowing the name.
	Path   string
	Size   int64
	SHA256 string // lower-case hex
	// Rows is the number of rows in the file, for row loads.
	Rows int64
}

// Reserved names that connectors never list as data.
const (
	// StagingDir is the directory, at a target's root, holding attempts' staged files.
	StagingDir = ".weir-staging"
	// ManifestName is the delivery manifest's file name in the target path.
	ManifestName = "_weir_manifest.json"
	// ManifestTempPrefix starts the name of a manifest being written.
	ManifestTempPrefix = ".weir-manifest-"
	// CommitDir is the directory, at a file target's root, holding the
	// commit markers of row loads (one file per committed run_id).
	CommitDir = ".weir-commits"
)

// Reserved reports whether a file or directory name is Weir's own bookkeeping.
func Reserved(name string) bool {
	return name == StagingDir || name == CommitDir || name == ManifestName || strings.HasPrefix(name, ManifestTempPrefix)
}

// Errors callers branch on with errors.Is.
var (
	// ErrEscape means a path would leave the system's root (.., an absolute
	// path, or a symbolic link pointing outside).
	ErrEscape = errors.New("path escapes the system's root")
	// ErrInvalid means bad settings, a bad pattern or a file Weir cannot move
	// (not a regular file); retrying does not help.
	ErrInvalid = errors.New("invalid")
	// ErrUnknownKind means no connector is registered for a system's kind.
	ErrUnknownKind = errors.New("unknown system kind")
)

// Error is a failed connector operation on one path of one system.
type Error struct {
	Op     string // list, open, stage, put, commit, manifest, connect
	System string
	Path   string
	Err    error
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s %s: %v", e.Op, e.System, e.Err)
	}
	return fmt.Sprintf("%s %s:%s: %v", e.Op, e.System, e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// CleanPath cleans p as a slash-separated path relative to a system's root,
// "." for the root itself. Absolute paths, backslashes, NUL bytes and any
// ".." element are refused with ErrEscape or ErrInvalid, before any file
// system call.
func CleanPath(p string) (string, error) {
	switch {
	case p == "":
		return ".", nil
	case strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("%w: %q is absolute; paths are relative to the system's root", ErrEscape, p)
	case strings.ContainsAny(p, "\\\x00"):
		return "", fmt.Errorf("%w: %q contains a backslash or NUL byte", ErrInvalid, p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", fmt.Errorf("%w: %q has a \"..\" element", ErrEscape, p)
		}
	}
	return path.Clean(p), nil
}

// HasMeta reports whether p holds glob metacharacters (* ? [).
func HasMeta(p string) bool { return strings.ContainsAny(p, "*?[") }
