package client

// MappingRequestOf returns the request that stores m again: every part of
// its definition, to edit and send as its next version.
func MappingRequestOf(m *Mapping) MappingRequest {
	enabled := m.Enabled
	req := MappingRequest{Name: m.Name, Region: m.Region, Description: m.Description,
		Source: m.Source.V, Target: m.Target.V, Params: m.Params.V,
		MaxAttempts: m.MaxAttempts, TimeoutSeconds: m.TimeoutSeconds, Enabled: &enabled,
		Fields: m.Fields.V, Filter: m.Filter, WriteMode: m.WriteMode, Key: m.WriteKey.V,
		WatermarkColumn: m.WatermarkColumn, Tables: m.Tables.V, Timezone: m.Timezone}
	if bp := m.BadRows.V; bp != (BadRowPolicy{}) {
		req.BadRows = &bp
	}
	return req
}
