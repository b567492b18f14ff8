-- Forget the keys of scheduled members (sk: member -> key) that leave the schedule.
local function unindex_scheduled(members)
  local keys = redis.call('HMGET', P .. 'sk', unpack(members))
  for i, member in ipairs(members) do
    if keys[i] then unindex_key('ks', keys[i], member) end
  end
  redis.call('HDEL', P .. 'sk', unpack(members))
end

OPS.sched = function()
  local ts, data, key = arg(), arg(), arg()
  local id = pad(redis.call('INCR', P .. 'seq'))
  redis.call('HSET', P .. 'sd', id, data)
  redis.call('ZADD', P .. 'sched', ts, id)
  if key ~= '' then
    redis.call('HSET', P .. 'sk', id, key)
    index_key('ks', key, id)
  end
  touch('s')
  return {}
end

OPS.rsched = function()  -- the first n due (n < 0: all), earliest first
  local ts, n = arg(), tonumber(arg())
  local members = redis.call('ZRANGEBYSCORE', P .. 'sched', '-inf', ts, 'LIMIT', 0, n)
  local out = {}
  each_chunk(members, function(part)
    for _, data in ipairs(redis.call('HMGET', P .. 'sd', unpack(part))) do
      out[#out + 1] = data
    end
    redis.call('ZREM', P .. 'sched', unpack(part))
    redis.call('HDEL', P .. 'sd', unpack(part))
    unindex_scheduled(part)
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
    unindex_scheduled({member})
  end
  if n > 0 then touch('x') end
  return {}
end

OPS.flushs = function()
  redis.call('DEL', P .. 'sched', P .. 'sd', P .. 'sk', P .. 'ks')
  touch('x')
  return {}
end
