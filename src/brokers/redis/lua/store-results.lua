-- Store task states unless SUCCESS is already stored (Celery never overwrites a SUCCESS), then
-- PUBLISH each on its key's channel so waiting clients wake up. Many results share one call.
-- KEYS[i] celery-task-meta-<id>; ARGV[1] expiry seconds (0 = none); ARGV[i + 1] the meta JSON for KEYS[i].
-- Reply: how many states were stored (a refused SUCCESS overwrite is not counted).
--
-- SET ... GET writes and returns what was there in one call. In the rare case that was a SUCCESS,
-- it is put back at once (atomically: nothing runs between the two) and nothing is published; the
-- only trace is that its expiry starts again.

-- Whether a stored meta's own status field is SUCCESS (never a match anywhere else in the text, such
-- as inside a progress meta). Celery and Celeriac write status as the first key, so that prefix is
-- read without decoding; any other JSON layout is decoded, and so is a msgpack meta (result_serializer).
local function is_success(old)
  local first = string.byte(old, 1)
  local ok, decoded
  if first == 123 then -- '{': JSON
    local status = string.match(old, '^{%s*"status"%s*:%s*"([^"\\]*)"')
    if status then return status == 'SUCCESS' end
    ok, decoded = pcall(cjson.decode, old)
  elseif first and ((first >= 0x80 and first <= 0x8f) or first == 0xde or first == 0xdf) then -- a msgpack map
    ok, decoded = pcall(cmsgpack.unpack, old)
  else
    return false
  end
  return ok and type(decoded) == 'table' and decoded['status'] == 'SUCCESS'
end

local expires = tonumber(ARGV[1])
local stored = 0
for i = 1, #KEYS do
  local meta = ARGV[i + 1]
  local old
  if expires > 0 then
    old = redis.call('SET', KEYS[i], meta, 'EX', expires, 'GET')
  else
    old = redis.call('SET', KEYS[i], meta, 'GET')
  end
  if old and is_success(old) then
    if expires > 0 then
      redis.call('SET', KEYS[i], old, 'EX', expires)
    else
      redis.call('SET', KEYS[i], old)
    end
  else
    redis.call('PUBLISH', KEYS[i], meta)
    stored = stored + 1
  end
end
return stored
