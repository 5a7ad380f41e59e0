//! A [`Plan`]: what the control layer decided an admin operation does, in terms every
//! store can commit atomically. Preconditions pin what the decision read (a store
//! checks them, knowing no rule); writes are records to put or remove; changes are the
//! index's change feed entries, published as the store's next version.

use time::OffsetDateTime;

use crate::index::feed::Change;
use crate::model::{ApiKey, Company, Connection, Id, KeyTarget, Workspace, WriteKey};

/// One admin operation, decided, ready to commit.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// All must hold at commit, or nothing is written.
    pub(crate) preconditions: Vec<Precondition>,
    /// Applied in order.
    pub(crate) writes: Vec<Write>,
    /// Published with the version the commit produces.
    pub(crate) changes: Vec<Change>,
}

/// A fact the decision relied on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Precondition {
    /// The company exists.
    CompanyExists(Id),
    /// The workspace exists and belongs to the company.
    WorkspaceOf { workspace: Id, company: Id },
    /// The connection exists in the workspace.
    ConnectionIn { connection: Id, workspace: Id },
    /// The connection exists with this revision (unchanged since it was read).
    ConnectionRevision { connection: Id, revision: u64 },
    /// No connection has this id.
    ConnectionIdFree(Id),
    /// The write key belongs to the connection.
    WriteKeyOf { key: String, connection: Id },
    /// The connection's number of write keys compares so to `n`.
    WriteKeyCount { connection: Id, cmp: Cmp, n: usize },
    /// The workspace holds exactly `n` connections.
    ConnectionCount { workspace: Id, n: usize },
    /// The API key exists, last updated at this time (unchanged since it was read).
    ApiKeyUpdatedAt {
        id: String,
        updated_at: OffsetDateTime,
    },
}

/// How a count must compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Below,
    Above,
    Exactly,
}

impl Cmp {
    /// Whether `count` compares so to `n`.
    pub(crate) fn holds(self, count: usize, n: usize) -> bool {
        match self {
            Self::Below => count < n,
            Self::Above => count > n,
            Self::Exactly => count == n,
        }
    }
}

/// A record to store or remove.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Write {
    PutCompany(Company),
    PutWorkspace(Workspace),
    /// The workspace record (its connections are removed by their own writes).
    DeleteWorkspace(Id),
    /// Creates or replaces the connection record (never its keys).
    PutConnection(Connection),
    /// The connection record (its keys are removed by their own writes).
    DeleteConnection(Connection),
    /// A write key, last in its connection's list.
    AddWriteKey {
        key: WriteKey,
        target: KeyTarget,
    },
    RemoveWriteKey {
        key: String,
        connection: Id,
    },
    /// Creates or replaces an API key (and its digest's entry).
    PutApiKey(ApiKey),
}

/// The id counters a store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sequence {
    Company,
    Workspace,
}
