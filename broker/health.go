package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// Health of runs and of the report.
const (
	// RunStaleAfterDefault is how long an active run's progress may stay
	// still before the run is yellow.
	RunStaleAfterDefault = 5 * time.Minute
	// FailedRunsWindowDefault is the window in which the health report counts
	// runs that failed or were aborted.
	FailedRunsWindowDefault = 24 * time.Hour
)

// Metrics of the reasons about services and runs (host reasons use the
// catalog's threshold metrics).
const (
	ReasonService  = "service"
	ReasonHold     = "hold"
	ReasonFailed   = "failed"
	ReasonProgress = "progress"
	ReasonHost     = "host"
)

// GovernanceStore is what the health, nodes, thresholds and alerts routes
// need from the catalog; *catalog.Store implements it.
type GovernanceStore interface {
	ListNodes(ctx context.Context, region string) ([]catalog.Node, error)
	ListLatestSamples(ctx context.Context, region string) ([]catalog.HostLatest, error)
	ListThresholds(ctx context.Context, scope string) ([]catalog.HealthThreshold, error)
	SetThresholds(ctx context.Context, ths []catalog.HealthThreshold) error
	DeleteThreshold(ctx context.Context, scope, metric string) error
	DeleteScopeThresholds(ctx context.Context, scope string) (int64, error)
	ListServices(ctx context.Context, node string) ([]catalog.Service, error)
	ListSystemAttributeValues(ctx context.Context, key string) (map[string]string, error)
	CountRunHealth(ctx context.Context, region string, failedSince time.Time) (catalog.RunHealthCounts, error)
	ListWorkerRuns(ctx context.Context, worker string) ([]catalog.Run, error)

	RaiseAlert(ctx context.Context, p catalog.RaiseAlertParams) (*catalog.Alert, bool, error)
	ListAlerts(ctx context.Context, f catalog.AlertFilter) ([]catalog.Alert, int64, error)
	AckAlert(ctx context.Context, id int64, by string) (*catalog.Alert, error)
	ResolveAlertByID(ctx context.Context, id int64) (*catalog.Alert, error)

	CreateNodeCommand(ctx context.Context, c *catalog.NodeCommand) error
	ListNodeCommands(ctx context.Context, node string) ([]catalog.NodeCommand, error)
	GetNodeCommand(ctx context.Context, id int64) (*catalog.NodeCommand, error)
	DeleteNodeCommand(ctx context.Context, id int64) error

	CountAuthFailures(ctx context.Context, subject string, window time.Time, n int) (int, error)
	PruneAuthFailures(ctx context.Context, before time.Time) (int64, error)
}

// RunHealth judges a run as of now: yellow while it is held (with its hold
// reason) or while its progress has not moved for RunStaleAfterDefault,
// red when it failed or was aborted (with its error), green otherwise.
func RunHealth(r *catalog.Run, now time.Time) catalog.Health {
	var rs []catalog.Reason
	switch {
	case r.State == catalog.StatePending && r.HoldReason != "":
		rs = append(rs, catalog.Reason{Metric: ReasonHold, Level: catalog.Yellow, Text: "held: " + r.HoldReason})
	case r.State == catalog.StateFailed || r.State == catalog.StateAborted:
		msg := string(r.State)
		if r.Error != "" {
			msg += ": " + r.Error
		}
		rs = append(rs, catalog.Reason{Metric: ReasonFailed, Level: catalog.Red, Text: msg})
	case r.State == catalog.StateActive:
		if still := now.Sub(r.UpdatedAt); still > RunStaleAfterDefault {
			rs = append(rs, catalog.Reason{Metric: ReasonProgress, Level: catalog.Yellow, Value: still.Seconds(),
				Threshold: RunStaleAfterDefault.Seconds(), Text: fmt.Sprintf("no progress for %s", still.Round(time.Second))})
		}
	}
	return catalog.HealthOf(rs)
}

// healthSnapshot judges nodes, systems and services from one read of the
// catalog (a catalog.HealthView), memoizing node healths.
type healthSnapshot struct {
	*catalog.HealthView
	judged map[string]catalog.Health // node ID -> health, memoized
}

// snapshot reads what judging health needs: four catalog reads.
func (s *Server) snapshot(ctx context.Context) (*healthSnapshot, error) {
	hv, err := catalog.LoadHealthView(ctx, s.store, s.cfg.Now().UTC())
	if err != nil {
		return nil, err
	}
	return &healthSnapshot{HealthView: hv, judged: map[string]catalog.Health{}}, nil
}

