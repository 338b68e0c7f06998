--[[
  Puts a running job back in the queue (its worker died or shut down), or
  ends it in error once its attempts are spent.
  KEYS[1] job hash   KEYS[2] queued zset   KEYS[3] running zset
  KEYS[4] open-jobs hash   KEYS[5] stored-bytes hash   KEYS[6] expiring zset
  KEYS[7] the job's tool's queued zset (or KEYS[2] again when the store keeps none per tool)
  ARGV[1] id   ARGV[2] max attempts   ARGV[3] only if the lease ended before this (ms; '' for any)
  ARGV[4] now (ms)   ARGV[5] retention (ms)   ARGV[6] the attempts-exhausted error's canonical JSON before
  its count   ARGV[7] change channel   ARGV[8] ... and after it (src/jobs/policy.ts)
  ARGV[9] queued channel: where a requeued job's tool is published ('q:' .. tool; '' for none)
  Returns 'queued', 'error', or '' when nothing changed.
]]
local fields = redis.call('HMGET', KEYS[1], 'state', 'lease_until', 'attempts', 'turn', 'seq', 'client_id', 'tool')
if fields[1] ~= 'running' then return '' end
if ARGV[3] ~= '' and not (tonumber(fields[2]) and tonumber(fields[2]) < tonumber(ARGV[3])) then return '' end
local now, retention = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[1], 'worker_id', 'lease_until')
redis.call('HSET', KEYS[1], 'updated_at', now)
if tonumber(fields[3]) >= tonumber(ARGV[2]) then
  local err = ARGV[6] .. fields[3] .. ARGV[8]
  local added = string.len(err)
  redis.call('HINCRBY', KEYS[1], 'version', 1)
  redis.call('PUBLISH', ARGV[7], ARGV[1])
  redis.call('HSET', KEYS[1], 'state', 'error', 'error', err, 'expires_at', now + retention)
  redis.call('HINCRBY', KEYS[1], 'bytes', added)
  redis.call('HINCRBY', KEYS[4], fields[6], -1)
  redis.call('HINCRBY', KEYS[5], fields[6], added)
  redis.call('ZADD', KEYS[6], now + retention, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], retention + 86400000)
  return 'error'
end
redis.call('HSET', KEYS[1], 'state', 'queued')
local score = tonumber(fields[4]) * 4294967296 + tonumber(fields[5])
redis.call('ZADD', KEYS[2], score, ARGV[1])
redis.call('ZADD', KEYS[7], score, ARGV[1])
if ARGV[9] ~= '' then redis.call('PUBLISH', ARGV[9], 'q:' .. fields[7]) end
return 'queued'
