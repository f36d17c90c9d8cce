-- 0010 alerts: channels (webhook, Slack, Teams, e-mail) with their rules,
-- one row per delivery (queued in the transaction of the change that
-- caused it; its job retries it), the (host, rule) memory that keeps a
-- change from alerting twice, and digests waiting to be sent.

CREATE TABLE alert_channels (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,            -- webhook, slack, teams, email
    endpoint        TEXT    NOT NULL,            -- URL, or mailto:address
    min_severity    TEXT    NOT NULL DEFAULT 'high',
    rules           TEXT    NOT NULL DEFAULT '', -- comma-separated rule names; '' = all
    tags            TEXT    NOT NULL DEFAULT '', -- only services with one of these tags
    owners          TEXT    NOT NULL DEFAULT '', -- only services of these owners
    digest_minutes  INTEGER NOT NULL DEFAULT 0,  -- 0 = at once
    enabled         INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT    NOT NULL DEFAULT '',
    failures        INTEGER NOT NULL DEFAULT 0,  -- consecutive failed deliveries
    created_by      TEXT    NOT NULL DEFAULT '',
    created_at      TIMESTAMP NOT NULL
);

CREATE TABLE alert_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id  BIGINT  NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    created_at  TIMESTAMP NOT NULL,
    sent_at     TIMESTAMP,
    status      TEXT    NOT NULL DEFAULT 'pending', -- pending, sent, dead
    attempts    INTEGER NOT NULL DEFAULT 0,
    rule        TEXT    NOT NULL DEFAULT '',
    payload     TEXT    NOT NULL,                   -- the alert as JSON
    last_error  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX alert_deliveries_status ON alert_deliveries (status, id);

CREATE TABLE alert_seen (
    channel_id BIGINT  NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    host       TEXT    NOT NULL,
    port       INTEGER NOT NULL,
    rule       TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    last_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (channel_id, host, port, rule, subject)
);

CREATE TABLE alert_digest (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id BIGINT NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    queued_at  TIMESTAMP NOT NULL,
    alert      TEXT   NOT NULL
);
CREATE INDEX alert_digest_channel ON alert_digest (channel_id, id);