// judge evaluates node n by th: its latest sample (disks kept by keep, when
// set) and its heartbeat age from its last heartbeat. A node that left is
// yellow; one marked dead is red; statistics older than the critical
// heartbeat age are not judged (stale), which is a yellow reason.
func (h *healthSnapshot) judge(n *catalog.Node, th catalog.Thresholds, keep func([]catalog.Disk) []catalog.Disk) catalog.Health {
	age := max(h.Now.Sub(n.LastSeen), 0)
	if n.State == catalog.NodeLeft {
		return catalog.HealthOf([]catalog.Reason{{Metric: catalog.ThresholdHeartbeat, Level: catalog.Yellow, Value: age.Seconds(),
			Text: fmt.Sprintf("left the cluster; last seen %s ago", round(age))}})
	}
	s, ok := h.Sample(n.ID)
	var hl catalog.Health
	var extra []catalog.Reason
	switch {
	case !ok:
		hl = catalog.Evaluate(catalog.Sample{}, age, th, h.Now)
	case h.Stale(s, th):
		hl = catalog.Evaluate(catalog.Sample{At: h.Now}, age, th, h.Now)
		stale := h.Now.Sub(s.At)
		extra = append(extra, catalog.Reason{Metric: catalog.ThresholdHeartbeat, Level: catalog.Yellow, Value: stale.Seconds(),
			Threshold: th.HeartbeatCrit.Seconds(), Text: fmt.Sprintf("host statistics last recorded %s ago", round(stale))})
	default:
		if keep != nil {
			s.Disks = keep(s.Disks)
		}
		hl = catalog.Evaluate(s, age, th, h.Now)
	}
	if n.State == catalog.NodeDead && hl.Worst(catalog.ThresholdHeartbeat) != catalog.Red {
		extra = append(extra, catalog.Reason{Metric: catalog.ThresholdHeartbeat, Level: catalog.Red, Value: age.Seconds(),
			Text: fmt.Sprintf("marked dead: not heard from for %s", round(age))})
	}
	return catalog.HealthOf(append(extra, hl.Reasons...))
}

func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

// node returns the health of node n by its own thresholds.
func (h *healthSnapshot) node(n *catalog.Node) catalog.Health {
	if hl, ok := h.judged[n.ID]; ok {
		return hl
	}
	hl := h.judge(n, h.Thresholds(catalog.NodeScope(n.ID)), nil)
	h.judged[n.ID] = hl
	return hl
}

// SystemHealth is a system's health: that of the host it runs on (by the
// system's thresholds, then its node's, then the defaults; free disk judged
// on the disk that holds the system's root). A system whose host is not
// known is green, with no host.
type SystemHealth struct {
	catalog.Health
	// Host is the node running on the system's host, when known.
	Host string `json:"host,omitempty"`
}

// system judges sys.
func (h *healthSnapshot) system(sys *catalog.System) SystemHealth {
	host := h.SystemHost(sys)
	if host == "" {
		return SystemHealth{Health: catalog.Health{Color: catalog.Green}}
	}
	n, ok := h.ByID[host]
	if !ok {
		return SystemHealth{Host: host, Health: catalog.HealthOf([]catalog.Reason{{Metric: ReasonHost, Level: catalog.Yellow,
			Text: "its host " + host + " has no registered node: its health is unknown"}})}
	}
	th := h.SystemThresholds(sys, host)
	root := sys.Settings.V[catalog.SettingRoot]
	hl := h.judge(n, th, func(ds []catalog.Disk) []catalog.Disk { return catalog.RootDisks(ds, root) })
	return SystemHealth{Host: host, Health: hl}
}

