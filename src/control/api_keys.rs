//! API keys of a company: created with a secret shown once (stored as a SHA-256
//! digest), changed under compare-and-set on `updatedAt`, soft-deleted. The operator
//! company always keeps an active key, so nobody can lock everyone out.

use time::{Duration as TimeDuration, OffsetDateTime};

use super::fields::{ApiVersion, Description, UserId, WhitelistedIps};
use super::{Caller, Control, ControlError};
use crate::clock::{self, format_millis};
use crate::index::feed::Change;
use crate::model::{ApiKey, ApiKeyStatus, Id};
use crate::secrets;
use crate::store::plan::{Plan, Precondition, Write};

/// After a version change, going back to an older version is allowed this long.
const DOWNGRADE_WINDOW: TimeDuration = TimeDuration::hours(72);

/// A fresh, active API key record for `secret`.
pub(crate) fn new_api_key_record(
    secret: &str,
    company_id: Id,
    workspace_id: Option<Id>,
    user_id: String,
) -> ApiKey {
    let now = clock::now();
    ApiKey {
        id: uuid::Uuid::new_v4().to_string(),
        company_id,
        workspace_id,
        user_id,
        key_hash: secrets::hash_hex(&secrets::hash_api_key(secret)),
        key_tail: secrets::tail4(secret),
        whitelisted_ips: Vec::new(),
        status: ApiKeyStatus::Active,
        description: None,
        api_version: None,
        api_version_updated_at: None,
        api_version_downgrade_not_allowed_after: None,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    }
}

/// What a new key is made of.
pub(crate) struct NewApiKey {
    pub(crate) user_id: UserId,
    pub(crate) whitelisted_ips: WhitelistedIps,
    pub(crate) description: Option<Description>,
    pub(crate) workspace_id: Option<Id>,
}

/// What `PUT /v1/keys/{keyId}` may change; `None` keeps the current value.
pub(crate) struct ApiKeyChanges {
    pub(crate) api_version: Option<ApiVersion>,
    /// `Some(None)` clears the description.
    pub(crate) description: Option<Option<Description>>,
    pub(crate) whitelisted_ips: Option<WhitelistedIps>,
}

/// The index change an API key's state means.
fn change_of(key: &ApiKey, operator: bool) -> Change {
    match key.status {
        ApiKeyStatus::Active => Change::ApiKeyPut {
            auth: key.auth(operator),
        },
        ApiKeyStatus::Inactive => Change::ApiKeyRevoked {
            hash: key.key_hash.clone(),
        },
    }
}

/// A plan replacing `current` by `next`, provided `current` is unchanged.
fn replacement(current: &ApiKey, next: ApiKey, operator: bool) -> Plan {
    Plan {
        preconditions: vec![Precondition::ApiKeyUpdatedAt {
            id: current.id.clone(),
            updated_at: current.updated_at,
        }],
        changes: vec![change_of(&next, operator)],
        writes: vec![Write::PutApiKey(next)],
    }
}

impl Control {
    /// One API key of the caller's company.
    pub(crate) async fn api_key(&self, caller: &Caller, id: &str) -> Result<ApiKey, ControlError> {
        caller.require_company_wide()?;
        self.store
            .api_key(id.to_string())
            .await?
            .filter(|k| k.company_id == caller.company)
            .ok_or(ControlError::ApiKeyNotFound)
    }

    /// A new key of the caller's company; its secret, shown this once.
    pub(crate) async fn create_api_key(
        &self,
        caller: &Caller,
        new: NewApiKey,
    ) -> Result<(ApiKey, String), ControlError> {
        caller.require_company_wide()?;
        let secret = secrets::new_api_key();
        let mut key = new_api_key_record(&secret, caller.company, new.workspace_id, new.user_id.0);
        key.description = new.description.map(|d| d.0);
        key.whitelisted_ips = new.whitelisted_ips.0;
        self.decide_and_commit(|| {
            let key = key.clone();
            Box::pin(async move {
                let mut preconditions = vec![Precondition::CompanyExists(caller.company)];
                if let Some(workspace) = key.workspace_id {
                    match self.company_workspace(caller.company, workspace).await {
                        Ok(_) => {}
                        Err(ControlError::WorkspaceNotFound) => {
                            return Err(ControlError::Invalid(
                                "workspaceId does not name a workspace of this company".into(),
                            ))
                        }
                        Err(other) => return Err(other),
                    }
                    preconditions.push(Precondition::WorkspaceOf {
                        workspace,
                        company: caller.company,
                    });
                }
                let plan = Plan {
                    preconditions,
                    changes: vec![change_of(&key, caller.operator)],
                    writes: vec![Write::PutApiKey(key.clone())],
                };
                Ok((plan, key))
            })
        })
        .await
        .map(|key| (key, secret))
    }

    /// Changes a key's description, allow-list or API version.
    pub(crate) async fn update_api_key(
        &self,
        caller: &Caller,
        id: &str,
        changes: ApiKeyChanges,
    ) -> Result<ApiKey, ControlError> {
        self.decide_and_commit(|| {
            let changes = &changes;
            Box::pin(async move {
                let current = self.api_key(caller, id).await?;
                let now = clock::now();
                let mut next = current.clone();
                if let Some(description) = &changes.description {
                    next.description = description.as_ref().map(|d| d.0.clone());
                }
                if let Some(ips) = &changes.whitelisted_ips {
                    next.whitelisted_ips = ips.0.clone();
                }
                if let Some(version) = &changes.api_version {
                    change_api_version(&mut next, version, now)?;
                }
                next.updated_at = now;
                Ok((replacement(&current, next.clone(), caller.operator), next))
            })
        })
        .await
    }

