"""The Lua script behind :class:`sqlq.storage.redis.RedisStorage`.

One script serves every operation (also loaded as a Redis 7 function library, see
:func:`_library`): its arguments are a key prefix, the caller's clock, a list
of *guards* and a list of *operations*. It first checks every guard (a fact the caller read
earlier: a claim is still held, a key still holds the value it read, ...) and applies nothing
if one fails; otherwise it applies the operations in order and publishes one wake-up per
changed topic. A single storage call is a one-operation run without guards; a
``transaction()`` block is one run with all its buffered operations and the guards of its
reads. Redis runs a script atomically, so either everything of a run is visible or nothing.

Arguments (all in ARGV, so no key needs declaring; not meant for Redis Cluster)::

    prefix-of-queue  prefix-of-globals  now  number-of-guards
    guard*   (4 arguments each: kind a b c)
    op*      (name, then the op's own arguments)

Reply: ``{1, result-of-op-1, ...}`` (each result a table, so absent values never truncate
the reply) or ``{0, index-of-failed-guard}``.

Layout under the queue prefix ``P`` (``<prefix>:q:{<name>}:``): ``seq`` (id counter),
``m:<id>`` (message hash: d data, p priority, s ready score, a attempts, r recoveries,
e enqueued_at, o owner, c claimed_at), ``ready`` (zset: score -priority, member the zero-padded
id, so equal scores pop in id order), ``claimed`` (zset by claimed_at), ``sched`` + ``sd``
(zset by eta + hash of data), ``kv`` (hash), ``kvexp`` (zset of expiry times), ``res`` (set of
result keys), ``dead`` + ``dl:<id>`` (dead letters), ``dq:<request>`` (the ids claimed by a
request, space-separated, for retries), ``idle`` + ``idleinfo`` (idle workers' registrations:
zset token -> since, hash token -> "owner channel"), ``handed`` (hash: registration token ->
id of the message handed through it, until its worker reports it taken). Globals under ``G`` (``<prefix>:``): ``ostart``,
``obeat`` (owner -> first/last heartbeat) and ``oclaims`` (owner -> claims held in every
queue).
"""

#: Per-run state of a script run (an EVAL script's own locals).
_SCRIPT_STATE = r"""
local P, G, now = ARGV[1], ARGV[2], ARGV[3]
local nguards = tonumber(ARGV[4])
local pos = 5
local touched = {}
"""

