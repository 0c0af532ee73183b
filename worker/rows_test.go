package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/connector"
)

func short(k dataKind) string { return strings.TrimPrefix(k.name, "fs-") }

// TestRoundTripEveryPair moves the golden rows between every pair of
// kinds (CSV, JSON Lines and Parquet files, PostgreSQL, MariaDB, SQLite)
// through the whole worker, and reads every target back: every value
// stays, NULLs, unicode, quotes and delimiters, a 1 MB field, time zones.
func TestRoundTripEveryPair(t *testing.T) {
	t.Parallel()
	e := newEnv(t, catalog.DialectSQLite)
	d := newDataWorld(t, e)
	sources := map[string]catalog.Endpoint{}
	for _, k := range dataKinds {
		ep := d.endpoint(k, "src_"+short(k), true)
		d.put(ep, goldenSchema, goldenRows())
		sources[k.name] = ep
	}
	type pair struct {
		from, to dataKind
		target   catalog.Endpoint
		run      string
	}
	var pairs []*pair
	for _, from := range dataKinds {
		for _, to := range dataKinds {
			p := &pair{from: from, to: to}
			name := "to_" + short(to) + "_from_" + short(from)
			p.target = d.endpoint(to, name, true)
			mapping := d.rowMapping(strings.ReplaceAll(name, "_", "-"), sources[from.name], p.target, nil)
			p.run = d.run(mapping, nil)
			pairs = append(pairs, p)
		}
	}
	e.start(e.rowConfig("w1"), e.store, connector.Default())
	for _, p := range pairs {
		t.Run(p.from.name+"->"+p.to.name, func(t *testing.T) {
			r := e.waitState(p.run, 120*time.Second, catalog.StateSucceeded)
			require.Equal(t, catalog.StateSucceeded, r.State, r.Error)
			man := r.Manifest.V
			require.NotNil(t, man)
			require.Equal(t, int64(len(goldenRows())), man.TotalRows)
			require.NotNil(t, man.Counts)
			require.Equal(t, int64(len(goldenRows())), *man.Counts.TargetRows, man.Counts.Check)
			require.Contains(t, man.Counts.Check, "ok")
			sameRows(t, goldenSchema, goldenRows(), d.read(p.target))
		})
	}
}
