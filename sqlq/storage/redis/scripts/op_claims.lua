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
  redis.call('HSET', P .. 'm:' .. id, 'st', '1')
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
  drop_message(id)
  redis.call('ZREM', P .. 'claimed', pad(id))
  owner_claims(owner, -1)
  touch('x')
  return {1}
end

OPS.complete = function()  -- n, then n x (id owner attempts key value expires, then a run's
  -- 8 history arguments, see run_args): ack each held claim, store its result under key
  -- (none if key is ''), record its run (none if the run's key is ''); per item 1 if held
  -- The claimed set, owners' counts, results and history indexes are written once at the
  -- end (nothing in the loop reads them back; a result key given twice keeps its last value).
  local n, out, sums, later = tonumber(arg()), {}, {}, new_later()
  local members, owners, keys, values = {}, {}, {}, {}
  for i = 1, n do
    local id, owner, attempts, key, value, expires = arg(), arg(), arg(), arg(), arg(), arg()
    local run = run_args()
    if held(id, owner, attempts) then
      local claim = drop_message(id)
      members[#members + 1] = pad(id)
      owners[owner] = (owners[owner] or 0) - 1
      if key ~= '' then
        if not values[key] then keys[#keys + 1] = key end
        values[key] = {value, expires}
      end
      if run[1] ~= '' then record_run(run, claim, sums, later) end
      out[i] = 1
    else
      out[i] = 0
    end
  end
  each_chunk(members, function(part) redis.call('ZREM', P .. 'claimed', unpack(part)) end)
  for owner, count in pairs(owners) do owner_claims(owner, count) end
  put_results(keys, values)
  write_later(later)
  add_sums(sums)
  touch('x')
  return out
end

OPS.fin = function()  -- id owner attempts reason, then a run's 8 history arguments: ack (or
  -- with a reason, bury) a held claim and record its run (none if its key is ''); {1 if held}
  local id, owner, attempts, reason = arg(), arg(), arg(), arg()
  local run = run_args()
  if not held(id, owner, attempts) then return {0} end
  local claim = drop_message(id, reason ~= '')
  redis.call('ZREM', P .. 'claimed', pad(id))
  owner_claims(owner, -1)
  if reason ~= '' then
    local data = claim[6]
    new_dead('', data, reason, now, claim[3], claim[4], claim[1])
  end
  if run[1] ~= '' then
    local sums = {}
    record_run(run, claim, sums)
    add_sums(sums)
  end
  touch('x')
  return {1}
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
  local claim = drop_message(id, true)
  redis.call('ZREM', P .. 'claimed', pad(id))
  owner_claims(owner, -1)
  new_dead('', claim[6], reason, now, claim[3], claim[4], claim[1])
  return {1}
end

OPS.flushq = function() flush_queue(); return {} end
