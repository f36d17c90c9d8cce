-- 0009 schedules: scans on cron schedules. The next run time lives here,
-- so a restart never loses a schedule; the job that starts a scheduled run
-- is unique per (schedule, slot), so two servers never start it twice.

CREATE TABLE schedules (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    cron        TEXT    NOT NULL,
    targets     TEXT    NOT NULL, -- JSON array of target specs
    exclude     TEXT    NOT NULL DEFAULT '[]',
    ports       TEXT    NOT NULL DEFAULT '',
    rate        REAL NOT NULL DEFAULT 2000,
    enabled     INTEGER NOT NULL DEFAULT 1,
    next_run    TIMESTAMP NOT NULL,
    last_run_id BIGINT  NOT NULL DEFAULT 0,
    last_run_at TIMESTAMP,
    missed      INTEGER NOT NULL DEFAULT 0, -- runs that did not start on time
    created_by  TEXT    NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
CREATE INDEX schedules_next ON schedules (enabled, next_run);
