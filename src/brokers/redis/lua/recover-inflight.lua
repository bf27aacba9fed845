-- Return the contents of a dead consumer's inflight list to the head of its queue.
-- KEYS[1] inflight list, KEYS[2] its owner's heartbeat key, KEYS[3] destination queue list. No ARGV.
-- Reply: how many messages went back (0 while the owner's heartbeat key exists).
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local n = 0
while true do
  local item = redis.call('RPOPLPUSH', KEYS[1], KEYS[3])
  if not item then break end
  n = n + 1
end
return n
