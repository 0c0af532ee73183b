// Package profiler measures the host a Weir node runs on and judges its health.
//
// On every node a Profiler samples, every few seconds, CPU busy, memory used,
// free space of each configured disk path, disk and network throughput, load
// averages and Weir's own process (CPU, RSS, open files, goroutines). It
// keeps the node's latest sample fresh in the catalog (one row per node,
// upserted each sample), writes raw samples in batches, rolls them up into
// per-minute and per-hour aggregates, folds those into a baseline per hour of
// the week (mean and variance, Welford), deletes what passed its retention,
// and scores every new sample's deviation from the baseline. Each node rolls
// up its own rows; every node prunes expired rows of all nodes, and forgets
// nodes silent for long (idempotent and cheap), so no leader is needed and
// nodes that are gone leave nothing behind.
//
// The samples it records are judged by the catalog's pure health rules
// (catalog.Evaluate, catalog.Thresholds): health is domain logic, shared by
// the workload manager and the broker, which do not import this package.
// NodeHealths applies those rules to every node's latest sample.
//
// The package imports catalog and gopsutil only; cmd/weir hands it a
// *catalog.Store as its Store.
package profiler
