package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// buildInfo is what `weir version` reports, read from the binary's build
// information (the module version and the VCS stamp of `go build`).
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"build_date"`
	Modified  bool   `json:"modified"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// Build stamps a packager may set with -ldflags "-X main.buildVersion=v1.2.3
// -X main.buildCommit=... -X main.buildDate=...", for builds without the VCS
// (a source tarball); they win over what the Go toolchain recorded.
var buildVersion, buildCommit, buildDate string

// readBuildInfo returns this binary's build information; what the build did
// not record is "unknown".
func readBuildInfo() buildInfo {
	b := toolchainBuildInfo()
	for dst, src := range map[*string]string{&b.Version: buildVersion, &b.Commit: buildCommit, &b.BuildDate: buildDate} {
		if src != "" {
			*dst = src
		}
	}
	return b
}

// toolchainBuildInfo is what the Go toolchain recorded in the binary.
func toolchainBuildInfo() buildInfo {
	b := buildInfo{Version: "dev", Commit: "unknown", BuildDate: "unknown", GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		b.Version = v
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.BuildDate = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// version is the module version of this build, or "dev".
func version() string { return readBuildInfo().Version }

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date, Go version and platform of this binary",
		Long: `Print the build information of this weir binary: its module version
("dev" for a build from a checkout), the VCS commit and its time that
go build recorded, whether the tree had uncommitted changes, the Go version
and the OS/architecture. -o json for scripts.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			b := readBuildInfo()
			if g.jsonOut() {
				return printJSON(cmd.OutOrStdout(), b)
			}
			commit := b.Commit
			if b.Modified {
				commit += " (modified)"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "weir %s\ncommit:     %s\nbuild date: %s\ngo:         %s\nplatform:   %s/%s\n",
				b.Version, commit, b.BuildDate, b.GoVersion, b.OS, b.Arch)
			return nil
		},
	}
}
