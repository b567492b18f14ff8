#!lua name=sqlq_${tag}
local ARGV, P, G, now, nguards, pos, touched
${body}local function run(_, argv)
  ARGV = argv
  P, G, now = ARGV[1], ARGV[2], ARGV[3]
  nguards, pos, touched = tonumber(ARGV[4]), 5, {}
${run}end
redis.register_function{function_name='${name}', callback=run}
redis.register_function{function_name='${read_name}', callback=run, flags={'no-writes'}}
