-- Refresh the delivery time of messages this worker still holds, so visibility-timeout restores
-- (ours and kombu's) leave them alone. ZADD XX never re-adds a tag that was acked or restored.
-- KEYS[1] unacked_index, KEYS[2] consumer heartbeat key; ARGV[1] now, ARGV[2] heartbeat ttl ms, ARGV[3..] tags.
-- Reply: 1.
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[i])
end
return 1