#: Helpers, operations and guards: the same text in the script and in the library.
_BODY = r"""
local function arg() local v = ARGV[pos]; pos = pos + 1; return v end
local function pad(id) return string.format('%016d', tonumber(id)) end
-- ZRANGE's stop index for the first n members (n < 0: all); nil for none.
local function stop(n) if n < 0 then return -1 elseif n == 0 then return nil end return n - 1 end
local function touch(c) touched[c] = true end
local CHUNK = 1000

local function each_chunk(list, fn)
  for i = 1, #list, CHUNK do
    local part = {}
    for j = i, math.min(i + CHUNK - 1, #list) do part[#part + 1] = list[j] end
    fn(part)
  end
end

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

-- A claim's row {id, data, attempts, recoveries, priority} if owner holds message id; nil
-- otherwise.
local function held_row(id, owner)
  local v = redis.call('HMGET', P .. 'm:' .. id, 'o', 'd', 'a', 'r', 'p')
  if v[1] == owner then return {id, v[2], v[3], v[4], v[5]} end
  return nil
end

local function held(id, owner, attempts)
  local v = redis.call('HMGET', P .. 'm:' .. id, 'o', 'a')
  return v[1] == owner and v[2] == attempts
end

local function unclaim(id, owner)
  local m = P .. 'm:' .. id
  redis.call('HDEL', m, 'o', 'c')
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

-- operations -----------------------------------------------------------------------------
local OPS = {}

OPS.enq = function()
  local n = tonumber(arg())
  for _ = 1, n do
    local data, priority, score = arg(), arg(), arg()
    push(data, priority, score, now)
  end
  return {n}
end

local function claim_one(owner, member)
  local id = tostring(tonumber(member))
  local m = P .. 'm:' .. id
  local attempts = redis.call('HINCRBY', m, 'a', 1)
  redis.call('HSET', m, 'o', owner, 'c', now)
  redis.call('ZADD', P .. 'claimed', now, member)
  local v = redis.call('HMGET', m, 'd', 'r', 'p')
  return {id, v[1], tostring(attempts), v[2], v[3]}
end

-- hand-off: a single enqueue that finds nothing ready claims its message for the newest idle
-- worker and publishes it on that worker's own channel; the worker starts it without a claim.
local function take_idle(token)
  redis.call('ZREM', P .. 'idle', token)
  local info = redis.call('HGET', P .. 'idleinfo', token)
  redis.call('HDEL', P .. 'idleinfo', token)
  return info
end

OPS.enq1 = function()  -- data priority score own-token: {id handed, or 0}
  local data, priority, score, own = arg(), arg(), arg(), arg()
  if redis.call('ZCARD', P .. 'ready') == 0 then
    local top = redis.call('ZREVRANGE', P .. 'idle', 0, 1)
    local token = top[1]
    if token == own then token = top[2] end
    local info = token and take_idle(token)
    if info then
      local sp = string.find(info, ' ', 1, true)
      local owner, channel = string.sub(info, 1, sp - 1), string.sub(info, sp + 1)
      local id = redis.call('INCR', P .. 'seq')
      local m = P .. 'm:' .. id
      redis.call('HSET', m, 'd', data, 'p', priority, 's', score, 'a', 1, 'r', 0, 'e', now,
                 'o', owner, 'c', now)
      local header = 'H' .. id .. ' ' .. priority .. ' ' .. token .. '\n'
      if redis.call('PUBLISH', channel, header .. data) > 0 then
        redis.call('ZADD', P .. 'claimed', now, pad(id))
        owner_claims(owner, 1)
        redis.call('HSET', P .. 'handed', token, id)
        touch('x')
        return {id}
      end
      -- Nobody listens on that channel: its worker is gone. An ordinary ready message.
      redis.call('HSET', m, 'a', 0)
      redis.call('HDEL', m, 'o', 'c')
      redis.call('ZADD', P .. 'ready', score, pad(id))
      touch('q')
      return {0}
    end
  end
  push(data, priority, score, now)
  return {0}
end

-- owner request wanted-id limit token fresh-token channel done-token: a list of claims, or
-- {{'idle', token}} when nothing was claimed and the caller is (still, or now) registered as
-- idle with that token. token: the caller's registration (deregistered by a claim; if a
-- producer took it, the message handed through it is claimed here); fresh-token and channel:
-- register with them if nothing is claimed; done-token: a hand-off the caller took.
OPS.deq = function()
  local owner, request, wanted, limit = arg(), arg(), arg(), tonumber(arg())
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
  for _, member in ipairs(members) do out[#out + 1] = claim_one(owner, member) end
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

local function unstart(id, owner, attempts)
  if not held(id, owner, attempts) then return 0 end
  unclaim(id, owner)
  owner_claims(owner, -1)
  return 1
end

OPS.unstart1 = function() return {unstart(arg(), arg(), arg())} end

OPS.unstart = function()  -- give back claims that never started (the attempt still fences)
  local n, released = tonumber(arg()), 0
  for _ = 1, n do released = released + unstart(arg(), arg(), arg()) end
  return {released}
end

OPS.ack = function()
  local id, owner, attempts = arg(), arg(), arg()
  if not held(id, owner, attempts) then return {0} end
  redis.call('DEL', P .. 'm:' .. id)
  redis.call('ZREM', P .. 'claimed', pad(id))
  owner_claims(owner, -1)
  touch('x')
  return {1}
end

OPS.complete = function()  -- n, then n x (id owner attempts key value expires): ack each
  -- held claim and store its result under key (none if key is ''); per item 1 if it was held
  local n, out = tonumber(arg()), {}
  for i = 1, n do
    local id, owner, attempts, key, value, expires = arg(), arg(), arg(), arg(), arg(), arg()
    if held(id, owner, attempts) then
      redis.call('DEL', P .. 'm:' .. id)
      redis.call('ZREM', P .. 'claimed', pad(id))
      owner_claims(owner, -1)
      if key ~= '' then kv_put(key, value, '1', expires) end
      out[i] = 1
    else
      out[i] = 0
    end
  end
  touch('x')
  return out
end

OPS.rel = function()
  local id, owner, attempts = arg(), arg(), arg()
  if not held(id, owner, attempts) then return {0} end
  unclaim(id, owner)
  owner_claims(owner, -1)
  return {1}
end

OPS.bury = function()
  local id, owner, attempts, reason = arg(), arg(), arg(), arg()
  if not held(id, owner, attempts) then return {0} end
  local m = P .. 'm:' .. id
  local v = redis.call('HMGET', m, 'd', 'a', 'e')
  redis.call('DEL', m)
  redis.call('ZREM', P .. 'claimed', pad(id))
  owner_claims(owner, -1)
  new_dead('', v[1], reason, now, v[2], v[3])
  return {1}
end

OPS.flushq = function() flush_queue(); return {} end

OPS.sched = function()
  local ts, data = arg(), arg()
  local id = pad(redis.call('INCR', P .. 'seq'))
  redis.call('HSET', P .. 'sd', id, data)
  redis.call('ZADD', P .. 'sched', ts, id)
  touch('s')
  return {}
end

OPS.rsched = function()
  local ts = arg()
  local members = redis.call('ZRANGEBYSCORE', P .. 'sched', '-inf', ts)
  local out = {}
  each_chunk(members, function(part)
    for _, data in ipairs(redis.call('HMGET', P .. 'sd', unpack(part))) do
      out[#out + 1] = data
    end
    redis.call('ZREM', P .. 'sched', unpack(part))
    redis.call('HDEL', P .. 'sd', unpack(part))
  end)
  if #members > 0 then touch('x') end
  return out
end

OPS.rschedids = function()  -- the removal half of a read_schedule made in a transaction
  local n = tonumber(arg())
  for _ = 1, n do
    local member = arg()
    redis.call('ZREM', P .. 'sched', member)
    redis.call('HDEL', P .. 'sd', member)
  end
  if n > 0 then touch('x') end
  return {}
end

OPS.flushs = function()
  redis.call('DEL', P .. 'sched', P .. 'sd')
  touch('x')
  return {}
end

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

OPS.dead = function()
  local id, data, reason, attempts, enqueued_at = arg(), arg(), arg(), arg(), arg()
  return {tostring(new_dead(id, data, reason, now, attempts, enqueued_at))}
end

OPS.requeue = function()
  local priority, score, n = arg(), arg(), tonumber(arg())
  local ids = dead_ids(n)
  table.sort(ids, function(a, b) return tonumber(a) < tonumber(b) end)
  for _, id in ipairs(ids) do push(take_dead(id), priority, score, now) end
  return {#ids}
end

OPS.purgedead = function()
  local ids = dead_ids(tonumber(arg()))
  for _, id in ipairs(ids) do take_dead(id) end
  return {#ids}
end

OPS.hb = function()
  local owner = arg()
  redis.call('HSETNX', G .. 'ostart', owner, now)
  redis.call('HSET', G .. 'obeat', owner, now)
  touch('x')
  return {}
end

local function forget(owner)
  if redis.call('HEXISTS', G .. 'oclaims', owner) == 1 then return 0 end
  local n = redis.call('HDEL', G .. 'ostart', owner) + redis.call('HDEL', G .. 'obeat', owner)
  if n > 0 then touch('x') end
  return n > 0 and 1 or 0
end

OPS.relown = function()
  local owner = arg()
  local idle = redis.call('HGETALL', P .. 'idleinfo')  -- its registrations and hand-offs go
  for i = 1, #idle, 2 do
    if string.sub(idle[i + 1], 1, #owner + 1) == owner .. ' ' then take_idle(idle[i]) end
  end
  local handed = redis.call('HGETALL', P .. 'handed')
  for i = 1, #handed, 2 do
    if redis.call('HGET', P .. 'm:' .. handed[i + 1], 'o') == owner then
      redis.call('HDEL', P .. 'handed', handed[i])
    end
  end
  local ids = claims_of(owner)
  for _, id in ipairs(ids) do
    redis.call('HINCRBY', P .. 'm:' .. id, 'r', 1)
    unclaim(id, owner)
  end
  if #ids > 0 then owner_claims(owner, -#ids) end
  forget(owner)
  return {#ids}
end

OPS.forget = function() return {forget(arg())} end

OPS.flushall = function()
  flush_queue()
  redis.call('DEL', P .. 'sched', P .. 'sd', P .. 'kv', P .. 'kvexp', P .. 'res')
  local dls = {}
  for _, member in ipairs(redis.call('ZRANGE', P .. 'dead', 0, -1)) do
    dls[#dls + 1] = P .. 'dl:' .. tonumber(member)
  end
  each_chunk(dls, function(part) redis.call('DEL', unpack(part)) end)
  redis.call('DEL', P .. 'dead')
  touch('q'); touch('s'); touch('d')
  return {}
end

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
    local v = redis.call('HMGET', P .. 'm:' .. tonumber(member), 'd', 'a', 'r', 'p')
    out[#out + 1] = {tostring(tonumber(member)), v[1], v[2], v[3], v[4]}
  end
  return out
end

OPS.due = function()  -- scheduled members and data due at ts (for read_schedule in a tx)
  local members = redis.call('ZRANGEBYSCORE', P .. 'sched', '-inf', arg())
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
    local v = redis.call('HMGET', P .. 'dl:' .. did, 'd', 'why', 't', 'a', 'e')
    if v[1] then out[#out + 1] = {did, v[1], v[2], v[3], v[4], v[5] or ''} end
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

-- guards ---------------------------------------------------------------------------------
local GUARDS = {
  C = function(id, owner, attempts) return held(id, owner, attempts) end,
  R = function(id) return redis.call('ZSCORE', P .. 'ready', pad(id)) ~= false end,
  K = function(key, present, value)
    local v = kv_get(key)
    if present == '1' then return v == value end
    return v == nil
  end,
  S = function(member) return redis.call('ZSCORE', P .. 'sched', member) ~= false end,
  D = function(id) return redis.call('ZSCORE', P .. 'dead', pad(id)) ~= false end,
  O = function(owner, n) return #claims_of(owner) == tonumber(n) end,
}
"""

