-- 0007 inventory: what llmfence serve knows over time. One row per service
-- (host:port) and per finding ever seen, each with a stable fingerprint;
-- an event log that is both every host's timeline and the change feed
-- (cursor = seq); pre-computed counts for the dashboard; and the ledger of
-- runs already applied, so applying a run twice changes nothing.

CREATE TABLE inv_services (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    fp             TEXT    NOT NULL UNIQUE,
    host           TEXT    NOT NULL,
    port           INTEGER NOT NULL,
    hostname       TEXT    NOT NULL DEFAULT '',
    product        TEXT    NOT NULL DEFAULT '',
    version        TEXT    NOT NULL DEFAULT '',
    auth           TEXT    NOT NULL DEFAULT '',
    tls            INTEGER NOT NULL DEFAULT 0,
    risk           TEXT    NOT NULL DEFAULT 'none',
    risk_rank      INTEGER NOT NULL DEFAULT 0,
    model_count    INTEGER NOT NULL DEFAULT 0,
    open_findings  INTEGER NOT NULL DEFAULT 0,
    state          TEXT    NOT NULL DEFAULT 'online', -- online, offline, stale, expired
    state_since    TIMESTAMP NOT NULL,
    first_seen     TIMESTAMP NOT NULL,
    last_seen      TIMESTAMP NOT NULL,
    first_run      BIGINT  NOT NULL DEFAULT 0,
    last_run       BIGINT  NOT NULL DEFAULT 0,
    snoozed_until  TIMESTAMP,
    owner          TEXT    NOT NULL DEFAULT '',
    tags           TEXT    NOT NULL DEFAULT '',
    doc            TEXT    NOT NULL DEFAULT '', -- latest service JSON
    changed_seq    BIGINT  NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX inv_services_addr ON inv_services (host, port);
CREATE INDEX inv_services_state ON inv_services (state, risk_rank);
CREATE INDEX inv_services_risk ON inv_services (risk_rank, id);
CREATE INDEX inv_services_last_seen ON inv_services (last_seen);
CREATE INDEX inv_services_product ON inv_services (product);
CREATE INDEX inv_services_owner ON inv_services (owner);

CREATE TABLE inv_findings (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    fp                  TEXT    NOT NULL UNIQUE,
    service_id          BIGINT  NOT NULL REFERENCES inv_services (id) ON DELETE CASCADE,
    host                TEXT    NOT NULL,
    port                INTEGER NOT NULL,
    product             TEXT    NOT NULL DEFAULT '',
    finding_id          TEXT    NOT NULL,
    severity            TEXT    NOT NULL,
    severity_rank       INTEGER NOT NULL,
    title               TEXT    NOT NULL,
    detail              TEXT    NOT NULL DEFAULT '',
    status              TEXT    NOT NULL DEFAULT 'open', -- open, acknowledged, accepted, resolved
    stale               INTEGER NOT NULL DEFAULT 0,      -- a partial scan could not confirm it
    first_seen          TIMESTAMP NOT NULL,
    last_seen           TIMESTAMP NOT NULL,
    last_run            BIGINT  NOT NULL DEFAULT 0,
    opened_at           TIMESTAMP NOT NULL,
    resolved_at         TIMESTAMP,
    resolved_run        BIGINT  NOT NULL DEFAULT 0,
    resolution          TEXT    NOT NULL DEFAULT '',
    sla_due             TIMESTAMP,
    sla_breached        INTEGER NOT NULL DEFAULT 0,
    ack_by              TEXT    NOT NULL DEFAULT '',
    ack_at              TIMESTAMP,
    ack_note            TEXT    NOT NULL DEFAULT '',
    accept_state        TEXT    NOT NULL DEFAULT '', -- '', requested, approved
    accept_reason       TEXT    NOT NULL DEFAULT '',
    accept_until        TIMESTAMP,
    accept_requested_by TEXT    NOT NULL DEFAULT '',
    accept_requested_at TIMESTAMP,
    accept_approved_by  TEXT    NOT NULL DEFAULT '',
    accept_approved_at  TIMESTAMP,
    accept_warned       INTEGER NOT NULL DEFAULT 0,
    owner               TEXT    NOT NULL DEFAULT '',
    tags                TEXT    NOT NULL DEFAULT '',
    changed_seq         BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX inv_findings_status ON inv_findings (status, severity_rank, id);
CREATE INDEX inv_findings_service ON inv_findings (service_id);
CREATE INDEX inv_findings_fid ON inv_findings (finding_id);
CREATE INDEX inv_findings_accept ON inv_findings (accept_state, accept_until);
CREATE INDEX inv_findings_sla ON inv_findings (sla_breached, sla_due);

-- Every change, in order: a host's timeline (WHERE service_id = ?) and the
-- change feed (WHERE seq > cursor). Writers take the inventory lock, so seq
-- order is commit order and a cursor never skips a late commit.
CREATE TABLE inv_events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TIMESTAMP NOT NULL,
    kind       TEXT    NOT NULL,
    service_id BIGINT  NOT NULL DEFAULT 0,
    finding_id BIGINT  NOT NULL DEFAULT 0,
    run_id     BIGINT  NOT NULL DEFAULT 0,
    host       TEXT    NOT NULL DEFAULT '',
    port       INTEGER NOT NULL DEFAULT 0,
    actor      TEXT    NOT NULL DEFAULT '',
    severity   TEXT    NOT NULL DEFAULT '',
    summary    TEXT    NOT NULL DEFAULT '',
    detail     TEXT    NOT NULL DEFAULT '' -- JSON
);
CREATE INDEX inv_events_service ON inv_events (service_id, seq);
CREATE INDEX inv_events_kind ON inv_events (kind, seq);

CREATE TABLE inv_counts (
    name TEXT   NOT NULL PRIMARY KEY,
    n    BIGINT NOT NULL
);

CREATE TABLE inv_runs (
    run_id     BIGINT NOT NULL PRIMARY KEY,
    status     TEXT   NOT NULL,
    complete   INTEGER NOT NULL,
    applied_at TIMESTAMP NOT NULL,
    observed   BIGINT NOT NULL DEFAULT 0,
    closed     BIGINT NOT NULL DEFAULT 0,
    staled     BIGINT NOT NULL DEFAULT 0
);

-- A one-row lock table: inventory writers update it first in their
-- transaction (PostgreSQL row lock; SQLite's write lock is global anyway).
CREATE TABLE inv_lock (id INTEGER NOT NULL PRIMARY KEY, n BIGINT NOT NULL);
INSERT INTO inv_lock (id, n) VALUES (1, 0);
