//! The Lua scripts of the Redis store: one per mutation, each the shared header
//! (`scripts.lua`: commit, ownership checks) plus its own body.

use redis::Script;

const HEADER: &str = include_str!("scripts.lua");

/// The compiled scripts.
pub struct Scripts {
    /// ARGV: company id, company JSON, [key id, key hash, key JSON, change JSON].
    pub create_company: Script,
    /// ARGV: company id, workspace id, workspace JSON.
    pub create_workspace: Script,
    /// ARGV: company id, workspace id.
    pub delete_workspace: Script,
    /// ARGV: workspace, connection id, connection JSON, [key, key JSON, change JSON].
    pub create_connection: Script,
    /// ARGV: workspace, connection.
    pub delete_connection: Script,
    /// ARGV: workspace, connection, key, key JSON, change JSON, cap.
    pub add_write_key: Script,
    /// ARGV: workspace, connection, key.
    pub delete_write_key: Script,
    /// ARGV: company, key id, key hash, key JSON, change JSON.
    pub create_api_key: Script,
    /// ARGV: key id, company, expected updatedAt, key JSON, change JSON.
    pub replace_api_key: Script,
}

fn script(body: &str) -> Script {
    Script::new(&format!("{HEADER}\n{body}"))
}

impl Scripts {
    /// Compiles (hashes) every script; Redis caches them by SHA after first use.
    pub fn new() -> Self {
        Self {
            create_company: script(
                r#"
redis.call('HSET', 'intake:companies', ARGV[1], ARGV[2])
local changes = ''
if ARGV[3] then
  redis.call('HSET', 'intake:api-keys', ARGV[3], ARGV[5])
  redis.call('HSET', 'intake:api-key-hashes', ARGV[4], ARGV[3])
  changes = ARGV[6]
end
return commit(changes)
"#,
            ),
            create_workspace: script(
                r#"
if redis.call('HEXISTS', 'intake:companies', ARGV[1]) == 0 then return 'E:CompanyNotFound' end
redis.call('HSET', 'intake:workspaces', ARGV[2], ARGV[3])
return commit('')
"#,
            ),
            delete_workspace: script(
                r#"
if not owned_workspace(ARGV[1], ARGV[2]) then return 'E:WorkspaceNotFound' end
local set = 'intake:workspace-connections:' .. ARGV[2]
local parts = {}
for _, connection in ipairs(redis.call('SMEMBERS', set)) do
  for _, part in ipairs(drop_connection(connection)) do parts[#parts + 1] = part end
end
redis.call('DEL', set)
redis.call('HDEL', 'intake:workspaces', ARGV[2])
return commit(table.concat(parts, ','))
"#,
            ),
            create_connection: script(
                r#"
if redis.call('HEXISTS', 'intake:workspaces', ARGV[1]) == 0 then return 'E:WorkspaceNotFound' end
if redis.call('HSETNX', 'intake:connections', ARGV[2], ARGV[3]) == 0 then return 'E:Retry' end
redis.call('SADD', 'intake:workspace-connections:' .. ARGV[1], ARGV[2])
local changes = ''
if ARGV[4] then
  redis.call('RPUSH', 'intake:connection-keys:' .. ARGV[2], ARGV[4])
  redis.call('HSET', 'intake:write-keys', ARGV[4], ARGV[5])
  changes = ARGV[6]
end
return commit(changes)
"#,
            ),
            delete_connection: script(
                r#"
if not connection_in(ARGV[1], ARGV[2]) then return 'E:ConnectionNotFound' end
local parts = drop_connection(ARGV[2])
redis.call('SREM', 'intake:workspace-connections:' .. ARGV[1], ARGV[2])
return commit(table.concat(parts, ','))
"#,
            ),
            add_write_key: script(
                r#"
local connection = connection_in(ARGV[1], ARGV[2])
if not connection then return 'E:ConnectionNotFound' end
if connection.type ~= 'sdk' and connection.type ~= 'webhook' then return 'E:NotEventConnection' end
local list = 'intake:connection-keys:' .. ARGV[2]
if redis.call('LLEN', list) >= tonumber(ARGV[6]) then return 'E:TooManyWriteKeys' end
redis.call('RPUSH', list, ARGV[3])
redis.call('HSET', 'intake:write-keys', ARGV[3], ARGV[4])
return commit(ARGV[5])
"#,
            ),
            delete_write_key: script(
                r#"
if not connection_in(ARGV[1], ARGV[2]) then return 'E:ConnectionNotFound' end
local list = 'intake:connection-keys:' .. ARGV[2]
if not redis.call('LPOS', list, ARGV[3]) then return 'E:WriteKeyNotFound' end
if redis.call('LLEN', list) <= 1 then return 'E:LastWriteKey' end
redis.call('LREM', list, 1, ARGV[3])
redis.call('HDEL', 'intake:write-keys', ARGV[3])
return commit('{"op":"writeKeyRevoked","key":"' .. ARGV[3] .. '"}')
"#,
            ),
            create_api_key: script(
                r#"
if redis.call('HEXISTS', 'intake:companies', ARGV[1]) == 0 then return 'E:CompanyNotFound' end
redis.call('HSET', 'intake:api-keys', ARGV[2], ARGV[4])
redis.call('HSET', 'intake:api-key-hashes', ARGV[3], ARGV[2])
return commit(ARGV[5])
"#,
            ),
            replace_api_key: script(
                r#"
local raw = redis.call('HGET', 'intake:api-keys', ARGV[1])
if not raw then return 'E:ApiKeyNotFound' end
local key = cjson.decode(raw)
if key.companyId ~= tonumber(ARGV[2]) then return 'E:ApiKeyNotFound' end
if key.updatedAt ~= ARGV[3] then return 'E:Conflict' end
redis.call('HSET', 'intake:api-keys', ARGV[1], ARGV[4])
return commit(ARGV[5])
"#,
            ),
        }
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}
