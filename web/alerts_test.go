package web_test

import (
	"fmt"
	"html"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
)

var olderAlerts = regexp.MustCompile(`<a href="([^"]+)">Older alerts`)

// The "Older alerts" link carries its filter and cursor as a query the
// server reads back: the second page starts where the first ended and
// keeps the filter.
func TestAlertsPagesFollowTheirCursor(t *testing.T) {
	st := newStack(t)
	st.user("ada", catalog.RoleAdmin)
	for i := range 55 {
		_, _, err := st.store.RaiseAlert(st.ctx, catalog.RaiseAlertParams{Key: fmt.Sprintf("test:%02d", i),
			Severity: catalog.AlertWarning, Subject: fmt.Sprintf("subject-%02d", i), Region: "local"})
		require.NoError(t, err)
	}
	b := st.browser()
	require.Equal(t, http.StatusSeeOther, b.signIn("ada", testPassword).StatusCode)

	resp, first := b.get("/alerts?severity=warning")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	m := olderAlerts.FindStringSubmatch(first)
	require.NotNil(t, m, "the first page links to older alerts")
	next := html.UnescapeString(m[1])
	require.Regexp(t, `^/alerts\?(.*&)?cursor=\d+`, next)
	require.Contains(t, next, "severity=warning")

	resp, second := b.get(next)
	require.Equal(t, http.StatusOK, resp.StatusCode, second)
	require.Contains(t, first, "subject-54")
	require.NotContains(t, second, "subject-54", "the second page starts after the first")
	require.Contains(t, second, "subject-00")
	require.NotContains(t, second, "Older alerts", "55 alerts make two pages")
}
