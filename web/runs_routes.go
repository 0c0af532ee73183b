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
}
