--[[
  Claims jobs: starts, in the order given, up to ARGV[5] of some candidates
  (the heads of the queued sets, read by the caller just before; or the one
  job `start` names) that are still queued and, when tools are given, of
  those tools, under a lease. One round trip for a turn's claims, with every
  key it touches in KEYS (all share the job prefix's hash tag, so one
  Cluster slot). A candidate no longer queued is dropped from the queued set
  and from the per-tool set it was read from (another process's claim took
  it, or it ended); a started job leaves the global queued set and, when its
  tool's set is among KEYS, that one too.
  KEYS[1] queued zset   KEYS[2] running zset (score: lease end)
  KEYS[3] serving hash (tool -> turn of its job started last)
  KEYS[4 .. 3+T] per-tool queued zsets   KEYS[4+T ..] the candidates' job hashes, in order
  ARGV[1] worker id   ARGV[2] lease end (ms)   ARGV[3] now (ms)
  ARGV[4] tools (JSON list, '' for any)   ARGV[5] how many to start at most
  ARGV[6] T   ARGV[7 .. 6+T] the tools of KEYS[4 .. 3+T]
  then per candidate: its id, and which per-tool set (1..T) it was read from (0: the global one)
  Returns {dropped, job, job, ...}: how many candidates were no longer queued, then the started
  jobs (an HGETALL each), possibly none.
  (Not a change a poll shows: no new version.)
]]
local allowed = nil
if ARGV[4] ~= '' then
  allowed = {}
  for _, name in ipairs(cjson.decode(ARGV[4])) do allowed[name] = true end
end
local want, sets = tonumber(ARGV[5]), tonumber(ARGV[6])
local setOf = {}
for s = 1, sets do setOf[ARGV[6 + s]] = KEYS[3 + s] end
local reply = {0}
local started = 0
local arg = 7 + sets
for i = 4 + sets, #KEYS do
  if started >= want then break end
  local id, from = ARGV[arg], tonumber(ARGV[arg + 1])
  arg = arg + 2
  local state, tool, turn = unpack(redis.call('HMGET', KEYS[i], 'state', 'tool', 'turn'))
  if state ~= 'queued' then
    redis.call('ZREM', KEYS[1], id)
    if from > 0 then redis.call('ZREM', KEYS[3 + from], id) end
    reply[1] = reply[1] + 1
  elseif allowed == nil or allowed[tool] then
    redis.call('HSET', KEYS[3], tool, turn)
    redis.call('HSET', KEYS[i], 'state', 'running', 'worker_id', ARGV[1], 'lease_until', ARGV[2], 'updated_at', ARGV[3])
    redis.call('HINCRBY', KEYS[i], 'attempts', 1)
    redis.call('ZREM', KEYS[1], id)
    if setOf[tool] then redis.call('ZREM', setOf[tool], id) end
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    started = started + 1
    reply[started + 1] = redis.call('HGETALL', KEYS[i])
  end
end
return reply
