--[[
  Creates a queued job, unless an idempotency key names a live one, or the
  client is past a quota. Every key is in KEYS (one Cluster slot: the job
  prefix's hash tag); the caller reads the idempotency key first and passes
  the job it names, and the script checks the key still names it.
  KEYS[1] job hash            KEYS[2] queued zset (score: turn * 2^32 + seq)
  KEYS[3] client index zset   KEYS[4] all-jobs index zset
  KEYS[5] idempotency key (or the job hash again when there is none)
  KEYS[6] open-jobs hash      KEYS[7] stored-bytes hash
  KEYS[8] last-turn hash      KEYS[9] sequence counter
  KEYS[10] running zset       KEYS[11] serving hash (tool -> turn of its job started last)
  KEYS[12] the job hash the idempotency key named when the caller read it (or KEYS[1])
  KEYS[13] the tool's queued zset (or KEYS[2] again when the store keeps none per tool)
  ARGV[1] queued channel: where the job's tool is published ('q:' .. tool; '' for none)   ARGV[2] id   ARGV[3] client_id   ARGV[4] tool
  ARGV[5] args (canonical JSON)     ARGV[6] idempotency key text ('' for none)
  ARGV[7] now (ms)     ARGV[8] index horizon (ms)
  ARGV[9] max open jobs ('' for none)   ARGV[10] max stored bytes ('' for none)
  ARGV[11] the job id the idempotency key named when the caller read it ('' for none)
  ARGV[12] the starting call's traceparent ('' for none)
  Returns {1, job} created, {0, job} the job the key names, {-1, reason} refused,
  {-2, ''} the idempotency key changed since the caller read it (read again).
]]
local id, client, now = ARGV[2], ARGV[3], tonumber(ARGV[7])
if ARGV[6] ~= '' then
  local existing = redis.call('GET', KEYS[5]) or ''
  if existing ~= ARGV[11] then return {-2, ''} end
  if existing ~= '' then
    local expires = redis.call('HGET', KEYS[12], 'expires_at')
    if redis.call('EXISTS', KEYS[12]) == 1 and not (expires and tonumber(expires) <= now) then
      return {0, redis.call('HGETALL', KEYS[12])}
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
if ARGV[12] ~= '' then redis.call('HSET', KEYS[1], 'trace', ARGV[12]) end
if ARGV[6] ~= '' then redis.call('SET', KEYS[5], id) end
redis.call('ZADD', KEYS[2], turn * 4294967296 + seq, id)
redis.call('ZADD', KEYS[13], turn * 4294967296 + seq, id)
redis.call('HINCRBY', KEYS[6], client, 1)
redis.call('HINCRBY', KEYS[7], client, size)
redis.call('HSET', KEYS[8], client, turn)
local horizon = now - tonumber(ARGV[8])
for i = 3, 4 do
  redis.call('ZADD', KEYS[i], now, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. horizon)
end
if ARGV[1] ~= '' then redis.call('PUBLISH', ARGV[1], 'q:' .. ARGV[4]) end
return {1, redis.call('HGETALL', KEYS[1])}
