OPS.dead = function()
  local id, data, reason, attempts, enqueued_at, key = arg(), arg(), arg(), arg(), arg(), arg()
  return {tostring(new_dead(id, data, reason, now, attempts, enqueued_at, key))}
end

OPS.requeue = function()
  local priority, score, n = arg(), arg(), tonumber(arg())
  local ids = dead_ids(n)
  table.sort(ids, function(a, b) return tonumber(a) < tonumber(b) end)
  for _, id in ipairs(ids) do
    local data, key = take_dead(id)
    push(data, priority, score, now, key)
  end
  return {#ids}
end

OPS.purgedead = function()
  local ids = dead_ids(tonumber(arg()))
  for _, id in ipairs(ids) do take_dead(id) end
  return {#ids}
end
