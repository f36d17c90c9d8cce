// Package jobs runs llmfence serve's background work on River
// (github.com/riverqueue/river): scan shards, applying finished runs to the
// inventory, scheduled scans, alert deliveries, and periodic maintenance
// (stale runs, inventory ages, acceptance expiry, SLA breaches, retention).
//
// # Back ends
//
// With SQLite (the embedded default) River uses its riversqlite driver on
// the same database file as the store, through a connection of its own
// (SQLite has one writer; River polls instead of listening), and the jobs
// run inside `llmfence serve`. SQLite is single-node: one machine. With
// PostgreSQL River uses riverpgxv5, and any number of `llmfence worker`
// processes on any number of machines take scan shards from the same
// queue. Jobs that must exist if and only if a store change does (a shard
// job and its shard row, an alert and the change that raised it) are
// inserted inside the store's transaction (riversqlite, or
// riverdatabasesql on PostgreSQL's database/sql handle).
//
// # Timeouts and rescue
//
// River rescues a job whose worker died once it has been running longer
// than RescueStuckJobsAfter and its kind's timeout. Every kind here sets
// its own timeout: a scan shard's is computed when the run is planned from
// its size and rate (so a long shard is not cut short), and the client's
// rescue horizon is a few minutes, so a SIGKILLed worker's shard runs again
// within minutes (Config.RescueAfter).
//
// # Shards
//
// A run of P pairs is cut into shards of the same cyclic-group walk
// (targets.Set.WalkShard), sized so each takes about Config.ShardTarget at
// the run's rate. Results are saved keyed by run and target (a retried
// shard overwrites, never duplicates), progress is summed over the shard
// rows, the run's rate is shared through leases on run_rate, and the last
// shard to finish ends the run in the transaction that marks it done.
package jobs
