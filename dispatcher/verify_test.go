package dispatcher_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
	"github.com/weirdata/weir/connector"
	"github.com/weirdata/weir/dispatcher"
)

var deliveryFiles = map[string]string{
	"AAPL.csv":     "date,px\n2026-11-20,101.5\n",
	"MSFT.csv":     "date,px\n2026-11-20,402.25\n",
	"sub/GOOG.csv": "date,px\n2026-11-20,170.0\n",
	"empty.csv":    "",
}

func TestVerifyIntactDelivery(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		d := e.deliver("2026-11-20", deliveryFiles)
		c := e.client("reader")
		for _, from := range []string{"", dispatcher.ManifestFromCatalog, dispatcher.ManifestFromTarget} {
			res, err := c.Verify(e.ctx, dispatcher.VerifyArgs{RunID: d.run.ID, Manifest: from})
			require.NoError(t, err, from)
			require.True(t, res.OK, "%s: %+v", from, res)
			require.Equal(t, d.run.ID, res.RunID)
			require.Equal(t, "m", res.Mapping)
			require.Equal(t, "dst", res.System)
			require.Equal(t, "out/2026-11-20", res.Path)
			require.Equal(t, string(catalog.StateSucceeded), res.State)
			require.Equal(t, 4, res.Expected)
			require.Equal(t, 4, res.Matched)
			var bytes int64
			for _, v := range deliveryFiles {
				bytes += int64(len(v))
			}
			require.Equal(t, bytes, res.BytesChecked, "every byte was hashed")
			require.Empty(t, res.Missing)
			require.Empty(t, res.Changed)
			require.Empty(t, res.Extra)
			require.Equal(t, dispatcher.TargetManifestPresent, res.TargetManifest)
		}
		res, err := c.Verify(e.ctx, dispatcher.VerifyArgs{RunID: d.run.ID})
		require.NoError(t, err)
		require.Equal(t, dispatcher.ManifestFromCatalog, res.ManifestSource)

		// system may be given, when it is the run's target.
		r := e.post("reader", "verify", `{"system":"dst","args":{"run_id":"`+d.run.ID+`"}}`)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
		require.Equal(t, true, r.Result["ok"])
		a := e.lastAudit()
		require.Equal(t, "run:"+d.run.ID, a.Target)
		require.Equal(t, catalog.AuditOK, a.Outcome)
	})
}

func TestVerifyDetectsDamage(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		d := e.deliver("2026-11-20", deliveryFiles)
		c := e.client("reader")

		// One changed byte, same size.
		p := filepath.Join(d.dir, "AAPL.csv")
		data := []byte(deliveryFiles["AAPL.csv"])
		data[len(data)-3] = '6'
		require.NoError(t, os.WriteFile(p, data, 0o644))
		// A truncated file.
		require.NoError(t, os.WriteFile(filepath.Join(d.dir, "MSFT.csv"), []byte("date,px\n"), 0o644))
		// A missing file.
		require.NoError(t, os.Remove(filepath.Join(d.dir, "sub/GOOG.csv")))
		// An extra file: reported, not a failure.
		write(t, d.dir, "extra/NVDA.csv", "12345")

		for _, from := range []string{dispatcher.ManifestFromCatalog, dispatcher.ManifestFromTarget} {
			res, err := c.Verify(e.ctx, dispatcher.VerifyArgs{RunID: d.run.ID, Manifest: from})
			require.NoError(t, err)
			require.False(t, res.OK)
			require.Equal(t, 4, res.Expected)
			require.Equal(t, 1, res.Matched, "only empty.csv is intact")
			require.Equal(t, []string{"sub/GOOG.csv"}, res.Missing)
			require.Equal(t, 1, res.MissingCount)
			require.Equal(t, 2, res.ChangedCount)
			require.Equal(t, []dispatcher.VerifyDiff{
				{Path: "AAPL.csv", Problem: dispatcher.ProblemChecksum, ExpectedSize: int64(len(data)), ActualSize: int64(len(data)),
					ExpectedSHA256: sum(deliveryFiles["AAPL.csv"]), ActualSHA256: sum(string(data))},
				{Path: "MSFT.csv", Problem: dispatcher.ProblemSize, ExpectedSize: int64(len(deliveryFiles["MSFT.csv"])), ActualSize: 8,
					ExpectedSHA256: sum(deliveryFiles["MSFT.csv"])},
			}, res.Changed)
			require.Equal(t, []dispatcher.FileEntry{{Path: "extra/NVDA.csv", Size: 5}}, res.Extra)
			require.Equal(t, 1, res.ExtraCount)
			require.False(t, res.Truncated)
		}

		// Repaired, with the extra file still there: the delivery is OK.
		require.NoError(t, os.WriteFile(p, []byte(deliveryFiles["AAPL.csv"]), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(d.dir, "MSFT.csv"), []byte(deliveryFiles["MSFT.csv"]), 0o644))
		write(t, d.dir, "sub/GOOG.csv", deliveryFiles["sub/GOOG.csv"])
		res, err := c.Verify(e.ctx, dispatcher.VerifyArgs{RunID: d.run.ID})
		require.NoError(t, err)
		require.True(t, res.OK, "%+v", res)
		require.Equal(t, 1, res.ExtraCount)
	})
}

