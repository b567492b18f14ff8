-- tracking: the history of finished runs ------------------------------------------------
-- A run: h:<id> (k key, n name, x outcome, f finished, u duration, r error, e enqueued,
-- c claimed, a attempts, o owner, pv the key's previous run), ordered in hist (zset by id);
-- hk: key -> its newest run. Sums per minute: st:<minute> (fields name\0outcome\0c (runs),
-- \0s (seconds), \0b<i> (runs per duration bucket)), minutes in stm; all-time sums in stt.

-- A run's 8 history arguments: key name outcome finished duration error minute bucket.
local function run_args()
  return {arg(), arg(), arg(), arg(), arg(), arg(), arg(), arg()}
end

-- Record a run; claim: {key, owner, attempts, enqueued, claimed} of its message, or nil.
-- Its sums are added to the table sums (written by add_sums). later (or nil: written now):
-- a table from new_later() that collects the index writes, written by write_later.
local function record_run(run, claim, sums, later)
  local id = id_text(redis.call('INCR', P .. 'hseq'))
  local fields = {'k', run[1], 'n', run[2], 'x', run[3], 'f', run[4]}
  local function put(name, value)
    if value and value ~= '' then fields[#fields + 1] = name; fields[#fields + 1] = value end
  end
  put('u', run[5]); put('r', run[6])
  if claim then put('o', claim[2]); put('a', claim[3]); put('e', claim[4]); put('c', claim[5]) end
  if later then
    put('pv', later.newest[run[1]] or redis.call('HGET', P .. 'hk', run[1]))
    later.newest[run[1]] = id
    local hk, hist = later.hk, later.hist
    hk[#hk + 1] = run[1]
    hk[#hk + 1] = id
    hist[#hist + 1] = id
    hist[#hist + 1] = id
  else
    put('pv', redis.call('HGET', P .. 'hk', run[1]))
  end
  redis.call('HSET', P .. 'h:' .. id, unpack(fields))
  if not later then
    redis.call('HSET', P .. 'hk', run[1], id)
    redis.call('ZADD', P .. 'hist', id, id)
  end
  local base = run[2] .. '\0' .. run[3] .. '\0'
  local minute = sums[run[7]]
  if not minute then minute = {}; sums[run[7]] = minute end
  minute[base .. 'c'] = (minute[base .. 'c'] or 0) + 1
  if run[5] ~= '' then
    minute[base .. 's'] = (minute[base .. 's'] or 0) + tonumber(run[5])
    minute[base .. 'b' .. run[8]] = (minute[base .. 'b' .. run[8]] or 0) + 1
  end
end

local function new_later() return {newest = {}, hk = {}, hist = {}} end

-- The history index writes record_run collected (a key's newest run last: it wins).
local function write_later(later)
  each_chunk(later.hk, function(part) redis.call('HSET', P .. 'hk', unpack(part)) end)
  each_chunk(later.hist, function(part) redis.call('ZADD', P .. 'hist', unpack(part)) end)
end

local function add_sums(sums)
  for minute, fields in pairs(sums) do
    local st = P .. 'st:' .. minute
    for field, value in pairs(fields) do
      if string.sub(field, -1) == 's' then
        redis.call('HINCRBYFLOAT', st, field, value)
        redis.call('HINCRBYFLOAT', P .. 'stt', field, value)
      else
        redis.call('HINCRBY', st, field, value)
        redis.call('HINCRBY', P .. 'stt', field, value)
      end
    end
    redis.call('ZADD', P .. 'stm', minute, minute)
  end
end

local function drop_run(id)
  local h = P .. 'h:' .. id
  local key = redis.call('HGET', h, 'k')
  redis.call('DEL', h)
  redis.call('ZREM', P .. 'hist', id)
  if key and redis.call('HGET', P .. 'hk', key) == tostring(id) then
    redis.call('HDEL', P .. 'hk', key)
  end
end

local function forget_history()
  local runs = {}
  for _, id in ipairs(redis.call('ZRANGE', P .. 'hist', 0, -1)) do runs[#runs + 1] = P .. 'h:' .. id end
  for _, minute in ipairs(redis.call('ZRANGE', P .. 'stm', 0, -1)) do
    runs[#runs + 1] = P .. 'st:' .. minute
  end
  each_chunk(runs, function(part) redis.call('DEL', unpack(part)) end)
  redis.call('DEL', P .. 'hist', P .. 'hk', P .. 'stm', P .. 'stt')
end
