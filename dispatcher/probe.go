package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector/spi"
)

// Prober is implemented by connectors that can describe their system:
// a database's "version" and "size_bytes", for example. Keys are letters,
// digits and ". _ -" (see catalog.SetSystemAttributes); others are dropped.
type Prober interface {
	Probe(ctx context.Context) (map[string]string, error)
}

func (a *Agent) probeCommand() *command {
	return &command{
		info: CommandInfo{
			Name: CommandProbe,
			Summary: "report a system's attributes: its kind; for a file system its host's cores and memory and its root's total and free space; " +
				"for a database what its connector reports (version, size)",
			Needs: "read on system:NAME",
			Args: []ArgInfo{
				{Name: "count_files", Type: "boolean", Doc: "also count the files and bytes under a file system's root (walks the whole tree)"},
			},
		},
		newArgs: func() any { return &ProbeArgs{} },
		check:   checkSystem,
		run:     a.probe,
	}
}

func (a *Agent) probe(ctx context.Context, c *call) (any, error) {
	args := c.args.(*ProbeArgs)
	sys, conn, err := a.openSystem(ctx, c.system)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	attrs := map[string]string{"kind": sys.Kind}
	if p, ok := conn.(Prober); ok {
		got, err := p.Probe(ctx)
		if err != nil {
			return nil, fmt.Errorf("probe %s: %w", sys.Name, err)
		}
		for k, v := range got {
			if validAttributeKey(k) {
				attrs[k] = clipText(v, catalog.SystemAttributeValueMax-3)
			} else {
				a.log.Warn("probe: dropped an attribute with an invalid key", slog.String("system", sys.Name), slog.String("key", clipText(k, 64)))
			}
		}
	}
	if sys.Kind == catalog.KindFS {
		host, err := hostAttributes(ctx, sys.Name, sys.Settings.V["root"])
		if err != nil {
			return nil, err
		}
		maps.Copy(attrs, host)
		if args.CountFiles {
			src, ok := conn.(spi.FileSource)
			if !ok {
				return nil, unsupported("system %s of kind %s cannot list its files", sys.Name, sys.Kind)
			}
			files, err := src.ListFiles(ctx, ".")
			if err != nil {
				return nil, fmt.Errorf("count files under the root: %w", err)
			}
			var bytes int64
			for _, f := range files {
				bytes += f.Size
			}
			attrs["root.files"] = strconv.Itoa(len(files))
			attrs["root.bytes"] = strconv.FormatInt(bytes, 10)
		}
	}
	return &ProbeResult{System: sys.Name, Kind: sys.Kind, Node: a.cfg.NodeID, ProbedAt: time.Now().UTC(), Attributes: attrs}, nil
}

// hostAttributes describes this host and the file system holding root.
// It reads /proc and statfs only: nothing is executed.
func hostAttributes(ctx context.Context, system, root string) (map[string]string, error) {
	out := map[string]string{"host.os": runtime.GOOS, "host.arch": runtime.GOARCH}
	if name, err := os.Hostname(); err == nil {
		out["host.name"] = name
	}
	cores, err := cpu.CountsWithContext(ctx, true)
	if err != nil || cores < 1 {
		cores = runtime.NumCPU()
	}
	out["host.cores"] = strconv.Itoa(cores)
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("read host memory: %w", err)
	}
	out["host.memory_total_bytes"] = strconv.FormatUint(vm.Total, 10)
	out["host.memory_available_bytes"] = strconv.FormatUint(vm.Available, 10)
	du, err := disk.UsageWithContext(ctx, root)
	if err != nil {
		return nil, &spi.Error{Op: "probe", System: system, Path: ".", Err: fmt.Errorf("read the root's file system usage: %w", err)}
	}
	out["root.total_bytes"] = strconv.FormatUint(du.Total, 10)
	out["root.free_bytes"] = strconv.FormatUint(du.Free, 10)
	out["root.used_percent"] = strconv.FormatFloat(du.UsedPercent, 'f', 1, 64)
	if du.Fstype != "" {
		out["root.fstype"] = du.Fstype
	}
	return out, nil
}

// validAttributeKey mirrors the catalog's rule for attribute keys.
func validAttributeKey(k string) bool {
	if k == "" || len(k) > catalog.SystemAttributeKeyMax {
		return false
	}
	for _, r := range k {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}
