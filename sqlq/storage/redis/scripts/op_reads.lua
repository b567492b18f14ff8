-- reads (no writes, no wake-ups) ---------------------------------------------------------
OPS.peek = function()
  local n = tonumber(arg())
  local out = {}
  for _ = 1, n do
    local v = kv_get(arg())
    out[#out + 1] = v and {v} or {}
  end
  return out
end

OPS.claim = function()  -- {owner, attempts} of a message, or {}
  local v = redis.call('HMGET', P .. 'm:' .. arg(), 'o', 'a')
  if not v[2] then return {} end
  return {v[1] or '', v[2]}
end

OPS.head = function()  -- the next ready messages (for a dequeue in a transaction)
  local n = tonumber(arg())
  local out = {}
  for _, member in ipairs(redis.call('ZRANGE', P .. 'ready', 0, n - 1)) do
    local v = redis.call('HMGET', P .. 'm:' .. tonumber(member), 'd', 'a', 'r', 'p', 'dth')
    out[#out + 1] = {tostring(tonumber(member)), v[1], v[2], v[3], v[4], v[5] or '0'}
  end
  return out
end

OPS.due = function()  -- the first n scheduled members and data due at ts (n < 0: all), for
                      -- read_schedule in a tx
  local ts, n = arg(), tonumber(arg())
  local members = redis.call('ZRANGEBYSCORE', P .. 'sched', '-inf', ts, 'LIMIT', 0, n)
  local out = {}
  each_chunk(members, function(part)
    local datas = redis.call('HMGET', P .. 'sd', unpack(part))
    for i, member in ipairs(part) do out[#out + 1] = {member, datas[i]} end
  end)
  return out
end

OPS.items = function()  -- data of the first n ready messages (n < 0: all)
  local last = stop(tonumber(arg()))
  local out = {}
  if last == nil then return out end
  for _, member in ipairs(redis.call('ZRANGE', P .. 'ready', 0, last)) do
    out[#out + 1] = redis.call('HGET', P .. 'm:' .. tonumber(member), 'd')
  end
  return out
end

OPS.claimed = function()
  local out = {}
  for _, member in ipairs(redis.call('ZRANGE', P .. 'claimed', 0, -1)) do
    local v = redis.call('HMGET', P .. 'm:' .. tonumber(member), 'd', 'o', 'c', 'a', 'r')
    out[#out + 1] = {tostring(tonumber(member)), v[1], v[2], v[3], v[4], v[5]}
  end
  return out
end

OPS.schedule = function()
  local last = stop(tonumber(arg()))
  if last == nil then return {} end
  local members = redis.call('ZRANGE', P .. 'sched', 0, last)
  local out = {}
  each_chunk(members, function(part)
    for _, data in ipairs(redis.call('HMGET', P .. 'sd', unpack(part))) do
      out[#out + 1] = data
    end
  end)
  return out
end

OPS.results = function()
  local out = {}
  for _, key in ipairs(redis.call('SMEMBERS', P .. 'res')) do
    local v = kv_get(key)
    if v then out[#out + 1] = key; out[#out + 1] = v end
  end
  return out
end

OPS.deadlist = function()  -- dead letters, oldest first: all (n < 0), first n, or by id
  local n, id = tonumber(arg()), arg()
  local members
  if id ~= '' then members = {pad(id)}
  elseif stop(n) == nil then members = {}
  else members = redis.call('ZRANGE', P .. 'dead', 0, stop(n)) end
  local out = {}
  for _, member in ipairs(members) do
    local did = tostring(tonumber(member))
    local v = redis.call('HMGET', P .. 'dl:' .. did, 'd', 'why', 't', 'a', 'e', 'k')
    if v[1] then out[#out + 1] = {did, v[1], v[2], v[3], v[4], v[5] or '', v[6] or ''} end
  end
  return out
end

OPS.owners = function()
  local out, seen = {}, {}
  local starts = redis.call('HGETALL', G .. 'ostart')
  for i = 1, #starts, 2 do
    local owner = starts[i]
    seen[owner] = true
    out[#out + 1] = {owner, starts[i + 1], redis.call('HGET', G .. 'obeat', owner) or ''}
  end
  for _, member in ipairs(redis.call('ZRANGE', P .. 'claimed', 0, -1)) do
    local owner = redis.call('HGET', P .. 'm:' .. tonumber(member), 'o')
    if owner and not seen[owner] then
      seen[owner] = true
      out[#out + 1] = {owner, '', ''}
    end
  end
  return out
end

OPS.cowners = function()
  local counts, out = {}, {}
  for _, member in ipairs(redis.call('ZRANGE', P .. 'claimed', 0, -1)) do
    local owner = redis.call('HGET', P .. 'm:' .. tonumber(member), 'o')
    if owner then counts[owner] = (counts[owner] or 0) + 1 end
  end
  for owner, n in pairs(counts) do out[#out + 1] = owner; out[#out + 1] = n end
  return out
end

OPS.stats = function()
  local nowv = tonumber(now)
  local expired = redis.call('ZCOUNT', P .. 'kvexp', '-inf', now)
  local results = 0
  for _, key in ipairs(redis.call('SMEMBERS', P .. 'res')) do
    local e = redis.call('ZSCORE', P .. 'kvexp', key)
    if not e or tonumber(e) > nowv then results = results + 1 end
  end
  return {redis.call('ZCARD', P .. 'ready'), redis.call('ZCARD', P .. 'claimed'),
          redis.call('ZCARD', P .. 'sched'), results,
          redis.call('HLEN', P .. 'kv') - expired, expired, redis.call('ZCARD', P .. 'dead')}
end
