--[[
  Reserves a turn's replay-cache keys in one call: one SET NX PX each, in order.
  KEYS[1..n] nonce keys (on a Cluster, all in one slot: the store sends one call per client tag)
  ARGV[i]    KEYS[i]'s time to live, ms
  Returns one entry per key: 1 reserved, 0 already held (a replay), or the
  error Redis gave that SET (an OOM under noeviction, say), as a string.
  Each SET is its own pcall so one refused write answers only its request.
]]
local out = {}
for i, key in ipairs(KEYS) do
  local ok = redis.pcall('SET', key, '1', 'PX', ARGV[i], 'NX')
  if type(ok) == 'table' and ok.err then
    out[i] = ok.err
  elseif ok then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