// service judges a service by its status and its node's heartbeat.
func (h *healthSnapshot) service(sv *catalog.Service) catalog.Health {
	var rs []catalog.Reason
	errText := func() string {
		if sv.LastError == "" {
			return ""
		}
		return ": " + sv.LastError
	}
	switch sv.Status {
	case catalog.ServiceRestarting:
		rs = append(rs, catalog.Reason{Metric: ReasonService, Level: catalog.Yellow, Value: float64(sv.Restarts),
			Text: fmt.Sprintf("restarting after it died (%d restarts)%s", sv.Restarts, errText())})
	case catalog.ServiceFailed:
		rs = append(rs, catalog.Reason{Metric: ReasonService, Level: catalog.Red, Value: float64(sv.Restarts),
			Text: fmt.Sprintf("keeps dying (%d restarts)%s", sv.Restarts, errText())})
	case catalog.ServiceStopped:
		rs = append(rs, catalog.Reason{Metric: ReasonService, Level: catalog.Yellow, Text: "stopped"})
	}
	if n, ok := h.ByID[sv.Node]; !ok {
		rs = append(rs, catalog.Reason{Metric: ReasonService, Level: catalog.Yellow, Text: "its node " + sv.Node + " is not registered"})
	} else if n.State != catalog.NodeLeft {
		for _, r := range h.node(n).Only(catalog.ThresholdHeartbeat).Reasons {
			if r.Level == catalog.Red {
				rs = append(rs, catalog.Reason{Metric: ReasonService, Level: catalog.Red, Text: "status unknown: node " + sv.Node + " " + r.Text})
				break
			}
		}
	}
	return catalog.HealthOf(rs)
}

// HealthCounts counts healths by color.
type HealthCounts struct {
	Green  int `json:"green"`
	Yellow int `json:"yellow"`
	Red    int `json:"red"`
}

func (c *HealthCounts) add(color catalog.Color) {
	switch color {
	case catalog.Red:
		c.Red++
	case catalog.Yellow:
		c.Yellow++
	default:
		c.Green++
	}
}

// RegionHealth is a region's health: the worst of its nodes (those that
// left do not count), with every node's reasons and the counts by color.
type RegionHealth struct {
	Region string         `json:"region"`
	Health catalog.Health `json:"health"`
	Nodes  HealthCounts   `json:"nodes"`
}

// NodeView is a node as the API shows it: the catalog's row and its health.
type NodeView struct {
	catalog.Node
	Health catalog.Health `json:"health"`
}

// ServiceView is a service as the API shows it, with its health.
type ServiceView struct {
	catalog.Service
	Health catalog.Health `json:"health"`
}

// SystemHealthView is a system's health in the health report.
type SystemHealthView struct {
	Name   string       `json:"name"`
	Kind   string       `json:"kind"`
	Region string       `json:"region"`
	Health SystemHealth `json:"health"`
}

// HealthReport is the answer of GET /health: the health of every region,
// node, system (that the caller may read) and service, and run counts.
type HealthReport struct {
	// Region is the region asked for ("" for all).
	Region string    `json:"region,omitempty"`
	At     time.Time `json:"at"`
	// Health is the worst of everything below, with the reasons (each
	// naming its subject).
	Health   catalog.Health          `json:"health"`
	Regions  []RegionHealth          `json:"regions"`
	Nodes    []NodeView              `json:"nodes"`
	Systems  []SystemHealthView      `json:"systems"`
	Services []ServiceView           `json:"services"`
	Runs     catalog.RunHealthCounts `json:"runs"`
}

// queryRegion reads the optional ?region= filter.
func queryRegion(c echo.Context) (string, error) {
	region := c.QueryParam("region")
	if region != "" && catalog.ValidateName("region", region) != nil {
		return "", badRequestField("region", "query parameter region=%q is not a valid region name", region)
	}
	return region, nil
}

