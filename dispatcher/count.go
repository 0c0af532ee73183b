package dispatcher

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
	"github.com/weirdata/weir/connector/format"
	"github.com/weirdata/weir/connector/spi"
)

// Counter is implemented by row connectors that count a dataset's rows
// themselves (SELECT count(*) ...). count uses it when the connection has
// it, and otherwise reads every partition through spi.RowSource.
type Counter interface {
	Count(ctx context.Context, ds spi.Dataset) (int64, error)
}

// sqlCounted are the kinds whose tables count counts with SELECT count(*)
// rather than by reading every row.
var sqlCounted = map[string]bool{catalog.KindPostgres: true, catalog.KindMySQL: true, catalog.KindSQLite: true}

// Limits of count's arguments.
const (
	maxTableLen = 256
	maxQueryLen = 16 << 10
)

func (a *Agent) countCommand() *command {
	return &command{
		info: CommandInfo{
			Name:    CommandCount,
			Summary: "count the files and bytes under a path of a file system (or, with a format, the rows in those files), or the rows of a table or query of a database",
			Needs:   "read on system:NAME",
			Args: []ArgInfo{
				{Name: "path", Type: "string", Doc: "file, directory or glob relative to the system's root (default: the root)"},
				{Name: "format", Type: "string", Doc: "count the rows of the files under path instead: csv, jsonl, parquet or auto (by extension)"},
				{Name: "options", Type: "object", Doc: "options of the format (header, delimiter, quote, null, compression ...), with format only"},
				{Name: "table", Type: "string", Doc: "table of a database system, optionally schema-qualified"},
				{Name: "query", Type: "string", Doc: "SELECT of a database system whose rows are counted"},
			},
		},
		newArgs: func() any { return &CountArgs{} },
		check:   checkCount,
		run:     a.count,
	}
}

func checkCount(c *call) error {
	if err := checkSystem(c); err != nil {
		return err
	}
	args := c.args.(*CountArgs)
	given := 0
	for _, v := range []string{args.Path, args.Table, args.Query} {
		if v != "" {
			given++
		}
	}
	if given > 1 {
		return invalidArg("args", "give one of path (files), table or query (rows), not several")
	}
	if args.Format == "" && args.Options != nil {
		return invalidArg("args.options", "apply to a format: give args.format too")
	}
	switch {
	case args.Table != "" || args.Query != "":
		if args.Format != "" {
			return invalidArg("args.format", "applies to the files under args.path, not to a table or query")
		}
		if args.Table != "" {
			return checkTable("args.table", args.Table)
		}
		return checkQuery("args.query", args.Query)
	}
	if args.Format != "" {
		f := args.Format
		if f == FormatAuto {
			f = ""
		}
		if _, err := format.ParseOptions(f, args.Options); err != nil {
			field := "args.options"
			if _, ferr := format.ParseOptions(f, nil); ferr != nil {
				field = "args.format"
			}
			return invalidArg(field, "%v", err)
		}
	}
	clean, err := cleanArgPath("args.path", args.Path)
	if err != nil {
		return err
	}
	args.Path = clean
	return nil
}

// checkTable accepts a table name the connector will quote: printable,
// without surrounding spaces, at most maxTableLen bytes.
func checkTable(field, t string) error {
	if len(t) > maxTableLen {
		return invalidArg(field, "is longer than %d bytes", maxTableLen)
	}
	if strings.TrimSpace(t) != t {
		return invalidArg(field, "%q has leading or trailing spaces", t)
	}
	for _, r := range t {
		if !unicode.IsPrint(r) {
			return invalidArg(field, "%q holds a control character", t)
		}
	}
	return nil
}

// checkQuery accepts one SELECT (or WITH ... SELECT) statement; the
// connector checks it again as it runs it.
func checkQuery(field, q string) error {
	if len(q) > maxQueryLen {
		return invalidArg(field, "is longer than %d bytes", maxQueryLen)
	}
	if strings.ContainsRune(q, 0) {
		return invalidArg(field, "holds a NUL byte")
	}
	trimmed := strings.TrimSpace(q)
	first := trimmed
	if i := strings.IndexFunc(trimmed, func(r rune) bool { return !unicode.IsLetter(r) }); i >= 0 {
		first = trimmed[:i]
	}
	if first = strings.ToUpper(first); first != "SELECT" && first != "WITH" {
		return invalidArg(field, "must be a SELECT statement")
	}
	if body := strings.TrimRight(strings.TrimSpace(q), "; \t\r\n"); strings.Contains(body, ";") {
		return invalidArg(field, "must be a single statement (it holds a ';')")
	}
	return nil
}

