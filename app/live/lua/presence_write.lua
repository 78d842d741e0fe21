-- KEYS[1]: this worker's hash of viewers of a graph; KEYS[2]: the graph's workers by expiry time.
-- ARGV: worker id, ttl, "replace" (make the hash exactly the given fields) or "update", n, chunk size, then n
-- field/value pairs to set, then (update) fields to delete.
-- Returns {1 if the worker was (re)added to the sorted set, number of expired workers pruned, number of users the
-- hash gained or lost}. A replace that changes anything means Redis had lost our entries (it restarted, or we were
-- pruned while stalled): the caller then tells the other workers.
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local ttl = tonumber(ARGV[2])
local n = tonumber(ARGV[4])
local chunk = tonumber(ARGV[5])
local last = 5 + 2 * n
local changed = 0
local gone = {}
if ARGV[3] == 'replace' then
  local keep = {}
  for i = 6, last, 2 do
    keep[ARGV[i]] = true
  end
  for _, user in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not keep[user] then
      gone[#gone + 1] = user
    end
  end
else
  for i = last + 1, #ARGV do
    gone[#gone + 1] = ARGV[i]
  end
end
for i = 1, #gone, chunk do
  changed = changed + redis.call('HDEL', KEYS[1], unpack(gone, i, math.min(i + chunk - 1, #gone)))
end
for i = 6, last, chunk do
  changed = changed + redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + chunk - 1, last)))
end
local added = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ttl)
  added = redis.call('ZADD', KEYS[2], t + ttl, ARGV[1])
  redis.call('EXPIRE', KEYS[2], ttl)
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
local pruned = redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', t)
return {added, pruned, changed}
