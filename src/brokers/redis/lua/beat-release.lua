--[[ Give up beat's lease if this owner holds it.
  KEYS[1] lease   ARGV[1] owner
  Output: 1 if released, else 0
]]
local current = redis.call('GET', KEYS[1])
if current and string.match(current, '^(%S+) ') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
