-- Acknowledge (or reject without requeue) a batch of delivery tags.
-- KEYS[1] unacked, KEYS[2] unacked_index; ARGV tags. Returns the tags that were no longer held
-- (someone restored them meanwhile: the message may run twice).
local missing = {}
for i = 1, #ARGV do
  redis.call('ZREM', KEYS[2], ARGV[i])
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 0 then missing[#missing + 1] = ARGV[i] end
end
return missing
