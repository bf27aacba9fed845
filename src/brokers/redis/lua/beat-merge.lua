--[[ Merge beat_schedule into the stored entries: write the ones that differ, drop config entries the
  schedule no longer lists, give new ones a last run of now; keep every other last run.
  KEYS[1] entries hash   KEYS[2] state hash   KEYS[3] version counter
  ARGV[1] now (ms)   ARGV[2] prefix of a config entry's stored value   ARGV[3..] name, stored value pairs
  Output: { added names, changed names, removed names }
]]
local wanted = {}
for i = 3, #ARGV, 2 do wanted[ARGV[i]] = true end
local added, changed, removed = {}, {}, {}
local current = redis.call('HGETALL', KEYS[1])
for i = 1, #current, 2 do
  local name, value = current[i], current[i + 1]
  if not wanted[name] and string.sub(value, 1, #ARGV[2]) == ARGV[2] then
    redis.call('HDEL', KEYS[1], name)
    redis.call('HDEL', KEYS[2], name)
    removed[#removed + 1] = name
  end
end
for i = 3, #ARGV, 2 do
  local name, value = ARGV[i], ARGV[i + 1]
  local old = redis.call('HGET', KEYS[1], name)
  if old ~= value then
    redis.call('HSET', KEYS[1], name, value)
    if old then changed[#changed + 1] = name else added[#added + 1] = name end
  end
  redis.call('HSETNX', KEYS[2], name, ARGV[1] .. ' 0')
end
if #added + #changed + #removed > 0 then redis.call('INCR', KEYS[3]) end
return { added, changed, removed }
