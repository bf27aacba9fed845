-- Take up to ARGV[1] messages and register each in kombu's unacked hash and index in the same
-- atomic step, so no crash can lose a message between the pop and the registration.
-- KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] this consumer's inflight list,
-- KEYS[4..] queue lists in fetch order. ARGV[1] max count, ARGV[2] now (unix seconds),
-- ARGV[3] dead-letter suffix for payloads that are not kombu envelopes.
local max = tonumber(ARGV[1])
local now = ARGV[2]
local out = {}
local count = 0

-- The envelope fields we need, read with plain string matching when each appears exactly once in
-- the form kombu and Celeriac write; anything else is decoded with cjson (about 3x slower). A plain
-- find locates the key and an anchored pattern reads the value there: an unanchored pattern would
-- be tried at every byte of the ~1 KB payload (about 9 us per message).
local function once(payload, literal, pattern)
  local at = string.find(payload, literal, 1, true)
  if not at then return nil end
  local s, e, a, b = string.find(payload, pattern, at)
  if not s then return nil end
  if string.find(payload, literal, e + 1, true) then return nil end
  return a, b
end

local function envelopeFields(payload)
  local tag = once(payload, '"delivery_tag":', '^"delivery_tag": "([^"\\]*)"')
  local ex, rk = once(payload, '"delivery_info":', '^"delivery_info": {"exchange": "([^"\\]*)", "routing_key": "([^"\\]*)"')
  if tag and ex and rk then return tag, '"' .. ex .. '"', '"' .. rk .. '"' end
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

local function register(key, payload)
  local tag, ex, rk = envelopeFields(payload)
  if type(tag) ~= 'string' then
    -- Not an envelope we can track: keep the raw bytes for a person to inspect.
    redis.call('LPUSH', key .. ARGV[3], payload)
    out[#out + 1] = key
    out[#out + 1] = payload
    out[#out + 1] = ''
    return
  end
  redis.call('HSET', KEYS[1], tag, '[' .. payload .. ', ' .. ex .. ', ' .. rk .. ']')
  redis.call('ZADD', KEYS[2], now, tag)
  out[#out + 1] = key
  out[#out + 1] = payload
  out[#out + 1] = tag
end

-- First anything a blocking move left in our inflight list.
local inflight = redis.call('LRANGE', KEYS[3], 0, -1)
if #inflight > 0 then
  redis.call('DEL', KEYS[3])
  local source = ARGV[4] or KEYS[4]
  for i = #inflight, 1, -1 do
    register(source, inflight[i])
    count = count + 1
  end
end

for k = 4, #KEYS do
  if count >= max then break end
  local items = redis.call('RPOP', KEYS[k], max - count)
  if items then
    for _, payload in ipairs(items) do
      register(KEYS[k], payload)
      count = count + 1
    end
  end
end
return out
