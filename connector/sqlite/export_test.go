package sqlite

// SetStageParams changes how many parameters one staging INSERT of c's
// loads takes, for the benchmark that chooses StageParamsDefault.
func SetStageParams(c *Conn, n int) { c.stageParams = n }
