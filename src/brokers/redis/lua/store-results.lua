-- Store task states unless SUCCESS is already stored (Celery never overwrites a SUCCESS), then
-- PUBLISH each on its key's channel so waiting clients wake up. Many results share one call.
-- KEYS[i] celery-task-meta-<id>; ARGV[1] expiry seconds (0 = none); ARGV[i + 1] the meta JSON for KEYS[i].
-- Reply: how many states were stored (a refused SUCCESS overwrite is not counted).
--
-- SET ... GET writes and returns what was there in one call. In the rare case that was a SUCCESS,
-- it is put back at once (atomically: nothing runs between the two) and nothing is published; the
-- only trace is that its expiry starts again.
local expires = tonumber(ARGV[1])
local stored = 0
for i = 1, #KEYS do
  local meta = ARGV[i + 1]
  local old
  if expires > 0 then
    old = redis.call('SET', KEYS[i], meta, 'EX', expires, 'GET')
  else
    old = redis.call('SET', KEYS[i], meta, 'GET')
  end
  if old and (string.find(old, '"status": "SUCCESS"', 1, true) or string.find(old, '"status":%s*"SUCCESS"')) then
    if expires > 0 then
      redis.call('SET', KEYS[i], old, 'EX', expires)
    else
      redis.call('SET', KEYS[i], old)
    end
  else
    redis.call('PUBLISH', KEYS[i], meta)
    stored = stored + 1
  end
end
return stored
