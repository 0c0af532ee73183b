package dispatcher

import (
	"context"
	"fmt"
	"sort"

	"github.com/weirdata/weir/connector/spi"
)

func (a *Agent) lsCommand() *command {
	return &command{
		info: CommandInfo{
			Name:    CommandLs,
			Summary: "list the files under a path of a file system with their sizes, sorted by path, a page at a time",
			Needs:   "read on system:NAME",
			Args: []ArgInfo{
				{Name: "path", Type: "string", Doc: "file, directory or glob relative to the system's root (default: the root)"},
				{Name: "limit", Type: "integer", Doc: fmt.Sprintf("files per page (default %d, at most %d)", LsLimitDefault, LsLimitMax)},
				{Name: "after", Type: "string", Doc: "the page starts after this path: the previous page's next"},
			},
		},
		newArgs: func() any { return &LsArgs{} },
		check:   checkLs,
		run:     a.ls,
	}
}

func checkLs(c *call) error {
	if err := checkSystem(c); err != nil {
		return err
	}
	args := c.args.(*LsArgs)
	clean, err := cleanArgPath("args.path", args.Path)
	if err != nil {
		return err
	}
	args.Path = clean
	switch {
	case args.Limit < 0 || args.Limit > LsLimitMax:
		return invalidArg("args.limit", "must be between 1 and %d, got %d", LsLimitMax, args.Limit)
	case args.Limit == 0:
		args.Limit = LsLimitDefault
	}
	if len(args.After) > maxPathLen {
		return invalidArg("args.after", "is longer than %d bytes", maxPathLen)
	}
	return nil
}

func (a *Agent) ls(ctx context.Context, c *call) (any, error) {
	args := c.args.(*LsArgs)
	sys, conn, err := a.openSystem(ctx, c.system)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	src, ok := conn.(spi.FileSource)
	if !ok {
		return nil, unsupported("system %s of kind %s holds no files to list", sys.Name, sys.Kind)
	}
	files, err := src.ListFiles(ctx, args.Path)
	if err != nil {
		return nil, fmt.Errorf("list files: %w", err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	start := 0
	if args.After != "" {
		start = sort.Search(len(files), func(i int) bool { return files[i].Path > args.After })
	}
	end := min(len(files), start+args.Limit)
	res := &LsResult{System: sys.Name, Kind: sys.Kind, Node: a.cfg.NodeID, Path: args.Path, Total: len(files),
		Files: make([]FileEntry, 0, end-start)}
	for _, f := range files[start:end] {
		res.Files = append(res.Files, FileEntry{Path: f.Path, Size: f.Size})
	}
	if end < len(files) {
		res.Next = files[end-1].Path
	}
	return res, nil
}
