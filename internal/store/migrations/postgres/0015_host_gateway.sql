-- 0015 what fences a host: the gateway recognised in front of the model
-- server at its latest observation (llmfence-guard, litellm, nginx, caddy,
-- basic-auth; '' when none was seen), so `hosts` can list and filter the
-- inventory by it. Hosts recorded before this keep '' until scanned again.

ALTER TABLE hosts ADD COLUMN gateway TEXT NOT NULL DEFAULT '';