func TestVerifyManifestSources(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		d := e.deliver("2026-11-20", deliveryFiles)
		c := e.client("reader")
		var ae *dispatcher.APIError

		// The target's manifest removed: the catalog's still verifies, and says so.
		manPath := filepath.Join(d.dir, connector.ManifestName)
		saved, err := os.ReadFile(manPath)
		require.NoError(t, err)
		require.NoError(t, os.Remove(manPath))
		res, err := c.Verify(e.ctx, dispatcher.VerifyArgs{RunID: d.run.ID})
		require.NoError(t, err)
		require.True(t, res.OK)
		require.Equal(t, dispatcher.TargetManifestMissing, res.TargetManifest)
		_, err = c.Verify(e.ctx, dispatcher.VerifyArgs{RunID: d.run.ID, Manifest: dispatcher.ManifestFromTarget})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, http.StatusNotFound, ae.Status)
		require.Contains(t, ae.Message, "dst:out/2026-11-20/_weir_manifest.json")

		// A later run delivered to the same path: its manifest replaced ours.
		later := e.deliver("2026-11-20", map[string]string{"AAPL.csv": deliveryFiles["AAPL.csv"]})
		res, err = c.Verify(e.ctx, dispatcher.VerifyArgs{RunID: d.run.ID})
		require.NoError(t, err)
		require.True(t, res.OK, "the files are still those of the first run")
		require.Equal(t, dispatcher.TargetManifestOtherRun+later.run.ID, res.TargetManifest)
		_, err = c.Verify(e.ctx, dispatcher.VerifyArgs{RunID: d.run.ID, Manifest: dispatcher.ManifestFromTarget})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, http.StatusConflict, ae.Status)
		require.ErrorIs(t, err, catalog.ErrConflict)
		require.Contains(t, ae.Message, "belongs to run "+later.run.ID)
		require.NoError(t, os.WriteFile(manPath, saved, 0o644))

		// A corrupt target manifest.
		require.NoError(t, os.WriteFile(manPath, []byte("{not json"), 0o644))
		_, err = c.Verify(e.ctx, dispatcher.VerifyArgs{RunID: d.run.ID, Manifest: dispatcher.ManifestFromTarget})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, http.StatusConflict, ae.Status)
		require.Contains(t, ae.Message, "not a valid delivery manifest")
		res, err = c.Verify(e.ctx, dispatcher.VerifyArgs{RunID: d.run.ID})
		require.NoError(t, err)
		require.Contains(t, res.TargetManifest, "unreadable")

		// A run that has not delivered has no manifest in the catalog; the
		// one at its target is found through its mapping's target path.
		pending := e.pendingRun("2026-11-22")
		_, err = c.Verify(e.ctx, dispatcher.VerifyArgs{RunID: pending.ID})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, http.StatusConflict, ae.Status)
		require.Contains(t, ae.Message, "is pending and has no delivery manifest")
		_, err = c.Verify(e.ctx, dispatcher.VerifyArgs{RunID: pending.ID, Manifest: dispatcher.ManifestFromTarget})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, http.StatusNotFound, ae.Status)
		require.Contains(t, ae.Message, "out/2026-11-22/_weir_manifest.json")
		write(t, e.dst, "out/2026-11-22/x.csv", "xyz")
		e.writeManifest("out/2026-11-22", &catalog.Manifest{SchemaVersion: 1, RunID: pending.ID, State: catalog.StateSucceeded,
			Attempt: 1, Files: []catalog.ManifestFile{{Path: "x.csv", Size: 3, SHA256: sum("xyz")}}})
		res, err = c.Verify(e.ctx, dispatcher.VerifyArgs{RunID: pending.ID, Manifest: dispatcher.ManifestFromTarget})
		require.NoError(t, err)
		require.True(t, res.OK)
		require.Equal(t, "out/2026-11-22", res.Path)
		require.Equal(t, 1, res.Matched)
	})
}

func TestVerifyReportIsBounded(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	e := newEnv(t, s, withConfig(func(c *dispatcher.AgentConfig) { c.ReportLimit = 2 }))
	files := map[string]string{}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		files[n+".csv"] = n
	}
	d := e.deliver("2026-11-20", files)
	for _, n := range []string{"a", "b", "c"} {
		require.NoError(t, os.Remove(filepath.Join(d.dir, n+".csv")))
		write(t, d.dir, "x/"+n+".csv", n)
	}
	res, err := e.client("admin").Verify(e.ctx, dispatcher.VerifyArgs{RunID: d.run.ID})
	require.NoError(t, err)
	require.False(t, res.OK)
	require.True(t, res.Truncated)
	require.Equal(t, 3, res.MissingCount)
	require.Equal(t, []string{"a.csv", "b.csv"}, res.Missing)
	require.Equal(t, 3, res.ExtraCount)
	require.Len(t, res.Extra, 2)
	require.Equal(t, 2, res.Matched)
}

func TestVerifyRefusesEscapingManifests(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	e := newEnv(t, s)
	pending := e.pendingRun("2026-11-23")
	write(t, e.outside, "secret.txt", "top secret")
	e.writeManifest("out/2026-11-23", &catalog.Manifest{SchemaVersion: 1, RunID: pending.ID, State: catalog.StateSucceeded,
		Files: []catalog.ManifestFile{{Path: "../../../" + filepath.Base(e.outside) + "/secret.txt", Size: 10, SHA256: sum("top secret")}}})
	res, err := e.client("admin").Verify(e.ctx, dispatcher.VerifyArgs{RunID: pending.ID, Manifest: dispatcher.ManifestFromTarget})
	require.NoError(t, err)
	require.False(t, res.OK, "a manifest naming a file outside the root never verifies")
	require.Equal(t, dispatcher.ProblemBadPath, res.Changed[0].Problem)
	require.Zero(t, res.BytesChecked, "nothing outside the root was read")
}
