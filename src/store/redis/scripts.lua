-- Shared by every mutation script of the Redis store (src/store/redis/scripts.rs
-- appends one body below this header). Each mutation changes the data, increments
-- intake:version and publishes {"version":V,"changes":[...]} on intake:changes, all in
-- one script, so that nodes see every change exactly once and in order.
-- Answers: 'OK:<version>' or 'E:<StoreError variant>'.

local function commit(changes)
  local version = redis.call('INCR', 'intake:version')
  redis.call('PUBLISH', 'intake:changes',
    '{"version":' .. version .. ',"changes":[' .. changes .. ']}')
  return 'OK:' .. version
end

local function owned_workspace(company, workspace)
  local raw = redis.call('HGET', 'intake:workspaces', workspace)
  return raw and cjson.decode(raw).companyId == tonumber(company)
end

local function connection_in(workspace, connection)
  local raw = redis.call('HGET', 'intake:connections', connection)
  if not raw then return nil end
  local record = cjson.decode(raw)
  if record.workspaceId ~= tonumber(workspace) then return nil end
  return record
end

-- Removes a connection and its keys; returns the revocations as JSON fragments.
-- Keys are [A-Za-z0-9] only, so they need no escaping.
local function drop_connection(connection)
  local list = 'intake:connection-keys:' .. connection
  local parts = {}
  for _, key in ipairs(redis.call('LRANGE', list, 0, -1)) do
    redis.call('HDEL', 'intake:write-keys', key)
    parts[#parts + 1] = '{"op":"writeKeyRevoked","key":"' .. key .. '"}'
  end
  redis.call('DEL', list)
  redis.call('HDEL', 'intake:connections', connection)
  return parts
end
