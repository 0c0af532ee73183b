// Package monitor watches the services of one node and tells people when
// something needs them:
//
//   - Presence keeps the node's row in the catalog alive, so that the workload
//     manager and operators see which processes run where.
//   - Supervisor runs the node's services (in-process components such as the
//     worker or the profiler, and external commands configured for the node
//     by flags or in the catalog, which it reads periodically),
//     restarts what dies with exponential backoff, records each service's
//     status in the catalog, raises a warning at each restart and a critical
//     alert when one keeps dying.
//   - Notifier delivers alerts from the catalog to webhooks (signed JSON
//     POSTs, retried with backoff), safely from several nodes at once.
//
// monitor imports only the standard library and catalog; cmd/weir hands it a
// *catalog.Store through the small Store interfaces declared here.
package monitor
