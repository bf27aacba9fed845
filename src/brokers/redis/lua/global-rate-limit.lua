-- A global (all workers) rate limit: one shared token bucket per task name, kept as GCRA's
-- "theoretical arrival time" (ms) of the next free token. Redis's clock is the only clock, so
-- workers on different hosts agree.
-- KEYS[1] bucket key; ARGV[1] ms per token; ARGV[2] capacity (burst).
-- Returns 0 when a token was taken, else how many ms to wait before asking again.
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local allowed_at = tat - (capacity - 1) * interval
if allowed_at > now then
  return math.max(1, math.ceil(allowed_at - now))
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.3f', next_tat), 'PX', math.ceil(next_tat - now) + 1000)
return 0
