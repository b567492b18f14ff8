-- messages -------------------------------------------------------------------------------
local function owner_claims(owner, n)
  local c = redis.call('HINCRBY', G .. 'oclaims', owner, n)
  if c <= 0 then redis.call('HDEL', G .. 'oclaims', owner) end
end

local function push(data, priority, score, enqueued_at)
  local id = redis.call('INCR', P .. 'seq')
  redis.call('HSET', P .. 'm:' .. id, 'd', data, 'p', priority, 's', score, 'a', 0, 'r', 0,
             'e', enqueued_at)
  redis.call('ZADD', P .. 'ready', score, pad(id))
  touch('q')
end

-- A claim's row {id, data, attempts, recoveries, priority, deaths, started} if owner holds
-- message id; nil otherwise. (Fields k, deaths, and st, the claim's start mark, may be absent:
-- 0.)
local function held_row(id, owner)
  local v = redis.call('HMGET', P .. 'm:' .. id, 'o', 'd', 'a', 'r', 'p', 'k', 'st')
  if v[1] == owner then return {id, v[2], v[3], v[4], v[5], v[6] or '0', v[7] or '0'} end
  return nil
end

local function held(id, owner, attempts)
  local v = redis.call('HMGET', P .. 'm:' .. id, 'o', 'a')
  return v[1] == owner and v[2] == attempts
end

local function unclaim(id, owner)
  local m = P .. 'm:' .. id
  redis.call('HDEL', m, 'o', 'c', 'st')
  redis.call('ZREM', P .. 'claimed', pad(id))
  redis.call('ZADD', P .. 'ready', redis.call('HGET', m, 's'), pad(id))
  touch('q')
end

local function new_dead(id, data, reason, failed_at, attempts, enqueued_at)
  if id == '' then id = redis.call('INCR', P .. 'seq') end
  local d = P .. 'dl:' .. id
  redis.call('HSET', d, 'd', data, 'why', reason, 't', failed_at, 'a', attempts)
  if enqueued_at and enqueued_at ~= '' then redis.call('HSET', d, 'e', enqueued_at) end
  redis.call('ZADD', P .. 'dead', id, pad(id))
  touch('x')
  return id
end

local function dead_ids(n)
  local ids = {}
  if n < 0 then
    for _, member in ipairs(redis.call('ZRANGE', P .. 'dead', 0, -1)) do
      ids[#ids + 1] = tostring(tonumber(member))
    end
  else
    for _ = 1, n do
      local id = arg()
      if redis.call('ZSCORE', P .. 'dead', pad(id)) then ids[#ids + 1] = id end
    end
  end
  return ids
end

local function take_dead(id)
  local d = P .. 'dl:' .. id
  local data = redis.call('HGET', d, 'd')
  redis.call('DEL', d)
  redis.call('ZREM', P .. 'dead', pad(id))
  touch('x')
  return data
end

local function claims_of(owner)
  local found = {}
  for _, member in ipairs(redis.call('ZRANGE', P .. 'claimed', 0, -1)) do
    if redis.call('HGET', P .. 'm:' .. tonumber(member), 'o') == owner then
      found[#found + 1] = tonumber(member)
    end
  end
  return found
end

local function flush_queue()
  local ids = {}
  for _, member in ipairs(redis.call('ZRANGE', P .. 'claimed', 0, -1)) do
    local owner = redis.call('HGET', P .. 'm:' .. tonumber(member), 'o')
    if owner then owner_claims(owner, -1) end
    ids[#ids + 1] = P .. 'm:' .. tonumber(member)
  end
  for _, member in ipairs(redis.call('ZRANGE', P .. 'ready', 0, -1)) do
    ids[#ids + 1] = P .. 'm:' .. tonumber(member)
  end
  each_chunk(ids, function(part) redis.call('DEL', unpack(part)) end)
  redis.call('DEL', P .. 'ready', P .. 'claimed')
  touch('x')
end
