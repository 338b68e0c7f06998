--[[
  Deletes one finished job whose retention has passed, with its idempotency
  key and index entries, and gives its bytes back to its client's quota. The
  caller read the job's client and idempotency key (set at creation, never
  changed) to name their keys; the script checks them against the hash.
  KEYS[1] expiring zset   KEYS[2] all-jobs index   KEYS[3] stored-bytes hash
  KEYS[4] open-jobs hash  KEYS[5] last-turn hash   KEYS[6] job hash
  KEYS[7] the client's index zset   KEYS[8] idempotency key (or the job hash again)
  KEYS[9] the job's tool's queued zset, which a job cancelled while queued may still be in (or the queued zset)
  ARGV[1] id   ARGV[2] now (ms)   ARGV[3] change channel
  ARGV[4] client id the caller read   ARGV[5] idempotency key name the caller read ('' for none)
  Returns 1 deleted, 0 not due, -1 the hash changed since the caller read it.
]]
local id = ARGV[1]
local score = redis.call('ZSCORE', KEYS[1], id)
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
local client, bytes, idem = unpack(redis.call('HMGET', KEYS[6], 'client_id', 'bytes', 'idem_key'))
if client and (client ~= ARGV[4] or (idem or '') ~= ARGV[5]) then return -1 end
if client then
  local left = redis.call('HINCRBY', KEYS[3], client, -tonumber(bytes or '0'))
  if left <= 0 and tonumber(redis.call('HGET', KEYS[4], client) or '0') <= 0 then
    redis.call('HDEL', KEYS[3], client)
    redis.call('HDEL', KEYS[4], client)
    redis.call('HDEL', KEYS[5], client)
  end
  redis.call('ZREM', KEYS[7], id)
end
if idem and idem ~= '' and redis.call('GET', KEYS[8]) == id then redis.call('DEL', KEYS[8]) end
redis.call('DEL', KEYS[6])
redis.call('ZREM', KEYS[1], id)
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[9], id)
redis.call('PUBLISH', ARGV[3], id)
return 1
