// Package client is the Go client of Weir's REST API (/api/v1): submit runs,
// follow them, read their events, tasks, plans and delivery manifests; manage
// systems, mappings (and preview them), user functions and schedules; read
// health, nodes, thresholds and alerts; and administer users, tokens and
// entitlements. Every operation of the server's OpenAPI document
// (GET /api/v1/openapi.json, see OpenAPI) has a method here, which a test
// checks against the document.
//
// Build a client with New, giving the server's base URL and an API token:
//
//	c, err := client.New("http://127.0.0.1:8080", token)
//	run, err := c.SubmitRun(ctx, client.SubmitRunRequest{
//		Mapping: "demo-trades",
//		Params:  map[string]string{"business_date": "2026-11-20"},
//	})
//	final, err := c.WaitRun(ctx, run.ID, time.Second, nil)
//
// Every method takes a context first. Errors the server answers are
// *APIError values (use errors.As) carrying the API's code, message, field
// and request id; errors.Is matches them to ErrInvalid, ErrUnauthenticated,
// ErrForbidden, ErrNotFound, ErrConflict, ErrTooLarge and ErrUnavailable by
// status (ErrNotFound, ErrConflict and ErrUnauthenticated are catalog's
// sentinels). AllRuns and AllAlerts walk every page of a listing as an
// iter.Seq2.
//
// Requests that are safe to repeat (GET, PUT, DELETE, and POST /runs, which
// always carries an idempotency key: the client makes one when the caller gives
// none) are retried with exponential backoff when the server answers 503 or the
// connection fails; any request is retried when the connection could not be
// opened at all, since then nothing reached the server. The API token is sent
// only in the Authorization header and never appears in an error or a log line.
//
// The package imports the standard library and catalog, for the wire types the
// server and the client share; it never imports the server's packages.
package client
