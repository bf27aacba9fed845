-- Store a task state unless SUCCESS is already stored (Celery never overwrites a SUCCESS), then
-- PUBLISH it on the key's channel so waiting clients wake up.
-- KEYS[1] celery-task-meta-<id>; ARGV[1] meta JSON, ARGV[2] expiry seconds (0 = none).
local current = redis.call('GET', KEYS[1])
if current and string.find(current, '"status":%s*"SUCCESS"') then return 0 end
if tonumber(ARGV[2]) > 0 then
  redis.call('SETEX', KEYS[1], ARGV[2], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
