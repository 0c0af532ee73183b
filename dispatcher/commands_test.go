package dispatcher_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
	"github.com/weirdata/weir/connector/spi"
	"github.com/weirdata/weir/dispatcher"
)

func TestCountFiles(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		write(t, e.src, "in/2026-11-20/AAPL.csv", "0123456789")
		write(t, e.src, "in/2026-11-20/MSFT.csv", "01234")
		write(t, e.src, "in/2026-11-21/AAPL.csv", "012")
		write(t, e.src, "in/2026-11-21/sub/deep.csv", "0")
		write(t, e.src, "top.txt", "0123456")
		require.NoError(t, os.Symlink("in/2026-11-20/MSFT.csv", filepath.Join(e.src, "inner-link.csv")))
		require.NoError(t, os.MkdirAll(filepath.Join(e.src, ".weir-staging/run/1"), 0o755))
		write(t, e.src, ".weir-staging/run/1/half.csv", "bookkeeping is never counted")
		write(t, e.src, "in/2026-11-20/_weir_manifest.json", "{}")

		c := e.client("reader")
		cases := []struct {
			path         string
			files, bytes int64
		}{
			{"", 6, 10 + 5 + 3 + 1 + 7 + 5},
			{".", 6, 31},
			{"in", 4, 19},
			{"in/2026-11-20", 2, 15},
			{"in/2026-11-20/AAPL.csv", 1, 10},
			{"in/*/AAPL.csv", 2, 13},
			{"in/2026-11-2?", 4, 19},
			{"in/2026-12-*", 0, 0},
			{"inner-link.csv", 1, 5},
			{"./in//2026-11-21/", 2, 4},
		}
		for _, cs := range cases {
			res, err := c.Count(e.ctx, "src", dispatcher.CountArgs{Path: cs.path})
			require.NoError(t, err, cs.path)
			require.Equal(t, cs.files, *res.Files, cs.path)
			require.Equal(t, cs.bytes, *res.Bytes, cs.path)
			require.Nil(t, res.Rows)
			require.Equal(t, dispatcher.MethodList, res.Method)
			require.Equal(t, "src", res.System)
			require.Equal(t, catalog.KindFS, res.Kind)
			require.Equal(t, testNode, res.Node)
		}
		_, err := c.Count(e.ctx, "src", dispatcher.CountArgs{Path: "in/2027-01-01"})
		var ae *dispatcher.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, http.StatusNotFound, ae.Status)
		require.Contains(t, ae.Message, "in/2027-01-01")

		// The null system holds nothing; counting its rows makes no sense.
		res, err := c.Count(e.ctx, "nul", dispatcher.CountArgs{})
		require.NoError(t, err)
		require.Zero(t, *res.Files)
		_, err = c.Count(e.ctx, "src", dispatcher.CountArgs{Table: "trades"})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, http.StatusBadRequest, ae.Status)
		require.Equal(t, dispatcher.CodeUnsupported, ae.Code)
		require.Contains(t, ae.Message, "count the rows in them with args.path and args.format")
	})
}

func TestCountRowsOfFiles(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		write(t, e.src, "rows/a.csv", "id,px\n1,2\n3,4\n5,6\n")
		write(t, e.src, "rows/b.csv", "id,px\n7,8\n")
		write(t, e.src, "rows/c.jsonl", `{"id":1}`+"\n"+`{"id":2}`+"\n")
		write(t, e.src, "semi/x.csv", "id;px\n1;2,5\n3;4,5\n")
		c := e.client("reader")
		cases := []struct {
			args dispatcher.CountArgs
			rows int64
		}{
			{dispatcher.CountArgs{Path: "rows/*.csv", Format: "csv"}, 4},
			{dispatcher.CountArgs{Path: "semi/x.csv", Format: "csv", Options: map[string]string{"delimiter": ";"}}, 2},
			{dispatcher.CountArgs{Path: "rows/a.csv", Format: dispatcher.FormatAuto}, 3},
			{dispatcher.CountArgs{Path: "rows/*.jsonl", Format: "jsonl"}, 2},
		}
		for _, cs := range cases {
			res, err := c.Count(e.ctx, "src", cs.args)
			require.NoError(t, err, "%+v", cs.args)
			require.Equal(t, cs.rows, *res.Rows, "%+v", cs.args)
			require.Equal(t, dispatcher.MethodScan, res.Method)
			require.Equal(t, cs.args.Format, res.Format)
			require.Nil(t, res.Files)
		}

		bad := []struct{ body, field, msg string }{
			{`{"system":"src","args":{"path":"rows","format":"xml"}}`, "args.format", "unknown format"},
			{`{"system":"src","args":{"path":"rows","format":"csv","options":{"header":"maybe"}}}`, "args.options", "true or false"},
			{`{"system":"src","args":{"path":"rows","format":"csv","options":{"header":true}}}`, "args.options.header", "must be a string"},
			{`{"system":"src","args":{"path":"rows","format":"csv","options":"header"}}`, "args.options", "must be an object of string values"},
			{`{"system":"src","args":{"path":"rows","options":{"header":"false"}}}`, "args.options", "give args.format too"},
			{`{"system":"src","args":{"table":"t","format":"csv"}}`, "args.format", "not to a table"},
			// The connector's own refusal comes back as precisely.
			{`{"system":"src","args":{"path":"rows/a.csv","format":"csv","options":{"header":"false"}}}`, "", "without a header needs a declared schema"},
		}
		for _, b := range bad {
			r := e.post("reader", "count", b.body)
			require.Equal(t, http.StatusBadRequest, r.Status, "%s: %s", b.body, r.Raw)
			require.Equal(t, b.field, r.Err.Field, "%s: %s", b.body, r.Raw)
			require.Contains(t, r.Err.Message, b.msg, b.body)
		}
	})
}

