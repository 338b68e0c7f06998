--[[
  Writes the client registry with compare-and-set: the document is written
  only at the version the writer read.
  KEYS[1] registry hash (fields version, doc)
  ARGV[1] the version the writer read   ARGV[2] the new document
  Returns 1 written, 0 the version moved on.
]]
local v = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if v ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', v + 1, 'doc', ARGV[2])
return 1
