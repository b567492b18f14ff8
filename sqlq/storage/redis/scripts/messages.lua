-- messages -------------------------------------------------------------------------------
local function owner_claims(owner, n)
  local c = redis.call('HINCRBY', G .. 'oclaims', owner, string.format('%d', n))
  if c <= 0 then redis.call('HDEL', G .. 'oclaims', owner) end
end

-- Keys (the task ids) index messages (km: key -> id), scheduled members (ks) and dead
-- letters (kd); an index entry goes when the thing it names goes, unless it names another.
local function index_key(index, key, value)
  if key and key ~= '' then redis.call('HSET', P .. index, key, value) end
end

local function unindex_key(index, key, value)
  if key and key ~= '' and redis.call('HGET', P .. index, key) == tostring(value) then
    redis.call('HDEL', P .. index, key)
  end
end

-- Ids go into keys and arguments as strings: a Lua number given to redis.call, or joined to a
-- string, is formatted with printf's floating-point path (several thousand instructions).
local function id_text(n) return string.format('%d', n) end

-- A new ready message's hash and key index entry (id: a string); not yet in the ready set.
local function new_message(id, data, priority, score, enqueued_at, key)
  if key ~= '' then
    redis.call('HSET', P .. 'm:' .. id, 'd', data, 'p', priority, 's', score, 'a', '0', 'r', '0',
               'e', enqueued_at, 'k', key)
  else
    redis.call('HSET', P .. 'm:' .. id, 'd', data, 'p', priority, 's', score, 'a', '0', 'r', '0',
               'e', enqueued_at)
  end
end

local function push(data, priority, score, enqueued_at, key)
  local id = id_text(redis.call('INCR', P .. 'seq'))
  key = key or ''
  new_message(id, data, priority, score, enqueued_at, key)
  if key ~= '' then redis.call('HSET', P .. 'km', key, id) end
  redis.call('ZADD', P .. 'ready', score, pad(id))
  touch('q')
end

-- Delete a message (settled for good); {key, owner, attempts, enqueued, claimed[, data]}.
local function drop_message(id, with_data)
  local m = P .. 'm:' .. id
  local v
  if with_data then v = redis.call('HMGET', m, 'k', 'o', 'a', 'e', 'c', 'd')
  else v = redis.call('HMGET', m, 'k', 'o', 'a', 'e', 'c') end
  redis.call('DEL', m)
  unindex_key('km', v[1], id)
  return v
end

-- A claim's row {id, data, attempts, recoveries, priority, deaths, started} if owner holds
-- message id; nil otherwise. (Fields dth, deaths, and st, the claim's start mark, may be
-- absent: 0.)
local function held_row(id, owner)
  local v = redis.call('HMGET', P .. 'm:' .. id, 'o', 'd', 'a', 'r', 'p', 'dth', 'st')
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

local function new_dead(id, data, reason, failed_at, attempts, enqueued_at, key)
  if id == '' then id = redis.call('INCR', P .. 'seq') end
  local d = P .. 'dl:' .. id
  redis.call('HSET', d, 'd', data, 'why', reason, 't', failed_at, 'a', attempts)
  if enqueued_at and enqueued_at ~= '' then redis.call('HSET', d, 'e', enqueued_at) end
  if key and key ~= '' then
    redis.call('HSET', d, 'k', key)
    index_key('kd', key, id)
  end
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

local function take_dead(id)  -- data, key
  local d = P .. 'dl:' .. id
  local v = redis.call('HMGET', d, 'd', 'k')
  redis.call('DEL', d)
  redis.call('ZREM', P .. 'dead', pad(id))
  unindex_key('kd', v[2], id)
  touch('x')
  return v[1], v[2]
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
  redis.call('DEL', P .. 'ready', P .. 'claimed', P .. 'km')
  touch('x')
end
