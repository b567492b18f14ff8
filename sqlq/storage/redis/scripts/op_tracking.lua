-- tracking: operations and reads ---------------------------------------------------------
OPS.hist = function()  -- n, then n runs' 8 history arguments: record runs never claimed
  local n, sums = tonumber(arg()), {}
  for _ = 1, n do record_run(run_args(), nil, sums) end
  add_sums(sums)
  return {n}
end

OPS.prunehist = function()  -- before keep stats-before ('' = none of it): {runs deleted}
  -- Oldest first: runs beyond the newest keep, then those finished before `before`; at most
  -- PRUNE_BUDGET per call. Then the minutes of sums before stats-before.
  local before, keep, sbefore = arg(), arg(), arg()
  local excess = 0
  if keep ~= '' then excess = redis.call('ZCARD', P .. 'hist') - tonumber(keep) end
  local deleted, done = 0, false
  while not done and deleted < 20000 do
    local ids = redis.call('ZRANGE', P .. 'hist', 0, 99)
    if #ids == 0 then break end
    for _, id in ipairs(ids) do
      if excess <= 0 then
        local f = before ~= '' and redis.call('HGET', P .. 'h:' .. id, 'f')
        if not f or tonumber(f) >= tonumber(before) then done = true; break end
      end
      drop_run(id)
      excess = excess - 1
      deleted = deleted + 1
    end
  end
  if sbefore ~= '' then
    for _, minute in ipairs(redis.call('ZRANGEBYSCORE', P .. 'stm', '-inf', '(' .. sbefore)) do
      redis.call('DEL', P .. 'st:' .. minute)
      redis.call('ZREM', P .. 'stm', minute)
    end
  end
  return {deleted}
end

-- reads ------------------------------------------------------------------------------------
OPS.locate = function()  -- key: {state, id, data, enqueued, eta, owner, claimed, attempts,
  -- recoveries, priority, reason, failed} per place it is stored
  local key, out = arg(), {}
  local id = redis.call('HGET', P .. 'km', key)
  if id then
    local v = redis.call('HMGET', P .. 'm:' .. id, 'd', 'e', 'o', 'c', 'a', 'r', 'p')
    if v[1] then
      out[#out + 1] = {v[3] and 'claimed' or 'ready', id, v[1], v[2] or '', '', v[3] or '',
                       v[4] or '', v[5] or '0', v[6] or '0', v[7] or '0', '', ''}
    end
  end
  local member = redis.call('HGET', P .. 'ks', key)
  if member then
    local data = redis.call('HGET', P .. 'sd', member)
    if data then
      out[#out + 1] = {'scheduled', tostring(tonumber(member)), data, '',
                       redis.call('ZSCORE', P .. 'sched', member), '', '', '0', '0', '0', '', ''}
    end
  end
  local dead = redis.call('HGET', P .. 'kd', key)
  if dead then
    local v = redis.call('HMGET', P .. 'dl:' .. dead, 'd', 'e', 'a', 'why', 't')
    if v[1] then
      out[#out + 1] = {'dead', dead, v[1], v[2] or '', '', '', '', v[3] or '0', '0', '0',
                       v[4], v[5]}
    end
  end
  return out
end

local RUN_FIELDS = {'k', 'n', 'x', 'f', 'u', 'r', 'e', 'c', 'a', 'o', 'pv'}

OPS.history = function()  -- limit before key name outcome: runs, newest first, each
  -- {id, key, name, outcome, finished, duration, error, enqueued, claimed, attempts, owner};
  -- a name or outcome filter looks at 20000 runs at most
  local limit, before, key, name, outcome = tonumber(arg()), arg(), arg(), arg(), arg()
  local out = {}
  local function take(id)
    local v = redis.call('HMGET', P .. 'h:' .. id, unpack(RUN_FIELDS))
    if not v[1] then return nil end
    if (name == '' or v[2] == name) and (outcome == '' or v[3] == outcome) then
      out[#out + 1] = {tostring(id), v[1], v[2], v[3], v[4], v[5] or '', v[6] or '',
                       v[7] or '', v[8] or '', v[9] or '0', v[10] or ''}
    end
    return v[11]
  end
  if key ~= '' then
    local id = redis.call('HGET', P .. 'hk', key)
    while id and (limit < 0 or #out < limit) do
      if before ~= '' and tonumber(id) >= tonumber(before) then
        id = redis.call('HGET', P .. 'h:' .. id, 'pv')
      else
        id = take(id)
      end
    end
    return out
  end
  local top = before == '' and '+inf' or '(' .. before
  local looked = 0
  while (limit < 0 or #out < limit) and looked < 20000 do
    local ids = redis.call('ZREVRANGEBYSCORE', P .. 'hist', top, '-inf', 'LIMIT', 0, 200)
    if #ids == 0 then break end
    for _, id in ipairs(ids) do
      take(id)
      looked = looked + 1
      if limit >= 0 and #out >= limit then break end
    end
    top = '(' .. ids[#ids]
  end
  return out
end

OPS.hstats = function()  -- since ('': all time): {minute or '', flat field/value list}...
  local since, out = arg(), {}
  if since == '' then
    out[1] = {'', redis.call('HGETALL', P .. 'stt')}
    return out
  end
  for _, minute in ipairs(redis.call('ZRANGEBYSCORE', P .. 'stm', since, '+inf')) do
    out[#out + 1] = {minute, redis.call('HGETALL', P .. 'st:' .. minute)}
  end
  return out
end