    /// Soft-deletes a key: inactive everywhere, kept for the record. Deleting an
    /// inactive key changes nothing; the operator company's last active key stays.
    pub(crate) async fn delete_api_key(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<(), ControlError> {
        let current = self.api_key(caller, id).await?;
        if current.status == ApiKeyStatus::Inactive {
            return Ok(());
        }
        self.decide_and_commit(|| {
            Box::pin(async move {
                let current = self.api_key(caller, id).await?;
                let now = clock::now();
                let next = ApiKey {
                    status: ApiKeyStatus::Inactive,
                    deleted_at: current.deleted_at.or(Some(now)),
                    updated_at: now,
                    ..current.clone()
                };
                let mut plan = replacement(&current, next, caller.operator);
                if caller.operator && current.status == ApiKeyStatus::Active {
                    // Another active key must stay: pinning one unchanged is enough.
                    let others = self.store.api_keys(caller.company).await?;
                    let other = others
                        .into_iter()
                        .find(|k| k.status == ApiKeyStatus::Active && k.id != current.id)
                        .ok_or(ControlError::LastOperatorKey)?;
                    plan.preconditions.push(Precondition::ApiKeyUpdatedAt {
                        id: other.id,
                        updated_at: other.updated_at,
                    });
                }
                Ok((plan, ()))
            })
        })
        .await
    }

    /// Makes a key active again (a configured bootstrap key at start-up).
    pub(super) async fn reactivate_api_key(&self, id: &str) -> Result<(), ControlError> {
        self.decide_and_commit(|| {
            Box::pin(async move {
                let current = self
                    .store
                    .api_key(id.to_string())
                    .await?
                    .ok_or(ControlError::ApiKeyNotFound)?;
                let operator = self
                    .store
                    .company(current.company_id)
                    .await?
                    .is_some_and(|c| c.operator);
                let next = ApiKey {
                    status: ApiKeyStatus::Active,
                    deleted_at: None,
                    updated_at: clock::now(),
                    ..current.clone()
                };
                Ok((replacement(&current, next, operator), ()))
            })
        })
        .await
    }
}

/// Applies a new version: it must not be in the future; timestamps move on a change;
/// going back to an older version is refused once the downgrade window of the last
/// change has passed.
fn change_api_version(
    key: &mut ApiKey,
    version: &ApiVersion,
    now: OffsetDateTime,
) -> Result<(), ControlError> {
    if version.date().is_none_or(|date| date > now.date()) {
        return Err(ControlError::Invalid(
            "apiVersion must not be in the future".into(),
        ));
    }
    let version = version.0.as_str();
    if key.api_version.as_deref() == Some(version) {
        return Ok(());
    }
    let is_downgrade = key
        .api_version
        .as_deref()
        .is_some_and(|current| version < current);
    if let Some(after) = key.api_version_downgrade_not_allowed_after {
        if is_downgrade && now > after {
            return Err(ControlError::Invalid(format!(
                "apiVersion cannot go back to an older version after {}",
                format_millis(after)
            )));
        }
    }
    key.api_version = Some(version.to_string());
    key.api_version_updated_at = Some(now);
    key.api_version_downgrade_not_allowed_after = Some(now + DOWNGRADE_WINDOW);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_with_version(version: &str, changed: OffsetDateTime) -> ApiKey {
        let mut key = new_api_key_record(&secrets::new_api_key(), 1, None, "u".into());
        key.api_version = Some(version.into());
        key.api_version_updated_at = Some(changed);
        key.api_version_downgrade_not_allowed_after = Some(changed + DOWNGRADE_WINDOW);
        key
    }

    fn version(text: &str) -> ApiVersion {
        serde_json::from_value(serde_json::json!(text)).unwrap()
    }

    #[test]
    fn versions_in_the_future_are_refused() {
        let now = clock::parse_iso8601("2026-11-27T12:00:00Z").unwrap();
        let mut key = new_api_key_record("api_x", 1, None, "u".into());
        assert!(change_api_version(&mut key, &version("2026-11-27"), now).is_ok());
        let error = change_api_version(&mut key, &version("2026-11-28"), now).unwrap_err();
        assert!(error.to_string().contains("apiVersion"));
    }

    #[test]
    fn downgrades_close_72_hours_after_a_change() {
        let changed = clock::parse_iso8601("2026-11-01T00:00:00Z").unwrap();
        let mut key = key_with_version("2026-10-01", changed);
        let within = changed + TimeDuration::hours(71);
        assert!(change_api_version(&mut key, &version("2026-09-01"), within).is_ok());
        let mut key = key_with_version("2026-10-01", changed);
        let after = changed + TimeDuration::hours(73);
        let error = change_api_version(&mut key, &version("2026-09-01"), after).unwrap_err();
        assert!(error.to_string().contains("apiVersion"));
        assert!(change_api_version(&mut key, &version("2026-10-15"), after).is_ok());
        assert_eq!(key.api_version_updated_at, Some(after));
        assert_eq!(
            key.api_version_downgrade_not_allowed_after,
            Some(after + DOWNGRADE_WINDOW)
        );
    }
}
