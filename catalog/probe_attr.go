package catalog

// System attributes that record where a system's discovered attributes came
// from, beside those a probe reports (SystemNodeAttribute links the system
// to its agent node).
const (
	// SystemProbedAt is when the attributes were last discovered (RFC 3339, UTC).
	SystemProbedAt = "probed_at"
	// SystemProbedBy is the node that recorded the last probe.
	SystemProbedBy = "probed_by"
	// SystemProbeError is why the last probe failed, and SystemProbeErrorAt
	// when; the attributes of the last successful probe are kept beside them.
	SystemProbeError   = "probe_error"
	SystemProbeErrorAt = "probe_error_at"
)
