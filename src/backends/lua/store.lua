-- Store task states unless SUCCESS is already stored (Celery never overwrites a SUCCESS), then
-- PUBLISH each on its key's channel so waiting clients wake up. Many results share one call.
-- KEYS[i] celery-task-meta-<id>; ARGV[1] expiry seconds (0 = none); ARGV[i + 1] the meta JSON for KEYS[i].
local expires = tonumber(ARGV[1])
local stored = 0
for i = 1, #KEYS do
  local current = redis.call('GET', KEYS[i])
  local final = current and (string.find(current, '"status": "SUCCESS"', 1, true) or string.find(current, '"status":%s*"SUCCESS"'))
  if not final then
    local meta = ARGV[i + 1]
    if expires > 0 then
      redis.call('SETEX', KEYS[i], expires, meta)
    else
      redis.call('SET', KEYS[i], meta)
    end
    redis.call('PUBLISH', KEYS[i], meta)
    stored = stored + 1
  end
end
return stored
