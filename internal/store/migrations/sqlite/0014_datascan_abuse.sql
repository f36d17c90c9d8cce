-- 0014 datascan results and guard abuse signals for llmfence serve.
-- datascan_runs: one row per datascan of a path on the serve host (queued
-- from the dashboard or the API), with its totals, the findings counted by
-- kind and the corpus-wide summaries as JSON; datascan_findings: the most
-- severe findings of a run (bounded per run), evidence already redacted by
-- package datascan. abuse_signals: guard abuse signals aggregated per
-- minute, key and kind (a count, not one row per request).

CREATE TABLE datascan_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    path         TEXT    NOT NULL,
    status       TEXT    NOT NULL, -- queued, running, finished, failed
    error        TEXT    NOT NULL DEFAULT '',
    requested_by TEXT    NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    started_at   TIMESTAMP,
    finished_at  TIMESTAMP,
    files        INTEGER NOT NULL DEFAULT 0,
    file_errors  INTEGER NOT NULL DEFAULT 0,
    records      BIGINT  NOT NULL DEFAULT 0,
    bytes        BIGINT  NOT NULL DEFAULT 0,
    findings     INTEGER NOT NULL DEFAULT 0,
    kept         INTEGER NOT NULL DEFAULT 0,
    worst        TEXT    NOT NULL DEFAULT 'none',
    counts       TEXT    NOT NULL DEFAULT '{}', -- findings by kind, JSON
    summaries    TEXT    NOT NULL DEFAULT '[]', -- datascan summaries, JSON
    warnings     TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX datascan_runs_created ON datascan_runs (created_at);

CREATE TABLE datascan_findings (
    run_id   BIGINT  NOT NULL REFERENCES datascan_runs (id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    sev_rank INTEGER NOT NULL,
    severity TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    file     TEXT    NOT NULL,
    record   BIGINT  NOT NULL,
    field    TEXT    NOT NULL DEFAULT '',
    detail   TEXT    NOT NULL DEFAULT '', -- trigger or category
    evidence TEXT    NOT NULL DEFAULT '',
    doc      TEXT    NOT NULL, -- the finding as JSON
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX datascan_findings_sev ON datascan_findings (run_id, sev_rank, seq);

CREATE TABLE abuse_signals (
    minute     TIMESTAMP NOT NULL,
    key_id     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    key_name   TEXT    NOT NULL DEFAULT '',
    action     TEXT    NOT NULL DEFAULT '',
    count      BIGINT  NOT NULL DEFAULT 0,
    suppressed BIGINT  NOT NULL DEFAULT 0,
    client_ip  TEXT    NOT NULL DEFAULT '',
    route      TEXT    NOT NULL DEFAULT '',
    detail     TEXT    NOT NULL DEFAULT '',
    categories TEXT    NOT NULL DEFAULT '',
    last_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (minute, key_id, kind)
);
CREATE INDEX abuse_signals_last ON abuse_signals (last_at);
