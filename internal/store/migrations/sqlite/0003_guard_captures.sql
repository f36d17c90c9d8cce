-- 0003 guard: prompts and responses that `llmfence guard` captured (only
-- when capture is enabled), and the client certificate in the audit log.
-- SQLite dialect; keep in step with postgres/0003_guard_captures.sql
-- (differences: id column, TIMESTAMP vs TIMESTAMPTZ).

-- One row per captured request. prompt and response are stored only after
-- redaction (internal/redact): redactions is a JSON object of replacement
-- counts per pattern ID, e.g. {"email":2}, and redactor_version the version
-- of the pattern data that redacted them. *_truncated: the text was cut to
-- the configured size. Rows older than the retention period are deleted by
-- the guard. key_id and key_name are copied, as in usage_records.
CREATE TABLE guard_captures (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    at                 TIMESTAMP NOT NULL,
    key_id             TEXT      NOT NULL DEFAULT '',
    key_name           TEXT      NOT NULL DEFAULT '',
    client_ip          TEXT      NOT NULL DEFAULT '',
    route              TEXT      NOT NULL DEFAULT '',
    model              TEXT      NOT NULL DEFAULT '',
    status             INTEGER   NOT NULL DEFAULT 0,
    prompt             TEXT      NOT NULL DEFAULT '',
    response           TEXT      NOT NULL DEFAULT '',
    redactions         TEXT      NOT NULL DEFAULT '{}',
    prompt_truncated   BOOLEAN   NOT NULL DEFAULT FALSE,
    response_truncated BOOLEAN   NOT NULL DEFAULT FALSE,
    redactor_version   INTEGER   NOT NULL DEFAULT 0
);

CREATE INDEX guard_captures_at ON guard_captures (at);
CREATE INDEX guard_captures_name_at ON guard_captures (key_name, at);
CREATE INDEX guard_captures_key_at ON guard_captures (key_id, at);

-- The subject of the client's mutual-TLS certificate ('' without one).
ALTER TABLE usage_records ADD COLUMN client_cert TEXT NOT NULL DEFAULT '';
