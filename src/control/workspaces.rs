//! Workspaces: a company's, and the one a workspace-scoped request acts in.

use super::fields::Name;
use super::{Caller, Control, ControlError};
use crate::clock;
use crate::index::feed::Change;
use crate::model::{Id, Workspace};
use crate::store::plan::{Cmp, Plan, Precondition, Sequence, Write};

impl Control {
    /// The workspace a workspace-scoped request acts in: the one named by the
    /// `Intake-Workspace` header, or a restricted key's own. A missing, malformed or
    /// unknown one does not exist; a restricted key naming another is refused.
    pub(crate) async fn scope(
        &self,
        caller: &Caller,
        header: Option<&str>,
    ) -> Result<Workspace, ControlError> {
        let named = header
            .map(|text| text.trim().parse::<Id>())
            .transpose()
            .map_err(|_| ControlError::WorkspaceNotFound)?;
        let id = match (caller.workspace, named) {
            (Some(own), Some(named)) if own != named => return Err(ControlError::OtherWorkspace),
            (Some(own), _) => own,
            (None, Some(named)) => named,
            (None, None) => return Err(ControlError::WorkspaceNotFound),
        };
        self.company_workspace(caller.company, id).await
    }

    /// A workspace of the company, or `WorkspaceNotFound`.
    pub(super) async fn company_workspace(
        &self,
        company: Id,
        id: Id,
    ) -> Result<Workspace, ControlError> {
        self.store
            .workspace(id)
            .await?
            .filter(|w| w.company_id == company)
            .ok_or(ControlError::WorkspaceNotFound)
    }

    /// The workspaces the caller sees: its company's, or a restricted key's own.
    pub(crate) async fn workspaces(&self, caller: &Caller) -> Result<Vec<Workspace>, ControlError> {
        let all = self.store.workspaces(caller.company).await?;
        Ok(all
            .into_iter()
            .filter(|w| caller.workspace.is_none_or(|own| own == w.id))
            .collect())
    }

    /// One workspace the caller sees.
    pub(crate) async fn workspace(
        &self,
        caller: &Caller,
        id: Id,
    ) -> Result<Workspace, ControlError> {
        if caller.workspace.is_some_and(|own| own != id) {
            return Err(ControlError::WorkspaceNotFound);
        }
        self.company_workspace(caller.company, id).await
    }

    /// A new workspace of the caller's company.
    pub(crate) async fn create_workspace(
        &self,
        caller: &Caller,
        name: Name,
    ) -> Result<Workspace, ControlError> {
        caller.require_company_wide()?;
        self.decide_and_commit(|| {
            let name = name.0.clone();
            Box::pin(async move {
                let workspace = Workspace {
                    id: self.store.next_id(Sequence::Workspace).await?,
                    company_id: caller.company,
                    name,
                    created_at: clock::now(),
                };
                let plan = Plan {
                    preconditions: vec![Precondition::CompanyExists(caller.company)],
                    writes: vec![Write::PutWorkspace(workspace.clone())],
                    changes: Vec::new(),
                };
                Ok((plan, workspace))
            })
        })
        .await
    }

    /// Deletes a workspace with its connections, revoking their keys.
    pub(crate) async fn delete_workspace(
        &self,
        caller: &Caller,
        id: Id,
    ) -> Result<(), ControlError> {
        caller.require_company_wide()?;
        self.decide_and_commit(|| {
            Box::pin(async move {
                let workspace = self.company_workspace(caller.company, id).await?;
                let connections = self.store.connections(id).await?;
                let mut plan = Plan {
                    preconditions: vec![
                        Precondition::WorkspaceOf {
                            workspace: id,
                            company: workspace.company_id,
                        },
                        Precondition::ConnectionCount {
                            workspace: id,
                            n: connections.len(),
                        },
                    ],
                    ..Plan::default()
                };
                for connection in connections {
                    let keys = self.store.write_keys(connection.id).await?;
                    plan_connection_removal(&mut plan, connection, keys);
                }
                plan.writes.push(Write::DeleteWorkspace(id));
                Ok((plan, ()))
            })
        })
        .await
    }
}

/// Adds to `plan` the removal of a connection with exactly these keys.
pub(super) fn plan_connection_removal(
    plan: &mut Plan,
    connection: crate::model::Connection,
    keys: Vec<crate::model::WriteKey>,
) {
    plan.preconditions.push(Precondition::ConnectionIn {
        connection: connection.id,
        workspace: connection.workspace_id,
    });
    plan.preconditions.push(Precondition::WriteKeyCount {
        connection: connection.id,
        cmp: Cmp::Exactly,
        n: keys.len(),
    });
    for key in keys {
        plan.preconditions.push(Precondition::WriteKeyOf {
            key: key.key.clone(),
            connection: connection.id,
        });
        plan.writes.push(Write::RemoveWriteKey {
            key: key.key.clone(),
            connection: connection.id,
        });
        plan.changes.push(Change::WriteKeyRevoked { key: key.key });
    }
    if !connection.allowed_origins.is_empty() {
        plan.changes.push(Change::OriginsSet {
            connection_id: connection.id,
            origins: Vec::new(),
        });
    }
    plan.writes.push(Write::DeleteConnection(connection));
}
