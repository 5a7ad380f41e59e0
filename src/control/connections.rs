//! Connections of a workspace and their event write keys: sdk and webhook connections
//! carry 1 to 20 keys; other types carry none.

use super::fields::{AllowedOrigins, ConnectionType, Name};
use super::workspaces::plan_connection_removal;
use super::{Control, ControlError};
use crate::clock;
use crate::index::feed::Change;
use crate::model::{Connection, Id, Workspace, WriteKey};
use crate::secrets;
use crate::store::plan::{Cmp, Plan, Precondition, Write};

/// Most event write keys a connection may have.
const MAX_WRITE_KEYS: usize = 20;

/// Connection ids are random positive 31-bit integers.
fn new_connection_id() -> Id {
    rand::random_range(1..=i32::MAX as u32)
}

/// What `PUT /v1/connections/{id}` may change; `None` keeps the current value.
pub(crate) struct ConnectionChanges {
    pub(crate) name: Option<Name>,
    pub(crate) allowed_origins: Option<AllowedOrigins>,
}

impl Control {
    /// The workspace's connections, oldest first.
    pub(crate) async fn connections(
        &self,
        workspace: &Workspace,
    ) -> Result<Vec<Connection>, ControlError> {
        Ok(self.store.connections(workspace.id).await?)
    }

    /// One connection of the workspace.
    pub(crate) async fn connection(
        &self,
        workspace: &Workspace,
        id: Id,
    ) -> Result<Connection, ControlError> {
        self.store
            .connection(id)
            .await?
            .filter(|c| c.workspace_id == workspace.id)
            .ok_or(ControlError::ConnectionNotFound)
    }

    /// A connection; sdk and webhook connections are created with their first key.
    pub(crate) async fn create_connection(
        &self,
        workspace: &Workspace,
        name: Name,
        kind: ConnectionType,
        origins: AllowedOrigins,
    ) -> Result<Connection, ControlError> {
        self.decide_and_commit(|| {
            let connection = Connection {
                id: new_connection_id(),
                workspace_id: workspace.id,
                name: name.0.clone(),
                kind: kind.0.clone(),
                created_at: clock::now(),
                allowed_origins: origins.0.clone(),
                revision: 0,
            };
            let mut plan = Plan {
                preconditions: vec![
                    Precondition::WorkspaceOf {
                        workspace: workspace.id,
                        company: workspace.company_id,
                    },
                    Precondition::ConnectionIdFree(connection.id),
                ],
                writes: vec![Write::PutConnection(connection.clone())],
                changes: origins_change(&connection).into_iter().collect(),
            };
            if let Some(target) = connection.target() {
                let key = WriteKey {
                    key: secrets::new_write_key(),
                    created_at: connection.created_at,
                };
                plan.changes.push(Change::WriteKeyAdded {
                    key: key.key.clone(),
                    target,
                });
                plan.writes.push(Write::AddWriteKey { key, target });
            }
            Box::pin(async move { Ok((plan, connection)) })
        })
        .await
    }

    /// Changes a connection's name and allowed origins.
    pub(crate) async fn update_connection(
        &self,
        workspace: &Workspace,
        id: Id,
        changes: ConnectionChanges,
    ) -> Result<Connection, ControlError> {
        self.decide_and_commit(|| {
            let changes = &changes;
            Box::pin(async move {
                let current = self.connection(workspace, id).await?;
                let mut next = current.clone();
                if let Some(name) = &changes.name {
                    next.name = name.0.clone();
                }
                if let Some(origins) = &changes.allowed_origins {
                    next.allowed_origins = origins.0.clone();
                }
                next.revision = current.revision + 1;
                let mut plan = Plan {
                    preconditions: vec![
                        Precondition::ConnectionIn {
                            connection: id,
                            workspace: workspace.id,
                        },
                        Precondition::ConnectionRevision {
                            connection: id,
                            revision: current.revision,
                        },
                    ],
                    writes: vec![Write::PutConnection(next.clone())],
                    changes: Vec::new(),
                };
                if next.allowed_origins != current.allowed_origins {
                    plan.changes.push(Change::OriginsSet {
                        connection_id: id,
                        origins: next.allowed_origins.clone(),
                    });
                }
                Ok((plan, next))
            })
        })
        .await
    }

