// Package workload is Weir's workload manager: one leader per region, elected
// through the catalog's lease row, turns pending runs into queued ones.
//
// While it holds the lease, the leader marks silent nodes dead, sends queued
// runs of gone workers back to pending, reaps expired run leases (retry or
// fail), aborts runs past their timeout, and then governs: it admits pending
// runs by priority then age within the region's maximum of active runs, each
// source and target system's maximum of concurrent runs and each live
// worker's free slots, writes each admitted run's execution plan and assigns
// it to a worker. A run it cannot admit keeps a hold reason that says why; a
// run that can never be planned is aborted with a clear error.
//
// The admission decision is the pure function Govern (governor.go), leader
// election lives in leader.go, and the loop that ties them to the catalog in
// manager.go. The manager wakes on the catalog's notifications (PostgreSQL
// LISTEN/NOTIFY, an in-process signal on SQLite) and on a polling tick, which
// stays the truth.
//
// workload imports only catalog and the standard library; cmd/weir hands it
// a *catalog.Store through the Store interface.
package workload
