--[[
  Records a running job's progress.
  KEYS[1] job hash
  ARGV[1] id   ARGV[2] progress (canonical JSON)   ARGV[3] now (ms)   ARGV[4] change channel
  Returns 1, or 0 when the job is not running.
]]
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2], 'updated_at', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 1
