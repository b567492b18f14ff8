-- key/value ------------------------------------------------------------------------------
local function kv_get(key)
  local v = redis.call('HGET', P .. 'kv', key)
  if not v then return nil end
  local e = redis.call('ZSCORE', P .. 'kvexp', key)
  if e and tonumber(e) <= tonumber(now) then return nil end
  return v
end

local function kv_del(key)
  local existed = redis.call('HDEL', P .. 'kv', key)
  redis.call('ZREM', P .. 'kvexp', key)
  redis.call('SREM', P .. 'res', key)
  return existed
end

local function kv_put(key, value, is_result, expires)
  redis.call('HSET', P .. 'kv', key, value)
  if expires ~= '' then redis.call('ZADD', P .. 'kvexp', expires, key)
  else redis.call('ZREM', P .. 'kvexp', key) end
  if is_result == '1' then redis.call('SADD', P .. 'res', key)
  else redis.call('SREM', P .. 'res', key) end
  touch('d')
end