// fakeRows is a row source of total rows in up to 3 partitions, with bad
// records in the first; it records the datasets it is asked for.
type fakeRows struct {
	total, bad int
	mu         sync.Mutex
	asked      []spi.Dataset
	batches    int
	// entered and release, when not nil, hold Read until release is closed.
	entered chan struct{}
	release chan struct{}
}

func (f *fakeRows) Close() error { return nil }
func (f *fakeRows) Describe(context.Context, spi.Dataset) (spi.Schema, error) {
	return spi.Schema{{Name: "id", Type: spi.TypeInt}}, nil
}
func (f *fakeRows) MaxWatermark(context.Context, spi.Dataset, string) (string, error) { return "", nil }

func (f *fakeRows) Partitions(_ context.Context, ds spi.Dataset, max int) ([]spi.Partition, error) {
	f.mu.Lock()
	f.asked = append(f.asked, ds)
	f.mu.Unlock()
	n := min(3, max)
	out := make([]spi.Partition, n)
	for i := range out {
		out[i] = spi.Partition{Seq: i, Desc: fmt.Sprintf("part %d", i),
			Spec: map[string]string{"from": strconv.Itoa(i * f.total / n), "to": strconv.Itoa((i + 1) * f.total / n)}}
	}
	return out, nil
}

func (f *fakeRows) Read(ctx context.Context, _ spi.Dataset, p spi.Partition, batchSize int, emit func(spi.Batch) error) error {
	if f.entered != nil {
		f.entered <- struct{}{}
		select {
		case <-f.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	from, _ := strconv.Atoi(p.Spec["from"])
	to, _ := strconv.Atoi(p.Spec["to"])
	if p.Seq == 0 && f.bad > 0 {
		b := spi.Batch{}
		for i := range f.bad {
			b.Bad = append(b.Bad, &spi.RowError{Loc: fmt.Sprintf("row %d", i), Reason: "not an int"})
		}
		if err := emit(b); err != nil {
			return err
		}
	}
	for i := from; i < to; i += batchSize {
		b := spi.Batch{}
		for j := i; j < min(to, i+batchSize); j++ {
			b.Rows = append(b.Rows, spi.Row{int64(j)})
		}
		f.mu.Lock()
		f.batches++
		f.mu.Unlock()
		if err := emit(b); err != nil {
			return err
		}
	}
	return nil
}

// fakeCounter counts by itself, with a number a scan would not give.
type fakeCounter struct {
	*fakeRows
	n int64
}

func (f fakeCounter) Count(_ context.Context, ds spi.Dataset) (int64, error) {
	f.mu.Lock()
	f.asked = append(f.asked, ds)
	f.mu.Unlock()
	return f.n, nil
}

// fakeProber describes its database.
type fakeProber struct{ *fakeRows }

func (fakeProber) Probe(context.Context) (map[string]string, error) {
	return map[string]string{"version": "15.4", "size_bytes": "123456", "bad key!": "dropped"}, nil
}

func opener(c spi.Conn) spi.Opener {
	return func(context.Context, spi.System) (spi.Conn, error) { return c, nil }
}

func TestCountRowsByScanning(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		rows := &fakeRows{total: 1000, bad: 3}
		e := newEnv(t, s, withRows(opener(rows)), withConfig(func(c *dispatcher.AgentConfig) {
			c.ScanBatchSize = 64
			c.ScanPartitions = 2
		}))
		c := e.client("reader")
		res, err := c.Count(e.ctx, "nul", dispatcher.CountArgs{Table: "sales.trades"})
		require.NoError(t, err)
		require.Equal(t, dispatcher.MethodScan, res.Method)
		require.Equal(t, int64(1000), *res.Rows)
		require.Equal(t, int64(3), res.Bad)
		require.Equal(t, 2, res.Partitions, "ScanPartitions bounds the partitions asked for")
		require.Equal(t, "sales.trades", res.Table)
		require.Nil(t, res.Files)
		require.Equal(t, 16, rows.batches, "two partitions of 500 rows, each in 8 batches of at most 64")

		res, err = c.Count(e.ctx, "nul", dispatcher.CountArgs{Query: "  select id from trades where px > 0;"})
		require.NoError(t, err)
		require.Equal(t, int64(1000), *res.Rows)
		require.Equal(t, []spi.Dataset{{Table: "sales.trades"}, {Query: "  select id from trades where px > 0;"}}, rows.asked)

		_, err = c.Count(e.ctx, "nul", dispatcher.CountArgs{Path: "a"})
		var ae *dispatcher.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, dispatcher.CodeUnsupported, ae.Code)
		require.Contains(t, ae.Message, "count its rows with args.table or args.query")
		_, err = c.Count(e.ctx, "nul", dispatcher.CountArgs{Path: "a", Format: "csv"})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, dispatcher.CodeUnsupported, ae.Code)
		_, err = c.Ls(e.ctx, "nul", dispatcher.LsArgs{})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, dispatcher.CodeUnsupported, ae.Code)
	})
}

