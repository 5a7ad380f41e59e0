//! The control plane's domain layer: every admin operation is decided here, once, in
//! Rust. An operation reads what it needs from the store, checks the rules (who may do
//! what, caps, the last-key rules, field rules) and produces a [`Plan`]: the
//! preconditions its decision relied on, the writes, and the index changes. The store
//! commits the plan atomically or reports that a precondition no longer held, and the
//! operation is decided again on fresh data. A write returns once this node's index
//! reflects it (read your writes).

pub(crate) mod api_keys;
pub(crate) mod bootstrap;
mod companies;
mod connections;
mod error;
pub(crate) mod fields;
pub(crate) mod paging;
pub(crate) mod sync;
mod workspaces;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::index::KeyIndex;
use crate::model::{ApiKeyAuth, Id};
use crate::store::plan::Plan;
use crate::store::{Store, StoreError};

pub(crate) use connections::ConnectionChanges;
pub(crate) use error::ControlError;

/// Decisions re-made after a lost race before the operation gives up (409).
const ATTEMPTS: usize = 8;
/// How long a write waits for its own node's index before answering anyway.
const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(5);

/// A decision: the plan to commit and what the operation answers once it is in.
type Decided<'a, T> = Pin<Box<dyn Future<Output = Result<(Plan, T), ControlError>> + Send + 'a>>;

/// Who is asking: what an authenticated API key may see and do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The key's company; it sees nothing of others.
    pub(crate) company: Id,
    /// Set for a key restricted to one workspace.
    pub(crate) workspace: Option<Id>,
    /// Whether the company is the operator company.
    pub(crate) operator: bool,
}

impl From<&ApiKeyAuth> for Caller {
    fn from(auth: &ApiKeyAuth) -> Self {
        Self {
            company: auth.company_id,
            workspace: auth.workspace_id,
            operator: auth.operator,
        }
    }
}

impl Caller {
    /// Routes closed to workspace-restricted keys (API keys, companies, workspaces).
    fn require_company_wide(&self) -> Result<(), ControlError> {
        match self.workspace {
            Some(_) => Err(ControlError::RestrictedKey),
            None => Ok(()),
        }
    }

    /// Operator-only routes (companies).
    fn require_operator(&self) -> Result<(), ControlError> {
        self.require_company_wide()?;
        if self.operator {
            Ok(())
        } else {
            Err(ControlError::OperatorOnly)
        }
    }
}

/// The domain layer over one store, answering once the index has caught up.
pub(crate) struct Control {
    store: Arc<dyn Store>,
    index: Arc<KeyIndex>,
}

impl Control {
    pub(crate) fn new(store: Arc<dyn Store>, index: Arc<KeyIndex>) -> Self {
        Self { store, index }
    }

    /// Whether the store is reachable (for `/readyz`).
    pub(crate) fn store_is_healthy(&self) -> bool {
        self.store.is_healthy()
    }

    /// Decides, commits, and decides again on fresh data while a precondition lost a
    /// race; then waits for this node's index to reflect the commit.
    async fn decide_and_commit<'a, T>(
        &'a self,
        mut decide: impl FnMut() -> Decided<'a, T>,
    ) -> Result<T, ControlError> {
        for _ in 0..ATTEMPTS {
            let (plan, value) = decide().await?;
            match self.store.commit(plan).await {
                Ok(version) => {
                    self.settle(version).await;
                    return Ok(value);
                }
                Err(StoreError::PreconditionFailed) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ControlError::Busy)
    }

    async fn settle(&self, version: u64) {
        if !self
            .index
            .wait_for_version(version, READ_YOUR_WRITES_TIMEOUT)
            .await
        {
            tracing::warn!(version, "index did not reflect an admin write in time");
        }
    }
}
