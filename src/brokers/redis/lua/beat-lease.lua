--[[ Take beat's lease, or renew it when this owner holds it.
  KEYS[1] lease ("<owner> <epoch>", expires by PX)   KEYS[2] epoch counter
  ARGV[1] owner (no spaces)   ARGV[2] time to live, ms
  Output: { 1 if ARGV[1] holds it now else 0, the lease value or false, ms until it lapses }
]]
local current = redis.call('GET', KEYS[1])
if current then
  if string.match(current, '^(%S+) ') == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return { 1, current, tonumber(ARGV[2]) }
  end
  return { 0, current, redis.call('PTTL', KEYS[1]) }
end
-- A new epoch for every new holder: the token a stale holder still carries no longer matches.
local value = ARGV[1] .. ' ' .. redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return { 1, value, tonumber(ARGV[2]) }
