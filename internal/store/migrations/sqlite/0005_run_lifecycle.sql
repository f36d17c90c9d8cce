-- 0005 run lifecycle: who owns a running scan and when it last showed
-- signs of life (so a killed scanner's run is marked interrupted, not left
-- "running"), the scope a run covered (to compare runs of the same scope
-- and to decide what a completed run no longer sees), the scan definition
-- sharded runs hand to workers, and one row per shard of a sharded run.
-- SQLite dialect; keep in step with postgres/0005_run_lifecycle.sql.

ALTER TABLE runs ADD COLUMN heartbeat_at TIMESTAMP;
ALTER TABLE runs ADD COLUMN owner_host TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN owner_pid INTEGER NOT NULL DEFAULT 0;
-- scope_key: a hash of the normalised targets, exclusions and ports.
ALTER TABLE runs ADD COLUMN scope_key TEXT NOT NULL DEFAULT '';
-- spec: the scan definition as JSON (targets, exclusions, ports, seed,
-- rate, timeouts), for workers of a sharded run; '' for one-process scans.
ALTER TABLE runs ADD COLUMN spec TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN shards INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN schedule_id BIGINT NOT NULL DEFAULT 0;

CREATE INDEX runs_scope ON runs (scope_key, status, id);
CREATE INDEX runs_started ON runs (started_at);

-- One row per shard of a sharded run. Progress columns are the latest
-- report of the worker holding the shard; a retried shard starts again.
CREATE TABLE run_shards (
    run_id       BIGINT  NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    shard        INTEGER NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'pending', -- pending, running, done, failed
    attempts     INTEGER NOT NULL DEFAULT 0,
    worker       TEXT    NOT NULL DEFAULT '',
    total        BIGINT  NOT NULL DEFAULT 0,
    done         BIGINT  NOT NULL DEFAULT 0,
    open_ports   BIGINT  NOT NULL DEFAULT 0,
    services     BIGINT  NOT NULL DEFAULT 0,
    started_at   TIMESTAMP,
    finished_at  TIMESTAMP,
    heartbeat_at TIMESTAMP,
    error        TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, shard)
);

-- Run-wide rate limit state (GCRA): the theoretical arrival time, in
-- microseconds since the Unix epoch, of the next connection the run may
-- start. Workers lease slices of time from it, so the run's rate holds
-- however many workers share it.
CREATE TABLE run_rate (
    run_id BIGINT NOT NULL PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    tat_us BIGINT NOT NULL
);
