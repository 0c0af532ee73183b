package broker

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// NodeList is the answer of GET /nodes.
type NodeList struct {
	Nodes []NodeView `json:"nodes"`
}

// NodeDetail is the answer of GET /nodes/:id: the node, its health, its
// latest host sample (null when it never sent one), the thresholds it is
// judged by, the services that must run on it and the runs it holds (those
// the caller may read).
type NodeDetail struct {
	NodeView
	Sample     *catalog.Sample            `json:"sample"`
	Thresholds map[string]ThresholdLevels `json:"thresholds"`
	Services   []ServiceView              `json:"services"`
	Runs       []RunView                  `json:"runs"`
}

// listNodes handles GET /nodes?region=: any authenticated caller.
func (s *Server) listNodes(c echo.Context) error {
	region, err := queryRegion(c)
	if err != nil {
		return err
	}
	h, err := s.snapshot(c.Request().Context())
	if err != nil {
		return fmt.Errorf("judge node health: %w", err)
	}
	out := NodeList{Nodes: []NodeView{}}
	for i := range h.Nodes {
		n := &h.Nodes[i]
		if region != "" && n.Region != region {
			continue
		}
		out.Nodes = append(out.Nodes, NodeView{Node: *n, Health: h.node(n)})
	}
	return c.JSON(http.StatusOK, out)
}

// getNode handles GET /nodes/:id: any authenticated caller.
func (s *Server) getNode(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := url.PathUnescape(c.Param("id"))
	if err != nil || id == "" || len(id) > 128 || strings.ContainsRune(id, 0) {
		return notFound("no node %q", c.Param("id"))
	}
	h, err := s.snapshot(ctx)
	if err != nil {
		return fmt.Errorf("judge node health: %w", err)
	}
	n, ok := h.ByID[id]
	if !ok {
		return notFound("no node %q", id)
	}
	services, err := s.store.ListServices(ctx, id)
	if err != nil {
		return fmt.Errorf("list services of node %s: %w", id, err)
	}
	runs, err := s.store.ListWorkerRuns(ctx, id)
	if err != nil {
		return fmt.Errorf("list runs of node %s: %w", id, err)
	}
	th := h.Thresholds(catalog.NodeScope(id))
	out := NodeDetail{
		NodeView: NodeView{Node: *n, Health: h.node(n)},
		Sample:   h.latest(id),
		Thresholds: map[string]ThresholdLevels{
			catalog.ThresholdCPU:       {th.CPUWarn, th.CPUCrit},
			catalog.ThresholdMemory:    {th.MemWarn, th.MemCrit},
			catalog.ThresholdDiskFree:  {th.DiskFreeWarnPct, th.DiskFreeCritPct},
			catalog.ThresholdDeviation: {th.DeviationWarn, th.DeviationCrit},
			catalog.ThresholdHeartbeat: {th.HeartbeatWarn.Seconds(), th.HeartbeatCrit.Seconds()},
		},
		Services: make([]ServiceView, 0, len(services)),
		Runs:     []RunView{},
	}
	for i := range services {
		out.Services = append(out.Services, ServiceView{Service: services[i], Health: h.service(&services[i])})
	}
	for _, r := range runs {
		if s.principalMay(c, catalog.ActionRead, "mapping:"+r.Mapping) {
			out.Runs = append(out.Runs, NewRunView(r, h.Now))
		}
	}
	return c.JSON(http.StatusOK, out)
}
