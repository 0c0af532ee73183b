package web

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// scheduleView is the data of a schedule's page.
type scheduleView struct {
	Schedule *client.Schedule
	// CanSubmit: the viewer may run it now (submit on its mapping).
	CanSubmit bool
	// CanManage: the viewer may edit it (manage and submit on its mapping).
	CanManage bool
}

// scheduleFormView is the data of the schedule forms.
type scheduleFormView struct {
	// Name is the schedule edited; "" for a new one.
	Name     string
	Mappings []client.Mapping
	Overlaps []string
	CatchUps []string
}

// schedulesPage lists the schedules the viewer may read.
func (s *Server) schedulesPage(c echo.Context) error {
	scs, err := s.apiFor(c).ListSchedules(c.Request().Context(), "")
	if err != nil {
		return err
	}
	sort.Slice(scs, func(i, j int) bool { return scs[i].Name < scs[j].Name })
	return s.render(c, http.StatusOK, "schedules", Page{Title: "Schedules", Nav: "schedules", Flash: flashOf(c), Data: scs})
}

// schedulePage shows a schedule, its next ticks and its latest processed ones.
func (s *Server) schedulePage(c echo.Context) error {
	ctx := c.Request().Context()
	api := s.apiFor(c)
	sc, err := api.GetSchedule(ctx, c.Param("name"))
	if err != nil {
		return err
	}
	may, err := s.entitled(ctx, c, api)
	if err != nil {
		return err
	}
	res := "mapping:" + sc.Mapping
	v := scheduleView{Schedule: sc, CanSubmit: may(catalog.ActionSubmit, res),
		CanManage: may(catalog.ActionManage, res) && may(catalog.ActionSubmit, res)}
	return s.render(c, http.StatusOK, "schedule", Page{Title: "Schedule " + sc.Name, Nav: "schedules", Flash: flashOf(c), Data: v})
}

// newScheduleForm shows the form of a new schedule (of ?mapping= when given).
func (s *Server) newScheduleForm(c echo.Context) error {
	form := url.Values{"mapping": {c.QueryParam("mapping")}, "time_zone": {"UTC"}, "enabled": {"1"},
		"overlap": {catalog.ScheduleOverlapDefault}, "catch_up": {catalog.ScheduleCatchUpDefault}}
	return s.scheduleForm(c, http.StatusOK, "", form, nil)
}

// editScheduleForm shows a schedule's form, filled.
func (s *Server) editScheduleForm(c echo.Context) error {
	sc, err := s.apiFor(c).GetSchedule(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	form := url.Values{"name": {sc.Name}, "mapping": {sc.Mapping}, "cron": {sc.Cron}, "time_zone": {sc.TimeZone},
		"params": {formatPairs(sc.Params.V)}, "priority": {strconv.Itoa(sc.Priority)}, "description": {sc.Description},
		"overlap": {sc.Overlap}, "catch_up": {sc.CatchUp}}
	if sc.Enabled {
		form.Set("enabled", "1")
	}
	return s.scheduleForm(c, http.StatusOK, sc.Name, form, nil)
}

func (s *Server) scheduleForm(c echo.Context, status int, name string, form url.Values, fe FieldErrors) error {
	ms, err := s.apiFor(c).ListMappings(c.Request().Context())
	if err != nil {
		return err
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	title := "New schedule"
	if name != "" {
		title = "Edit schedule " + name
	}
	return s.render(c, status, "schedule_form", Page{Title: title, Nav: "schedules", Form: form, Errors: fe,
		Data: scheduleFormView{Name: name, Mappings: ms, Overlaps: []string{catalog.OverlapSkip, catalog.OverlapQueue},
			CatchUps: []string{catalog.CatchUpLatest, catalog.CatchUpSkip}}})
}

// createSchedule creates a schedule from the form; the viewer becomes its owner.
func (s *Server) createSchedule(c echo.Context) error { return s.saveSchedule(c, "") }

// updateSchedule replaces a schedule's definition with the form.
func (s *Server) updateSchedule(c echo.Context) error { return s.saveSchedule(c, c.Param("name")) }

func (s *Server) saveSchedule(c echo.Context, name string) error {
	form, err := c.FormParams()
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "the form could not be read")
	}
	form.Del(FieldCSRF)
	if name != "" {
		form.Set("name", name)
	}
	enabled := form.Get("enabled") != ""
	req := client.ScheduleRequest{Name: strings.TrimSpace(form.Get("name")), Mapping: strings.TrimSpace(form.Get("mapping")),
		Cron: strings.TrimSpace(form.Get("cron")), TimeZone: strings.TrimSpace(form.Get("time_zone")),
		Description: strings.TrimSpace(form.Get("description")), Overlap: form.Get("overlap"), CatchUp: form.Get("catch_up"),
		Enabled: &enabled}
	fe := FieldErrors{}
	if req.Params, err = parsePairs(form.Get("params")); err != nil {
		fe["params"] = err.Error()
	}
	if v := strings.TrimSpace(form.Get("priority")); v != "" {
		if req.Priority, err = strconv.Atoi(v); err != nil {
			fe["priority"] = fmt.Sprintf("%q is not a whole number", v)
		}
	}
	if len(fe) > 0 {
		return s.scheduleForm(c, http.StatusBadRequest, name, form, fe)
	}
	api := s.apiFor(c)
	var sc *client.Schedule
	if name == "" {
		sc, err = api.CreateSchedule(c.Request().Context(), req)
	} else {
		sc, err = api.UpdateSchedule(c.Request().Context(), req)
	}
	if err != nil {
		if fe, status, ok := refusedFields(err); ok {
			return s.scheduleForm(c, status, name, form, prefixErrors(fe, "params"))
		}
		return err
	}
	return c.Redirect(http.StatusSeeOther, withFlash("/schedules/"+url.PathEscape(sc.Name), "Schedule "+sc.Name+" saved."))
}

// triggerSchedule runs a schedule now, as the viewer, and opens the run.
func (s *Server) triggerSchedule(c echo.Context) error {
	name := c.Param("name")
	run, err := s.apiFor(c).TriggerSchedule(c.Request().Context(), name,
		client.TriggerScheduleRequest{IdempotencyKey: strings.TrimSpace(c.FormValue(FieldIdempotencyKey))})
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, withFlash("/runs/"+run.ID, fmt.Sprintf("Schedule %s triggered: run %s.", name, run.ID)))
}
