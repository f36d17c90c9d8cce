-- KEYS: rpm, tpm, inflight, day, month
-- ARGV: now_ms (0 = server TIME), rpm, tpm, concurrent, daily, monthly,
--       want, id, lease_ms, day_ttl_s, month_ttl_s, inflight_ttl_ms, prompt
-- Returns {1, max_tokens, capped, prompt} or {0, reason, limit, retry_ms, ...}
-- (retry_ms -1: the prompt alone exceeds the limit).
-- Mirrors decide() in limits.go.
local rpmK, tpmK, infK, dayK, monK = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = now_ms(ARGV[1])
local lRPM, lTPM, lConc = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local lDay, lMon, want = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local id, lease, dayttl, monttl, infttl = ARGV[8], tonumber(ARGV[9]), ARGV[10], ARGV[11], ARGV[12]
local prompt = tonumber(ARGV[13]) or 0

reap(infK, tpmK, dayK, monK, now, dayttl, monttl)
local rpm = buckets(rpmK, now)
local tpm = buckets(tpmK, now)
local nInf, reserved = inflight_state(infK)
local usedDay = tonumber(redis.call('GET', dayK) or '0')
local usedMon = tonumber(redis.call('GET', monK) or '0')

local fails = {}
local function fail(reason, limit, retry)
  fails[#fails + 1] = reason
  fails[#fails + 1] = limit
  fails[#fails + 1] = retry
end

if lConc > 0 and nInf >= lConc then fail('concurrent', lConc, 1000) end
if lRPM > 0 then
  local count = sum(rpm)
  if count >= lRPM then
    local retry, freed = 1000, 0
    for _, b in ipairs(rpm) do
      freed = freed + b[2]
      if count - freed < lRPM then retry = b[1] * 1000 + WINDOW - now; break end
    end
    fail('rpm', lRPM, retry)
  end
end
local remaining = -1
local function minrem(r)
  if remaining < 0 or r < remaining then remaining = r end
end
if lTPM > 0 then
  local used = sum(tpm)
  local rem = lTPM - used - reserved - prompt
  if prompt >= lTPM then
    fail('tpm', lTPM, -1)
  elseif rem <= 0 then
    local retry, freed = 1000, 0
    for _, b in ipairs(tpm) do
      freed = freed + b[2]
      if lTPM - (used - freed) - reserved - prompt > 0 then retry = b[1] * 1000 + WINDOW - now; break end
    end
    fail('tpm', lTPM, retry)
  end
  minrem(rem)
end
if lDay > 0 then
  local rem = lDay - usedDay - reserved - prompt
  if prompt >= lDay then fail('daily', lDay, -1)
  elseif rem <= 0 then fail('daily', lDay, 0) end
  minrem(rem)
end
if lMon > 0 then
  local rem = lMon - usedMon - reserved - prompt
  if prompt >= lMon then fail('monthly', lMon, -1)
  elseif rem <= 0 then fail('monthly', lMon, 0) end
  minrem(rem)
end
if #fails > 0 then
  table.insert(fails, 1, 0)
  return fails
end

local maxTokens, capped, amount, held = 0, 0, 0, 0
if remaining >= 0 then
  capped = 1
  maxTokens = remaining
  if want > 0 and want < remaining then maxTokens = want end
  held = prompt
  amount = prompt + maxTokens
elseif want > 0 then
  maxTokens = want
end
redis.call('HINCRBY', rpmK, math.floor(now / 1000) + 1, 1)
redis.call('PEXPIRE', rpmK, WINDOW + 2000)
redis.call('ZADD', infK, now + lease, id .. ':' .. string.format('%d', amount))
redis.call('PEXPIRE', infK, infttl)
return { 1, maxTokens, capped, held }
