//! What an admin operation can come to besides success. Each variant's message is the
//! fixed public sentence; a store failure keeps its cause for the log.

use crate::store::StoreError;

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlError {
    #[error("workspace does not exist")]
    WorkspaceNotFound,
    #[error("connection does not exist")]
    ConnectionNotFound,
    #[error("key does not exist")]
    WriteKeyNotFound,
    #[error("API key does not exist")]
    ApiKeyNotFound,
    /// The 20-key cap.
    #[error("connection already has 20 keys")]
    TooManyWriteKeys,
    /// A connection keeps at least one key.
    #[error("key cannot be deleted as it is the connection's only key")]
    LastWriteKey,
    /// Write keys exist only on sdk and webhook connections.
    #[error("connection is not an SDK or webhook connection")]
    NotEventConnection,
    /// The operator company keeps at least one active key, so nobody is locked out.
    #[error("the last active API key of the operator company cannot be deleted")]
    LastOperatorKey,
    /// The data kept changing under the decision.
    #[error("the data kept changing while this request was decided; try again")]
    Busy,
    /// A workspace-restricted key on a company-wide route.
    #[error("this API key is restricted to one workspace")]
    RestrictedKey,
    /// A workspace-restricted key naming another workspace.
    #[error("this API key is restricted to another workspace")]
    OtherWorkspace,
    /// Companies are managed by the operator company's keys only.
    #[error("only the operator company's API keys may manage companies")]
    OperatorOnly,
    /// A field or parameter rule that needs the stored data (or the clock) to check;
    /// the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// The store failed; the cause goes to the log.
    #[error(transparent)]
    Store(#[from] StoreError),
}
