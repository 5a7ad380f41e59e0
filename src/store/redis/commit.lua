-- The one script of the Redis store: commits a plan decided in Rust. It knows no rule
-- of intake; it checks the preconditions it is given, applies the writes it is given,
-- increments intake:version and publishes the message it is given, all atomically.
--
-- ARGV[1]  the version the message was built on (the commit makes it ARGV[1] + 1)
-- ARGV[2]  the change message, JSON built by serde, published as it is
-- ARGV[3]  the number of checks, then each check:
--            'hexists', hash, field, '0' | '1'      the field exists (1) or not (0)
--            'field', hash, field, name, value     the JSON record's `name` is `value`
--            'count', 'LLEN' | 'SCARD', key, 'lt' | 'gt' | 'eq', n
-- then the writes, each: argc, command, args... (HSET HDEL SADD SREM RPUSH LREM DEL)
-- Answers {'ok', version}, {'version', current} when another commit came first, or
-- {'failed', n} when check n does not hold (nothing is written then).

local current = redis.call('GET', 'intake:version') or '0'
if current ~= ARGV[1] then return {'version', current} end

local writable = {HSET = true, HDEL = true, SADD = true, SREM = true, RPUSH = true,
                  LREM = true, DEL = true}
local i = 4
for n = 1, tonumber(ARGV[3]) do
  local kind, holds = ARGV[i], false
  if kind == 'hexists' then
    holds = redis.call('HEXISTS', ARGV[i + 1], ARGV[i + 2]) == tonumber(ARGV[i + 3])
    i = i + 4
  elseif kind == 'field' then
    local raw = redis.call('HGET', ARGV[i + 1], ARGV[i + 2])
    holds = raw and tostring(cjson.decode(raw)[ARGV[i + 3]]) == ARGV[i + 4]
    i = i + 5
  elseif kind == 'count' and (ARGV[i + 1] == 'LLEN' or ARGV[i + 1] == 'SCARD') then
    local count, op, limit = redis.call(ARGV[i + 1], ARGV[i + 2]), ARGV[i + 3], tonumber(ARGV[i + 4])
    holds = (op == 'lt' and count < limit) or (op == 'gt' and count > limit)
      or (op == 'eq' and count == limit)
    i = i + 5
  else
    return redis.error_reply('commit: unknown check ' .. tostring(kind))
  end
  if not holds then return {'failed', tostring(n)} end
end

local writes = {}
while i <= #ARGV do
  local argc = tonumber(ARGV[i])
  if not writable[ARGV[i + 1]] then
    return redis.error_reply('commit: not a write command ' .. tostring(ARGV[i + 1]))
  end
  writes[#writes + 1] = {i + 1, i + argc}
  i = i + argc + 1
end
for _, span in ipairs(writes) do
  redis.call(unpack(ARGV, span[1], span[2]))
end
local version = redis.call('INCR', 'intake:version')
redis.call('PUBLISH', 'intake:changes', ARGV[2])
return {'ok', tostring(version)}
