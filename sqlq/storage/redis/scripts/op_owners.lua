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
    local m = P .. 'm:' .. id
    redis.call('HINCRBY', m, 'r', 1)
    -- only a claim recorded as started is charged a death
    if redis.call('HEXISTS', m, 'st') == 1 then redis.call('HINCRBY', m, 'dth', 1) end
    unclaim(id, owner)
  end
  if #ids > 0 then owner_claims(owner, -#ids) end
  forget(owner)
  return {#ids}
end

OPS.forget = function() return {forget(arg())} end
