--[[
  One chord header task done: Celery's RedisBackend.on_chord_part_return in one atomic step, on its key
  layout, so Python and TypeScript header tasks join the same chord.
  KEYS[1] celery-taskset-meta-<gid>.j  the outcomes: a sorted set scored by group_index (a list when
          result_chord_ordered is false)
  KEYS[2] celery-taskset-meta-<gid>.t  extra header members (Celery's add_to_chord)
  KEYS[3] celery-taskset-meta-<gid>.s  the header size, written by whoever published the chord
  KEYS[4] celery-taskset-meta-<gid>    the group saved for a header holding groups, if any
  ARGV[1] this outcome, [1, task_id, state, result] in the result serializer
  ARGV[2] its score: the group_index, or '+inf'
  ARGV[3] seconds the three keys live (result_expires; 0 = no expiry)
  ARGV[4] '1' for the sorted set, '0' for the list
  Reply: {count} while outcomes are missing (or no size is known yet); once the last one is in,
         {count, saved group or false, outcome, outcome, ...} in header order.
]]
local ordered = ARGV[4] == '1'
local count
if ordered then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  count = redis.call('ZCOUNT', KEYS[1], '-inf', '+inf')
else
  count = redis.call('RPUSH', KEYS[1], ARGV[1])
end
local extra = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local size = redis.call('GET', KEYS[3])
local expires = tonumber(ARGV[3])
if expires > 0 then
  redis.call('EXPIRE', KEYS[1], expires)
  redis.call('EXPIRE', KEYS[2], expires)
  redis.call('EXPIRE', KEYS[3], expires)
end
if not size then return {count} end
local total = (tonumber(size) or 0) + extra
if count ~= total then return {count} end
local outcomes
if ordered then
  outcomes = redis.call('ZRANGE', KEYS[1], 0, -1)
else
  outcomes = redis.call('LRANGE', KEYS[1], 0, total)
end
local reply = {count, redis.call('GET', KEYS[4])}
for i = 1, #outcomes do reply[i + 2] = outcomes[i] end
return reply
