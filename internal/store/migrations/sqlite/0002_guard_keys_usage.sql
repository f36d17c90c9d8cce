-- 0002 guard: API keys of `llmfence guard` and the audit log of the requests
-- it relayed. SQLite dialect; keep in step with
-- postgres/0002_guard_keys_usage.sql (differences: id column, TIMESTAMP vs
-- TIMESTAMPTZ, BLOB vs BYTEA).

-- One row per API key. The key itself is never stored: hash is the SHA-256
-- of the full key string. id is the short, non-secret lookup part of the key
-- (lf_<id>_<secret>); it stays the same when the key is rotated. A name
-- belongs to at most one key that is not revoked (partial unique index); a
-- revoked key keeps its row, so its usage records keep their meaning.
CREATE TABLE api_keys (
    id              TEXT      PRIMARY KEY,
    name            TEXT      NOT NULL,
    hash            BLOB      NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP,          -- NULL: never expires
    revoked_at      TIMESTAMP,          -- NULL: active
    rotated_at      TIMESTAMP,          -- NULL: never rotated
    last_used_at    TIMESTAMP,          -- NULL: never used
    admin           BOOLEAN   NOT NULL DEFAULT FALSE,
    allow_cloud     BOOLEAN   NOT NULL DEFAULT FALSE,
    models          TEXT      NOT NULL DEFAULT '[]', -- JSON array of model globs
    rpm             INTEGER   NOT NULL DEFAULT 0,    -- limits: 0 = tier default,
    tpm             INTEGER   NOT NULL DEFAULT 0,    -- negative = no limit
    concurrent      INTEGER   NOT NULL DEFAULT 0,
    daily_tokens    BIGINT    NOT NULL DEFAULT 0,
    monthly_tokens  BIGINT    NOT NULL DEFAULT 0
);

CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;
CREATE INDEX api_keys_name ON api_keys (name, created_at);

-- One row per request the guard answered (admitted or refused). key_id and
-- key_name are copied, without a foreign key, so the audit log outlives
-- any key.
CREATE TABLE usage_records (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    at                TIMESTAMP NOT NULL,
    key_id            TEXT      NOT NULL DEFAULT '',
    key_name          TEXT      NOT NULL DEFAULT '',
    client_ip         TEXT      NOT NULL DEFAULT '',
    method            TEXT      NOT NULL DEFAULT '',
    route             TEXT      NOT NULL DEFAULT '',
    model             TEXT      NOT NULL DEFAULT '',
    status            INTEGER   NOT NULL DEFAULT 0,
    prompt_tokens     BIGINT    NOT NULL DEFAULT 0,
    completion_tokens BIGINT    NOT NULL DEFAULT 0,
    latency_ms        BIGINT    NOT NULL DEFAULT 0,
    bytes_in          BIGINT    NOT NULL DEFAULT 0,
    bytes_out         BIGINT    NOT NULL DEFAULT 0,
    truncated         BOOLEAN   NOT NULL DEFAULT FALSE,
    client_gone       BOOLEAN   NOT NULL DEFAULT FALSE,
    error             TEXT      NOT NULL DEFAULT ''
);

CREATE INDEX usage_records_key_at ON usage_records (key_id, at);
CREATE INDEX usage_records_name_at ON usage_records (key_name, at);
CREATE INDEX usage_records_at ON usage_records (at);
