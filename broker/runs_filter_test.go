package broker_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// TestListRunsByRegionAndTime: GET /runs filters by region and by creation
// time (since inclusive, until exclusive, RFC 3339), and refuses bad values.
func TestListRunsByRegionAndTime(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		a := e.mustSubmit("admin", tradesRequest("2026-11-20"))
		time.Sleep(5 * time.Millisecond)
		b := e.mustSubmit("admin", tradesRequest("2026-11-21"))
		time.Sleep(5 * time.Millisecond)
		c := e.mustSubmit("admin", tradesRequest("2026-11-22"))
		tb, _, err := catalog.ParseRunID(b.ID)
		require.NoError(t, err)
		at := url.QueryEscape(tb.Format(time.RFC3339Nano))

		list := func(query string) []string {
			t.Helper()
			r := e.get("/api/v1/runs?"+query, "admin")
			require.Equal(t, http.StatusOK, r.Status, r.String())
			var page broker.RunList
			r.decode(t, &page)
			out := []string{}
			for _, v := range page.Runs {
				out = append(out, v.ID)
			}
			return out
		}
		require.Equal(t, []string{c.ID, b.ID, a.ID}, list("region="+testRegion))
		require.Equal(t, []string{}, list("region=us-east"))
		require.Equal(t, []string{c.ID, b.ID}, list("since="+at))
		require.Equal(t, []string{a.ID}, list("until="+at))
		require.Equal(t, []string{b.ID}, list("since="+at+"&until="+url.QueryEscape(tb.Add(time.Millisecond).Format(time.RFC3339Nano))))
		require.Equal(t, []string{}, list("until=2001-01-01T00:00:00Z"))

		for _, q := range []string{"region=Bad%20Region", "since=yesterday", "until=2026-11-20", "since=2026-11-20T10:00:00Z&until=2026-11-20T09:00:00Z"} {
			requireError(t, e.get("/api/v1/runs?"+q, "admin"), http.StatusBadRequest, broker.CodeBadRequest)
		}
	})
}
