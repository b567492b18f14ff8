local P, G, now = ARGV[1], ARGV[2], ARGV[3]
local nguards = tonumber(ARGV[4])
local pos = 5
local touched = {}
