-- KEYS: rpm, tpm, inflight, day, month
-- ARGV: now_ms (0 = server TIME), day_ttl_s, month_ttl_s
-- Returns {requests, tokens, in_flight, reserved, daily, monthly}.
local rpmK, tpmK, infK, dayK, monK = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = now_ms(ARGV[1])
reap(infK, tpmK, dayK, monK, now, ARGV[2], ARGV[3])
local nInf, reserved = inflight_state(infK)
return {
  sum(buckets(rpmK, now)), sum(buckets(tpmK, now)), nInf, reserved,
  tonumber(redis.call('GET', dayK) or '0'), tonumber(redis.call('GET', monK) or '0'),
}
