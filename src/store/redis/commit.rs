//! A plan as the arguments of the one generic script (`commit.lua`): preconditions
//! become primitive checks on this layout, writes become commands, and the change
//! message is serialised here, with the version it will have.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{
    connection_keys, timed, workspace_connections, RedisStore, StoredWriteKey, API_KEYS,
    API_KEY_HASHES, COMPANIES, CONNECTIONS, OPERATION_TIMEOUT, WORKSPACES, WRITE_KEYS,
};
use crate::clock::format_millis;
use crate::index::feed::ChangeMessage;
use crate::store::plan::{Cmp, Plan, Precondition, Write};
use crate::store::StoreError;

/// The compiled script; Redis caches it by SHA after first use.
pub(super) fn script() -> redis::Script {
    redis::Script::new(include_str!("commit.lua"))
}

/// The script's arguments after the first two (version, message).
#[derive(Default)]
struct Args(Vec<String>);

impl Args {
    fn push(&mut self, parts: &[&str]) {
        self.0.extend(parts.iter().map(|p| p.to_string()));
    }

    fn check(&mut self, precondition: &Precondition) {
        match precondition {
            Precondition::CompanyExists(id) => {
                self.push(&["hexists", COMPANIES, &id.to_string(), "1"])
            }
            Precondition::WorkspaceOf { workspace, company } => self.push(&[
                "field",
                WORKSPACES,
                &workspace.to_string(),
                "companyId",
                &company.to_string(),
            ]),
            Precondition::ConnectionIn {
                connection,
                workspace,
            } => self.push(&[
                "field",
                CONNECTIONS,
                &connection.to_string(),
                "workspaceId",
                &workspace.to_string(),
            ]),
            Precondition::ConnectionRevision {
                connection,
                revision,
            } => self.push(&[
                "field",
                CONNECTIONS,
                &connection.to_string(),
                "revision",
                &revision.to_string(),
            ]),
            Precondition::ConnectionIdFree(id) => {
                self.push(&["hexists", CONNECTIONS, &id.to_string(), "0"])
            }
            Precondition::WriteKeyOf { key, connection } => self.push(&[
                "field",
                WRITE_KEYS,
                key,
                "connectionId",
                &connection.to_string(),
            ]),
            Precondition::WriteKeyCount { connection, cmp, n } => self.push(&[
                "count",
                "LLEN",
                &connection_keys(*connection),
                op(*cmp),
                &n.to_string(),
            ]),
            Precondition::ConnectionCount { workspace, n } => self.push(&[
                "count",
                "SCARD",
                &workspace_connections(*workspace),
                "eq",
                &n.to_string(),
            ]),
            Precondition::ApiKeyUpdatedAt { id, updated_at } => self.push(&[
                "field",
                API_KEYS,
                id,
                "updatedAt",
                &format_millis(*updated_at),
            ]),
        }
    }

    fn command(&mut self, parts: &[&str]) {
        self.0.push(parts.len().to_string());
        self.push(parts);
    }

    fn write(&mut self, write: &Write) -> Result<(), StoreError> {
        match write {
            Write::PutCompany(company) => {
                let json = serde_json::to_string(company)?;
                self.command(&["HSET", COMPANIES, &company.id.to_string(), &json]);
            }
            Write::PutWorkspace(workspace) => {
                let json = serde_json::to_string(workspace)?;
                self.command(&["HSET", WORKSPACES, &workspace.id.to_string(), &json]);
            }
            Write::DeleteWorkspace(id) => {
                self.command(&["HDEL", WORKSPACES, &id.to_string()]);
                self.command(&["DEL", &workspace_connections(*id)]);
            }
            Write::PutConnection(connection) => {
                let (id, json) = (
                    connection.id.to_string(),
                    serde_json::to_string(connection)?,
                );
                self.command(&["HSET", CONNECTIONS, &id, &json]);
                let members = workspace_connections(connection.workspace_id);
                self.command(&["SADD", &members, &id]);
            }
            Write::DeleteConnection(connection) => {
                let id = connection.id.to_string();
                self.command(&["HDEL", CONNECTIONS, &id]);
                let members = workspace_connections(connection.workspace_id);
                self.command(&["SREM", &members, &id]);
                self.command(&["DEL", &connection_keys(connection.id)]);
            }
            Write::AddWriteKey { key, target } => {
                let stored = serde_json::to_string(&StoredWriteKey {
                    workspace_id: target.workspace_id,
                    connection_id: target.connection_id,
                    source: target.source,
                    created_at: key.created_at,
                })?;
                self.command(&["HSET", WRITE_KEYS, &key.key, &stored]);
                let list = connection_keys(target.connection_id);
                self.command(&["RPUSH", &list, &key.key]);
            }
            Write::RemoveWriteKey { key, connection } => {
                self.command(&["HDEL", WRITE_KEYS, key]);
                self.command(&["LREM", &connection_keys(*connection), "1", key]);
            }
            Write::PutApiKey(key) => {
                let json = serde_json::to_string(key)?;
                self.command(&["HSET", API_KEYS, &key.id, &json]);
                self.command(&["HSET", API_KEY_HASHES, &key.key_hash, &key.id]);
            }
        }
        Ok(())
    }
}

fn op(cmp: Cmp) -> &'static str {
    match cmp {
        Cmp::Below => "lt",
        Cmp::Above => "gt",
        Cmp::Exactly => "eq",
    }
}

impl RedisStore {
    /// Runs the script until it commits on the current version (another node's commit
    /// in between only moves the base), or a precondition fails.
    pub(super) async fn commit_plan(&self, plan: Plan) -> Result<u64, StoreError> {
        let mut args = Args::default();
        args.0.push(plan.preconditions.len().to_string());
        for precondition in &plan.preconditions {
            args.check(precondition);
        }
        for write in &plan.writes {
            args.write(write)?;
        }
        let mut message = ChangeMessage {
            version: 0,
            changes: plan.changes,
        };
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        let mut base = self.last_version.load(Ordering::Relaxed);
        loop {
            message.version = base + 1;
            let mut invocation = self.commit_script.prepare_invoke();
            invocation
                .arg(base)
                .arg(serde_json::to_string(&message)?)
                .arg(&args.0);
            let answer: Vec<String> = timed(invocation.invoke_async(&mut self.conn())).await?;
            match answer.first().map(String::as_str) {
                Some("ok") => {
                    self.last_version
                        .fetch_max(message.version, Ordering::Relaxed);
                    return Ok(message.version);
                }
                Some("failed") => return Err(StoreError::PreconditionFailed),
                Some("version") if Instant::now() < deadline => {
                    base = answer
                        .get(1)
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| StoreError::internal("intake:version is not a number"))?;
                    self.last_version.fetch_max(base, Ordering::Relaxed);
                }
                Some("version") => {
                    return Err(StoreError::Unavailable(
                        "other nodes kept committing first".into(),
                    ))
                }
                _ => return Err(StoreError::internal(format!("commit answered {answer:?}"))),
            }
        }
    }
}
