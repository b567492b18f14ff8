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

OPS.start = function()  -- id owner attempts: record the claim as started; {1}, or {0} if gone
  local id, owner, attempts = arg(), arg(), arg()
  if not held(id, owner, attempts) then return {0} end
  redis.call('HSET', P .. 'm:' .. id, 'st', 1)
  return {1}
end

OPS.unlost = function()  -- n, then n x (id owner attempts claimed-at): give back claims a
  -- run made whose reply its caller never got (they never started); {released}
  local n, released = tonumber(arg()), 0
  for _ = 1, n do
    local id, owner, attempts, at = arg(), arg(), arg(), arg()
    if held(id, owner, attempts) and redis.call('HGET', P .. 'm:' .. id, 'c') == at then
      unclaim(id, owner)
      owner_claims(owner, -1)
      released = released + 1
    end
  end
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
