-- 0012 watched paths: model files and model stores on the serve host that
-- llmfence inspect checks on a period, with the latest result per file.

CREATE TABLE watched_paths (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    path         TEXT    NOT NULL UNIQUE,
    kind         TEXT    NOT NULL DEFAULT 'files', -- files, ollama-store
    every_hours  INTEGER NOT NULL DEFAULT 24,
    next_run     TIMESTAMP NOT NULL,
    last_run_at  TIMESTAMP,
    last_status  TEXT    NOT NULL DEFAULT '',
    files        INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    created_by   TEXT    NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL
);

CREATE TABLE path_results (
    path_id    BIGINT  NOT NULL REFERENCES watched_paths (id) ON DELETE CASCADE,
    file       TEXT    NOT NULL,
    checked_at TIMESTAMP NOT NULL,
    format     TEXT    NOT NULL DEFAULT '',
    size       BIGINT  NOT NULL DEFAULT 0,
    sha256     TEXT    NOT NULL DEFAULT '',
    verdict    TEXT    NOT NULL,
    severity   TEXT    NOT NULL DEFAULT 'none',
    doc        TEXT    NOT NULL, -- the inspect result as JSON
    PRIMARY KEY (path_id, file)
);
