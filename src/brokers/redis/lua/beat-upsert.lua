--[[ Add or replace one beat entry; a new one gets a last run of now, an existing one keeps its own.
  KEYS[1] entries hash   KEYS[2] state hash   KEYS[3] version counter
  ARGV[1] name   ARGV[2] stored value   ARGV[3] now (ms)
  Output: 1 if the stored value changed, else 0
]]
redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3] .. ' 0')
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[3])
return 1
