//! API key objects as the admin API shows them.

use serde_json::{json, Value};

use crate::clock::format_millis;
use crate::model::{ApiKey, ApiKeyStatus};
use crate::secrets;

/// The key object; `secret` is shown in full only when the key was just created.
pub fn view(key: &ApiKey, secret: Option<&str>) -> Value {
    let shown = match secret {
        Some(secret) => secret.to_string(),
        None => secrets::mask_api_key_tail(&key.key_tail),
    };
    json!({
        "id": key.id,
        "companyId": key.company_id,
        "workspaceId": key.workspace_id,
        "userId": key.user_id,
        "key": shown,
        "whitelistedIPs": key.whitelisted_ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "status": match key.status {
            ApiKeyStatus::Active => "active",
            ApiKeyStatus::Inactive => "inactive",
        },
        "description": key.description,
        "apiVersion": key.api_version,
        "apiVersionUpdatedAt": key.api_version_updated_at.map(format_millis),
        "apiVersionDowngradeNotAllowedAfter": key.api_version_downgrade_not_allowed_after.map(format_millis),
        "createdAt": format_millis(key.created_at),
        "updatedAt": format_millis(key.updated_at),
        "deletedAt": key.deleted_at.map(format_millis),
    })
}
