package web

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/client"
)

// nodeView is the data of the node page.
type nodeView struct {
	Node *client.NodeDetail
}

// nodePage shows one node: its health, latest sample, services and runs.
func (s *Server) nodePage(c echo.Context) error {
	v, err := s.loadNode(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "node", Page{Title: "Node " + v.Node.ID, Nav: "overview", Data: v})
}

// nodeLive is the node page's live fragment.
func (s *Server) nodeLive(c echo.Context) error {
	v, err := s.loadNode(c)
	if err != nil {
		return err
	}
	return s.renderLive(c, "node", Page{Data: v})
}

func (s *Server) loadNode(c echo.Context) (*nodeView, error) {
	id, err := url.PathUnescape(c.Param("id"))
	if err != nil || id == "" {
		return nil, echo.NewHTTPError(http.StatusNotFound, "there is no such node")
	}
	n, err := s.apiFor(c).GetNode(c.Request().Context(), id)
	if err != nil {
		return nil, err
	}
	return &nodeView{Node: n}, nil
}
