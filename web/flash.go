package web

import (
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// flashParam carries a one-line notice across a redirect after a form post
// (post, redirect, get). It is shown as text, escaped, so a forged link can
// only print words.
const flashParam = "flash"

// flashMax bounds a notice.
const flashMax = 200

// withFlash adds the notice msg to the local path p.
func withFlash(p, msg string) string {
	u, err := url.Parse(p)
	if err != nil {
		return p
	}
	q := u.Query()
	q.Set(flashParam, msg)
	u.RawQuery = q.Encode()
	return u.String()
}

// flashOf returns the notice of c's query, if any.
func flashOf(c echo.Context) string {
	m := strings.TrimSpace(c.QueryParam(flashParam))
	if len(m) > flashMax {
		m = m[:flashMax]
	}
	return m
}