#: Check the guards, apply the operations, publish the wake-ups.
_RUN = r"""
for g = 1, nguards do
  local kind, a, b, c = arg(), arg(), arg(), arg()
  if not GUARDS[kind](a, b, c) then return {0, g} end
end

local reply = {1}
while pos <= #ARGV do
  local name = arg()
  local op = OPS[name]
  if not op then return redis.error_reply('sqlq: unknown operation ' .. tostring(name)) end
  reply[#reply + 1] = op()
end
for c in pairs(touched) do redis.call('PUBLISH', P .. 'wake:' .. c, '1') end
return reply
"""

SCRIPT = _SCRIPT_STATE + _BODY + _RUN


def _library() -> tuple[str, str, str]:
    """The same operations as a Redis 7 function library: its helpers are made once, when the
    library is loaded, instead of at every run of the script (which was most of the cost of a
    small operation). Two entry points: one for any run, one flagged ``no-writes`` for
    single reads (allowed, like the script, on a server out of memory or a replica).

    Returns (library source, function name, read-only function name); the names carry a hash
    of the source, so hosts running different sqlq versions never call each other's code.
    """
    import hashlib
    tag = hashlib.sha1((_BODY + _RUN).encode()).hexdigest()[:16]
    name, read_name = 'sqlq_%s' % tag, 'sqlq_%s_r' % tag
    source = ('#!lua name=sqlq_%s\n' % tag
              + 'local ARGV, P, G, now, nguards, pos, touched\n'
              + _BODY
              + 'local function run(_, argv)\n'
              + '  ARGV = argv\n'
              + '  P, G, now = ARGV[1], ARGV[2], ARGV[3]\n'
              + '  nguards, pos, touched = tonumber(ARGV[4]), 5, {}\n'
              + _RUN
              + 'end\n'
              + "redis.register_function{function_name='%s', callback=run}\n" % name
              + "redis.register_function{function_name='%s', callback=run, "
                "flags={'no-writes'}}\n" % read_name)
    return source, name, read_name


LIBRARY, FUNCTION, READ_FUNCTION = _library()