func TestCountRowsByTheConnector(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		rows := &fakeRows{total: 1000}
		e := newEnv(t, s, withRows(opener(fakeCounter{fakeRows: rows, n: 42})))
		res, err := e.client("reader").Count(e.ctx, "nul", dispatcher.CountArgs{Table: "trades"})
		require.NoError(t, err)
		require.Equal(t, dispatcher.MethodCount, res.Method)
		require.Equal(t, int64(42), *res.Rows, "the connector's count is used, not a scan")
		require.Zero(t, rows.batches)
		require.Equal(t, []spi.Dataset{{Table: "trades"}}, rows.asked)
	})
}

func TestBusyAgentRefusesMoreCommands(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	rows := &fakeRows{total: 10, entered: make(chan struct{}, 8), release: make(chan struct{})}
	e := newEnv(t, s, withRows(opener(rows)), withConfig(func(c *dispatcher.AgentConfig) { c.MaxInFlight = 1 }))
	c := e.client("reader")
	done := make(chan error, 1)
	go func() {
		_, err := c.Count(e.ctx, "nul", dispatcher.CountArgs{Table: "t"})
		done <- err
	}()
	select {
	case <-rows.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first count never started")
	}
	r := e.post("reader", "count", `{"system":"src"}`)
	require.Equal(t, http.StatusServiceUnavailable, r.Status)
	require.Equal(t, dispatcher.CodeBusy, r.Err.Code)
	require.Equal(t, "1", r.Header.Get("Retry-After"))
	require.Equal(t, catalog.AuditFailed, e.lastAudit().Outcome)
	close(rows.release)
	require.NoError(t, <-done)
	res, err := c.Count(e.ctx, "src", dispatcher.CountArgs{})
	require.NoError(t, err, "a slot is free again")
	require.Zero(t, *res.Files)
}

func TestCommandTimeout(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	rows := &fakeRows{total: 10, entered: make(chan struct{}, 8), release: make(chan struct{})}
	e := newEnv(t, s, withRows(opener(rows)), withConfig(func(c *dispatcher.AgentConfig) { c.CommandTimeout = 100 * time.Millisecond }))
	r := e.post("reader", "count", `{"system":"nul","args":{"table":"t"}}`)
	require.Equal(t, http.StatusGatewayTimeout, r.Status, "%s", r.Raw)
	require.Equal(t, dispatcher.CodeTimeout, r.Err.Code)
	require.Equal(t, catalog.AuditFailed, e.lastAudit().Outcome)
}

