/**
 * The Redis job store's Lua scripts: every transition is one script, so it is
 * atomic across replicas and workers, and every change bumps the job's
 * `version` and publishes its id (long polls on any replica wake at once).
 * Each script opens with its KEYS and ARGV, as BullMQ's do. Keys that
 * depend on data read inside a script (a job found in a queue, an
 * idempotency key stored in a job) are built from the prefix in ARGV; with a
 * hash-tagged prefix (`{smcp}:`) they all share one Cluster slot.
 */
export const SCRIPTS = {
  create: {
    keys: 11,
    lua: `--[[
  Creates a queued job, unless an idempotency key names a live one, or the
  client is past a quota.
  KEYS[1] job hash            KEYS[2] queued zset (score: turn * 2^32 + seq)
  KEYS[3] client index zset   KEYS[4] all-jobs index zset
  KEYS[5] idempotency key (or the job hash again when there is none)
  KEYS[6] open-jobs hash      KEYS[7] stored-bytes hash
  KEYS[8] last-turn hash      KEYS[9] sequence counter
  KEYS[10] running zset       KEYS[11] serving hash (tool -> turn of its job started last)
  ARGV[1] key prefix   ARGV[2] id   ARGV[3] client_id   ARGV[4] tool
  ARGV[5] args (canonical JSON)     ARGV[6] idempotency key text ('' for none)
  ARGV[7] now (ms)     ARGV[8] index horizon (ms)
  ARGV[9] max open jobs ('' for none)   ARGV[10] max stored bytes ('' for none)
  ARGV[11] the starting call's traceparent ('' for none)
  Returns {1, job} created, {0, job} the job the key names, {-1, reason} refused.
]]
local id, client, now = ARGV[2], ARGV[3], tonumber(ARGV[7])
if ARGV[6] ~= '' then
  local existing = redis.call('GET', KEYS[5])
  if existing then
    local key = ARGV[1] .. 'job:' .. existing
    local expires = redis.call('HGET', key, 'expires_at')
    if redis.call('EXISTS', key) == 1 and not (expires and tonumber(expires) <= now) then
      return {0, redis.call('HGETALL', key)}
    end
  end
end
local open = tonumber(redis.call('HGET', KEYS[6], client) or '0')
local bytes = tonumber(redis.call('HGET', KEYS[7], client) or '0')
local size = string.len(ARGV[5])
if ARGV[9] ~= '' and open >= tonumber(ARGV[9]) then return {-1, 'open_jobs'} end
if ARGV[10] ~= '' and bytes + size > tonumber(ARGV[10]) then return {-1, 'stored_bytes'} end
local turn = 1
if open > 0 then turn = tonumber(redis.call('HGET', KEYS[8], client) or '0') + 1 end
-- Never below the turn the tool serves (its job started last): the fair-turn rule of src/jobs/policy.ts.
local serving = tonumber(redis.call('HGET', KEYS[11], ARGV[4]) or '1')
if serving > turn then turn = serving end
local seq = redis.call('INCR', KEYS[9])
redis.call('HSET', KEYS[1], 'id', id, 'client_id', client, 'tool', ARGV[4], 'args', ARGV[5], 'idem_key', ARGV[6] ~= '' and KEYS[5] or '',
  'idem', ARGV[6], 'state', 'queued', 'attempts', 0, 'created_at', now, 'updated_at', now, 'version', 1, 'turn', turn,
  'bytes', size, 'seq', seq)
if ARGV[11] and ARGV[11] ~= '' then redis.call('HSET', KEYS[1], 'trace', ARGV[11]) end
if ARGV[6] ~= '' then redis.call('SET', KEYS[5], id) end
redis.call('ZADD', KEYS[2], turn * 4294967296 + seq, id)
redis.call('HINCRBY', KEYS[6], client, 1)
redis.call('HINCRBY', KEYS[7], client, size)
redis.call('HSET', KEYS[8], client, turn)
local horizon = now - tonumber(ARGV[8])
for i = 3, 4 do
  redis.call('ZADD', KEYS[i], now, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. horizon)
end
return {1, redis.call('HGETALL', KEYS[1])}`,
  },
  start: {
    keys: 4,
    lua: `--[[
  Starts a queued job (queued -> running) under a lease.
  KEYS[1] job hash   KEYS[2] queued zset   KEYS[3] running zset (score: lease end)
  KEYS[4] serving hash (tool -> turn of its job started last)
  ARGV[1] id   ARGV[2] worker id   ARGV[3] lease end (ms)   ARGV[4] now (ms)
  Returns the job, or false when it is not queued. (Not a change a poll shows: no new version.)
]]
local state, tool, turn = unpack(redis.call('HMGET', KEYS[1], 'state', 'tool', 'turn'))
if state ~= 'queued' then return false end
redis.call('HSET', KEYS[4], tool, turn)
redis.call('HSET', KEYS[1], 'state', 'running', 'worker_id', ARGV[2], 'lease_until', ARGV[3], 'updated_at', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return redis.call('HGETALL', KEYS[1])`,
  },
  claim: {
    keys: 3,
    lua: `--[[
  Starts the first queued job (lowest turn, then oldest), optionally only of some tools.
  KEYS[1] queued zset   KEYS[2] running zset   KEYS[3] serving hash (tool -> turn of its job started last)
  ARGV[1] key prefix   ARGV[2] worker id   ARGV[3] lease end (ms)   ARGV[4] now (ms)
  ARGV[5] tools (JSON list, '' for any)
  Returns the job, or false when none is queued (among the first 100).
]]
local allowed = nil
if ARGV[5] ~= '' then
  allowed = {}
  for _, tool in ipairs(cjson.decode(ARGV[5])) do allowed[tool] = true end
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, 99)) do
  local key = ARGV[1] .. 'job:' .. id
  local state, tool, turn = unpack(redis.call('HMGET', key, 'state', 'tool', 'turn'))
  if state ~= 'queued' then
    redis.call('ZREM', KEYS[1], id)
  elseif allowed == nil or allowed[tool] then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HSET', KEYS[3], tool, turn)
    redis.call('HSET', key, 'state', 'running', 'worker_id', ARGV[2], 'lease_until', ARGV[3], 'updated_at', ARGV[4])
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('ZADD', KEYS[2], ARGV[3], id)
    return redis.call('HGETALL', key)
  end
end
return false`,
  },
  progress: {
    keys: 1,
    lua: `--[[
  Records a running job's progress.
  KEYS[1] job hash
  ARGV[1] id   ARGV[2] progress (canonical JSON)   ARGV[3] now (ms)   ARGV[4] change channel
  Returns 1, or 0 when the job is not running.
]]
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2], 'updated_at', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 1`,
  },
  finish: {
    keys: 6,
    lua: `--[[
  Ends an open job (queued/running -> done/error/cancelled), once.
  KEYS[1] job hash   KEYS[2] queued zset   KEYS[3] running zset
  KEYS[4] open-jobs hash   KEYS[5] stored-bytes hash   KEYS[6] expiring zset (score: expiry)
  ARGV[1] id   ARGV[2] final state   ARGV[3] result ('' for none)   ARGV[4] error ('' for none)
  ARGV[5] now (ms)   ARGV[6] retention (ms)   ARGV[7] change channel
  Returns 1, or 0 when the job had already ended.
]]
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'running' then return 0 end
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
redis.call('PUBLISH', ARGV[7], ARGV[1])
return 1`,
  },
  heartbeat: {
    keys: 1,
    lua: `--[[
  Extends the leases of the jobs a worker runs.
  KEYS[1] running zset
  ARGV[1] key prefix   ARGV[2] worker id   ARGV[3] lease end (ms)   ARGV[4..] job ids
  Returns the ids the worker no longer holds (cancelled, finished, requeued).
]]
local lost = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local key = ARGV[1] .. 'job:' .. id
  local fields = redis.call('HMGET', key, 'state', 'worker_id')
  if fields[1] == 'running' and fields[2] == ARGV[2] then
    redis.call('HSET', key, 'lease_until', ARGV[3])
    redis.call('ZADD', KEYS[1], ARGV[3], id)
  else
    lost[#lost + 1] = id
  end
end
return lost`,
  },
  requeue: {
    keys: 6,
    lua: `--[[
  Puts a running job back in the queue (its worker died or shut down), or
  ends it in error once its attempts are spent.
  KEYS[1] job hash   KEYS[2] queued zset   KEYS[3] running zset
  KEYS[4] open-jobs hash   KEYS[5] stored-bytes hash   KEYS[6] expiring zset
  ARGV[1] id   ARGV[2] max attempts   ARGV[3] only if the lease ended before this (ms; '' for any)
  ARGV[4] now (ms)   ARGV[5] retention (ms)   ARGV[6] the attempts-exhausted error's canonical JSON before
  its count   ARGV[7] change channel   ARGV[8] ... and after it (src/jobs/policy.ts)
  Returns 'queued', 'error', or '' when nothing changed.
]]
local fields = redis.call('HMGET', KEYS[1], 'state', 'lease_until', 'attempts', 'turn', 'seq', 'client_id')
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
redis.call('ZADD', KEYS[2], tonumber(fields[4]) * 4294967296 + tonumber(fields[5]), ARGV[1])
return 'queued'`,
  },
  sweep: {
    keys: 5,
    lua: `--[[
  Deletes finished jobs whose retention has passed, with their idempotency
  keys and index entries, and gives their bytes back to their clients' quotas.
  KEYS[1] expiring zset   KEYS[2] all-jobs index   KEYS[3] stored-bytes hash
  KEYS[4] open-jobs hash  KEYS[5] last-turn hash
  ARGV[1] key prefix   ARGV[2] now (ms)   ARGV[3] at most this many   ARGV[4] change channel
  Returns the ids deleted.
]]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local key = ARGV[1] .. 'job:' .. id
  local client, bytes, idem = unpack(redis.call('HMGET', key, 'client_id', 'bytes', 'idem_key'))
  if client then
    local left = redis.call('HINCRBY', KEYS[3], client, -tonumber(bytes or '0'))
    if left <= 0 and tonumber(redis.call('HGET', KEYS[4], client) or '0') <= 0 then
      redis.call('HDEL', KEYS[3], client)
      redis.call('HDEL', KEYS[4], client)
      redis.call('HDEL', KEYS[5], client)
    end
    redis.call('ZREM', ARGV[1] .. 'client:' .. client, id)
  end
  if idem and idem ~= '' and redis.call('GET', idem) == id then redis.call('DEL', idem) end
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('PUBLISH', ARGV[4], id)
end
return ids`,
  },
} as const;

/** A script's name. */
export type ScriptName = keyof typeof SCRIPTS;
