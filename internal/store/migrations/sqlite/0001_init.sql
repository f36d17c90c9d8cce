-- 0001 init: scan runs, the services each run found, their findings, and
-- the per-host:port history. SQLite dialect; keep in step with
-- postgres/0001_init.sql (differences: id columns, TIMESTAMP vs TIMESTAMPTZ).

CREATE TABLE runs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at       TIMESTAMP NOT NULL,
    finished_at      TIMESTAMP,
    status           TEXT      NOT NULL,
    error            TEXT      NOT NULL DEFAULT '',
    targets          TEXT      NOT NULL DEFAULT '[]', -- JSON array of strings
    ports            TEXT      NOT NULL DEFAULT '',
    args             TEXT      NOT NULL DEFAULT '[]', -- JSON array of strings
    tool_version     TEXT      NOT NULL DEFAULT '',
    addresses_probed BIGINT    NOT NULL DEFAULT 0,
    open_ports       BIGINT    NOT NULL DEFAULT 0
);

CREATE INDEX runs_status ON runs (status, id);

CREATE TABLE services (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id        INTEGER   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    host          TEXT      NOT NULL,
    port          INTEGER   NOT NULL,
    hostname      TEXT      NOT NULL DEFAULT '',
    product       TEXT      NOT NULL,
    version       TEXT      NOT NULL,
    auth          TEXT      NOT NULL,
    risk          TEXT      NOT NULL,
    risk_rank     INTEGER   NOT NULL,
    model_count   INTEGER   NOT NULL,
    finding_count INTEGER   NOT NULL,
    scanned_at    TIMESTAMP NOT NULL,
    doc           TEXT      NOT NULL, -- the service.Service JSON document
    UNIQUE (run_id, host, port)
);

CREATE INDEX services_host_port ON services (host, port);
CREATE INDEX services_product ON services (product);

CREATE TABLE findings (
    service_id    INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    run_id        INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    host          TEXT    NOT NULL,
    port          INTEGER NOT NULL,
    finding_id    TEXT    NOT NULL,
    severity      TEXT    NOT NULL,
    severity_rank INTEGER NOT NULL,
    title         TEXT    NOT NULL,
    detail        TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX findings_run ON findings (run_id, severity_rank);
CREATE INDEX findings_service ON findings (service_id);
CREATE INDEX findings_id ON findings (finding_id);

-- One row per host:port ever seen. Descriptive columns come from the run
-- with the latest last_seen. first_run/last_run are run ids, deliberately
-- without a foreign key so pruning old runs keeps the history.
CREATE TABLE hosts (
    host          TEXT      NOT NULL,
    port          INTEGER   NOT NULL,
    hostname      TEXT      NOT NULL DEFAULT '',
    product       TEXT      NOT NULL,
    version       TEXT      NOT NULL,
    auth          TEXT      NOT NULL,
    risk          TEXT      NOT NULL,
    risk_rank     INTEGER   NOT NULL,
    model_count   INTEGER   NOT NULL,
    finding_count INTEGER   NOT NULL,
    top_finding   TEXT      NOT NULL DEFAULT '',
    first_seen    TIMESTAMP NOT NULL,
    last_seen     TIMESTAMP NOT NULL,
    first_run     BIGINT    NOT NULL,
    last_run      BIGINT    NOT NULL,
    PRIMARY KEY (host, port)
);

CREATE INDEX hosts_last_seen ON hosts (last_seen);
CREATE INDEX hosts_product ON hosts (product);
