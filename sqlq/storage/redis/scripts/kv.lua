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

-- Store results: keys (in order, each once) -> values[key] = {value, expires}; as kv_put of
-- each, with one command per kind of write.
local function put_results(keys, values)
  if #keys == 0 then return end
  local pairs_, expiring, lasting = {}, {}, {}
  for _, key in ipairs(keys) do
    local v = values[key]
    pairs_[#pairs_ + 1] = key
    pairs_[#pairs_ + 1] = v[1]
    if v[2] ~= '' then
      expiring[#expiring + 1] = v[2]
      expiring[#expiring + 1] = key
    else
      lasting[#lasting + 1] = key
    end
  end
  -- CHUNK is even: no pair is split between two commands.
  each_chunk(pairs_, function(part) redis.call('HSET', P .. 'kv', unpack(part)) end)
  each_chunk(expiring, function(part) redis.call('ZADD', P .. 'kvexp', unpack(part)) end)
  each_chunk(lasting, function(part) redis.call('ZREM', P .. 'kvexp', unpack(part)) end)
  each_chunk(keys, function(part) redis.call('SADD', P .. 'res', unpack(part)) end)
  touch('d')
end

local function kv_put(key, value, is_result, expires)
  redis.call('HSET', P .. 'kv', key, value)
  if expires ~= '' then redis.call('ZADD', P .. 'kvexp', expires, key)
  else redis.call('ZREM', P .. 'kvexp', key) end
  if is_result == '1' then redis.call('SADD', P .. 'res', key)
  else redis.call('SREM', P .. 'res', key) end
  touch('d')
end
