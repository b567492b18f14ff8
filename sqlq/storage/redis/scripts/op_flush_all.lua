OPS.flushall = function()
  flush_queue()
  redis.call('DEL', P .. 'sched', P .. 'sd', P .. 'sk', P .. 'ks', P .. 'kv', P .. 'kvexp',
             P .. 'res', P .. 'kd')
  forget_history()
  local dls = {}
  for _, member in ipairs(redis.call('ZRANGE', P .. 'dead', 0, -1)) do
    dls[#dls + 1] = P .. 'dl:' .. tonumber(member)
  end
  each_chunk(dls, function(part) redis.call('DEL', unpack(part)) end)
  redis.call('DEL', P .. 'dead')
  touch('q'); touch('s'); touch('d')
  return {}
end
