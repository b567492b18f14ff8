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
