-- Take up to ARGV[1] messages and register each in kombu's unacked hash and index in the same
-- atomic step, so no crash can lose a message between the pop and the registration.
-- KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] this consumer's inflight list, KEYS[4] this
-- consumer's fetch log, KEYS[5..] queue lists in fetch order. ARGV[1] max count, ARGV[2] now (unix
-- seconds), ARGV[3] dead-letter suffix for payloads that are not kombu envelopes, ARGV[4] the queue
-- key the inflight list belongs to, ARGV[5] this fetch's id.
--
-- Reply: 'fresh', then per queue key it took from: the key, a count n, and n pairs (payload,
-- delivery tag; the tag is '' for a payload moved to the dead-letter list). When this fetch id is
-- the one already logged (the client resent a fetch whose reply was lost with its connection):
-- 'resent', then the same groups with (unacked entry, delivery tag) pairs for the logged messages
-- still held, so they are delivered instead of waiting out the visibility timeout.
-- The log: the fetch id, then per queue key the key, a count n and n delivery tags.
local log = KEYS[4]
local fetchId = ARGV[5]
if redis.call('LINDEX', log, 0) == fetchId then
  local logged = redis.call('LRANGE', log, 1, -1)
  local again = { 'resent' }
  local i = 1
  while i < #logged do
    local n = tonumber(logged[i + 1])
    again[#again + 1] = logged[i]
    again[#again + 1] = 0
    local countAt = #again
    for j = i + 2, i + 1 + n do
      local entry = redis.call('HGET', KEYS[1], logged[j])
      if entry then
        again[#again + 1] = entry
        again[#again + 1] = logged[j]
        again[countAt] = again[countAt] + 1
      end
    end
    i = i + 2 + n
  end
  return again
end
local max = tonumber(ARGV[1])
local now = ARGV[2]
local out = { 'fresh' }
local logEntries = { fetchId }
local count = 0
-- The unacked entries and index scores of the whole batch go in one HSET and one ZADD (a call per
-- message costs about a microsecond more each). Nothing runs between them and the pops: the script
-- is atomic either way.
local hashArgs = {}
local indexArgs = {}

-- The envelope fields we need, read with plain string matching when each of '"delivery_tag":' and
-- '"delivery_info":' appears exactly once, in the form kombu and Celeriac write; anything else is
-- decoded with cjson (about 3x slower). One pass: a plain find of 'ry_' (in both keys, and rare
-- elsewhere in an envelope) stops at each candidate, and anchored patterns read the key and value
-- there. An unanchored pattern would be tried at every byte of the ~1 KB payload.
local function envelopeFields(payload)
  local tag, ex, rk
  local tags, infos = 0, 0
  local pos = 1
  while true do
    local at = string.find(payload, 'ry_', pos, true)
    if not at then break end
    pos = at + 3
    local key = at - 7
    if key >= 1 then
      if string.find(payload, '^"delivery_tag":', key) then
        tags = tags + 1
        local _, _, value = string.find(payload, '^"delivery_tag": "([^"\\]*)"', key)
        tag = value
      elseif string.find(payload, '^"delivery_info":', key) then
        infos = infos + 1
        local _, _, a, b = string.find(payload, '^"delivery_info": {"exchange": "([^"\\]*)", "routing_key": "([^"\\]*)"', key)
        ex, rk = a, b
      end
    end
  end
  if tags == 1 and infos == 1 and tag and ex and rk then return tag, '"' .. ex .. '"', '"' .. rk .. '"' end
  local ok, msg = pcall(cjson.decode, payload)
  if ok and type(msg) == 'table' and type(msg.properties) == 'table' then
    local di = msg.properties.delivery_info
    local tag = msg.properties.delivery_tag
    if type(di) == 'table' and type(di.exchange) == 'string' and type(di.routing_key) == 'string' then
      return tag, cjson.encode(di.exchange), cjson.encode(di.routing_key)
    end
    return tag, '""', '""'
  end
  return nil, nil, nil
end

-- Messages are grouped by the queue key they came from, in the reply and in the log.
local groupKey = nil
local outCountAt, logCountAt = 0, 0

local function register(key, payload)
  if key ~= groupKey then
    groupKey = key
    out[#out + 1] = key
    out[#out + 1] = 0
    outCountAt = #out
    logEntries[#logEntries + 1] = key
    logEntries[#logEntries + 1] = 0
    logCountAt = #logEntries
  end
  out[outCountAt] = out[outCountAt] + 1
  local tag, ex, rk = envelopeFields(payload)
  if type(tag) ~= 'string' then
    -- Not an envelope we can track: keep the raw bytes for a person to inspect.
    redis.call('LPUSH', key .. ARGV[3], payload)
    out[#out + 1] = payload
    out[#out + 1] = ''
    return
  end
  hashArgs[#hashArgs + 1] = tag
  hashArgs[#hashArgs + 1] = '[' .. payload .. ', ' .. ex .. ', ' .. rk .. ']'
  indexArgs[#indexArgs + 1] = now
  indexArgs[#indexArgs + 1] = tag
  out[#out + 1] = payload
  out[#out + 1] = tag
  logEntries[#logEntries + 1] = tag
  logEntries[logCountAt] = logEntries[logCountAt] + 1
end

-- First anything a blocking move left in our inflight list.
local inflight = redis.call('LRANGE', KEYS[3], 0, -1)
if #inflight > 0 then
  redis.call('DEL', KEYS[3])
  local source = ARGV[4] or KEYS[5]
  for i = #inflight, 1, -1 do
    register(source, inflight[i])
    count = count + 1
  end
end

for k = 5, #KEYS do
  if count >= max then break end
  local items = redis.call('RPOP', KEYS[k], max - count)
  if items then
    for _, payload in ipairs(items) do
      register(KEYS[k], payload)
      count = count + 1
    end
  end
end

for i = 1, #hashArgs, 400 do
  redis.call('HSET', KEYS[1], unpack(hashArgs, i, math.min(i + 399, #hashArgs)))
  redis.call('ZADD', KEYS[2], unpack(indexArgs, i, math.min(i + 399, #indexArgs)))
end

-- Log this batch (replacing the previous one) for a resend of the same fetch id.
redis.call('DEL', log)
redis.call('RPUSH', log, unpack(logEntries))
redis.call('PEXPIRE', log, 600000)
return out
