local function arg() local v = ARGV[pos]; pos = pos + 1; return v end
local function pad(id) return string.format('%016d', tonumber(id)) end
-- ZRANGE's stop index for the first n members (n < 0: all); nil for none.
local function stop(n) if n < 0 then return -1 elseif n == 0 then return nil end return n - 1 end
local function touch(c) touched[c] = true end
-- A claim's score in the claimed set: the run's clock in whole microseconds. A small sorted
-- set is a listpack, which keeps an integer score as an integer but parses a fractional one
-- (strtod) at every step of every insert: a batch of 128 claims paid ~75% of its run there.
local function claim_score() return string.format('%d', tonumber(now) * 1e6) end
local CHUNK = 1000

local function each_chunk(list, fn)
  for i = 1, #list, CHUNK do
    local part = {}
    for j = i, math.min(i + CHUNK - 1, #list) do part[#part + 1] = list[j] end
    fn(part)
  end
end
