--[[
  Ends an open job (queued/running -> done/error/cancelled), once.
  KEYS[1] job hash   KEYS[2] queued zset   KEYS[3] running zset
  KEYS[4] open-jobs hash   KEYS[5] stored-bytes hash   KEYS[6] expiring zset (score: expiry)
  ARGV[1] id   ARGV[2] final state   ARGV[3] result ('' for none)   ARGV[4] error ('' for none)
  ARGV[5] now (ms)   ARGV[6] retention (ms)   ARGV[7] change channel
  ARGV[8] cancel channel ('' for none): a running job cancelled is published there, in this call, so the
          worker running it stops whatever state the caller last read
  Returns 1, or 0 when the job had already ended.
]]
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'running' then return 0 end
-- Published before any write: a subscriber hears it only once the script has ended, and a refused PUBLISH
-- (an ACL without the channel) then leaves the job as it was instead of ended but reported as failed.
redis.call('PUBLISH', ARGV[7], ARGV[1])
if state == 'running' and ARGV[2] == 'cancelled' and ARGV[8] ~= '' then redis.call('PUBLISH', ARGV[8], ARGV[1]) end
local now, retention = tonumber(ARGV[5]), tonumber(ARGV[6])
local added = string.len(ARGV[3]) + string.len(ARGV[4])
local client = redis.call('HGET', KEYS[1], 'client_id')
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updated_at', now, 'expires_at', now + retention)
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[4]) end
redis.call('HINCRBY', KEYS[1], 'bytes', added)
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HDEL', KEYS[1], 'worker_id', 'lease_until')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HINCRBY', KEYS[4], client, -1)
redis.call('HINCRBY', KEYS[5], client, added)
redis.call('ZADD', KEYS[6], now + retention, ARGV[1])
-- A backstop only: the retention sweep deletes the job (and gives back its quota) a day before this.
redis.call('PEXPIRE', KEYS[1], retention + 86400000)
return 1
