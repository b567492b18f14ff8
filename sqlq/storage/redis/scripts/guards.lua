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
