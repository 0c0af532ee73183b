package worker

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"

	"github.com/shirou/gopsutil/v4/load"
	"github.com/weirdata/weir/connector"
)

// BytesPerThreadMin is the least data worth a thread of its own: below it,
// starting another thread costs more than it saves.
const BytesPerThreadMin = 4 << 20

// decideParallelism returns the degree of parallelism of a run and why:
// the least of the worker's threads, the plan's maximum (when set), the
// number of files and one thread per BytesPerThreadMin of data, at least 1.
func decideParallelism(threads, planMax, files int, bytes int64) (int, string) {
	if files == 0 {
		return 1, "nothing to copy: the selection is empty"
	}
	type limit struct {
		n   int
		why string
	}
	limits := []limit{{threads, fmt.Sprintf("the worker's %d threads", threads)}}
	if planMax > 0 {
		limits = append(limits, limit{planMax, fmt.Sprintf("the plan's maximum of %d threads", planMax)})
	}
	limits = append(limits, limit{files, plural(files, "file")})
	byData := int(max(1, (bytes+BytesPerThreadMin-1)/BytesPerThreadMin))
	limits = append(limits, limit{byData, fmt.Sprintf("%s of data at %s per thread", humanBytes(bytes), humanBytes(BytesPerThreadMin))})
	n := max(1, slices.MinFunc(limits, func(a, b limit) int { return a.n - b.n }).n)
	var by []string
	for _, l := range limits {
		if l.n == n {
			by = append(by, l.why)
		}
	}
	return n, fmt.Sprintf("%s for %s, %s: limited by %s", plural(n, "thread"), plural(files, "file"), humanBytes(bytes), strings.Join(by, " and "))
}

// deal sorts files by size, largest first (then by path), and deals them
// round-robin to n threads, so that each thread gets a similar share.
func deal(files []connector.File, n int) [][]connector.File {
	if len(files) == 0 {
		return nil
	}
	sorted := slices.Clone(files)
	slices.SortStableFunc(sorted, func(a, b connector.File) int {
		if a.Size != b.Size {
			if a.Size > b.Size {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Path, b.Path)
	})
	parts := make([][]connector.File, n)
	for i, f := range sorted {
		parts[i%n] = append(parts[i%n], f)
	}
	return parts
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// humanBytes formats a byte count with binary units.
func humanBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTP"[exp])
}

// hostLoad reads the host's 1-minute load average and its cores.
func hostLoad(ctx context.Context) (float64, int, error) {
	avg, err := load.AvgWithContext(ctx)
	if err != nil {
		return 0, runtime.NumCPU(), fmt.Errorf("read the host's load: %w", err)
	}
	return avg.Load1, runtime.NumCPU(), nil
}

// rowThreads returns the most threads a row run may use, and why: the
// least of the worker's threads, the plan's maximum (the systems'
// max_threads, else the worker's slots) and, when the node's load per core
// is at least high, one thread per core not busy (at least one). The
// source then splits the dataset into at most that many partitions by its
// own estimates (a small file is one partition), one thread each.
func rowThreads(threads, planMax int, load1 float64, cores int, high float64) (int, string) {
	type limit struct {
		n   int
		why string
	}
	limits := []limit{{threads, fmt.Sprintf("the worker's %d threads", threads)}}
	if planMax > 0 {
		limits = append(limits, limit{planMax, fmt.Sprintf("the plan's maximum of %d threads", planMax)})
	}
	if cores > 0 && load1/float64(cores) >= high {
		free := max(1, int(math.Floor(float64(cores)-load1+0.5)))
		limits = append(limits, limit{free, fmt.Sprintf("the node's load of %.2f on %d cores (%s free)", load1, cores, plural(free, "core"))})
	}
	n := max(1, slices.MinFunc(limits, func(a, b limit) int { return a.n - b.n }).n)
	var by []string
	for _, l := range limits {
		if l.n == n {
			by = append(by, l.why)
		}
	}
	return n, fmt.Sprintf("at most %s: limited by %s", plural(n, "thread"), strings.Join(by, " and "))
}