    /// Deletes a connection, revoking all its keys.
    pub(crate) async fn delete_connection(
        &self,
        workspace: &Workspace,
        id: Id,
    ) -> Result<(), ControlError> {
        self.decide_and_commit(|| {
            Box::pin(async move {
                let connection = self.connection(workspace, id).await?;
                let keys = self.store.write_keys(id).await?;
                let mut plan = Plan::default();
                plan_connection_removal(&mut plan, connection, keys);
                Ok((plan, ()))
            })
        })
        .await
    }

    /// A connection's write keys, oldest first (never empty for sdk and webhook).
    pub(crate) async fn write_keys(
        &self,
        workspace: &Workspace,
        id: Id,
    ) -> Result<Vec<WriteKey>, ControlError> {
        let connection = self.connection(workspace, id).await?;
        if connection.source().is_none() {
            return Err(ControlError::NotEventConnection);
        }
        Ok(self.store.write_keys(id).await?)
    }

    /// A new write key, unless the connection has 20 already.
    pub(crate) async fn add_write_key(
        &self,
        workspace: &Workspace,
        id: Id,
    ) -> Result<String, ControlError> {
        self.decide_and_commit(|| {
            Box::pin(async move {
                let connection = self.connection(workspace, id).await?;
                let target = connection
                    .target()
                    .ok_or(ControlError::NotEventConnection)?;
                if self.store.write_keys(id).await?.len() >= MAX_WRITE_KEYS {
                    return Err(ControlError::TooManyWriteKeys);
                }
                let key = WriteKey {
                    key: secrets::new_write_key(),
                    created_at: clock::now(),
                };
                let plan = Plan {
                    preconditions: vec![
                        Precondition::ConnectionIn {
                            connection: id,
                            workspace: workspace.id,
                        },
                        Precondition::WriteKeyCount {
                            connection: id,
                            cmp: Cmp::Below,
                            n: MAX_WRITE_KEYS,
                        },
                    ],
                    writes: vec![Write::AddWriteKey {
                        key: key.clone(),
                        target,
                    }],
                    changes: vec![Change::WriteKeyAdded {
                        key: key.key.clone(),
                        target,
                    }],
                };
                Ok((plan, key.key))
            })
        })
        .await
    }

    /// Deletes a write key, unless it is the connection's last one.
    pub(crate) async fn delete_write_key(
        &self,
        workspace: &Workspace,
        id: Id,
        key: &str,
    ) -> Result<(), ControlError> {
        self.decide_and_commit(|| {
            Box::pin(async move {
                self.connection(workspace, id).await?;
                let keys = self.store.write_keys(id).await?;
                if !keys.iter().any(|k| k.key == key) {
                    return Err(ControlError::WriteKeyNotFound);
                }
                if keys.len() <= 1 {
                    return Err(ControlError::LastWriteKey);
                }
                let plan = Plan {
                    preconditions: vec![
                        Precondition::ConnectionIn {
                            connection: id,
                            workspace: workspace.id,
                        },
                        Precondition::WriteKeyOf {
                            key: key.to_string(),
                            connection: id,
                        },
                        Precondition::WriteKeyCount {
                            connection: id,
                            cmp: Cmp::Above,
                            n: 1,
                        },
                    ],
                    writes: vec![Write::RemoveWriteKey {
                        key: key.to_string(),
                        connection: id,
                    }],
                    changes: vec![Change::WriteKeyRevoked {
                        key: key.to_string(),
                    }],
                };
                Ok((plan, ()))
            })
        })
        .await
    }
}

/// The index change a new connection's origins need, if it has any.
fn origins_change(connection: &Connection) -> Option<Change> {
    (!connection.allowed_origins.is_empty()).then(|| Change::OriginsSet {
        connection_id: connection.id,
        origins: connection.allowed_origins.clone(),
    })
}
