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
}
