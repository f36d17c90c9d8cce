-- KEYS: tpm, inflight, day, month
-- ARGV: now_ms (0 = server TIME), member ("id:amount"), amount, tokens,
--       day_ttl_s, month_ttl_s
-- Frees the reservation and charges tokens. A reservation already reclaimed
-- after its lease was charged its amount then, so only the excess is charged.
-- Returns 1 if the reservation was still held, 0 otherwise.
local tpmK, infK, dayK, monK = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = now_ms(ARGV[1])
local member, amount, tokens = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local dayttl, monttl = ARGV[5], ARGV[6]

reap(infK, tpmK, dayK, monK, now, dayttl, monttl)
local held = redis.call('ZREM', infK, member)
if held == 0 then tokens = tokens - amount end
charge(tpmK, dayK, monK, now, tokens, dayttl, monttl)
return held