func (a *Agent) count(ctx context.Context, c *call) (any, error) {
	args := c.args.(*CountArgs)
	began := time.Now()
	sys, conn, err := a.openSystem(ctx, c.system)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	res := &CountResult{System: sys.Name, Kind: sys.Kind, Node: a.cfg.NodeID}
	_, files := conn.(spi.FileSource)
	if args.Table == "" && args.Query == "" && args.Format == "" {
		src, ok := conn.(spi.FileSource)
		if !ok {
			return nil, unsupported("system %s of kind %s holds no files: count its rows with args.table or args.query", sys.Name, sys.Kind)
		}
		files, err := src.ListFiles(ctx, args.Path)
		if err != nil {
			return nil, fmt.Errorf("count files: %w", err)
		}
		var n, bytes int64
		for _, f := range files {
			n, bytes = n+1, bytes+f.Size
		}
		res.Path, res.Method, res.Files, res.Bytes = args.Path, MethodList, &n, &bytes
		res.TookMS = time.Since(began).Milliseconds()
		return res, nil
	}
	var ds spi.Dataset
	switch {
	case args.Format != "" && !files:
		return nil, unsupported("system %s of kind %s holds no files: count its rows with args.table or args.query", sys.Name, sys.Kind)
	case args.Format != "":
		ds = spi.Dataset{Path: args.Path, Format: args.Format, Options: args.Options}
		if ds.Format == FormatAuto {
			ds.Format = ""
		}
		res.Path, res.Format = args.Path, args.Format
	case files:
		return nil, unsupported("system %s of kind %s holds files: count the rows in them with args.path and args.format", sys.Name, sys.Kind)
	default:
		ds = spi.Dataset{Table: args.Table, Query: args.Query}
		res.Table, res.Query = args.Table, args.Query
	}
	switch rc := conn.(type) {
	case Counter:
		n, err := rc.Count(ctx, ds)
		if err != nil {
			return nil, fmt.Errorf("count rows: %w", err)
		}
		res.Method, res.Rows = MethodCount, &n
	case spi.RowSource:
		// A table of a database counts itself; when that fails (no such
		// table...) the scan below says why as precisely as for a query.
		if args.Table != "" && sqlCounted[sys.Kind] {
			if n, _, _, err := connector.Count(ctx, conn, sys.Kind, ds, 1); err == nil {
				res.Method, res.Rows = MethodSQL, &n
				break
			}
		}
		n, bad, parts, err := a.scan(ctx, rc, ds)
		if err != nil {
			return nil, fmt.Errorf("count rows: %w", err)
		}
		res.Method, res.Rows, res.Bad, res.Partitions = MethodScan, &n, bad, parts
	default:
		return nil, unsupported("system %s of kind %s cannot read rows", sys.Name, sys.Kind)
	}
	res.TookMS = time.Since(began).Milliseconds()
	return res, nil
}

// scan reads every partition of ds and counts its rows and bad records.
func (a *Agent) scan(ctx context.Context, src spi.RowSource, ds spi.Dataset) (rows, bad int64, partitions int, err error) {
	parts, err := src.Partitions(ctx, ds, a.cfg.ScanPartitions)
	if err != nil {
		return 0, 0, 0, err
	}
	for _, p := range parts {
		err := src.Read(ctx, ds, p, a.cfg.ScanBatchSize, func(b spi.Batch) error {
			rows += int64(len(b.Rows))
			bad += int64(len(b.Bad))
			return ctx.Err()
		})
		if err != nil {
			return 0, 0, 0, fmt.Errorf("read partition %d (%s): %w", p.Seq, p.Desc, err)
		}
	}
	return rows, bad, len(parts), nil
}