// healthReport handles GET /health?region=: any authenticated caller.
func (s *Server) healthReport(c echo.Context) error {
	ctx := c.Request().Context()
	region, err := queryRegion(c)
	if err != nil {
		return err
	}
	h, err := s.snapshot(ctx)
	if err != nil {
		return fmt.Errorf("judge health: %w", err)
	}
	systems, err := s.store.ListSystems(ctx)
	if err != nil {
		return fmt.Errorf("list systems: %w", err)
	}
	services, err := s.store.ListServices(ctx, "")
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	counts, err := s.store.CountRunHealth(ctx, region, h.Now.Add(-FailedRunsWindowDefault))
	if err != nil {
		return fmt.Errorf("count runs: %w", err)
	}
	rep := HealthReport{Region: region, At: h.Now, Regions: []RegionHealth{}, Nodes: []NodeView{},
		Systems: []SystemHealthView{}, Services: []ServiceView{}, Runs: counts}
	byRegion := map[string]*RegionHealth{}
	var parts []catalog.Health
	inRegion := map[string]bool{}
	for i := range h.Nodes {
		n := &h.Nodes[i]
		if region != "" && n.Region != region {
			continue
		}
		inRegion[n.ID] = true
		hl := h.node(n)
		rep.Nodes = append(rep.Nodes, NodeView{Node: *n, Health: hl})
		if n.State == catalog.NodeLeft {
			continue
		}
		rh := byRegion[n.Region]
		if rh == nil {
			rh = &RegionHealth{Region: n.Region, Health: catalog.Health{Color: catalog.Green}}
			byRegion[n.Region] = rh
		}
		rh.Nodes.add(hl.Color)
		rh.Health = catalog.Combine(rh.Health, hl.About("node "+n.ID))
	}
	for _, rh := range byRegion {
		rep.Regions = append(rep.Regions, *rh)
		parts = append(parts, rh.Health)
	}
	sort.Slice(rep.Regions, func(i, j int) bool { return rep.Regions[i].Region < rep.Regions[j].Region })
	for i := range systems {
		sys := &systems[i]
		if (region != "" && sys.Region != region) || !s.principalMay(c, catalog.ActionRead, "system:"+sys.Name) {
			continue
		}
		sh := h.system(sys)
		rep.Systems = append(rep.Systems, SystemHealthView{Name: sys.Name, Kind: sys.Kind, Region: sys.Region, Health: sh})
		subject := "system " + sys.Name
		if sh.Host != "" {
			subject += " on host " + sh.Host
		}
		parts = append(parts, sh.Health.About(subject))
	}
	for i := range services {
		sv := &services[i]
		if region != "" && !inRegion[sv.Node] {
			continue
		}
		hl := h.service(sv)
		rep.Services = append(rep.Services, ServiceView{Service: *sv, Health: hl})
		parts = append(parts, hl.About("service "+sv.Node+"/"+sv.Name))
	}
	rep.Health = catalog.Combine(parts...)
	return c.JSON(http.StatusOK, rep)
}

// ThresholdLevels are the warning and critical levels of one metric.
type ThresholdLevels struct {
	Warn float64 `json:"warn"`
	Crit float64 `json:"crit"`
}

// EffectiveThreshold is the level that applies to a metric, and where it
// comes from: a scope of the catalog, or "built-in".
type EffectiveThreshold struct {
	ThresholdLevels
	From string `json:"from"`
}

// ThresholdBuiltIn names the built-in levels in EffectiveThreshold.From.
const ThresholdBuiltIn = "built-in"

// builtInLevels are catalog.ThresholdsDefault by catalog metric (heartbeat in seconds).
func builtInLevels() map[string]ThresholdLevels {
	d := catalog.ThresholdsDefault
	return map[string]ThresholdLevels{
		catalog.ThresholdCPU:       {d.CPUWarn, d.CPUCrit},
		catalog.ThresholdMemory:    {d.MemWarn, d.MemCrit},
		catalog.ThresholdDiskFree:  {d.DiskFreeWarnPct, d.DiskFreeCritPct},
		catalog.ThresholdDeviation: {d.DeviationWarn, d.DeviationCrit},
		catalog.ThresholdHeartbeat: {d.HeartbeatWarn.Seconds(), d.HeartbeatCrit.Seconds()},
	}
}

// ThresholdList is the answer of GET /thresholds: every threshold set, and the built-in levels.
type ThresholdList struct {
	BuiltIn    map[string]ThresholdLevels `json:"built_in"`
	Thresholds []catalog.HealthThreshold  `json:"thresholds"`
}

// ScopeThresholds is the answer of GET and PUT /thresholds/:scope: the
// thresholds the scope sets and, for every metric, the level in force for
// it (the scope's, else the default scope's, else the built-in one).
type ScopeThresholds struct {
	Scope      string                        `json:"scope"`
	Thresholds []catalog.HealthThreshold     `json:"thresholds"`
	Effective  map[string]EffectiveThreshold `json:"effective"`
}

// listThresholds handles GET /thresholds (admin).
func (s *Server) listThresholds(c echo.Context) error {
	rows, err := s.store.ListThresholds(c.Request().Context(), "")
	if err != nil {
		return fmt.Errorf("list thresholds: %w", err)
	}
	if rows == nil {
		rows = []catalog.HealthThreshold{}
	}
	return c.JSON(http.StatusOK, ThresholdList{BuiltIn: builtInLevels(), Thresholds: rows})
}

// pathScope reads and checks the :scope of a thresholds route.
func pathScope(c echo.Context) (string, error) {
	scope, err := url.PathUnescape(c.Param("scope"))
	if err != nil {
		return "", badRequestField("scope", "scope %q is not a valid path segment", c.Param("scope"))
	}
	if err := catalog.ValidateThresholdScope(scope); err != nil {
		return "", err
	}
	return scope, nil
}

