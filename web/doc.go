// Package web is Weir's dashboard: server-rendered pages (html/template) and
// embedded static assets, served at / by weir server and weir dev next to
// the REST API (which keeps /api/, /healthz, /readyz and /metrics).
//
// web imports only catalog, the client library, echo and the standard
// library; never broker. Every page reads and writes through the REST API,
// called in process: Config.API is the broker's handler, and apiFor(c)
// returns a client.Client whose transport serves each call with it, sending
// the browser's session cookie, its address, and (on unsafe methods) the
// session's CSRF token. So a page gets exactly the API's validation,
// entitlement checks and error codes, and shows nothing the API would not.
//
// # Conventions: adding a page
//
// A page NAME (runs, systems, admin_users...) is three things:
//
//  1. web/NAME.go: its handlers and view types. A handler loads its data
//     with s.apiFor(c) (client.Client calls), builds a Page and calls
//     s.render(c, status, "NAME", Page{Title, Nav, Data...}). It returns
//     API errors as they are: handleError turns a *client.APIError into a
//     page with the API's status and message (401 redirects to /signin).
//     If client lacks a call, add it in a NEW file of package client.
//  2. web/templates/NAME.html: defines "content" (the page inside the
//     layout) and, when part of it updates itself, "live". Templates see a
//     Page: .Viewer, .CSRF, .Form, .Errors, .Flash, .Now, .Refresh, .Data.
//     Shared pieces live in templates/_*.html: {{template "health" COLOR}}
//     (icon + word + color, never color alone), {{template "severity" S}}.
//     No inline script or style (the CSP forbids them): classes from
//     static/weir.css only.
//  3. Routes in Server.routes (server.go), one block per page, with
//     s.signedIn on every page and s.role(roleX) where the role matters.
//     A GET route whose path is in navItems (nav.go) appears in the nav
//     by itself, for roles that may see it.
//
// # Forms
//
// A form posts (method="post") to a web route and carries {{csrf .}}, the
// hidden csrf_token field; checkCSRF refuses (403) any unsafe request
// without it, on every route. The handler calls the API; when the API
// refuses the data, formErrors(err) gives the error by field and the
// API's status, and the handler renders the form again with that status,
// Page.Form (the posted values, via {{formValue . "field"}}) and
// Page.Errors ({{fieldError . "field"}} next to the field, the "" key
// above the form). The API's field
// names (catalog.ValidationError.Field, the JSON field names) are the form's
// field names. On success, redirect (303) with withFlash(path, notice).
//
// # Live updates
//
// An element with data-live="/PATH/live" data-every="{{.Refresh}}" is
// refreshed by static/weir.js: it fetches the path with the X-Weir-Live
// header and replaces its content with the answer, which the handler
// renders with s.renderLive(c, "NAME", page) from the template's "live".
// Share the loader between the page and its live route (see overview.go).
//
// # Tests
//
// Pages are tested in process in package web_test (stack_test.go: a real
// broker on a real SQLite catalog behind the dashboard, over loopback
// HTTP), and in real Chromium against the weir binary in cmd/weir
// (web_test.go), with the helpers of cmd/weir/browser_test.go: newBrowser,
// browserSignIn, pollJS (wait for a condition without reloading) and
// screenshot (saved under WEIR_ARTIFACTS). A browser test skips without
// Chromium unless WEIR_REQUIRE_BROWSER is set.
//
// # Security
//
// Every answer carries a Content-Security-Policy allowing only 'self',
// X-Frame-Options DENY, nosniff and Referrer-Policy same-origin
// (headers.go). Pages hide what the viewer's role may not do
// ({{if .Viewer.Can "operator"}}), and the API still refuses it. Sessions
// are the API's: the weir_session cookie set by POST /api/v1/session
// (session.go reads it back with GET /api/v1/session on every request).
// Secrets (passwords, tokens, cookies) are never logged.
package web
