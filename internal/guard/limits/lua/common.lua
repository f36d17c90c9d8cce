-- llmfence guard limits: helpers shared by every script (prepended).
-- Data model of one API key (all keys share a {hash tag}, so one slot):
--   rpm      HASH  second -> admitted requests in that second
--   tpm      HASH  second -> committed tokens in that second
--   inflight ZSET  "id:amount" scored by lease deadline (ms)
--   day      STRING tokens committed in the current day
--   month    STRING tokens committed in the current month
-- A bucket second s counts while s*1000 + WINDOW > now (ms); see limits.go.
if redis.replicate_commands then pcall(redis.replicate_commands) end

local WINDOW = 60000

local function now_ms(arg)
  local n = tonumber(arg)
  if n and n > 0 then return n end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- live buckets of a window hash in ascending order; dead fields are deleted
local function buckets(key, now)
  local raw = redis.call('HGETALL', key)
  local live, dead = {}, {}
  for i = 1, #raw, 2 do
    local sec = tonumber(raw[i])
    if sec * 1000 + WINDOW > now then
      live[#live + 1] = { sec, tonumber(raw[i + 1]) }
    else
      dead[#dead + 1] = raw[i]
    end
  end
  if #dead > 0 then redis.call('HDEL', key, unpack(dead)) end
  table.sort(live, function(a, b) return a[1] < b[1] end)
  return live
end

local function sum(bs)
  local s = 0
  for _, b in ipairs(bs) do s = s + b[2] end
  return s
end

local function charge(tpm, day, month, now, tokens, dayttl, monthttl)
  if tokens <= 0 then return end
  redis.call('HINCRBY', tpm, math.floor(now / 1000) + 1, tokens)
  redis.call('PEXPIRE', tpm, WINDOW + 2000)
  redis.call('INCRBY', day, tokens)
  redis.call('EXPIRE', day, dayttl)
  redis.call('INCRBY', month, tokens)
  redis.call('EXPIRE', month, monthttl)
end

local function amount_of(member)
  return tonumber(string.match(member, ':(%d+)$')) or 0
end

-- reclaim reservations past their lease: charge their full amount
local function reap(inflight, tpm, day, month, now, dayttl, monthttl)
  local expired = redis.call('ZRANGEBYSCORE', inflight, '-inf', now)
  if #expired == 0 then return end
  local total = 0
  for _, m in ipairs(expired) do total = total + amount_of(m) end
  redis.call('ZREMRANGEBYSCORE', inflight, '-inf', now)
  charge(tpm, day, month, now, total, dayttl, monthttl)
end

local function inflight_state(inflight)
  local members = redis.call('ZRANGE', inflight, 0, -1)
  local reserved = 0
  for _, m in ipairs(members) do reserved = reserved + amount_of(m) end
  return #members, reserved
end
