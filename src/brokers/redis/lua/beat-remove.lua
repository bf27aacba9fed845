--[[ Remove one beat entry and its last run.
  KEYS[1] entries hash   KEYS[2] state hash   KEYS[3] version counter
  ARGV[1] name
  Output: 1 if it existed, else 0
]]
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('INCR', KEYS[3])
return 1
