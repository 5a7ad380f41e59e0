//! A plan inside one redb write transaction: its preconditions checked against the
//! transaction's view, then its writes applied.

use redb::{ReadableTable, WriteTransaction};

use super::{decode, encode, get_by_id, redb_error, StoredConnection};
use super::{API_KEYS, API_KEY_HASHES, COMPANIES, CONNECTIONS, WORKSPACES, WORKSPACE_CONNECTIONS};
use crate::clock::format_millis;
use crate::model::{ApiKey, Company, Id, Workspace};
use crate::store::plan::{Precondition, Write};
use crate::store::StoreError;

/// `PreconditionFailed` unless every precondition holds.
pub(super) fn check(
    txn: &WriteTransaction,
    preconditions: &[Precondition],
) -> Result<(), StoreError> {
    for precondition in preconditions {
        if !holds(txn, precondition)? {
            return Err(StoreError::PreconditionFailed);
        }
    }
    Ok(())
}

fn holds(txn: &WriteTransaction, precondition: &Precondition) -> Result<bool, StoreError> {
    let connection = |id: Id| -> Result<Option<StoredConnection>, StoreError> {
        get_by_id(&txn.open_table(CONNECTIONS).map_err(redb_error)?, id)
    };
    Ok(match precondition {
        Precondition::CompanyExists(id) => {
            get_by_id::<Company>(&txn.open_table(COMPANIES).map_err(redb_error)?, *id)?.is_some()
        }
        Precondition::WorkspaceOf { workspace, company } => {
            get_by_id::<Workspace>(&txn.open_table(WORKSPACES).map_err(redb_error)?, *workspace)?
                .is_some_and(|w| w.company_id == *company)
        }
        Precondition::ConnectionIn {
            connection: id,
            workspace,
        } => connection(*id)?.is_some_and(|c| c.connection.workspace_id == *workspace),
        Precondition::ConnectionRevision {
            connection: id,
            revision,
        } => connection(*id)?.is_some_and(|c| c.connection.revision == *revision),
        Precondition::ConnectionIdFree(id) => connection(*id)?.is_none(),
        Precondition::WriteKeyOf {
            key,
            connection: id,
        } => connection(*id)?.is_some_and(|c| c.keys.iter().any(|k| &k.key == key)),
        Precondition::WriteKeyCount {
            connection: id,
            cmp,
            n,
        } => cmp.holds(connection(*id)?.map_or(0, |c| c.keys.len()), *n),
        Precondition::ConnectionCount { workspace, n } => {
            let members = txn.open_table(WORKSPACE_CONNECTIONS).map_err(redb_error)?;
            let range = members
                .range((*workspace, 0)..=(*workspace, Id::MAX))
                .map_err(redb_error)?;
            range.count() == *n
        }
        Precondition::ApiKeyUpdatedAt { id, updated_at } => {
            let table = txn.open_table(API_KEYS).map_err(redb_error)?;
            let found = table.get(id.as_str()).map_err(redb_error)?;
            let key: Option<ApiKey> = found.map(|v| decode(v.value())).transpose()?;
            key.is_some_and(|k| format_millis(k.updated_at) == format_millis(*updated_at))
        }
    })
}

/// Applies the writes in order.
pub(super) fn apply(txn: &WriteTransaction, writes: Vec<Write>) -> Result<(), StoreError> {
    for write in writes {
        apply_one(txn, write)?;
    }
    Ok(())
}

fn apply_one(txn: &WriteTransaction, write: Write) -> Result<(), StoreError> {
    let mut connections = txn.open_table(CONNECTIONS).map_err(redb_error)?;
    let stored =
        |table: &redb::Table<u32, &[u8]>, id: Id| -> Result<StoredConnection, StoreError> {
            get_by_id(table, id)?
                .ok_or_else(|| StoreError::internal(format!("connection {id} vanished")))
        };
    match write {
        Write::PutCompany(company) => {
            let bytes = encode(&company)?;
            txn.open_table(COMPANIES)
                .map_err(redb_error)?
                .insert(company.id, bytes.as_slice())
                .map_err(redb_error)?;
        }
        Write::PutWorkspace(workspace) => {
            let bytes = encode(&workspace)?;
            txn.open_table(WORKSPACES)
                .map_err(redb_error)?
                .insert(workspace.id, bytes.as_slice())
                .map_err(redb_error)?;
        }
        Write::DeleteWorkspace(id) => {
            txn.open_table(WORKSPACES)
                .map_err(redb_error)?
                .remove(id)
                .map_err(redb_error)?;
        }
        Write::PutConnection(connection) => {
            let keys = match get_by_id::<StoredConnection>(&connections, connection.id)? {
                Some(existing) => existing.keys,
                None => Vec::new(),
            };
            let (id, workspace) = (connection.id, connection.workspace_id);
            let bytes = encode(&StoredConnection { connection, keys })?;
            connections
                .insert(id, bytes.as_slice())
                .map_err(redb_error)?;
            txn.open_table(WORKSPACE_CONNECTIONS)
                .map_err(redb_error)?
                .insert((workspace, id), ())
                .map_err(redb_error)?;
        }
        Write::DeleteConnection(connection) => {
            connections.remove(connection.id).map_err(redb_error)?;
            txn.open_table(WORKSPACE_CONNECTIONS)
                .map_err(redb_error)?
                .remove((connection.workspace_id, connection.id))
                .map_err(redb_error)?;
        }
        Write::AddWriteKey { key, target } => {
            let mut record = stored(&connections, target.connection_id)?;
            record.keys.push(key);
            let bytes = encode(&record)?;
            connections
                .insert(target.connection_id, bytes.as_slice())
                .map_err(redb_error)?;
        }
        Write::RemoveWriteKey { key, connection } => {
            let mut record = stored(&connections, connection)?;
            record.keys.retain(|k| k.key != key);
            let bytes = encode(&record)?;
            connections
                .insert(connection, bytes.as_slice())
                .map_err(redb_error)?;
        }
        Write::PutApiKey(key) => {
            let bytes = encode(&key)?;
            txn.open_table(API_KEYS)
                .map_err(redb_error)?
                .insert(key.id.as_str(), bytes.as_slice())
                .map_err(redb_error)?;
            txn.open_table(API_KEY_HASHES)
                .map_err(redb_error)?
                .insert(key.key_hash.as_str(), key.id.as_str())
                .map_err(redb_error)?;
        }
    }
    Ok(())
}
