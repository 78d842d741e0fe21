-- KEYS[1]: the graph's workers by expiry time; ARGV[1]: the prefix of their hashes.
-- Returns {number of expired workers pruned, user id, username, user id, username, ...} (ids may repeat).
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local result = {redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)}
for _, worker in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local fields = redis.call('HGETALL', ARGV[1] .. worker)
  for i = 1, #fields do
    result[#result + 1] = fields[i]
  end
end
return result
