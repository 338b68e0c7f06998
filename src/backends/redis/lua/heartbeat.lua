--[[
  Extends the lease of one job a worker runs (the caller sends one per job,
  pipelined: one round trip for all of them).
  KEYS[1] job hash   KEYS[2] running zset
  ARGV[1] id   ARGV[2] worker id   ARGV[3] lease end (ms)
  Returns 1, or 0 when the worker no longer holds it (cancelled, finished, requeued).
]]
local fields = redis.call('HMGET', KEYS[1], 'state', 'worker_id')
if fields[1] == 'running' and fields[2] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'lease_until', ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  return 1
end
return 0
