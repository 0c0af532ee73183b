// Package catalog is Weir's single source of truth: the domain types (systems,
// mappings, runs, tasks, events, nodes, users, tokens, entitlements, groups,
// sessions, the audit log), their states and sentinel errors, and the Store
// that reads and writes them through gorm on PostgreSQL or SQLite.
//
// Every other Weir package depends on catalog; catalog imports only the
// standard library, gorm and the database drivers. All SQL lives here.
package catalog