// scopeThresholds builds the answer for scope.
func (s *Server) scopeThresholds(ctx context.Context, scope string) (ScopeThresholds, error) {
	rows, err := s.store.ListThresholds(ctx, "")
	if err != nil {
		return ScopeThresholds{}, fmt.Errorf("list thresholds: %w", err)
	}
	out := ScopeThresholds{Scope: scope, Thresholds: []catalog.HealthThreshold{}, Effective: map[string]EffectiveThreshold{}}
	for _, r := range rows {
		if r.Scope == scope {
			out.Thresholds = append(out.Thresholds, r)
		}
	}
	for m, l := range builtInLevels() {
		out.Effective[m] = EffectiveThreshold{ThresholdLevels: l, From: ThresholdBuiltIn}
	}
	var scopes []string
	if scope != catalog.ThresholdScopeDefault {
		scopes = append(scopes, scope)
	}
	for m, r := range catalog.ResolveThresholdRows(rows, scopes...) {
		out.Effective[m] = EffectiveThreshold{ThresholdLevels: ThresholdLevels{r.Warn, r.Crit}, From: r.Scope}
	}
	return out, nil
}

// getThresholds handles GET /thresholds/:scope (admin).
func (s *Server) getThresholds(c echo.Context) error {
	scope, err := pathScope(c)
	if err != nil {
		return err
	}
	out, err := s.scopeThresholds(c.Request().Context(), scope)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// putThresholds handles PUT /thresholds/:scope (admin): the body maps
// metrics to their levels, {"cpu": {"warn": 80, "crit": 90}}; the metrics
// given are set (all or none), the others stay.
func (s *Server) putThresholds(c echo.Context) error {
	scope, err := pathScope(c)
	if err != nil {
		return err
	}
	var body map[string]ThresholdLevels
	if err := decodeJSON(c.Request().Body, &body); err != nil {
		return err
	}
	if len(body) == 0 {
		return badRequest("give at least one metric: {\"cpu\": {\"warn\": 80, \"crit\": 90}}; metrics: %s", strings.Join(catalog.ThresholdMetrics, ", "))
	}
	by := principalOf(c).User.Name
	ths := make([]catalog.HealthThreshold, 0, len(body))
	for _, m := range catalog.ThresholdMetrics {
		if l, ok := body[m]; ok {
			ths = append(ths, catalog.HealthThreshold{Scope: scope, Metric: m, Warn: l.Warn, Crit: l.Crit, UpdatedBy: by})
		}
	}
	if len(ths) != len(body) {
		for m := range body {
			if !slices.Contains(catalog.ThresholdMetrics, m) {
				return badRequestField(m, "unknown threshold metric %q; use one of %s", m, strings.Join(catalog.ThresholdMetrics, ", "))
			}
		}
	}
	for i := range ths {
		if err := ths[i].Validate(); err != nil {
			var ve *catalog.ValidationError
			if errors.As(err, &ve) {
				return catalog.Invalid(ths[i].Metric+"."+ve.Field, "%s", ve.Message)
			}
			return err
		}
	}
	if err := s.store.SetThresholds(c.Request().Context(), ths); err != nil {
		return fmt.Errorf("set thresholds of %s: %w", scope, err)
	}
	out, err := s.scopeThresholds(c.Request().Context(), scope)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// deleteThresholds handles DELETE /thresholds/:scope?metric= (admin): one
// metric's threshold, or all of the scope's; 404 when there is none.
func (s *Server) deleteThresholds(c echo.Context) error {
	scope, err := pathScope(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if m := c.QueryParam("metric"); m != "" {
		if !slices.Contains(catalog.ThresholdMetrics, m) {
			return badRequestField("metric", "unknown threshold metric %q; use one of %s", m, strings.Join(catalog.ThresholdMetrics, ", "))
		}
		if err := s.store.DeleteThreshold(ctx, scope, m); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
	n, err := s.store.DeleteScopeThresholds(ctx, scope)
	if err != nil {
		return fmt.Errorf("delete thresholds of %s: %w", scope, err)
	}
	if n == 0 {
		return notFound("scope %s sets no threshold", scope)
	}
	return c.NoContent(http.StatusNoContent)
}

// latest returns a node's latest sample, nil when it never sent one.
func (h *healthSnapshot) latest(id string) *catalog.Sample {
	if s, ok := h.Sample(id); ok {
		return &s
	}
	return nil
}
