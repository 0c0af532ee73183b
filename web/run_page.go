package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// runEventsShown is how many of a run's latest events its page shows.
const runEventsShown = 200

// FieldIdempotencyKey is the hidden field of the forms that submit a run
// (retry, submit): a key made when the form is rendered, so that a double
// click submits one run.
const FieldIdempotencyKey = "idempotency_key"

func init() {
	// The run pages' template helpers (see render.go's templateFuncs).
	templateFuncs["runPercent"] = runPercent
	templateFuncs["stateColor"] = stateColor
	templateFuncs["stateIcon"] = stateIcon
	templateFuncs["taskPercent"] = taskPercent
	templateFuncs["newIdempotencyKey"] = client.NewIdempotencyKey
}

// runView is the data of a run's page.
type runView struct {
	Run    *client.Run
	Tasks  []client.Task
	Plan   *client.Plan
	Events []client.Event
	// EventsHidden counts the older events not shown.
	EventsHidden int
	Manifest     *client.Manifest
	// CanCancel and CanRetry: the viewer's role and entitlements allow it
	// (the API still decides).
	CanCancel, CanRetry bool
}

// runPage shows a run: its progress (live), tasks, plan, events, manifest
// and rejects, with the cancel and retry buttons the viewer may use.
func (s *Server) runPage(c echo.Context) error {
	v, err := s.loadRun(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "run", Page{Title: "Run " + v.Run.ID, Nav: "runs", Flash: flashOf(c), Data: v})
}

// runLive is the run page's live fragment.
func (s *Server) runLive(c echo.Context) error {
	v, err := s.loadRun(c)
	if err != nil {
		return err
	}
	return s.renderLive(c, "run", Page{Data: v})
}

func (s *Server) loadRun(c echo.Context) (*runView, error) {
	ctx := c.Request().Context()
	api := s.apiFor(c)
	id := c.Param("id")
	if _, _, err := catalog.ParseRunID(id); err != nil {
		return nil, echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("%q is not a run_id: a run_id is %d digits", id, catalog.RunIDLength))
	}
	run, err := api.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	v := &runView{Run: run}
	if v.Tasks, err = api.RunTasks(ctx, id); err != nil {
		return nil, err
	}
	if v.Plan, err = optional(api.RunPlan(ctx, id)); err != nil {
		return nil, err
	}
	if v.Manifest, err = optional(api.RunManifest(ctx, id)); err != nil {
		return nil, err
	}
	events, err := api.RunEvents(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	if n := len(events); n > runEventsShown {
		v.EventsHidden = n - runEventsShown
		events = events[n-runEventsShown:]
	}
	v.Events = events
	may, err := s.entitled(ctx, c, api)
	if err != nil {
		return nil, err
	}
	res := "mapping:" + run.Mapping
	v.CanCancel = !run.State.Terminal() && !run.CancelRequested && may(catalog.ActionCancel, res)
	v.CanRetry = run.State.Terminal() && may(catalog.ActionSubmit, res)
	return v, nil
}

// optional turns the API's 404 (not written yet) into nil.
func optional[T any](v *T, err error) (*T, error) {
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, nil
	}
	return v, err
}

// entitled returns a check of what the viewer may do, by the role and the
// entitlements the API reports for the session (GET /whoami): pages use it
// to hide buttons; the API still refuses what is not allowed.
func (s *Server) entitled(ctx context.Context, c echo.Context, api *client.Client) (func(action, resource string) bool, error) {
	who, err := api.WhoAmI(ctx)
	if err != nil {
		return nil, err
	}
	p := catalog.Principal{User: catalog.User{ID: who.ID, Name: who.Name, Role: who.Role}, Entitlements: who.Entitlements}
	ip, _ := netip.ParseAddr(who.ClientIP)
	return func(action, resource string) bool { return p.Allowed(action, resource, ip) }, nil
}

// cancelRun asks the API to cancel a run and goes back to its page.
func (s *Server) cancelRun(c echo.Context) error {
	id := c.Param("id")
	run, err := s.apiFor(c).CancelRun(c.Request().Context(), id)
	if err != nil {
		return err
	}
	msg := "Cancel requested: the run stops within seconds."
	if run.State == catalog.StateCanceled {
		msg = "Run canceled."
	}
	return c.Redirect(http.StatusSeeOther, withFlash("/runs/"+id, msg))
}

// retryRun submits the run's mapping again with the run's parameters and
// priority, as the viewer, and opens the new run.
func (s *Server) retryRun(c echo.Context) error {
	ctx := c.Request().Context()
	api := s.apiFor(c)
	old, err := api.GetRun(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	run, err := api.SubmitRun(ctx, client.SubmitRunRequest{Mapping: old.Mapping, Params: old.Params.V,
		Priority: old.Priority, IdempotencyKey: strings.TrimSpace(c.FormValue(FieldIdempotencyKey))})
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, withFlash("/runs/"+run.ID, fmt.Sprintf("Retry of run %s submitted.", old.ID)))
}

// taskPercent is how far a task is, 0 to 100.
func taskPercent(t client.Task) float64 {
	if t.State == catalog.TaskDone {
		return 100
	}
	pr := t.Progress
	switch {
	case pr.BytesTotal > 0:
		return min(100, 100*float64(pr.BytesDone)/float64(pr.BytesTotal))
	case pr.FilesTotal > 0:
		return min(100, 100*float64(pr.FilesDone)/float64(pr.FilesTotal))
	}
	return 0
}
