-- Acknowledge (or reject without requeue) a batch of delivery tags.
-- KEYS[1] unacked, KEYS[2] unacked_index; ARGV tags. Returns the tags that were no longer held
-- (someone restored them meanwhile: the message may run twice), or, in the one case the batched
-- path cannot name them, '' followed by how many there were.
local n = #ARGV
local removed = 0
for i = 1, n, 400 do removed = removed + redis.call('ZREM', KEYS[2], unpack(ARGV, i, math.min(i + 399, n))) end
if removed == n then
  -- Every tag was in the index: kombu and Celeriac add and remove index and hash entries together,
  -- so the hash holds them all too. One HDEL per 400 tags instead of one per tag.
  local deleted = 0
  for i = 1, n, 400 do deleted = deleted + redis.call('HDEL', KEYS[1], unpack(ARGV, i, math.min(i + 399, n))) end
  if deleted == n then return {} end
  return { '', tostring(n - deleted) }
end
-- Some tag had left the index (restored by a visibility-timeout sweep): find which, one at a time.
local missing = {}
for i = 1, n do
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 0 then missing[#missing + 1] = ARGV[i] end
end
return missing
