--[[
  Release a lock (kombu's unacked_mutex) only if this holder still owns it.
  KEYS[1] the lock key
  ARGV[1] the token this holder set
  Reply: 1 when released, 0 when the lock had expired or another holder owns it.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
