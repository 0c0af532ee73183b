package web

// runRoutes registers the runs, systems, mappings and schedules pages (one
// registration line in routes).
func (s *Server) runRoutes() {
	e := s.e
	e.GET("/runs", s.runsPage, s.signedIn)
	e.GET("/runs/:id", s.runPage, s.signedIn)
	e.GET("/runs/:id/live", s.runLive, s.signedIn)
	e.POST("/runs/:id/cancel", s.cancelRun, s.signedIn, s.role(roleOperator))
	e.POST("/runs/:id/retry", s.retryRun, s.signedIn, s.role(roleSubmitter))

	e.GET("/mappings", s.mappingsPage, s.signedIn)
	e.GET("/mappings/new", s.newMappingForm, s.signedIn, s.role(roleOperator))
	e.POST("/mappings", s.createMapping, s.signedIn, s.role(roleOperator))
	e.GET("/mappings/:name", s.mappingPage, s.signedIn)
	e.GET("/mappings/:name/edit", s.editMappingForm, s.signedIn, s.role(roleOperator))
	e.POST("/mappings/:name", s.updateMapping, s.signedIn, s.role(roleOperator))
	e.POST("/mappings/:name/runs", s.submitRun, s.signedIn, s.role(roleSubmitter))
	e.POST("/mappings/:name/preview", s.previewMapping, s.signedIn)

	e.GET("/systems", s.systemsPage, s.signedIn)
	e.GET("/systems/new", s.newSystemForm, s.signedIn, s.role(roleOperator))
	e.POST("/systems", s.createSystem, s.signedIn, s.role(roleOperator))
	e.GET("/systems/:name", s.systemPage, s.signedIn)
	e.GET("/systems/:name/edit", s.editSystemForm, s.signedIn, s.role(roleOperator))
	e.POST("/systems/:name", s.updateSystem, s.signedIn, s.role(roleOperator))

	e.GET("/schedules", s.schedulesPage, s.signedIn)
	e.GET("/schedules/new", s.newScheduleForm, s.signedIn, s.role(roleOperator))
	e.POST("/schedules", s.createSchedule, s.signedIn, s.role(roleOperator))
	e.GET("/schedules/:name", s.schedulePage, s.signedIn)
	e.GET("/schedules/:name/edit", s.editScheduleForm, s.signedIn, s.role(roleOperator))
	e.POST("/schedules/:name", s.updateSchedule, s.signedIn, s.role(roleOperator))
	e.POST("/schedules/:name/trigger", s.triggerSchedule, s.signedIn, s.role(roleSubmitter))
}
