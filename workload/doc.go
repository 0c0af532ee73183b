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
// Admission control also follows the hosts' health, as the profiler records
// it: no run is dispatched to or from a host critical on CPU, memory or free
// disk (judged by the thresholds of the system, then of its node, then the
// defaults, read afresh every tick), nor to a red worker. Such a run stays
// pending with a hold reason naming the host and the metric, and it is
// dispatched as soon as the condition clears or aborted after its mapping's
// max_hold, else Config.MaxHold (health.go, holds.go). One alert is raised
// per cause of holds (a red host, no healthy worker in the region), counting
// the runs it holds, not one per run. Among eligible workers
// the one on the data's host comes first, then spare capacity (free slots
// scaled by idle CPU). On every full tick the leader also raises and
// resolves alerts for nodes going red, silent or far from their baseline,
// and for runs that ended failed or aborted (alerts.go).
//
// The admission decision is the pure function Govern (governor.go), leader
// election lives in leader.go, and the loop that ties them to the catalog in
// manager.go. The manager wakes on the catalog's notifications (PostgreSQL
// LISTEN/NOTIFY, an in-process signal on SQLite) and on a polling tick, which
// stays the truth.
//
// workload imports catalog (with its pure health rules: catalog.Evaluate,
// Thresholds) and the standard library; cmd/weir hands it a *catalog.Store
// through the Store interface.
package workload
