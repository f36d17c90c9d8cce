-- 0006 probe: `llmfence probe` runs and their verdicts, linked to the
-- host:port and model that scan knows (hosts.host/port, the model name and
-- digest of the scanned service). SQLite dialect; keep in step with
-- postgres/0006_probe_runs.sql (differences: id columns, TIMESTAMP vs
-- TIMESTAMPTZ, BIGINT foreign keys).

-- One row per probe run. target is the base URL probed; host and port are
-- its parts, for joins with hosts. journal is the JSON Lines journal file
-- that --resume continues (answers stay in the journal, not here).
-- worst_rank orders runs by their worst verdict (service.Severity rank).
CREATE TABLE probe_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP,
    status       TEXT      NOT NULL,
    error        TEXT      NOT NULL DEFAULT '',
    target       TEXT      NOT NULL,
    host         TEXT      NOT NULL,
    port         INTEGER   NOT NULL,
    api          TEXT      NOT NULL DEFAULT '',
    model        TEXT      NOT NULL,
    model_digest TEXT      NOT NULL DEFAULT '',
    baseline     TEXT      NOT NULL DEFAULT '',
    judge        TEXT      NOT NULL DEFAULT '',
    suites       TEXT      NOT NULL DEFAULT '[]', -- JSON array of strings
    journal      TEXT      NOT NULL DEFAULT '',
    args         TEXT      NOT NULL DEFAULT '[]', -- JSON array of strings
    tool_version TEXT      NOT NULL DEFAULT '',
    requests     INTEGER   NOT NULL DEFAULT 0,
    complete     BOOLEAN   NOT NULL DEFAULT FALSE,
    worst        TEXT      NOT NULL DEFAULT 'none',
    worst_rank   INTEGER   NOT NULL DEFAULT 0
);

CREATE INDEX probe_runs_host_port ON probe_runs (host, port, id);
CREATE INDEX probe_runs_model ON probe_runs (model, id);

-- One row per suite of a run: its verdict, severity and the whole summary
-- record (the JSON of --format json's "summary" line).
CREATE TABLE probe_verdicts (
    run_id   INTEGER    NOT NULL REFERENCES probe_runs (id) ON DELETE CASCADE,
    suite    TEXT      NOT NULL,
    verdict  TEXT      NOT NULL,
    severity TEXT      NOT NULL,
    summary  TEXT      NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, suite)
);