func TestLs(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		for i, name := range []string{"b.csv", "a.csv", "d/x.csv", "c.csv", "d/y.csv"} {
			write(t, e.src, "in/"+name, string(make([]byte, i+1)))
		}
		c := e.client("reader")
		var pages [][]dispatcher.FileEntry
		after := ""
		for range 10 {
			res, err := c.Ls(e.ctx, "src", dispatcher.LsArgs{Path: "in", Limit: 2, After: after})
			require.NoError(t, err)
			require.Equal(t, 5, res.Total)
			require.Equal(t, "in", res.Path)
			pages = append(pages, res.Files)
			if res.Next == "" {
				break
			}
			after = res.Next
		}
		require.Equal(t, [][]dispatcher.FileEntry{
			{{Path: "in/a.csv", Size: 2}, {Path: "in/b.csv", Size: 1}},
			{{Path: "in/c.csv", Size: 4}, {Path: "in/d/x.csv", Size: 3}},
			{{Path: "in/d/y.csv", Size: 5}},
		}, pages)

		res, err := c.Ls(e.ctx, "src", dispatcher.LsArgs{Path: "in/d"})
		require.NoError(t, err)
		require.Len(t, res.Files, 2)
		require.Empty(t, res.Next)
		res, err = c.Ls(e.ctx, "src", dispatcher.LsArgs{Path: "in", After: "in/z"})
		require.NoError(t, err)
		require.Empty(t, res.Files)
		require.Equal(t, 5, res.Total)
		res, err = c.Ls(e.ctx, "src", dispatcher.LsArgs{Path: "in/*.csv"})
		require.NoError(t, err)
		require.Len(t, res.Files, 3)
	})
}

func TestProbe(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		write(t, e.src, "a.csv", "abc")
		write(t, e.src, "d/b.csv", "abcdef")
		c := e.client("reader")
		res, err := c.Probe(e.ctx, "src", dispatcher.ProbeArgs{})
		require.NoError(t, err)
		require.Equal(t, "src", res.System)
		require.Equal(t, catalog.KindFS, res.Kind)
		require.WithinDuration(t, time.Now(), res.ProbedAt, time.Minute)
		at := res.Attributes
		require.Equal(t, catalog.KindFS, at["kind"])
		for _, k := range []string{"host.cores", "host.memory_total_bytes", "host.memory_available_bytes", "root.total_bytes", "root.free_bytes"} {
			n, err := strconv.ParseUint(at[k], 10, 64)
			require.NoError(t, err, k)
			require.Positive(t, n, k)
		}
		total, _ := strconv.ParseUint(at["root.total_bytes"], 10, 64)
		free, _ := strconv.ParseUint(at["root.free_bytes"], 10, 64)
		require.LessOrEqual(t, free, total)
		mem, _ := strconv.ParseUint(at["host.memory_total_bytes"], 10, 64)
		avail, _ := strconv.ParseUint(at["host.memory_available_bytes"], 10, 64)
		require.LessOrEqual(t, avail, mem)
		require.NotContains(t, at, "root.files", "files are counted only when asked")
		host, _ := os.Hostname()
		require.Equal(t, host, at["host.name"])

		res, err = c.Probe(e.ctx, "src", dispatcher.ProbeArgs{CountFiles: true})
		require.NoError(t, err)
		require.Equal(t, "2", res.Attributes["root.files"])
		require.Equal(t, "9", res.Attributes["root.bytes"])

		// System registration records what probe discovered.
		require.NoError(t, s.SetSystemAttributes(e.ctx, "src", res.Attributes))
		got, err := s.GetSystemAttributes(e.ctx, "src")
		require.NoError(t, err)
		require.Equal(t, res.Attributes, got)

		res, err = c.Probe(e.ctx, "nul", dispatcher.ProbeArgs{})
		require.NoError(t, err)
		require.Equal(t, map[string]string{"kind": catalog.KindNull}, res.Attributes)
	})
}

func TestProbeDatabase(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	e := newEnv(t, s, withRows(opener(fakeProber{&fakeRows{}})))
	res, err := e.client("reader").Probe(e.ctx, "nul", dispatcher.ProbeArgs{})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"kind": catalog.KindNull, "version": "15.4", "size_bytes": "123456"}, res.Attributes,
		"the connector's attributes are merged, invalid keys dropped")
	require.NoError(t, s.SetSystemAttributes(e.ctx, "nul", res.Attributes))
}

func TestSystemsServedByTheNode(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	e := newEnv(t, s, withConfig(func(c *dispatcher.AgentConfig) { c.Systems = []string{"dst"} }))
	r := e.post("admin", "count", `{"system":"src"}`)
	require.Equal(t, http.StatusMisdirectedRequest, r.Status)
	require.Equal(t, dispatcher.CodeWrongNode, r.Err.Code)
	require.Contains(t, r.Err.Message, "serves dst")
	r = e.post("admin", "count", `{"system":"dst"}`)
	require.Equal(t, http.StatusOK, r.Status)
}
