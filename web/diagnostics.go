package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// diagnostics explains a yellow or red indicator: ?node=ID or ?region=NAME.
func (s *Server) diagnostics(c echo.Context) error {
	return echo.NewHTTPError(http.StatusNotFound, "diagnostics: not built yet")
}
