--[[ Record a due run of a beat entry, fenced by the lease token; with a payload, queue its task
  message in the same step (the store is the broker), so a run is sent exactly when it is recorded.
  KEYS[1] lease   KEYS[2] entries hash   KEYS[3] state hash   KEYS[4] queue list   KEYS[5] binding set
  ARGV[1] lease value the sender holds ("<owner> <epoch>")   ARGV[2] entry name
  ARGV[3] state the sender read ("<lastRunAt> <count>")   ARGV[4] state after the run
  ARGV[5] kombu envelope to LPUSH ('' to record only)   ARGV[6] binding member for the queue
  Output: 'sent' | 'claimed' | 'fenced' | 'changed'
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'fenced' end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return 'changed' end
local current = redis.call('HGET', KEYS[3], ARGV[2])
local outcome = 'claimed'
if ARGV[5] ~= '' then outcome = 'sent' end
-- A resent call (the reply was lost) finds its own write: report it again, write nothing twice.
if current == ARGV[4] then return outcome end
if current ~= ARGV[3] then return 'changed' end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
if ARGV[5] ~= '' then
  redis.call('SADD', KEYS[5], ARGV[6])
  redis.call('LPUSH', KEYS[4], ARGV[5])
end
return outcome
