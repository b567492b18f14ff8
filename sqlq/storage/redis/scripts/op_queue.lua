-- operations -----------------------------------------------------------------------------
local OPS = {}

-- n (data priority score key)*n: {n}. One id range, one ZADD and one key index write per
-- chunk; a command per message only for its hash.
OPS.enq = function()
  local n = tonumber(arg())
  if n < 1 then return {0} end
  local first = redis.call('INCRBY', P .. 'seq', n) - n + 1
  local ready, keys = {}, {}
  for i = 0, n - 1 do
    local data, priority, score, key = arg(), arg(), arg(), arg()
    local id = id_text(first + i)
    new_message(id, data, priority, score, now, key)
    ready[#ready + 1] = score
    ready[#ready + 1] = pad(id)
    if key ~= '' then
      keys[#keys + 1] = key
      keys[#keys + 1] = id
    end
  end
  -- CHUNK is even: no pair is split between two commands.
  each_chunk(ready, function(part) redis.call('ZADD', P .. 'ready', unpack(part)) end)
  each_chunk(keys, function(part) redis.call('HSET', P .. 'km', unpack(part)) end)
  touch('q')
  return {n}
end

-- started: the claim is recorded as started (a claim of one: its worker runs it at once; see
-- OPS.start), so that the death of its owner counts against it (OPS.relown).
local function claim_one(owner, member, started)
  local id = id_text(tonumber(member))
  local m = P .. 'm:' .. id
  local attempts = redis.call('HINCRBY', m, 'a', '1')
  redis.call('HSET', m, 'o', owner, 'c', now)
  if started then redis.call('HSET', m, 'st', '1') end
  redis.call('ZADD', P .. 'claimed', claim_score(), member)
  local v = redis.call('HMGET', m, 'd', 'r', 'p', 'dth')
  return {id, v[1], id_text(attempts), v[2], v[3], v[4] or '0', started and '1' or '0'}
end

-- hand-off: a single enqueue that finds nothing ready claims its message for the newest idle
-- worker and publishes it on that worker's own channel; the worker starts it without a claim.
local function take_idle(token)
  redis.call('ZREM', P .. 'idle', token)
  local info = redis.call('HGET', P .. 'idleinfo', token)
  redis.call('HDEL', P .. 'idleinfo', token)
  return info
end

OPS.enq1 = function()  -- data priority score own-token key: {id handed, or 0}
  local data, priority, score, own, key = arg(), arg(), arg(), arg(), arg()
  if redis.call('ZCARD', P .. 'ready') == 0 then
    local top = redis.call('ZREVRANGE', P .. 'idle', 0, 1)
    local token = top[1]
    if token == own then token = top[2] end
    local info = token and take_idle(token)
    if info then
      local sp = string.find(info, ' ', 1, true)
      local owner, channel = string.sub(info, 1, sp - 1), string.sub(info, sp + 1)
      local id = id_text(redis.call('INCR', P .. 'seq'))
      local m = P .. 'm:' .. id
      redis.call('HSET', m, 'd', data, 'p', priority, 's', score, 'a', '1', 'r', '0', 'e', now,
                 'o', owner, 'c', now, 'st', '1')
      if key ~= '' then
        redis.call('HSET', m, 'k', key)
        redis.call('HSET', P .. 'km', key, id)
      end
      local header = 'H' .. id .. ' ' .. priority .. ' ' .. token .. '\n'
      if redis.call('PUBLISH', channel, header .. data) > 0 then
        redis.call('ZADD', P .. 'claimed', claim_score(), pad(id))
        owner_claims(owner, 1)
        redis.call('HSET', P .. 'handed', token, id)
        touch('x')
        return {tonumber(id)}
      end
      -- Nobody listens on that channel: its worker is gone. An ordinary ready message.
      redis.call('HSET', m, 'a', '0')
      redis.call('HDEL', m, 'o', 'c', 'st')
      redis.call('ZADD', P .. 'ready', score, pad(id))
      touch('q')
      return {0}
    end
  end
  push(data, priority, score, now, key)
  return {0}
end

-- owner request wanted-id limit token fresh-token channel done-token: a list of claims, or
-- {{'idle', token}} when nothing was claimed and the caller is (still, or now) registered as
-- idle with that token. token: the caller's registration (deregistered by a claim; if a
-- producer took it, the message handed through it is claimed here); fresh-token and channel:
-- register with them if nothing is claimed; done-token: a hand-off the caller took. A claim
-- of one (limit 1; with wanted, whose limit is otherwise unused: 1 for yes, 0 for no) is
-- recorded as started.
OPS.deq = function()
  local owner, request, wanted, limit = arg(), arg(), arg(), tonumber(arg())
  local started = limit == 1
  local token, fresh, channel, done = arg(), arg(), arg(), arg()
  if done ~= '' then redis.call('HDEL', P .. 'handed', done) end
  local key = P .. 'dq:' .. request
  if request ~= '' then  -- a retry of a dequeue whose reply was lost: the same claims
    local prev = redis.call('GET', key)
    if prev then
      local out = {}
      for id in string.gmatch(prev, '%d+') do out[#out + 1] = held_row(id, owner) end
      return out
    end
  end
  local out = {}
  if token ~= '' then
    if redis.call('ZSCORE', P .. 'idle', token) then
      if wanted == '' and redis.call('ZCARD', P .. 'ready') == 0 then
        return {{'idle', token}}
      end
      take_idle(token)
    else  -- taken by a producer: the message it handed is ours
      local id = redis.call('HGET', P .. 'handed', token)
      if id then
        redis.call('HDEL', P .. 'handed', token)
        out[1] = held_row(id, owner)
      end
    end
  end
  local members = {}
  if wanted ~= '' then
    if redis.call('ZREM', P .. 'ready', pad(wanted)) == 1 then members = {pad(wanted)} end
  elseif limit > #out then
    local popped = redis.call('ZPOPMIN', P .. 'ready', limit - #out)
    for i = 1, #popped, 2 do members[#members + 1] = popped[i] end
  end
  for _, member in ipairs(members) do out[#out + 1] = claim_one(owner, member, started) end
  if #out == 0 then
    if fresh ~= '' then
      redis.call('ZADD', P .. 'idle', now, fresh)
      redis.call('HSET', P .. 'idleinfo', fresh, owner .. ' ' .. channel)
      return {{'idle', fresh}}
    end
    return {}
  end
  if #members > 0 then owner_claims(owner, #members) end
  if request ~= '' then
    local ids = {}
    for i, c in ipairs(out) do ids[i] = c[1] end
    redis.call('SET', key, table.concat(ids, ' '), 'EX', 3600)
  end
  touch('x')
  return out
end

OPS.unidle = function()  -- owner session-prefix: a worker session ends; {released}
  -- Its registrations go; messages handed to it that it still holds are released.
  local owner, prefix = arg(), arg()
  local n = #prefix
  for _, token in ipairs(redis.call('ZRANGE', P .. 'idle', 0, -1)) do
    if string.sub(token, 1, n) == prefix then take_idle(token) end
  end
  local released = 0
  local handed = redis.call('HGETALL', P .. 'handed')
  for i = 1, #handed, 2 do
    local token, id = handed[i], handed[i + 1]
    if string.sub(token, 1, n) == prefix then
      redis.call('HDEL', P .. 'handed', token)
      if redis.call('HGET', P .. 'm:' .. id, 'o') == owner then
        unclaim(id, owner)
        owner_claims(owner, -1)
        released = released + 1
      end
    end
  end
  return {released}
end

OPS.takeh = function()  -- owner token: {claim} of the message handed through a registration
  -- the caller had stopped counting on, if it still holds it; else {}
  local owner, token = arg(), arg()
  local id = redis.call('HGET', P .. 'handed', token)
  if not id then return {} end
  redis.call('HDEL', P .. 'handed', token)
  return {held_row(id, owner)}
end
