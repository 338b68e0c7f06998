--[[
  Claims jobs: starts, in queue order, up to ARGV[5] of some candidates (the
  head of the queued zset, read by the caller just before; or the one job
  `start` names) that are still queued and, when tools are given, of those
  tools, under a lease. One round trip for a turn's claims, with every key
  it touches in KEYS (the candidates' hashes share the job prefix's hash
  tag, so one Cluster slot). A candidate no longer queued is dropped from
  the queued zset (another process's claim took it, or it ended).
  KEYS[1] queued zset   KEYS[2] running zset (score: lease end)
  KEYS[3] serving hash (tool -> turn of its job started last)
  KEYS[4..] the candidates' job hashes, in queue order
  ARGV[1] worker id   ARGV[2] lease end (ms)   ARGV[3] now (ms)
  ARGV[4] tools (JSON list, '' for any)   ARGV[5] how many to start at most
  ARGV[6..] the candidates' ids, as KEYS[4..]
  Returns the started jobs (an HGETALL each), possibly none.
  (Not a change a poll shows: no new version.)
]]
local allowed = nil
if ARGV[4] ~= '' then
  allowed = {}
  for _, name in ipairs(cjson.decode(ARGV[4])) do allowed[name] = true end
end
local want = tonumber(ARGV[5])
local started = {}
for i = 4, #KEYS do
  if #started >= want then break end
  local id = ARGV[i + 2]
  local state, tool, turn = unpack(redis.call('HMGET', KEYS[i], 'state', 'tool', 'turn'))
  if state ~= 'queued' then
    redis.call('ZREM', KEYS[1], id)
  elseif allowed == nil or allowed[tool] then
    redis.call('HSET', KEYS[3], tool, turn)
    redis.call('HSET', KEYS[i], 'state', 'running', 'worker_id', ARGV[1], 'lease_until', ARGV[2], 'updated_at', ARGV[3])
    redis.call('HINCRBY', KEYS[i], 'attempts', 1)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    started[#started + 1] = redis.call('HGETALL', KEYS[i])
  end
end
return started
