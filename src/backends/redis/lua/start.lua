--[[
  Starts a queued job (queued -> running) under a lease, optionally only if
  its tool is one of some tools (a claim: the caller picked the job from the
  head of the queued zset). An id left in the queued zset for a job that is
  no longer queued is removed.
  KEYS[1] job hash   KEYS[2] queued zset   KEYS[3] running zset (score: lease end)
  KEYS[4] serving hash (tool -> turn of its job started last)
  ARGV[1] id   ARGV[2] worker id   ARGV[3] lease end (ms)   ARGV[4] now (ms)
  ARGV[5] tools (JSON list, '' for any)
  Returns the job, or false when it is not queued (or not one of the tools).
  (Not a change a poll shows: no new version.)
]]
local state, tool, turn = unpack(redis.call('HMGET', KEYS[1], 'state', 'tool', 'turn'))
if state ~= 'queued' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return false
end
if ARGV[5] ~= '' then
  local allowed = false
  for _, name in ipairs(cjson.decode(ARGV[5])) do
    if name == tool then allowed = true end
  end
  if not allowed then return false end
end
redis.call('HSET', KEYS[4], tool, turn)
redis.call('HSET', KEYS[1], 'state', 'running', 'worker_id', ARGV[2], 'lease_until', ARGV[3], 'updated_at', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return redis.call('HGETALL', KEYS[1])
