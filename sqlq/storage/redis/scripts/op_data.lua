OPS.put = function()
  local key, value, is_result, expires = arg(), arg(), arg(), arg()
  kv_put(key, value, is_result, expires)
  return {}
end

OPS.pie = function()
  local key, value, expires = arg(), arg(), arg()
  if kv_get(key) then return {0} end
  kv_put(key, value, '0', expires)
  return {1}
end

OPS.incr = function()
  local key, amount, expires = arg(), arg(), arg()
  local value = kv_get(key)
  if value == nil then
    kv_put(key, amount, '0', expires)
    return {amount}
  end
  if not string.match(value, '^%-?%d+$') then return {false} end
  touch('d')
  return {tostring(redis.call('HINCRBY', P .. 'kv', key, amount))}
end

OPS.pop = function()
  local key = arg()
  local value = kv_get(key)
  if kv_del(key) == 1 then touch('d') end
  if value then return {value} end
  return {}
end

OPS.del = function()
  local key = arg()
  local live = kv_get(key) and 1 or 0
  if kv_del(key) == 1 then touch('d') end
  return {live}
end

OPS.delpfx = function()
  local prefix = arg()
  local live, doomed = 0, {}
  for _, key in ipairs(redis.call('HKEYS', P .. 'kv')) do
    if string.sub(key, 1, #prefix) == prefix then
      if kv_get(key) then live = live + 1 end
      doomed[#doomed + 1] = key
    end
  end
  for _, key in ipairs(doomed) do kv_del(key) end
  if #doomed > 0 then touch('d') end
  return {live}
end

OPS.flushres = function()
  local keys = redis.call('SMEMBERS', P .. 'res')
  each_chunk(keys, function(part)
    redis.call('HDEL', P .. 'kv', unpack(part))
    redis.call('ZREM', P .. 'kvexp', unpack(part))
  end)
  redis.call('DEL', P .. 'res')
  touch('d')
  return {}
end

OPS.purgeexp = function()
  local keys = redis.call('ZRANGEBYSCORE', P .. 'kvexp', '-inf', now)
  for _, key in ipairs(keys) do kv_del(key) end
  if #keys > 0 then touch('d') end
  return {#keys}
end
