-- 0004 guard: aggregated audit records and the audit spool's checkpoint.
-- PostgreSQL dialect; keep in step with sqlite/0004_guard_audit_spool.sql
-- (difference: TIMESTAMP vs TIMESTAMPTZ).

-- How many requests one usage record stands for. 1 for a request the
-- gateway forwarded; more for requests it refused without forwarding (no
-- key, a bad key, a limit), which are aggregated per client, key, status
-- and reason so that a flood of refused requests costs a bounded number of
-- rows. Totals count SUM(requests), not rows.
ALTER TABLE usage_records ADD COLUMN requests BIGINT NOT NULL DEFAULT 1;

-- How far each guard's local audit spool (an append-only file of records
-- acknowledged to clients) has been copied into usage_records. Updated in
-- the same transaction as the records it covers, so a replay after a crash
-- neither loses nor repeats a record. spool_id is the random ID of one
-- spool directory; segment and position name the next byte to copy.
CREATE TABLE guard_audit_spools (
    spool_id   TEXT   PRIMARY KEY,
    segment    BIGINT NOT NULL DEFAULT 0,
    position   BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL
);
