-- Put one held message back on its queue, if it is still held (and, for a visibility-timeout
-- restore, still stale: a live holder may have renewed it since the scan).
-- KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] destination list.
-- ARGV[1] tag, ARGV[2] payload to push, ARGV[3] 'head' (RPUSH) or 'tail' (LPUSH),
-- ARGV[4] max index score allowed ('+inf' for an unconditional restore).
-- Reply: 1 when the message went back, 0 when it was no longer held (or was renewed meanwhile).
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if score and ARGV[4] ~= '+inf' and tonumber(score) > tonumber(ARGV[4]) then return 0 end
if ARGV[3] == 'head' then
  redis.call('RPUSH', KEYS[3], ARGV[2])
else
  redis.call('LPUSH', KEYS[3], ARGV[2])
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
